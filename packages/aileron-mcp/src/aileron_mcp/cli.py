"""Entry point of the ``aileron-mcp`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from functools import partial

from aileron_mcp.__about__ import __version__

DESCRIPTION = """\
Serve Aileron actions to an agent host over MCP (stdio): one tool per enabled action, plus
check_action_status. It holds no secrets and no policy: every call goes to the daemon.

Environment:
  AILERON_URL               the daemon's URL (http://127.0.0.1:PORT, with or without /v1)
  AILERON_TOKEN             a session token (never the master token)
  AILERON_SESSION_ID        the session the token belongs to
  AILERON_MCP_POLL_SECONDS  how often to look for new actions while connected (default 2, 0 = off)

`aileron launch` sets these for the agent it starts. To wire aileron-mcp into an agent host
yourself, mint a session with `POST /v1/sessions` (master token) and see
`hatch run mcp:setup AGENT` for the host's config snippet."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``aileron-mcp`` with ``argv`` (default: the process arguments)."""
    parser = argparse.ArgumentParser(
        prog="aileron-mcp",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aileron-mcp {__version__}")
    parser.parse_args(sys.argv[1:] if argv is None else argv)

    from aileron_core.errors import ConfigError
    from aileron_mcp.config import settings_from_env

    try:
        settings = settings_from_env(os.environ)
    except ConfigError as error:
        print(f"aileron-mcp: error: {error}", file=sys.stderr)
        return 1

    import anyio

    from aileron_mcp.server import serve_stdio

    # stdout carries the protocol: anything this process says goes to stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="aileron-mcp: %(message)s")
    try:
        anyio.run(
            partial(
                serve_stdio,
                settings.api_url,
                settings.token,
                settings.session_id,
                poll_seconds=settings.poll_seconds,
            )
        )
    except KeyboardInterrupt:
        return 130
    return 0
