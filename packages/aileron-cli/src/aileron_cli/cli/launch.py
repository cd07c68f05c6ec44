"""``aileron launch [--sandbox=off] AGENT [-- AGENT_ARGS…]``: run an agent through Aileron."""

from __future__ import annotations

import argparse
import os

# The agents of aileron_cli.launch.agents.AGENTS, spelled here so that `aileron --help` does
# not import the launch machinery (a test keeps the two lists equal).
AGENT_NAMES = ("claude", "codex", "goose", "opencode")
SANDBOX_MODES = ("off", "auto", "docker", "podman")

DESCRIPTION = """\
Run a coding agent in the current directory with Aileron wired in: the agent gets Aileron's
actions as MCP tools (through aileron-mcp), a session token of its own (never the daemon's
master token), and LLM traffic routed through Aileron's gateway where the agent supports it.
Your own agent config files are not changed.

Aileron's exit code is the agent's; Ctrl-C and termination signals reach the agent.

examples:
  aileron launch codex
  aileron launch claude -- -p "summarise this repository"
  aileron launch goose -- run -t "fix the failing test"

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
        help="where the agent runs: off (default) = on this host; the container modes"
        " are not part of this build yet",
    )
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
    from aileron_cli.launch import SandboxUnavailable, agent_named, launch, prepare

    if args.sandbox != "off":
        raise SandboxUnavailable(
            f"sandbox launch (--sandbox={args.sandbox}) is not part of this build yet",
            hint="run the agent on this host with --sandbox=off (the default)",
        )
    env = dict(os.environ)
    plan = prepare(agent_named(args.agent), tuple(args.agent_args), env)
    with connect() as client:
        return launch(plan, client, cwd=os.getcwd(), inherited=env, secrets=_master_tokens(env))


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
