"""Tool names: derived from connector FQNs, de-duplicated, kept clear of reserved commands.

``tool_name`` derives a name from an FQN (SPEC §11.1):

1. take the FQN's last path segment (``github://owner/repo/sub`` → ``sub``,
   ``local://echo`` → ``echo``; a trailing ``/`` is ignored);
2. lowercase it, then strip one leading ``aileron-connector-`` or ``connector-`` (lowercasing
   first, so ``Connector-X`` loses its prefix too);
3. turn each run of characters outside ``[a-z0-9]`` into one ``-`` and strip ``-`` from both
   ends;
4. cut it to ``MAX_TOOL_NAME`` (48) characters and strip a trailing ``-`` again.

What remains always matches ``TOOL_NAME_PATTERN``: lowercase letters and digits in groups
joined by single hyphens (``^[a-z0-9]+(-[a-z0-9]+)*$``), 1 to 48 characters. An empty result
is a ``ShimError``.

``NameBook`` hands out the final names in the caller's order. A base name that is a common
system command (``SYSTEM_NAMES``: shells, shell keywords and built-ins, the utilities the
shims run, POSIX utilities, tools coding agents lean on) gets the prefix ``aileron-``
(``local://echo`` → ``aileron-echo``): a shim of that name would be shadowed by the shell or
the image, or would shadow them. A name already taken then gets ``-2``, ``-3``, … (the first
free one, the base cut so the whole stays within 48 characters; a suffixed name that is
reserved or a system name is not free). A base name in ``RESERVED_NAMES`` (the agents and
Aileron's own commands) or equal to the agent's command is refused: the caller decides whether
that is an error or a skip (SPEC §11.1).

The module also holds the text rules for names and descriptions embedded in shims
(``check_name``, ``summary_line``, ``text_lines``).
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Iterable

from aileron_shims.model import ShimError

MAX_TOOL_NAME = 48
TOOL_NAME_PATTERN = r"[a-z0-9]+(?:-[a-z0-9]+)*"
MAX_NAME = 256
"""Longest name (FQN, action, operation, argument) the generator accepts."""

AGENT_COMMANDS = frozenset({"claude", "codex", "goose", "opencode"})
AILERON_COMMANDS = frozenset({"aileron", "aileron-mcp", "aileron-enclave"})
SHELLS = frozenset({"sh", "ash", "bash", "dash", "ksh", "mksh", "zsh", "fish", "busybox"})
SHELL_KEYWORDS = frozenset(
    {"case", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in"}
    | {"select", "then", "time", "until", "while", "!", "{", "}", "[[", "]]"}
)
# POSIX regular built-ins and the common ones of dash and bash: the shell runs these itself,
# whatever is on PATH.
REGULAR_BUILTINS = frozenset(
    {"alias", "bg", "cd", "echo", "fc", "fg", "getopts", "hash", "jobs", "kill", "let"}
    | {"local", "pwd", "read", "type", "ulimit", "unalias", "wait", "builtin", "declare"}
)
# POSIX utilities an agent (or its scripts) may well call by name.
POSIX_UTILITIES = frozenset(
    {"basename", "chmod", "chown", "cmp", "comm", "cp", "cut", "date", "dd", "df", "diff"}
    | {"dirname", "du", "expr", "file", "find", "grep", "head", "id", "join", "less", "ln"}
    | {"ls", "man", "mkdir", "more", "mv", "nice", "nl", "od", "paste", "patch", "ps", "sleep"}
    | {"sort", "split", "stat", "tail", "tar", "tee", "touch", "tr", "tty", "uname", "uniq"}
    | {"vi", "wc", "which", "xargs", "zip", "unzip", "gzip", "tput"}
)
SPECIAL_BUILTINS = frozenset(
    {"break", ":", "continue", ".", "eval", "exec", "exit", "export", "readonly", "return"}
    | {"set", "shift", "source", "times", "trap", "unset"}
)
SHIM_UTILITIES = frozenset(
    {"awk", "mawk", "gawk", "nawk", "cat", "command", "curl", "env", "mktemp", "printf"}
    | {"rm", "sed", "test", "[", "true", "false", "umask", "wget"}
)
AGENT_TOOLBOX = frozenset(
    {"git", "make", "node", "npm", "npx", "pip", "pip3", "python", "python3", "ssh", "sudo"}
)
RESERVED_NAMES: frozenset[str] = AGENT_COMMANDS | AILERON_COMMANDS
"""Names no tool may take: the agents and Aileron's own commands (refused or skipped)."""
SYSTEM_NAMES: frozenset[str] = (
    SHELLS
    | SHELL_KEYWORDS
    | SPECIAL_BUILTINS
    | REGULAR_BUILTINS
    | SHIM_UTILITIES
    | POSIX_UTILITIES
    | AGENT_TOOLBOX
)
"""Common system commands: a tool whose name would be one is called ``aileron-<name>``."""
SYSTEM_PREFIX = "aileron-"

