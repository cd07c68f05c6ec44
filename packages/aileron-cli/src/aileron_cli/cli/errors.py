"""How the CLI reports failure: one line on stderr, a stable exit code, no traceback."""

from __future__ import annotations

import os
import sys
import traceback

from aileron_core.errors import AileronError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PENDING = 75


def report(error: BaseException) -> int:
    """Print ``error`` as ``aileron: error: …`` and return the exit code it maps to."""
    if os.environ.get("AILERON_DEBUG") == "1":
        traceback.print_exception(error)
    print(f"aileron: error: {error}", file=sys.stderr)
    return EXIT_USAGE if isinstance(error, UsageError) else EXIT_ERROR


class UsageError(AileronError):
    """Arguments that parse but do not go together (exit 2, like argparse's own errors)."""

    code = "usage"
