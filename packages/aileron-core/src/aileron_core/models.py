"""Domain models shared by the daemon and its clients (attrs; JSON through ``convert``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import attrs

SessionState = Literal["running", "ended", "orphaned"]
VaultState = Literal["missing", "locked", "unlocked"]


@attrs.frozen
class SandboxInfo:
    """Where a sandboxed session's agent runs."""

    runtime: str
    image: str


@attrs.frozen
class Session:
    """One launch of an agent (SPEC §8)."""

    id: str
    agent: str
    working_dir: str
    started_at: datetime
    sandbox: SandboxInfo | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    state: SessionState = "running"
