"""Generator of the in-container connector shims and ``tools.txt`` for sandboxed agents.

``aileron launch --sandbox=…`` fetches the daemon's connectors and actions, turns them into
models with ``from_api``, and calls ``generate``; the resulting ``ShimSet`` holds the text of
``/etc/aileron/tools.txt`` and of one POSIX ``sh`` script per tool for ``/opt/aileron/bin``.
Each shim POSTs to the daemon with the session's token; the daemon runs the action or
operation. The rules are in this package's ``README.md`` (SPEC §11.1).
"""

from __future__ import annotations

from aileron_shims.__about__ import __version__
from aileron_shims.api import from_api
from aileron_shims.generate import generate
from aileron_shims.model import (
    Action,
    Argument,
    Connector,
    Operation,
    ShimError,
    ShimSet,
    Skipped,
)
from aileron_shims.names import RESERVED_NAMES, SYSTEM_NAMES, tool_name

__all__ = [
    "RESERVED_NAMES",
    "SYSTEM_NAMES",
    "Action",
    "Argument",
    "Connector",
    "Operation",
    "ShimError",
    "ShimSet",
    "Skipped",
    "__version__",
    "from_api",
    "generate",
    "tool_name",
]
