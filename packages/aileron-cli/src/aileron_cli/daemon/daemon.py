"""Everything one running daemon holds: tokens, stores, the audit log, and how it recovers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from aileron_cli import audit_files
from aileron_cli.daemon.access.launchers import LauncherWatch
from aileron_cli.daemon.access.tokens import Gate, TokenRegistry
from aileron_cli.daemon.audit.config import load_audit_config
from aileron_cli.daemon.audit.log import AuditLog, AuditWriteError
from aileron_cli.daemon.audit.signer import HeadSigner
from aileron_cli.daemon.egress.executor import Executor
from aileron_cli.daemon.egress.proxies import EgressProxies, EventSink
from aileron_cli.daemon.enclave import witness as enclave_witness
from aileron_cli.daemon.enclave.witness import WitnessQueue
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.gateway.config import GatewayConfig, load_gateway_config
from aileron_cli.daemon.gateway.proxy import Gateway
from aileron_cli.daemon.http.listeners import SessionListeners
from aileron_cli.daemon.store import secret_cache
from aileron_cli.daemon.store.actions import ActionStore
from aileron_cli.daemon.store.approvals import ApprovalStore
from aileron_cli.daemon.store.bindings import BindingStore
from aileron_cli.daemon.store.connectors import ConnectorStore
from aileron_cli.daemon.store.sessions import SessionStore
from aileron_cli.daemon.store.statelog import StateWriteError
from aileron_cli.daemon.store.vault import VaultService
from aileron_core.audit import Actor, AuditRecord
from aileron_core.audit_heads import Head, head_digest
from aileron_core.audit_verify import CompletenessReport, Finding
from aileron_core.errors import AileronError
from aileron_core.models import Session
from aileron_core.paths import Layout
from aileron_core.processes import ProcessRef, descendants, end_processes
from aileron_core.vault import KdfParams, Vault, VaultLocked, VaultRolledBack

log = logging.getLogger("aileron.daemon")

SERVICE = Actor(type="service", id="aileron-daemon")

VERIFY_ATTEMPTS = 3
"""How often ``verify`` re-reads a log that grew while it read it, before reporting."""


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
    heads: HeadSigner
    witness: WitnessQueue | None = None
    """Sends each signed head to the attached enclave, while the vault is unlocked."""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    pid: int = field(default_factory=os.getpid)
    last_activity: float = field(default_factory=time.monotonic)
    listeners: SessionListeners = field(init=False)
    egress: EgressProxies = field(init=False)
    gate: Gate = field(init=False)
    launchers: LauncherWatch = field(init=False)
    _notices: list[str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.listeners = SessionListeners(self.tokens)
        self.egress = EgressProxies(self.config.layout, self._egress_sink)
        self.gate = Gate(
            self.tokens, audit=self.audit.append, peer_required=self.config.peer_required
        )
        self.launchers = LauncherWatch(self._launcher_exited)
        self.heads.on_signed = self._signed

    def _signed(self, head: Head, line: bytes) -> None:
        """A head was signed: have it countersigned when an enclave is attached."""
        if self.witness is not None:
            self.witness.submit(head.vault_id, head.n, head_digest(line))

    def _egress_sink(self, session_id: str) -> EventSink:
        """How the egress proxy of ``session_id`` records its connections: as the agent."""
        actor = Actor(type="agent", id=f"session:{session_id}")

        async def sink(type: str, payload: dict[str, Any]) -> None:
            await self.record(type, actor, session_id, **payload)

        return sink

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
        self.egress.close(session_id)
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
        audit_config = load_audit_config(layout.config)
        audit, recovery = AuditLog.open(layout.audit, segment_bytes=audit_config.segment_bytes)
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
            heads=HeadSigner(audit, layout.audit_heads),
        )
        audit.append_sync(
            "daemon.started", SERVICE, None, {"version": config.version, "pid": state.pid}
        )
        if recovery.repaired or not recovery.chain_ok or recovery.checkpoint == "rejected":
            log.warning("audit log: %s", recovery.summary())
        if recovery.dropped_bytes:
            audit.append_sync(
                "audit.recovered",
                SERVICE,
                None,
                {
                    "file": layout.audit.name,
                    "dropped_bytes": recovery.dropped_bytes,
                    "dropped_lines": recovery.dropped_lines,
                    "at_offset": recovery.dropped_at,
                },
            )
        if recovery.checkpoint == "rejected":
            audit.append_sync(
                "audit.checkpoint_rejected",
                SERVICE,
                None,
                {"reason": recovery.checkpoint_reason, "kept_as": recovery.checkpoint_kept_as},
            )
        if state.heads.repaired_bytes:
            audit.append_sync(
                "audit.recovered",
                SERVICE,
                None,
                {"file": layout.audit_heads.name, "dropped_bytes": state.heads.repaired_bytes},
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

    # -- the vault and the audit key ------------------------------------------------------------

    async def init_vault(self, passphrase: str, actor: Actor) -> None:
        """Create the vault (left unlocked); heads of an earlier vault are moved aside."""
        await self.vault.init(passphrase)
        vault = self.vault.unlocked()
        archived = await asyncio.to_thread(self.heads.archive, vault.vault_id)
        payload: dict[str, Any] = {"vault_id": vault.vault_id}
        if archived is not None:
            payload["archived_heads"] = archived.name
        await self.record("vault.initialized", actor, **payload)
        await self._arm_heads("unlock")

    async def unlock_vault(self, passphrase: str, actor: Actor, *, accept_restore: bool) -> bool:
        """Unlock; refuse (``vault_rolled_back``) a vault older than the last signed head saw,
        unless ``accept_restore``: then move its generation past the head's, audited. Returns
        whether a restore was accepted."""
        await self.vault.unlock(passphrase)
        vault = self.vault.unlocked()
        last = self.heads.last
        expected = self._rolled_back_from(vault)
        if expected is not None and not accept_restore:
            found = vault.generation
            self.lock_keys()
            await self.record(
                "vault.unlock_failed",
                actor,
                reason="vault_rolled_back",
                generation=found,
                expected=expected,
            )
            raise VaultRolledBack(
                f"vault.json is at generation {found} but the audit log's last signed head "
                f"saw generation {expected}: an older copy of the vault was put back (deleted "
                "entries and old secrets would return)",
                hint="if you restored it on purpose, accept it with `aileron vault "
                "restore-accept`; otherwise put the newest vault.json back",
                details={"generation": found, "expected": expected},
            )
        if await self.vault.ensure_audit_key():
            log.info("vault: created its audit key (the file was format 1)")
        archived = await asyncio.to_thread(self.heads.archive, vault.vault_id)
        if archived is not None:  # another vault of the user's was put in place and unlocked
            await self.record("audit.heads_archived", actor, kept_as=archived.name)
        await self.record("vault.unlocked", actor)
        if expected is not None:
            found = vault.generation
            now = await self.vault.bump_generation(expected + 1)
            await self.record(
                "vault.restore_accepted",
                actor,
                found_generation=found,
                head_generation=expected,
                head_seq=last.seq if last is not None else None,
                generation=now,
            )
        await self._arm_heads("restore" if expected is not None else "unlock")
        return expected is not None

    def _rolled_back_from(self, vault: Vault) -> int | None:
        """The generation the last signed head saw, if this unlocked vault is older than
        that (``None`` if it is not, or no head of this vault holds)."""
        last = self.heads.last
        if last is None or last.vault_id != vault.vault_id:
            return None
        public = vault.audit_public_key
        if public is None:
            # A copy from before the vault had its audit key, though heads signed with it exist.
            return last.generation
        if self.heads.last_trusted(public) is None or vault.generation >= last.generation:
            return None
        return last.generation

    async def _arm_heads(self, reason: str) -> None:
        vault = self.vault.unlocked()
        highest = vault.generation

        def generation() -> int:
            nonlocal highest
            highest = max(highest, vault.generation)
            return highest

        self.heads.arm(vault.audit_signing_key(), vault.vault_id, generation)
        await self.start_witness()
        await self.heads.asign(reason)

    async def start_witness(self) -> None:
        """Start countersigning heads if an enclave is attached (its client key is in the
        vault, so this needs the vault unlocked), and send the heads it has not marked yet."""
        layout = self.config.layout
        if self.witness is not None or not layout.enclave.exists():
            return
        from aileron_cli.daemon.enclave.service import client_key

        try:
            key = await client_key(self)
        except AileronError as error:
            log.warning("audit witness: not started: %s", error)
            return
        queue = WitnessQueue.attached(layout, key)
        if queue is None:
            return
        queue.start()
        self.witness = queue
        await queue.catch_up(layout.audit_heads, layout.audit_witness)

    async def stop_witness(self) -> None:
        """Stop countersigning (the vault locks, the enclave is detached, or the daemon
        stops); what was not sent yet is sent by the next :meth:`start_witness`."""
        queue, self.witness = self.witness, None
        if queue is not None:
            await queue.aclose()

    async def lock_vault(self, actor: Actor) -> None:
        """Record the lock, sign the head that covers it, then forget every key (a vault
        that is not unlocked is only made sure of: no record)."""
        if self.heads.armed:  # else already locked: nothing happens, nothing to record
            await self.record("vault.locked", actor)
            await self.heads.asign("lock")
        await self.stop_witness()
        self.lock_keys()

    def lock_keys(self) -> None:
        """Forget the vault's keys, the audit key and every secret cached while unlocked."""
        self.heads.disarm()
        self.vault.lock()
        secret_cache.for_vault(self.vault).clear()
        self.gateway.keys.clear()

    def require_signing(self) -> None:
        """Human decisions are signed when made; refuse one while no key is held."""
        if not self.heads.armed:
            raise VaultLocked(
                "the vault is locked: Aileron signs every decision with the vault's audit key",
                hint="run `aileron vault unlock`, then decide again",
            )

    async def verify_audit(self, *, witness: bool) -> dict[str, Any]:
        """``aileron audit verify`` by the daemon: the files on disk against the heads, with
        the vault's authenticated key when it is unlocked, and against what this process
        wrote (the log must reach its newest record, and hold nothing after it)."""
        layout = self.config.layout
        await self.audit.drain()
        before = self.audit.tip()
        witness_key = None
        if witness:
            witness_key = await enclave_witness.witness_key(layout)
            if witness_key is None:
                raise DaemonError(
                    "enclave_not_attached",
                    "--witness needs an attached enclave, and none is attached",
                    hint="`aileron enclave attach URL` (heads are countersigned from then on)",
                )
        try:
            vault: Vault | None = self.vault.unlocked()
        except VaultLocked:
            vault = None
        for attempt in range(VERIFY_ATTEMPTS):
            report, source = await asyncio.to_thread(
                audit_files.verify_home, layout, vault=vault, witness_key=witness_key, tip=before
            )
            after = self.audit.tip()
            if after == before:
                break
            # Records were appended while the file was read: the tip moved under the check.
            # Verify again against the new tip (the last attempt keeps what it found).
            if attempt + 1 < VERIFY_ATTEMPTS:
                await self.audit.drain()
                before = self.audit.tip()
            elif before[0] <= (report.last_seq or 0) <= after[0]:
                report = audit_files.tip_raced(report, before[0], after[0])
        if witness and vault is not None:
            report = await self._check_latest_mark(report, vault)
        return audit_files.report_json(report, source)

    async def _check_latest_mark(
        self, report: CompletenessReport, vault: Vault
    ) -> CompletenessReport:
        """The enclave remembers the newest head it countersigned: the heads file must reach
        it (else heads, and the records they covered, were cut off the end together)."""
        from aileron_cli.daemon.enclave.service import client_key

        mark = await enclave_witness.latest_mark(
            self.config.layout, vault.vault_id, await client_key(self)
        )
        if mark is None or mark.n <= report.heads:
            return report
        return audit_files.with_problem(
            report,
            Finding(
                code="witness_ahead",
                seq=report.signed_seq,
                message=(
                    f"the enclave countersigned head n {mark.n} but the heads file ends at head "
                    f"n {report.heads}: heads, and the records they covered, were removed from "
                    "the end (or the files were restored from an older copy)"
                ),
            ),
        )

    def audit_notices(self) -> list[str]:
        """What the audit log recovered from or rejected since the last acknowledgement.

        Such records are written only while the daemon opens its stores, so the answer is
        found once (a type that never occurred costs nothing to look up) and kept until
        :meth:`acknowledge_notices`."""
        if self._notices is None:
            acknowledged = self.audit.list(type="audit.acknowledged", limit=1)
            after = acknowledged[0].seq if acknowledged else None
            found = [
                *self.audit.list(type="audit.recovered", after_seq=after),
                *self.audit.list(type="audit.checkpoint_rejected", after_seq=after),
            ]
            self._notices = [_notice(record) for record in sorted(found, key=lambda r: r.seq)]
        return self._notices

    async def acknowledge_notices(self, actor: Actor) -> int:
        """Record that the human saw the notices; returns the seq they are acknowledged to."""
        through = self.audit.last_seq
        await self.record("audit.acknowledged", actor, through_seq=through)
        self._notices = []
        return through

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
            with _warn_on_storage_failure("recording daemon.stopped"):
                self.audit.append_sync("daemon.stopped", SERVICE, None, {"pid": self.pid})
            with _warn_on_storage_failure("signing the last head"):
                self.heads.sign("stop")
            self.lock_keys()
        finally:
            self.audit.close()


