"""The routes' dependencies: one async dependency per service of the running daemon.

Each reads its service from ``request.app.state.daemon`` (set by the composition root,
``aileron_cli.daemon.daemon``, which this module does not import: the HTTP edge sits below it)
and is exposed as an ``Annotated`` alias, so a route names exactly the services it uses::

    async def vault_lock(custody: deps.Custody, vault: deps.Vault, who: Admin) -> VaultStatus:

They are ``async def`` so FastAPI calls them on the event loop (a plain ``def`` dependency runs
in a worker thread on every request).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import attrs
from fastapi import Depends, Request

from aileron_cli.daemon.access.sessions import SessionService
from aileron_cli.daemon.access.tokens import TokenRegistry
from aileron_cli.daemon.access.ui_sessions import UiSessions
from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.audit.notices import AuditNotices
from aileron_cli.daemon.custody.vault import VaultCustody
from aileron_cli.daemon.custody.verify import AuditVerifier
from aileron_cli.daemon.egress.proxies import EgressProxies
from aileron_cli.daemon.enclave.service import EnclaveService
from aileron_cli.daemon.gateway.credentials import ProviderKeys
from aileron_cli.daemon.gateway.proxy import Gateway as GatewayService
from aileron_cli.daemon.http.listeners import SessionListeners
from aileron_cli.daemon.run.credentials import CredentialResolver
from aileron_cli.daemon.run.runner import Runner as RunnerService
from aileron_cli.daemon.store.actions import ActionStore
from aileron_cli.daemon.store.approvals import ApprovalStore
from aileron_cli.daemon.store.bindings import BindingStore
from aileron_cli.daemon.store.connectors import ConnectorStore
from aileron_cli.daemon.store.grants import GrantStore
from aileron_cli.daemon.store.sessions import SessionStore
from aileron_cli.daemon.store.vault import VaultService
from aileron_core.network import Network as NetworkSettings
from aileron_core.paths import Layout as LayoutPaths

__all__ = [
    "Actions",
    "Approvals",
    "Audit",
    "Bindings",
    "Connectors",
    "Credentials",
    "Custody",
    "Egress",
    "Enclave",
    "Gateway",
    "Grants",
    "Layout",
    "Listeners",
    "Network",
    "Notices",
    "Process",
    "ProcessInfo",
    "ProviderKeysDep",
    "Runner",
    "SessionLife",
    "Sessions",
    "Tokens",
    "UiSessionsDep",
    "Vault",
    "Verifier",
]


@attrs.frozen
class ProcessInfo:
    """What ``/v1/health`` and ``/v1/status`` say about the daemon's process."""

    version: str
    pid: int
    url: str
    started_at: datetime


async def _process(request: Request) -> ProcessInfo:
    found: ProcessInfo = request.app.state.daemon.process
    return found


async def _layout(request: Request) -> LayoutPaths:
    found: LayoutPaths = request.app.state.daemon.layout
    return found


async def _tokens(request: Request) -> TokenRegistry:
    found: TokenRegistry = request.app.state.daemon.tokens
    return found


async def _audit(request: Request) -> AuditLog:
    found: AuditLog = request.app.state.daemon.audit
    return found


async def _notices(request: Request) -> AuditNotices:
    found: AuditNotices = request.app.state.daemon.notices
    return found


async def _verifier(request: Request) -> AuditVerifier:
    found: AuditVerifier = request.app.state.daemon.verifier
    return found


async def _sessions(request: Request) -> SessionStore:
    found: SessionStore = request.app.state.daemon.sessions
    return found


async def _session_life(request: Request) -> SessionService:
    found: SessionService = request.app.state.daemon.session_service
    return found


async def _vault(request: Request) -> VaultService:
    found: VaultService = request.app.state.daemon.vault
    return found


async def _custody(request: Request) -> VaultCustody:
    found: VaultCustody = request.app.state.daemon.custody
    return found


async def _connectors(request: Request) -> ConnectorStore:
    found: ConnectorStore = request.app.state.daemon.connectors
    return found


async def _actions(request: Request) -> ActionStore:
    found: ActionStore = request.app.state.daemon.actions
    return found


async def _bindings(request: Request) -> BindingStore:
    found: BindingStore = request.app.state.daemon.bindings
    return found


async def _approvals(request: Request) -> ApprovalStore:
    found: ApprovalStore = request.app.state.daemon.approvals
    return found


async def _runner(request: Request) -> RunnerService:
    found: RunnerService = request.app.state.daemon.runner
    return found


async def _enclave(request: Request) -> EnclaveService:
    found: EnclaveService = request.app.state.daemon.enclave
    return found


async def _gateway(request: Request) -> GatewayService:
    found: GatewayService = request.app.state.daemon.gateway
    return found


async def _provider_keys(request: Request) -> ProviderKeys:
    found: ProviderKeys = request.app.state.daemon.provider_keys
    return found


async def _listeners(request: Request) -> SessionListeners:
    found: SessionListeners = request.app.state.daemon.listeners
    return found


async def _egress(request: Request) -> EgressProxies:
    found: EgressProxies = request.app.state.daemon.egress
    return found


async def _credentials(request: Request) -> CredentialResolver:
    found: CredentialResolver = request.app.state.daemon.credentials
    return found


async def _ui_sessions(request: Request) -> UiSessions:
    found: UiSessions = request.app.state.daemon.ui_sessions
    return found


async def _network(request: Request) -> NetworkSettings:
    found: NetworkSettings = request.app.state.daemon.network
    return found


Process = Annotated[ProcessInfo, Depends(_process)]
Layout = Annotated[LayoutPaths, Depends(_layout)]
Tokens = Annotated[TokenRegistry, Depends(_tokens)]
Audit = Annotated[AuditLog, Depends(_audit)]
Notices = Annotated[AuditNotices, Depends(_notices)]
Verifier = Annotated[AuditVerifier, Depends(_verifier)]
Sessions = Annotated[SessionStore, Depends(_sessions)]
SessionLife = Annotated[SessionService, Depends(_session_life)]
Vault = Annotated[VaultService, Depends(_vault)]
Custody = Annotated[VaultCustody, Depends(_custody)]
Connectors = Annotated[ConnectorStore, Depends(_connectors)]
Actions = Annotated[ActionStore, Depends(_actions)]
Bindings = Annotated[BindingStore, Depends(_bindings)]
Approvals = Annotated[ApprovalStore, Depends(_approvals)]


async def _grants(request: Request) -> GrantStore:
    found: GrantStore = request.app.state.daemon.grants
    return found


Grants = Annotated[GrantStore, Depends(_grants)]
Runner = Annotated[RunnerService, Depends(_runner)]
Enclave = Annotated[EnclaveService, Depends(_enclave)]
Gateway = Annotated[GatewayService, Depends(_gateway)]
ProviderKeysDep = Annotated[ProviderKeys, Depends(_provider_keys)]
Listeners = Annotated[SessionListeners, Depends(_listeners)]
Egress = Annotated[EgressProxies, Depends(_egress)]
Credentials = Annotated[CredentialResolver, Depends(_credentials)]
Network = Annotated[NetworkSettings, Depends(_network)]
UiSessionsDep = Annotated[UiSessions, Depends(_ui_sessions)]
