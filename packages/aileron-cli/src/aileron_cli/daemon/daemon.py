"""The composition root: :class:`Daemon` builds every service of one running daemon, each with
only the collaborators it uses, and closes them in order; :func:`create_app` runs it inside the
app's lifespan. Nothing here is behaviour beyond wiring and the lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import attrs
from fastapi import FastAPI

from aileron_cli.approvals_config import load_approvals_config
from aileron_cli.daemon.access.sessions import SERVICE, SessionService
from aileron_cli.daemon.access.tokens import Gate, TokenRegistry
from aileron_cli.daemon.access.ui_sessions import UiSessions
from aileron_cli.daemon.audit.config import load_audit_config
from aileron_cli.daemon.audit.log import AuditLog, AuditWriteError
from aileron_cli.daemon.audit.notices import AuditNotices
from aileron_cli.daemon.audit.recovery import RecoveryReport
from aileron_cli.daemon.audit.signer import HeadSigner
from aileron_cli.daemon.custody.vault import VaultCustody
from aileron_cli.daemon.custody.verify import AuditVerifier
from aileron_cli.daemon.egress.executor import Executor
from aileron_cli.daemon.egress.network_config import load_network
from aileron_cli.daemon.egress.notifier import ApprovalNotifier
from aileron_cli.daemon.egress.proxies import EgressProxies, EventSink
from aileron_cli.daemon.enclave.service import EnclaveService
from aileron_cli.daemon.gateway.config import GatewayConfig, load_gateway_config
from aileron_cli.daemon.gateway.credentials import ProviderKeys
from aileron_cli.daemon.gateway.proxy import Gateway
from aileron_cli.daemon.http.app import build_app
from aileron_cli.daemon.http.deps import ProcessInfo
from aileron_cli.daemon.http.listeners import SessionListeners
from aileron_cli.daemon.run.credentials import CredentialResolver
from aileron_cli.daemon.run.runner import Runner
from aileron_cli.daemon.run.sources.command import CommandSource
from aileron_cli.daemon.run.sources.github_app import GitHubAppSource
from aileron_cli.daemon.run.sources.oauth2 import OAuth2Source, TokenEndpoint
from aileron_cli.daemon.run.sources.oauth2_flows import OAuth2Flows
from aileron_cli.daemon.store.actions import ActionStore
from aileron_cli.daemon.store.approvals import ApprovalStore
from aileron_cli.daemon.store.bindings import BindingStore
from aileron_cli.daemon.store.connectors import ConnectorStore
from aileron_cli.daemon.store.grants import GrantStore
from aileron_cli.daemon.store.sessions import SessionStore
from aileron_cli.daemon.store.statelog import StateWriteError
from aileron_cli.daemon.store.vault import VaultService
from aileron_core.audit import Actor
from aileron_core.models import Approval, Session
from aileron_core.network import Network
from aileron_core.paths import Layout
from aileron_core.vault import KdfParams

log = logging.getLogger("aileron.daemon")

__all__ = ["SERVICE", "Daemon", "DaemonConfig", "create_app"]


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


@attrs.define(kw_only=True)
class Daemon:
    """The services of one daemon between its start-up and its shutdown.

    Routes reach each service through one dependency (``http.deps``); no service is given the
    daemon itself, only the collaborators it uses."""

    config: DaemonConfig
    process: ProcessInfo
    tokens: TokenRegistry
    gate: Gate
    audit: AuditLog
    heads: HeadSigner
    notices: AuditNotices
    verifier: AuditVerifier
    sessions: SessionStore
    session_service: SessionService
    vault: VaultService
    custody: VaultCustody
    connectors: ConnectorStore
    actions: ActionStore
    bindings: BindingStore
    approvals: ApprovalStore
    grants: GrantStore
    executor: Executor
    enclave: EnclaveService
    credentials: CredentialResolver
    oauth2_flows: OAuth2Flows
    """OAuth2 authorizations under way (``/v1/bindings/oauth2``, ``/v1/oauth/callback``)."""
    runner: Runner
    gateway: Gateway
    provider_keys: ProviderKeys
    listeners: SessionListeners
    egress: EgressProxies
    notifier: ApprovalNotifier
    """Announces new pending approvals to ``[approvals] webhook`` and the desktop."""
    network: Network
    """The environment's proxies and trusted roots (ADR 0025): brokered requests verify with it."""
    ui_sessions: UiSessions = attrs.field(factory=UiSessions)
    """The approvals page's login links and sessions (in memory: a restart logs pages out)."""
    last_activity: float = attrs.field(factory=time.monotonic)
    expiry: asyncio.Task[None] | None = None
    """The sweeper that expires approvals nobody decided (``[approvals] expire_after``)."""

    @property
    def layout(self) -> Layout:
        return self.config.layout

    @property
    def version(self) -> str:
        return self.config.version

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def open(cls, config: DaemonConfig) -> Daemon:
        """Open every store, repairing what a crash left behind, audit the recovery, and
        build the services on them."""
        layout = config.layout.ensure()
        gateway_config = config.gateway or load_gateway_config(layout.config)  # before locks
        network = load_network(layout.config)  # proxies and CA roots (ADR 0025)
        audit_config = load_audit_config(layout.config)
        audit, recovery = AuditLog.open(layout.audit, segment_bytes=audit_config.segment_bytes)
        sessions, orphaned = SessionStore.open(layout.sessions)
        approvals, failed = ApprovalStore.open(layout.approvals)
        grants = GrantStore.open(layout.grants)
        approvals_config = load_approvals_config(layout.config)
        connectors = ConnectorStore(layout.connector_store)
        connectors.load()
        actions = ActionStore(layout.actions_dir)
        actions.load(connectors.specs())
        bindings = BindingStore(layout.bindings)
        bindings.load()
        heads = HeadSigner(audit, layout.audit_heads)
        process = ProcessInfo(
            version=config.version, pid=os.getpid(), url=config.url, started_at=datetime.now(UTC)
        )
        _record_start(audit, layout, process, recovery, heads, failed, orphaned)

        tokens = TokenRegistry(config.master_token)
        gate = Gate(tokens, audit=audit.append, peer_required=config.peer_required)
        listeners = SessionListeners(tokens)
        egress = EgressProxies(layout, _egress_sink(audit))
        vault = VaultService(layout.vault, config.kdf)
        gateway = Gateway(gateway_config, network=network, audit=audit)
        executor = Executor(network=network)
        enclave = EnclaveService(
            layout.enclave,
            vault=vault,
            bindings=bindings,
            connectors=connectors,
            audit=audit,
            gateway_bindings=lambda: {p.binding for p in gateway.config.providers.values()},
            network=network,
        )
        token_endpoint = TokenEndpoint(network)
        oauth2 = OAuth2Source(vault=vault, audit=audit, endpoint=token_endpoint)
        credentials = CredentialResolver(
            bindings,
            vault,
            enclave,
            sources={
                "oauth2": oauth2,
                "github_app": GitHubAppSource(vault, audit, network=network),
                "command": CommandSource(vault),
            },
        )
        return cls(
            config=config,
            process=process,
            tokens=tokens,
            gate=gate,
            audit=audit,
            heads=heads,
            notices=AuditNotices(audit),
            verifier=AuditVerifier(layout, audit=audit, vault=vault, enclave=enclave),
            sessions=sessions,
            session_service=SessionService(
                sessions,
                tokens=tokens,
                gate=gate,
                audit=audit,
                closers=(listeners.close, egress.close),
            ),
            vault=vault,
            custody=VaultCustody(layout, vault=vault, heads=heads, audit=audit, enclave=enclave),
            connectors=connectors,
            actions=actions,
            bindings=bindings,
            approvals=approvals,
            grants=grants,
            executor=executor,
            enclave=enclave,
            credentials=credentials,
            oauth2_flows=OAuth2Flows(
                source=oauth2,
                endpoint=token_endpoint,
                vault=vault,
                bindings=bindings,
                connectors=connectors,
                audit=audit,
                base_url=config.url,
            ),
            runner=Runner(
                connectors=connectors,
                actions=actions,
                approvals=approvals,
                credentials=credentials,
                enclave=enclave,
                executor=executor,
                audit=audit,
                heads=heads,
                grants=grants,
                policy=approvals_config,
                base_url=config.url,
            ),
            gateway=gateway,
            provider_keys=ProviderKeys(bindings, credentials),
            listeners=listeners,
            egress=egress,
            notifier=ApprovalNotifier(
                approvals_config,
                feed=approvals.feed,
                sessions=sessions,
                audit=audit,
                network=network,
            ),
            network=network,
        )

    def start(self) -> None:
        """Once the app serves: guard the orphaned sessions' trees, start signing heads."""
        self.session_service.guard_orphans()
        self.heads.start()
        self.notifier.start(self.runner.link)
        self.expiry = asyncio.get_running_loop().create_task(self.runner.expire_forever())

    async def aclose(self) -> None:
        """Close every service, the listeners first (no request may reach a closing store)."""
        if self.expiry is not None:
            self.expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.expiry
        await self.listeners.aclose()
        await self.egress.aclose()  # its connections record themselves before the log closes
        await self.notifier.aclose()
        self.session_service.close()
        await self.audit.drain()
        await self.executor.aclose()
        await self.gateway.aclose()
        await self.heads.aclose()
        self.close()  # signs the last head
        await self.custody.stop_witness()  # and has it countersigned

    def close(self) -> None:
        """Clean stop: close running sessions, compact the state logs, seal the audit log,
        forget every key and cached secret.

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
            with _warn_on_storage_failure("compacting grants.jsonl"):
                self.grants.compact()
            with _warn_on_storage_failure("recording daemon.stopped"):
                self.audit.append_sync("daemon.stopped", SERVICE, None, {"pid": self.pid})
            with _warn_on_storage_failure("signing the last head"):
                self.heads.sign("stop")
            self.custody.forget_keys()
        finally:
            self.vault.close()
            self.audit.close()


def _record_start(
    audit: AuditLog,
    layout: Layout,
    process: ProcessInfo,
    recovery: RecoveryReport,
    heads: HeadSigner,
    failed: list[Approval],
    orphaned: list[Session],
) -> None:
    """Audit the start and what opening the stores repaired or gave up on."""
    audit.append_sync(
        "daemon.started", SERVICE, None, {"version": process.version, "pid": process.pid}
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
    if heads.repaired_bytes:
        audit.append_sync(
            "audit.recovered",
            SERVICE,
            None,
            {"file": layout.audit_heads.name, "dropped_bytes": heads.repaired_bytes},
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


def _egress_sink(audit: AuditLog) -> Callable[[str], EventSink]:
    """How the egress proxy of a session records its connections: as the agent."""

    def sink_for(session_id: str) -> EventSink:
        actor = Actor(type="agent", id=f"session:{session_id}")

        async def sink(type: str, payload: dict[str, Any]) -> None:
            await audit.record(type, actor, session_id, **payload)

        return sink

    return sink_for


@contextlib.contextmanager
def _warn_on_storage_failure(step: str) -> Iterator[None]:
    """Log a storage failure in the block as one warning line (no traceback) and go on."""
    try:
        yield
    except (AuditWriteError, StateWriteError, OSError) as error:
        log.warning("stopping: %s failed: %s", step, error)


def create_app(
    config: DaemonConfig,
    *,
    on_ready: Callable[[Daemon], None] | None = None,
    on_stopped: Callable[[Daemon], None] | None = None,
) -> FastAPI:
    """Build the daemon app; ``on_ready`` runs once the stores are open, ``on_stopped`` once
    they are closed (inside the lifespan: uvicorn re-raises SIGTERM once it has shut down, so
    code after ``Server.run`` may never run)."""
    holder: dict[str, Daemon] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        daemon = Daemon.open(config)
        daemon.approvals.feed.bind(asyncio.get_running_loop())
        holder["daemon"] = daemon
        app.state.daemon = daemon
        daemon.start()
        if on_ready is not None:
            on_ready(daemon)
        try:
            yield
        finally:
            await daemon.aclose()
            if on_stopped is not None:
                on_stopped(daemon)

    def touch() -> None:
        daemon = holder.get("daemon")
        if daemon is not None:
            daemon.last_activity = time.monotonic()

    return build_app(version=config.version, lifespan=lifespan, touch=touch)
