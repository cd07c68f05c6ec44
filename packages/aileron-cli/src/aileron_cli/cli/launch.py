"""``aileron launch [--sandbox=…] [--sandbox-build=…] [--image IMG] [--provider NAME] AGENT
[-- AGENT_ARGS…]``:
run an agent through Aileron, on the host or in a container; ``aileron launch AGENT --check``:
check that wiring without running the agent."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

# The agents of aileron_cli.launch.agents.AGENTS, spelled here so that `aileron --help` does
# not import the launch machinery (a test keeps the two lists equal).
AGENT_NAMES = ("claude", "codex", "goose", "opencode")
SANDBOX_MODES = ("off", "auto", "docker", "podman")
BUILD_POLICIES = ("auto", "always", "never")

DESCRIPTION = """\
Run a coding agent in the current directory with Aileron wired in: the agent gets Aileron's
actions as MCP tools (through aileron-mcp), a session token of its own (never the daemon's
master token), and LLM traffic routed through Aileron's gateway where the agent supports it.
Your own agent config files are not changed.

With --sandbox=podman|docker|auto the agent runs in a container instead: the current
directory is its workspace (/home/agent/workspace), Aileron's actions are shell commands
listed in /etc/aileron/tools.txt, the host environment is not passed in, and the container
reaches Aileron through a listener of the session's own. The image is
aileron/sandbox-AGENT:VERSION (built on first use; see `aileron sandbox build`) or --image.

With --provider NAME the agent's model traffic of that provider's kind goes to the gateway
provider NAME ([gateway.providers.NAME] in config.toml, its key in a binding) instead of the
built-in one: codex needs a provider of kind openai, claude one of kind anthropic; goose and
opencode take either.

Aileron's exit code is the agent's; Ctrl-C and termination signals reach the agent.

With --check the agent is not run: Aileron checks the launched wiring instead (the agent
installed, aileron-mcp connected as the agent would start it, the gateway route answering,
where the provider key comes from) and says what to do; exit code 0 when all is set, else 1.

examples:
  aileron launch codex
  aileron launch --sandbox=podman codex
  aileron launch claude -- -p "summarise this repository"
  aileron launch goose -- run -t "fix the failing test"
  aileron launch claude --check
  aileron launch codex --provider local -- exec "fix the failing test"

agents: claude (Claude Code), codex (Codex CLI), goose (Goose), opencode (OpenCode)"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "launch",
        help="Launch an agent (claude, codex, goose, opencode) through Aileron.",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sandbox",
        choices=SANDBOX_MODES,
        default="off",
        help="where the agent runs: off (default) = on this host; docker or podman = in a"
        " container of that engine; auto = the first engine that works",
    )
    parser.add_argument(
        "--sandbox-build",
        choices=BUILD_POLICIES,
        default="auto",
        help="with a sandbox: build Aileron's image if missing (auto, default), rebuild it"
        " (always), or fail if missing (never)",
    )
    parser.add_argument(
        "--image", metavar="IMAGE", help="with a sandbox: run this image instead of Aileron's"
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="with a sandbox: let the agent reach HOST through the egress proxy for this session"
        " (repeatable; HOST, HOST:PORT or *.DOMAIN; HOST alone means ports 443 and 80), on top"
        " of `[sandbox] allow` in config.toml; everything else is denied",
    )
    parser.add_argument(
        "--expose",
        action="append",
        default=[],
        metavar="BINDING",
        help="with a sandbox: broker this binding to the agent for this session (repeatable),"
        " on top of `[sandbox] expose` in config.toml: the container gets a sentinel in the"
        " binding's variable and the egress proxy swaps in the secret for its hosts only (see"
        " `aileron binding expose`)",
    )
    parser.add_argument(
        "--provider",
        metavar="NAME",
        help="send the agent's model traffic to the gateway provider NAME (see `GET"
        " /v1/providers`) instead of the built-in provider of its kind",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not run the agent: check its wiring (MCP server, gateway route, key source)"
        " and say what to do",
    )
    parser.add_argument("--json", action="store_true", help="with --check: print JSON")
    parser.add_argument("agent", metavar="AGENT", help=", ".join(AGENT_NAMES))
    parser.add_argument(
        "agent_args",
        nargs=argparse.REMAINDER,
        metavar="-- AGENT_ARGS",
        help="the agent's own arguments, after `--`",
    )
    parser.set_defaults(handler=_launch)


def _launch(args: argparse.Namespace) -> int:
    from aileron_cli.cli.common import connect
    from aileron_cli.launch import agent_named, launch, prepare

    _take_own_flags(args)
    if args.check:
        return _check(args)
    if args.json:
        from aileron_cli.cli.errors import UsageError

        raise UsageError("--json only applies to --check", hint="add --check, or drop --json")
    if args.sandbox != "off":
        return _launch_sandboxed(args)
    if args.image is not None or args.sandbox_build != "auto" or args.allow_host or args.expose:
        from aileron_cli.cli.errors import UsageError

        raise UsageError(
            "--image, --sandbox-build, --allow-host and --expose only apply to a sandboxed launch",
            hint="add --sandbox=podman (or docker, auto), or drop them",
        )
    env = dict(os.environ)
    plan = prepare(agent_named(args.agent), tuple(args.agent_args), env)
    with connect() as client, _provider_usage():
        return launch(
            plan,
            client,
            cwd=os.getcwd(),
            inherited=env,
            secrets=_master_tokens(env),
            provider=args.provider,
        )


