"""Print the config snippet that wires a standalone ``aileron-mcp`` into an agent host.

``python -m aileron_mcp.setup AGENT`` (or ``hatch run mcp:setup AGENT``), AGENT one of
``claude``, ``codex``, ``goose``, ``opencode``. The snippet goes to stdout (redirect it or paste
it into the file named on stderr). It never holds a token: each host passes
``AILERON_URL``, ``AILERON_TOKEN`` and ``AILERON_SESSION_ID`` through from its own environment,
so export them before starting the host. The token is a *session* token, from
``aileron launch`` (which sets all three for the agent it starts) or ``POST /v1/sessions``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from aileron_mcp.config import REQUIRED

SERVER_NAME = "aileron"
DESCRIPTION = "Aileron actions; the credentials stay in the Aileron daemon"


def _claude(command: str) -> str:
    env = {name: "${" + name + "}" for name in REQUIRED}
    entry = {"type": "stdio", "command": command, "args": [], "env": env}
    return json.dumps({"mcpServers": {SERVER_NAME: entry}}, indent=2)


def _codex(command: str) -> str:
    # TOML basic strings share JSON's escapes, so json.dumps quotes them correctly.
    names = ", ".join(json.dumps(name) for name in REQUIRED)
    return "\n".join(
        [
            f"[mcp_servers.{SERVER_NAME}]",
            f"command = {json.dumps(command)}",
            "args = []",
            f"env_vars = [{names}]",
        ]
    )


def _goose(command: str) -> str:
    # YAML reads JSON's double-quoted strings as they are.
    return "\n".join(
        [
            "extensions:",
            f"  {SERVER_NAME}:",
            "    type: stdio",
            f"    name: {SERVER_NAME}",
            f"    description: {json.dumps(DESCRIPTION)}",
            "    enabled: true",
            f"    cmd: {json.dumps(command)}",
            "    args: []",
            f"    env_keys: [{', '.join(REQUIRED)}]",
            "    timeout: 300",
        ]
    )


def _opencode(command: str) -> str:
    env = {name: "{env:" + name + "}" for name in REQUIRED}
    entry = {"type": "local", "command": [command], "enabled": True, "environment": env}
    document = {"$schema": "https://opencode.ai/config.json", "mcp": {SERVER_NAME: entry}}
    return json.dumps(document, indent=2)


AGENTS: dict[str, tuple[str, Callable[[str], str]]] = {
    "claude": (
        ".mcp.json in the project (or `claude mcp add-json aileron '<the entry>'`)",
        _claude,
    ),
    "codex": ("~/.codex/config.toml (or the project's .codex/config.toml)", _codex),
    "goose": ("~/.config/goose/config.yaml (merge into its `extensions:`)", _goose),
    "opencode": ("opencode.json in the project (or ~/.config/opencode/opencode.json)", _opencode),
}


def default_command() -> str:
    """The ``aileron-mcp`` of this environment by absolute path, else the bare name."""
    beside = Path(sys.executable).parent / "aileron-mcp"
    return str(beside) if beside.exists() else "aileron-mcp"


def snippet(agent: str, command: str) -> str:
    """The config snippet for ``agent``, launching ``command``."""
    return AGENTS[agent][1](command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aileron_mcp.setup",
        description="Print the config snippet that wires aileron-mcp into an agent host.",
        epilog="The host passes AILERON_URL, AILERON_TOKEN (a session token, from `aileron"
        " launch` or POST /v1/sessions) and AILERON_SESSION_ID through from its environment.",
    )
    parser.add_argument("agent", choices=sorted(AGENTS), help="the agent host")
    parser.add_argument(
        "--command",
        default=None,
        help="how the host starts aileron-mcp (default: this environment's aileron-mcp)",
    )
    args = parser.parse_args(argv)
    where, _ = AGENTS[args.agent]
    print(snippet(args.agent, args.command or default_command()))
    print(
        f"# put this in {where}; then export {', '.join(REQUIRED)} before starting the host"
        " (AILERON_TOKEN is a session token: `aileron launch` sets all three, or mint one with"
        " POST /v1/sessions)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
