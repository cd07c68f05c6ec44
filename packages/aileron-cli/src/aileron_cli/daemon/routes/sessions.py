"""``/v1/sessions``: register a launched agent, mint its token, end it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from aileron_cli.daemon.auth import ADMIN, Principal, require
from aileron_cli.daemon.errors import ERROR_RESPONSES
from aileron_cli.daemon.routes import daemon_state
from aileron_cli.daemon.schemas import CreatedSession, EndSession, NewSession, SessionOut
from aileron_cli.daemon.state import DaemonState
from aileron_core.convert import converter
from aileron_core.models import SandboxInfo, Session

router = APIRouter(prefix="/sessions", tags=["sessions"], responses=ERROR_RESPONSES)
State = Annotated[DaemonState, Depends(daemon_state)]
Admin = Annotated[Principal, Depends(require(ADMIN))]
SessionId = Annotated[str, Path(min_length=1, max_length=64)]


def _out(session: Session) -> SessionOut:
    return SessionOut.model_validate(converter.unstructure(session))


@router.post("", response_model=CreatedSession, status_code=201)
async def create_session(body: NewSession, state: State, who: Admin) -> CreatedSession:
    """Register a session and mint its token (capabilities: actions, approvals, gateway)."""
    sandbox = SandboxInfo(body.sandbox.runtime, body.sandbox.image) if body.sandbox else None
    session = state.sessions.create(body.agent, body.working_dir, sandbox)
    token = state.tokens.mint_session_token(session.id)
    await state.record(
        "session.started",
        who.actor,
        session.id,
        agent=session.agent,
        working_dir=session.working_dir,
        sandbox=converter.unstructure(sandbox),
    )
    return CreatedSession(**_out(session).model_dump(), token=token)


@router.get("", response_model=list[SessionOut])
async def list_sessions(
    state: State,
    _: Admin,
    active: bool | None = None,
    agent: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> list[SessionOut]:
    """Sessions, oldest first (``limit`` keeps the most recent)."""
    return [_out(s) for s in state.sessions.list(active=active, agent=agent, limit=limit)]


@router.get("/{session_id}", response_model=SessionOut)
async def get_session(session_id: SessionId, state: State, _: Admin) -> SessionOut:
    """One session."""
    return _out(state.sessions.get(session_id))


@router.post("/{session_id}/end", response_model=SessionOut)
async def end_session(
    session_id: SessionId, body: EndSession, state: State, who: Admin
) -> SessionOut:
    """End a session with its agent's exit code; its token dies."""
    session = state.sessions.end(session_id, body.exit_code)
    state.tokens.revoke_session(session_id)
    await state.record("session.ended", who.actor, session_id, exit_code=body.exit_code)
    return _out(session)
