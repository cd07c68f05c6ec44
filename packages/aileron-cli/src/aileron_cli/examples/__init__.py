"""Examples shipped with aileron: connector specs, action manifests and a local echo server."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
CONNECTORS = EXAMPLES / "connectors"
ACTIONS = EXAMPLES / "actions"

__all__ = ["ACTIONS", "CONNECTORS", "EXAMPLES"]