@contextlib.contextmanager
def _warn_on_storage_failure(step: str) -> Iterator[None]:
    """Log a storage failure in the block as one warning line (no traceback) and go on."""
    try:
        yield
    except (AuditWriteError, StateWriteError, OSError) as error:
        log.warning("stopping: %s failed: %s", step, error)


def _notice(record: AuditRecord) -> str:
    """One line for ``aileron status`` about a recovery or a rejected checkpoint."""
    payload = record.payload
    if record.type == "audit.recovered":
        return (
            f"seq {record.seq}: {payload.get('file', 'audit.jsonl')}: a torn tail of "
            f"{payload.get('dropped_bytes')} bytes was cut off at start-up "
            f"({record.ts:%Y-%m-%d %H:%M}Z)"
        )
    return (
        f"seq {record.seq}: the audit checkpoint was rejected ({payload.get('reason')}); "
        f"kept as {payload.get('kept_as')}"
    )


def create_app(
    config: DaemonConfig,
    *,
    on_ready: Callable[[DaemonState], None] | None = None,
    on_stopped: Callable[[DaemonState], None] | None = None,
) -> FastAPI:
    """Build the daemon app; ``on_ready`` runs once the stores are open, ``on_stopped`` once
    they are closed (inside the lifespan: uvicorn re-raises SIGTERM once it has shut down, so
    code after ``Server.run`` may never run)."""
    holder: dict[str, DaemonState] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = DaemonState.open(config)
        holder["state"] = state
        app.state.daemon = state
        state.guard_orphans()
        state.heads.start()
        if on_ready is not None:
            on_ready(state)
        try:
            yield
        finally:
            await state.listeners.aclose()  # first: no request may reach the closing stores
            await state.egress.aclose()  # its connections record themselves before the log closes
            state.launchers.close()
            await state.audit.drain()
            await state.executor.aclose()
            await state.gateway.aclose()
            await state.heads.aclose()
            state.close()  # signs the last head
            await state.stop_witness()  # and has it countersigned
            if on_stopped is not None:
                on_stopped(state)

    def touch() -> None:
        state = holder.get("state")
        if state is not None:
            state.last_activity = time.monotonic()

    # Imported here until the routes stop naming DaemonState (they import this module).
    from aileron_cli.daemon.http.app import build_app

    return build_app(version=config.version, lifespan=lifespan, touch=touch)


def _end_tree(root: ProcessRef) -> list[ProcessRef]:
    return end_processes([root, *descendants(root)])


def _consume(future: asyncio.Future[AuditRecord]) -> None:
    """A noted event's failure is reported by the record awaited after it; mark it seen."""
    if not future.cancelled() and future.exception() is not None:
        log.error("audit append failed: %s", future.exception())
