"""Entry point of the ``aileron-mcp`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aileron_mcp.__about__ import __version__

DESCRIPTION = """\
Serve Aileron actions to an agent host over MCP (stdio).

Environment: AILERON_URL (the daemon), AILERON_TOKEN (a session token) and
AILERON_SESSION_ID. It holds no secrets and no policy: every call goes to the daemon."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``aileron-mcp`` with ``argv`` (default: the process arguments)."""
    parser = argparse.ArgumentParser(
        prog="aileron-mcp",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aileron-mcp {__version__}")
    parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(
        "aileron-mcp: error: the MCP server is not part of this build yet"
        " — see the README's 'What works today' section",
        file=sys.stderr,
    )
    return 1