_PREFIXES = ("aileron-connector-", "connector-")
_OTHER = re.compile(r"[^a-z0-9]+")
# Control, format (bidi overrides, zero-width), surrogate and separator (space, line and
# paragraph) characters: none belongs in a name that lands in a script, a help line or tools.txt.
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})
# The same, for free text, plus unassigned and private-use characters (shown as a space).
_BAD_TEXT_CATEGORIES = _BAD_CATEGORIES | {"Cn", "Co"}


def tool_name(fqn: str) -> str:
    """The tool name derived from ``fqn``, before de-duplication (see the module docstring)."""
    if not isinstance(fqn, str):
        raise ShimError(f"connector FQN {fqn!r} is not a string", hint="pass the FQN as text")
    rest = fqn.split("://", 1)[1] if "://" in fqn else fqn
    segment = rest.rstrip("/").rsplit("/", 1)[-1].lower()
    for prefix in _PREFIXES:
        if segment.startswith(prefix):
            segment = segment[len(prefix) :]
            break
    name = _OTHER.sub("-", segment).strip("-")[:MAX_TOOL_NAME].rstrip("-")
    if not name:
        raise ShimError(
            f"connector {fqn!r} gives no usable tool name",
            hint="its FQN's last segment needs a letter or digit besides the"
            " 'aileron-connector-'/'connector-' prefix",
        )
    return name


def reserved_reason(name: str, agent_command: str) -> str | None:
    """Why ``name`` may not be a tool (``RESERVED_NAMES``, or the agent's command), or ``None``."""
    if name in {agent_command, posixpath.basename(agent_command)}:
        return f"the agent's command {agent_command!r}"
    if name in RESERVED_NAMES:
        return "a reserved command name (aileron_shims.RESERVED_NAMES)"
    return None


class NameBook:
    """Hands out unique tool names in the order asked; remembers every name taken."""

    def __init__(self, agent_command: str) -> None:
        self._agent_command = agent_command
        self._taken: set[str] = set()

    def reserved(self, base: str) -> str | None:
        """Why a derived base name may not be used at all, or ``None``."""
        return reserved_reason(base, self._agent_command)

    def take(self, base: str) -> str:
        """``base`` (``aileron-<base>`` for a system command name) if free, else the first
        free ``base-N`` (N = 2, 3, …), now taken."""
        if base in SYSTEM_NAMES:
            base = (SYSTEM_PREFIX + base)[:MAX_TOOL_NAME].rstrip("-")
        name = base
        number = 1
        while name in self._taken or name in SYSTEM_NAMES or self.reserved(name) is not None:
            number += 1
            suffix = f"-{number}"
            name = base[: MAX_TOOL_NAME - len(suffix)].rstrip("-") + suffix
        self._taken.add(name)
        return name


# --- text rules ----------------------------------------------------------------------------


def _bad_char(text: str, categories: frozenset[str]) -> str | None:
    return next((c for c in text if unicodedata.category(c) in categories), None)


def check_name(value: object, what: str, *, option_safe: bool = True) -> str:
    """``value`` if it is a usable name, else a ``ShimError`` naming ``what``.

    A name is a non-empty string of at most ``MAX_NAME`` characters without control, format,
    surrogate or white-space characters; with ``option_safe`` it may not start with ``-`` (a
    shim would read it as an option).
    """
    if not isinstance(value, str):
        raise ShimError(f"{what}: expected a string, got {type(value).__name__}")
    if not value:
        raise ShimError(f"{what} is empty", hint="give it a name")
    if len(value) > MAX_NAME:
        raise ShimError(f"{what} is longer than {MAX_NAME} characters", hint="shorten it")
    bad = _bad_char(value, _BAD_CATEGORIES)
    if bad is not None:
        raise ShimError(
            f"{what} {value!r} holds the character {bad!r}",
            hint="use names without control characters or spaces",
        )
    if option_safe and value.startswith("-"):
        raise ShimError(
            f"{what} {value!r} starts with '-'", hint="a shim would read it as an option"
        )
    return value


def check_text(value: object, what: str) -> str:
    """``value`` if it is a string (free text is cleaned, not refused), else a ``ShimError``."""
    if not isinstance(value, str):
        raise ShimError(f"{what}: expected a string, got {type(value).__name__}")
    return value


def _clean(line: str) -> str:
    """One line with every tab, control or odd character turned into a space."""
    return "".join(" " if unicodedata.category(c) in _BAD_TEXT_CATEGORIES else c for c in line)


def text_lines(text: str) -> tuple[str, ...]:
    """Free text as clean lines: no trailing spaces, no blank lines at either end or in a row."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = _clean(raw).rstrip()
        if line or (lines and lines[-1]):
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return tuple(lines)


def one_line(text: str) -> str:
    """``text`` cleaned and with all white space (line breaks too) collapsed to single spaces."""
    return " ".join(_clean(text).split())


def summary_line(text: str) -> str:
    """The first non-empty line of ``text``, white space collapsed ("" if there is none)."""
    for line in text_lines(text):
        if line.strip():
            return " ".join(line.split())
    return ""


def joined(names: Iterable[str]) -> str:
    """Names sorted and joined with ``", "``."""
    return ", ".join(sorted(names))
