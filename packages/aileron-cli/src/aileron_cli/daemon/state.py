"""Everything one running daemon holds: tokens, stores, the audit log, and how it recovers."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aileron_cli.daemon.audit_log import AuditLog
from aileron_cli.daemon.auth import TokenRegistry
from aileron_cli.daemon.sessions import SessionStore
from aileron_cli.daemon.vault_service import VaultService
from aileron_core.audit import Actor, AuditRecord
from aileron_core.paths import Layout
from aileron_core.vault import KdfParams

log = logging.getLogger("aileron.daemon")

SERVICE = Actor(type="service", id="aileron-daemon")


@dataclass
class DaemonConfig:
    """How to start one daemon."""

    layout: Layout
    version: str
    url: str = "http://testserver"
    master_token: str | None = None
    kdf: KdfParams | None = None  # tests may use cheap parameters; None = the default
    idle_timeout_s: float | None = None


@dataclass
class DaemonState:
    """The live state of a daemon between its start-up and its shutdown."""

    config: DaemonConfig
    tokens: TokenRegistry
    audit: AuditLog
    sessions: SessionStore
    vault: VaultService
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    pid: int = field(default_factory=os.getpid)
    last_activity: float = field(default_factory=time.monotonic)

    @property
    def version(self) -> str:
        return self.config.version

    @classmethod
    def open(cls, config: DaemonConfig) -> DaemonState:
        """Open every store, repairing what a crash left behind, and audit the recovery."""
        layout = config.layout.ensure()
        audit, recovery = AuditLog.open(layout.audit)
        sessions, orphaned = SessionStore.open(layout.sessions)
        state = cls(
            config=config,
            tokens=TokenRegistry(config.master_token),
            audit=audit,
            sessions=sessions,
            vault=VaultService(layout.vault, config.kdf),
        )
        audit.append_sync(
            "daemon.started", SERVICE, None, {"version": config.version, "pid": state.pid}
        )
        if recovery.dropped_bytes:
            log.warning("audit log: dropped a torn last line of %d bytes", recovery.dropped_bytes)
            audit.append_sync(
                "audit.recovered", SERVICE, None, {"dropped_bytes": recovery.dropped_bytes}
            )
        if not recovery.chain_ok:
            log.error("audit log: the chain does not verify (%s)", recovery.reason)
        for session in orphaned:
            audit.append_sync(
                "session.orphaned",
                SERVICE,
                session.id,
                {"agent": session.agent, "reason": "daemon restarted"},
            )
        return state

    async def record(
        self, type: str, actor: Actor, session_id: str | None = None, **payload: Any
    ) -> AuditRecord:
        """Append one audit event, durable before this returns."""
        return await self.audit.append(type, actor, session_id, payload)

    def close(self) -> None:
        """Clean stop: close running sessions, compact the state logs, seal the audit log."""
        for session in self.sessions.close_running():
            self.audit.append_sync(
                "session.orphaned",
                SERVICE,
                session.id,
                {"agent": session.agent, "reason": "daemon stopped"},
            )
        self.sessions.compact()
        self.vault.lock()
        self.audit.append_sync("daemon.stopped", SERVICE, None, {"pid": self.pid})
        self.audit.close()


def payload_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values from an audit payload."""
    return {k: v for k, v in values.items() if v is not None}
