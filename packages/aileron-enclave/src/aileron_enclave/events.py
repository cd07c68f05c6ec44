"""``events.jsonl``: what the enclave did, one JSON object a line, never a secret.

Each line is ``{"ts", "event", …}``; events are ``client.registered``, ``client.removed``,
``escrow.created``, ``escrow.deleted`` and ``execute`` (client, escrow, binding, method, scheme,
host, path without the query, status or error code, bytes and duration). Lines are appended and
fsynced before the request that caused them is answered.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aileron_core.paths import SECRET_FILE_MODE

__all__ = ["EventLog"]


class EventLog:
    """An append-only JSON-lines log (0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, event: str, **fields: Any) -> None:
        record = {"ts": datetime.now(UTC).isoformat(), "event": event, **fields}
        line = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, SECRET_FILE_MODE)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
