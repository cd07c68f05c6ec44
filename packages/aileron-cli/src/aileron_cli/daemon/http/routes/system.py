"""``/v1/health`` (the only unauthenticated route) and ``/v1/status``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.daemon import DaemonState
from aileron_cli.daemon.errors import ERROR_RESPONSES
from aileron_cli.daemon.http.routes import daemon_state
from aileron_cli.daemon.http.schemas import Health, Status

router = APIRouter()
State = Annotated[DaemonState, Depends(daemon_state)]


@router.get("/health", response_model=Health, tags=["system"])
async def health(state: State) -> Health:
    """Liveness and version; needs no token."""
    return Health(status="ok", service="aileron", version=state.version)


@router.get("/status", response_model=Status, responses=ERROR_RESPONSES, tags=["system"])
async def status(state: State, _: Annotated[Principal, Depends(require(ADMIN))]) -> Status:
    """Version, pid, vault state and counts of what the daemon holds."""
    return current_status(state)


def current_status(state: DaemonState) -> Status:
    """The daemon's status now (also answered by ``hot_routes`` before FastAPI's router)."""
    now = datetime.now(UTC)
    return Status(
        version=state.version,
        pid=state.pid,
        url=state.config.url,
        started_at=state.started_at,
        uptime_s=round((now - state.started_at).total_seconds(), 3),
        vault=state.vault.state(),
        active_sessions=state.sessions.active_count(),
        actions=len(state.actions.list()),
        connectors=len(state.connectors.list()),
        bindings=len(state.bindings.list()),
        audit_notices=state.audit_notices(),
    )
