"""How the agent in a container learns about its tools and reaches them (issue #18).

Three pieces, all handed over at launch without touching the user's workspace files:

- **The tools on every shell's PATH.** The shims are mounted at
  :data:`~aileron_cli.sandbox.container.SHIM_DIR` and the container's ``PATH`` includes it, but
  agents run commands as login shells (codex: ``bash -lc``) and Debian's ``/etc/profile``
  resets ``PATH``. A read-only :data:`PROFILE_FILE`, which ``/etc/profile`` sources after
  resetting, appends the shim directory again. The shims are not mounted over
  ``/usr/local/bin``: that would hide the image's own programs there (npm installs the agent
  itself in it).
- **The agent is told.** A short text naming ``/etc/aileron/tools.txt`` and the one-line usage,
  given to each agent the way it takes extra instructions: codex
  ``-c developer_instructions="…"``, claude ``--append-system-prompt``. opencode and goose are
  not told yet (opencode would need a config file given through ``OPENCODE_CONFIG_CONTENT``;
  goose is not built into an image).
- **Brokered credentials are named.** With ``aileron launch --expose`` (ADR 0028) the text and
  ``tools.txt`` name each exposed variable and its hosts, and say that it holds a stand-in the
  egress proxy swaps for the real secret, so the agent uses it as it would the real one.
- **The container is the sandbox.** codex's own sandbox is switched off inside it
  (``sandbox_mode = "danger-full-access"``: its default blocks the shims' network and
  ``mktemp``) and it never asks before a command (``approval_policy = "never"``); Aileron's
  own approvals still apply to every action a shim runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from aileron_cli.launch.agents import toml_string
from aileron_cli.sandbox.bridge import Exposed
from aileron_cli.sandbox.container import SHIM_DIR, TOOLS_FILE

PROFILE_FILE = "/etc/profile.d/aileron.sh"

TOOLS_INSTRUCTIONS = (
    "You are running inside Aileron's sandbox. Your tools for reaching outside services are"
    f" shell commands listed in {TOOLS_FILE} (one per line: the command, a tab, what it is"
    " for). Run `<tool> --help` to see its actions, then"
    " `<tool> <action> --args '<JSON object>'`; each prints a JSON result. They are on PATH in"
    " every shell. Network access goes through Aileron's egress policy: a blocked host answers"
    " 403 with how to allow it."
)


def _works_for(exposed: Exposed) -> str:
    return (
        f"works for {', '.join(exposed.hosts)}: Aileron swaps in the real token at its proxy;"
        " it is useless anywhere else."
    )


def exposure_line(exposed: Exposed) -> str:
    """What one brokered variable is for, in one sentence."""
    return f"${exposed.variable} {_works_for(exposed)}"


def tools_instructions(exposed: Sequence[Exposed] = ()) -> str:
    """:data:`TOOLS_INSTRUCTIONS`, then a sentence per brokered variable."""
    return " ".join((TOOLS_INSTRUCTIONS, *(exposure_line(item) for item in exposed)))


def tools_text(tools_txt: str, exposed: Sequence[Exposed] = ()) -> str:
    """``tools.txt``: the shims' lines, then ``$VAR<tab>what it is for`` per brokered
    variable."""
    lines = (f"${item.variable}\t{_works_for(item)}\n" for item in exposed)
    return tools_txt + "".join(lines)


def profile_script() -> str:
    """The ``/etc/profile.d`` script that puts the shim directory back on a login shell's
    PATH (after ``/etc/profile`` has reset it); a no-op when it is there already."""
    return (
        "# Aileron: the session's tools (mounted read-only by `aileron launch --sandbox`).\n"
        f'case ":$PATH:" in *":{SHIM_DIR}:"*) ;; *) PATH="$PATH:{SHIM_DIR}"; export PATH ;;'
        " esac\n"
    )


def agent_arguments(agent_name: str, exposed: Sequence[Exposed] = ()) -> tuple[str, ...]:
    """The arguments ``agent_name`` gets in a container, before the user's own: its tools
    instructions (naming the brokered variables) and, for codex, its inner sandbox and
    approvals relaxed."""
    text = tools_instructions(exposed)
    if agent_name == "codex":
        overrides = (
            f"developer_instructions={toml_string(text)}",
            f"sandbox_mode={toml_string('danger-full-access')}",
            f"approval_policy={toml_string('never')}",
        )
        return tuple(arg for override in overrides for arg in ("-c", override))
    if agent_name == "claude":
        return ("--append-system-prompt", text)
    return ()
