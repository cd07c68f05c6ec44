"""Everything one running daemon holds: tokens, stores, the audit log, and how it recovers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aileron_cli.daemon.action_store import ActionStore
from aileron_cli.daemon.approvals import ApprovalStore
from aileron_cli.daemon.audit_log import AuditLog, AuditWriteError
from aileron_cli.daemon.auth import Gate, TokenRegistry
from aileron_cli.daemon.binding_store import BindingStore
from aileron_cli.daemon.connector_store import ConnectorStore
from aileron_cli.daemon.executor import Executor
from aileron_cli.daemon.launchers import LauncherWatch
from aileron_cli.daemon.listener import SessionListeners
from aileron_cli.daemon.sessions import SessionStore
from aileron_cli.daemon.statelog import StateWriteError
from aileron_cli.daemon.vault_service import VaultService
from aileron_cli.gateway.config import GatewayConfig, load_gateway_config
from aileron_cli.gateway.proxy import Gateway
from aileron_core.audit import Actor, AuditRecord
from aileron_core.models import Session
from aileron_core.paths import Layout
from aileron_core.processes import ProcessRef, descendants, end_processes
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
    gateway: GatewayConfig | None = None  # None = read [gateway] from config.toml at start
    peer_required: bool = False
    """Refuse the master token on requests that name no peer (set by a real daemon, whose
    every connection names one; in-process tests have no socket at all)."""


@dataclass
class DaemonState:
    """The live state of a daemon between its start-up and its shutdown."""

    config: DaemonConfig
    tokens: TokenRegistry
    audit: AuditLog
    sessions: SessionStore
    vault: VaultService
    connectors: ConnectorStore
    actions: ActionStore
    bindings: BindingStore
    approvals: ApprovalStore
    executor: Executor
    gateway: Gateway
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    pid: int = field(default_factory=os.getpid)
    last_activity: float = field(default_factory=time.monotonic)
    listeners: SessionListeners = field(init=False)
    gate: Gate = field(init=False)
    launchers: LauncherWatch = field(init=False)

    def __post_init__(self) -> None:
        self.listeners = SessionListeners(self.tokens)
        self.gate = Gate(
            self.tokens, audit=self.audit.append, peer_required=self.config.peer_required
        )
        self.launchers = LauncherWatch(self._launcher_exited)

    def guard_session(self, session: Session) -> None:
        """Treat the launcher's process tree as the session's agent (SPEC §16) for as long as
        the launcher lives, and end the session if the launcher dies first."""
        launcher = session.launcher
        if launcher is None:
            return
        self.gate.trees.add(launcher, session.id)
        self.launchers.watch(session.id, launcher)

    def guard_orphans(self) -> None:
        """After a restart: the trees of sessions whose launcher still runs stay the agent's
        (an agent that killed the daemon must not come back as the human)."""
        for session in self.sessions.list(active=False):
            if session.state == "orphaned" and session.launcher and session.launcher.alive():
                self.guard_session(session)

    async def end_session(
        self, session_id: str, exit_code: int | None, actor: Actor, reason: str | None = None
    ) -> Session:
        """End a running session: its token dies, its listener closes, its tree is released."""
        session = self.sessions.end(session_id, exit_code, reason)
        self.tokens.revoke_session(session_id)
        self.listeners.close(session_id)
        self.gate.trees.remove(session_id)
        self.launchers.unwatch(session_id)
        payload: dict[str, Any] = {"exit_code": exit_code}
        if reason is not None:
            payload["reason"] = reason
        await self.record("session.ended", actor, session_id, **payload)
        return session

    async def _launcher_exited(self, session_id: str) -> None:
        """The launcher died without ending its session: end it, and end what is left of the
        agent (the processes still below the agent's own, which the launcher reported)."""
        self.gate.trees.remove(session_id)
        session = self.sessions.get(session_id)
        if session.state != "running":
            return
        await self.end_session(session_id, None, SERVICE, reason="launcher exited")
        if session.agent_process is not None:
            ended = await asyncio.to_thread(_end_tree, session.agent_process)
            if ended:
                await self.record(
                    "session.processes_ended", SERVICE, session_id, pids=[p.pid for p in ended]
                )

    @property
    def version(self) -> str:
        return self.config.version

    @classmethod
    def open(cls, config: DaemonConfig) -> DaemonState:
        """Open every store, repairing what a crash left behind, and audit the recovery."""
        layout = config.layout.ensure()
        gateway = config.gateway or load_gateway_config(layout.config)  # before taking locks
        audit, recovery = AuditLog.open(layout.audit)
        sessions, orphaned = SessionStore.open(layout.sessions)
        approvals, failed = ApprovalStore.open(layout.approvals)
        connectors = ConnectorStore(layout.connector_store)
        connectors.load()
        actions = ActionStore(layout.actions_dir)
        actions.load(connectors.specs())
        bindings = BindingStore(layout.bindings)
        bindings.load()
        state = cls(
            config=config,
            tokens=TokenRegistry(config.master_token),
            audit=audit,
            sessions=sessions,
            vault=VaultService(layout.vault, config.kdf),
            connectors=connectors,
            actions=actions,
            bindings=bindings,
            approvals=approvals,
            executor=Executor(),
            gateway=Gateway(gateway),
        )
        audit.append_sync(
            "daemon.started", SERVICE, None, {"version": config.version, "pid": state.pid}
        )
        if recovery.repaired or not recovery.chain_ok or recovery.checkpoint == "rejected":
            log.warning("audit log: %s", recovery.summary())
        if recovery.dropped_bytes:
            audit.append_sync(
                "audit.recovered", SERVICE, None, {"dropped_bytes": recovery.dropped_bytes}
            )
        for approval in failed:
            audit.append_sync(
                "approval.failed",
                SERVICE,
                approval.session_id,
                {"approval_id": approval.id, "reason": "daemon stopped during execution"},
            )
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
        """Append one audit event, durable before this returns (and so is every earlier one)."""
        return await self.audit.append(type, actor, session_id, payload)

    def note(self, type: str, actor: Actor, session_id: str | None = None, **payload: Any) -> None:
        """Queue one audit event without waiting for it. The request that caused it must end
        with a :meth:`record`, whose durability covers this event (the chain is ordered)."""
        future = self.audit.submit(type, actor, session_id, payload)
        future.add_done_callback(_consume)

    def close(self) -> None:
        """Clean stop: close running sessions, compact the state logs, seal the audit log.

        A storage failure (a full or read-only disk, an audit log poisoned by an earlier write
        failure) skips only the step it hits, with a warning: the rest still runs and the audit
        log is always closed, so the stop stays clean. What was not written is what a crash
        would have left, and the next start recovers it (sessions orphaned, logs repaired).
        """
        try:
            with _warn_on_storage_failure("closing the running sessions"):
                for session in self.sessions.close_running():
                    self.audit.append_sync(
                        "session.orphaned",
                        SERVICE,
                        session.id,
                        {"agent": session.agent, "reason": "daemon stopped"},
                    )
            with _warn_on_storage_failure("compacting sessions.jsonl"):
                self.sessions.compact()
            with _warn_on_storage_failure("compacting approvals.jsonl"):
                self.approvals.compact()
            self.vault.lock()
            with _warn_on_storage_failure("recording daemon.stopped"):
                self.audit.append_sync("daemon.stopped", SERVICE, None, {"pid": self.pid})
        finally:
            self.audit.close()


@contextlib.contextmanager
def _warn_on_storage_failure(step: str) -> Iterator[None]:
    """Log a storage failure in the block as one warning line (no traceback) and go on."""
    try:
        yield
    except (AuditWriteError, StateWriteError, OSError) as error:
        log.warning("stopping: %s failed: %s", step, error)


def _end_tree(root: ProcessRef) -> list[ProcessRef]:
    return end_processes([root, *descendants(root)])


def _consume(future: asyncio.Future[AuditRecord]) -> None:
    """A noted event's failure is reported by the record awaited after it; mark it seen."""
    if not future.cancelled() and future.exception() is not None:
        log.error("audit append failed: %s", future.exception())