OWN_FLAGS = ("--check", "--json")
OWN_OPTIONS = ("--provider",)


def _take_own_flags(args: argparse.Namespace) -> None:
    """``aileron launch AGENT --check [--json] [--provider NAME] [-- AGENT_ARGS]``: the words
    right after AGENT that are Aileron's own flags and options are taken out of the agent's
    arguments (argparse's remainder swallows them), with the ``--`` that may follow them."""
    from aileron_cli.cli.errors import UsageError

    rest = list(args.agent_args)
    while rest and (rest[0] in OWN_FLAGS or rest[0].partition("=")[0] in OWN_OPTIONS):
        word = rest.pop(0)
        option, equals, value = word.partition("=")
        if option in OWN_FLAGS:
            setattr(args, option.removeprefix("--"), True)
            continue
        if not equals:
            if not rest:
                raise UsageError(f"{option} needs a value", hint=f"{option} NAME")
            value = rest.pop(0)
        setattr(args, option.removeprefix("--"), value)
    if len(rest) < len(args.agent_args) and rest[:1] == ["--"]:
        rest.pop(0)
    args.agent_args = rest


def _check(args: argparse.Namespace) -> int:
    import json

    from aileron_cli.cli.common import connect
    from aileron_cli.cli.errors import UsageError
    from aileron_cli.launch import agent_named
    from aileron_cli.launch.check import check

    sandboxed = args.sandbox != "off" or args.image is not None or args.allow_host or args.expose
    if sandboxed or args.sandbox_build != "auto":
        raise UsageError(
            "--check checks a launch on this host; it takes no sandbox options",
            hint="drop --sandbox, --sandbox-build, --image, --allow-host and --expose",
        )
    env = dict(os.environ)
    agent = agent_named(args.agent)
    with connect() as client, _provider_usage():
        report = check(
            agent,
            tuple(args.agent_args),
            client,
            cwd=os.getcwd(),
            inherited=env,
            secrets=_master_tokens(env),
            provider=args.provider,
        )
    print(json.dumps(report.to_json(), indent=2) if args.json else report.render())
    return 0 if report.ok else 1


def _launch_sandboxed(args: argparse.Namespace) -> int:
    import threading
    from pathlib import Path

    from aileron_cli.cli.common import connect
    from aileron_cli.launch import agent_named
    from aileron_cli.sandbox.launch import launch, prepare
    from aileron_cli.sandbox.workspace import refuse_unsafe_workspace
    from aileron_core.paths import Layout

    # Import the daemon client and the shims generator while prepare() waits on the engine's
    # CLI (the waits release the GIL): ~0.1 s of the sandbox launch budget (B11).
    preload = threading.Thread(target=_preload, name="preload", daemon=True)
    preload.start()
    refuse_unsafe_workspace(Path.cwd(), Layout())
    env = dict(os.environ)
    plan = prepare(
        agent_named(args.agent),
        tuple(args.agent_args),
        env,
        mode=args.sandbox,
        policy=args.sandbox_build,
        image=args.image,
    )
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    with connect() as client, _provider_usage():
        return launch(
            plan,
            client,
            cwd=os.getcwd(),
            inherited=env,
            secrets=_master_tokens(env),
            tty=tty,
            allow_hosts=tuple(args.allow_host),
            expose=tuple(args.expose),
            provider=args.provider,
        )


@contextlib.contextmanager
def _provider_usage() -> Iterator[None]:
    """A ``--provider`` naming no gateway provider is a usage error (exit 2)."""
    from aileron_cli.cli.errors import UsageError
    from aileron_cli.launch.errors import UnknownProvider

    try:
        yield
    except UnknownProvider as error:
        raise UsageError(error.message, hint=error.hint) from None


def _preload() -> None:
    import httpcore  # noqa: F401 (httpx imports it only when the client's transport is built)

    import aileron_core.client  # noqa: F401
    import aileron_shims  # noqa: F401


def _master_tokens(env: dict[str, str]) -> tuple[str, ...]:
    """The master token(s) connect() may have used, to keep away from the agent."""
    from aileron_core.discovery import read_daemon_info
    from aileron_core.errors import AileronError
    from aileron_core.paths import Layout

    tokens = []
    if env.get("AILERON_API_URL") and env.get("AILERON_TOKEN"):
        tokens.append(env["AILERON_TOKEN"])
    try:
        info = read_daemon_info(Layout().daemon_json)
    except AileronError:
        info = None
    if info is not None:
        tokens.append(info.token)
    return tuple(tokens)
