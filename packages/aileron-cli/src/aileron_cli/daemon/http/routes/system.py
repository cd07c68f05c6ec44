"""``/v1/health`` (the only unauthenticated route) and ``/v1/status``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.audit.notices import AuditNotices
from aileron_cli.daemon.errors import ERROR_RESPONSES
from aileron_cli.daemon.http import deps
from aileron_cli.daemon.http.schemas import Health, Status
from aileron_cli.daemon.store.actions import ActionStore
from aileron_cli.daemon.store.bindings import BindingStore
from aileron_cli.daemon.store.connectors import ConnectorStore
from aileron_cli.daemon.store.sessions import SessionStore
from aileron_cli.daemon.store.vault import VaultService

router = APIRouter()
admin_caller = require(ADMIN)
"""Admits the human (also used by ``http.fast``'s status route)."""


@router.get("/health", response_model=Health, tags=["system"])
async def health(process: deps.Process) -> Health:
    """Liveness and version; needs no token."""
    return Health(status="ok", service="aileron", version=process.version)


@router.get("/status", response_model=Status, responses=ERROR_RESPONSES, tags=["system"])
async def status(
    process: deps.Process,
    vault: deps.Vault,
    sessions: deps.Sessions,
    actions: deps.Actions,
    connectors: deps.Connectors,
    bindings: deps.Bindings,
    notices: deps.Notices,
    _: Annotated[Principal, Depends(admin_caller)],
) -> Status:
    """Version, pid, vault state and counts of what the daemon holds."""
    return current_status(process, vault, sessions, actions, connectors, bindings, notices)


def current_status(
    process: deps.ProcessInfo,
    vault: VaultService,
    sessions: SessionStore,
    actions: ActionStore,
    connectors: ConnectorStore,
    bindings: BindingStore,
    notices: AuditNotices,
) -> Status:
    """The daemon's status now (also answered by ``http.fast``, first in the app's router)."""
    now = datetime.now(UTC)
    return Status(
        version=process.version,
        pid=process.pid,
        url=process.url,
        started_at=process.started_at,
        uptime_s=round((now - process.started_at).total_seconds(), 3),
        vault=vault.state(),
        active_sessions=sessions.active_count(),
        actions=len(actions.list()),
        connectors=len(connectors.list()),
        bindings=len(bindings.list()),
        audit_notices=notices.current(),
    )
