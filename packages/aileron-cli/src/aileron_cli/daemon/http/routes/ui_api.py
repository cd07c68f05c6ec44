"""``/ui/api/``: what the approvals page reads and decides with (issue #20).

Every route needs the page's session cookie *and* its page key (401 without either, or with a
wrong one), on top of :class:`~.ui.UiGuard`'s ``Host`` and ``Origin`` checks. The cookie reaches
every port of the host, so any local server the human is lured to receives it; the key only the
page at the daemon's own origin holds (:mod:`aileron_cli.daemon.access.ui_sessions`). The key
comes in the header ``X-Aileron-Page-Key`` — reads included; as a header no other site can set,
it is the decisions' CSRF token too — except on the event stream, which takes it as ``?k=``
(``EventSource`` cannot set a header; the daemon logs no request URL, and the page sends no
``Referer``). A decision goes through the same ``Runner.decide`` as the admin
API, decided by ``web (<who minted the login link>)``. Nothing here holds a secret: approvals
are shown as stored (the store never holds a binding's secret), audit records as written.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import Field
from starlette.responses import StreamingResponse

from aileron_cli.daemon.access.ui_sessions import UiSession, UiSessions
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.http import deps
from aileron_cli.daemon.http.routes.ui import COOKIE
from aileron_cli.daemon.http.schemas import GrantBody, Strict
from aileron_cli.daemon.http.sse import approval_events
from aileron_cli.daemon.run.runner import Runner
from aileron_cli.daemon.store.grants import GrantTerms
from aileron_cli.daemon.store.sessions import SessionStore
from aileron_core.audit import Actor
from aileron_core.convert import converter
from aileron_core.errors import AileronError
from aileron_core.models import Approval

__all__ = ["PAGE_KEY_HEADER", "router"]

router = APIRouter(prefix="/ui/api", include_in_schema=False)
ApprovalId = Annotated[str, Path(min_length=1, max_length=64)]


PAGE_KEY_HEADER = "X-Aileron-Page-Key"


def _logged_in(ui: UiSessions, request: Request, key: str | None) -> UiSession:
    session = ui.page(request.cookies.get(COOKIE), key)
    if session is None:
        raise DaemonError(
            "unauthorized",
            "not logged in to the approvals page (its cookie and page key are both needed)",
            hint="run `aileron open` in your terminal for a one-time login link",
        )
    return session


async def _page(
    request: Request,
    ui: deps.UiSessionsDep,
    key: Annotated[str | None, Header(alias=PAGE_KEY_HEADER, max_length=256)] = None,
) -> UiSession:
    return _logged_in(ui, request, key)


async def _stream_page(
    request: Request,
    ui: deps.UiSessionsDep,
    k: Annotated[str | None, Query(max_length=256)] = None,
) -> UiSession:
    return _logged_in(ui, request, k)


Page = Annotated[UiSession, Depends(_page)]
StreamPage = Annotated[UiSession, Depends(_stream_page)]


def approval_json(approval: Approval, sessions: SessionStore) -> dict[str, Any]:
    """An approval in full, as the page shows it: the stored request, the agent of its
    session, and how long it has waited (or waited, once decided)."""
    shown: dict[str, Any] = converter.unstructure(approval)
    agent = None
    if approval.session_id is not None:
        with contextlib.suppress(AileronError):
            agent = sessions.get(approval.session_id).agent
    until = approval.decided_at or datetime.now(UTC)
    shown["agent"] = agent
    shown["waited_s"] = max(0.0, (until - approval.created_at).total_seconds())
    return shown


@router.get("/me")
async def me(page: Page, process: deps.Process) -> dict[str, Any]:
    """Who is logged in, the daemon's address and version."""
    return {"by": page.by, "url": process.url, "version": process.version}


@router.post("/logout", status_code=204)
async def logout(request: Request, _: Page, ui: deps.UiSessionsDep) -> None:
    """End this page's session."""
    ui.logout(request.cookies.get(COOKIE, ""))


@router.get("/approvals")
async def pending(
    _: Page, approvals: deps.Approvals, sessions: deps.Sessions
) -> list[dict[str, Any]]:
    """The pending approvals, oldest first, in full."""
    return [approval_json(a, sessions) for a in approvals.list(status="pending")]


@router.get("/approvals/{approval_id}")
async def one(
    approval_id: ApprovalId, _: Page, approvals: deps.Approvals, sessions: deps.Sessions
) -> dict[str, Any]:
    """One approval in full, whatever its status."""
    return approval_json(approvals.get(approval_id), sessions)


class PageDecision(Strict):
    reason: str | None = Field(default=None, max_length=1000)
    grant: GrantBody | None = Field(default=None, description="approve only (as the admin API)")


async def _decide(
    approval_id: str, approved: bool, body: PageDecision, page: UiSession, runner: Runner
) -> Approval:
    actor = Actor(type="human", id=f"web ({page.by})")
    grant = GrantTerms.parse(body.grant.lasts, body.grant.match) if body.grant else None
    return await runner.decide(approval_id, approved, actor, body.reason, grant=grant)


@router.post("/approvals/{approval_id}/approve")
async def approve(
    approval_id: ApprovalId,
    body: PageDecision,
    page: Page,
    runner: deps.Runner,
    sessions: deps.Sessions,
) -> dict[str, Any]:
    """Approve: runs exactly the approved arguments once and answers with the outcome; with
    ``grant``, later requests it covers are approved without asking (as the admin API)."""
    return approval_json(await _decide(approval_id, True, body, page, runner), sessions)


@router.post("/approvals/{approval_id}/deny")
async def deny(
    approval_id: ApprovalId,
    body: PageDecision,
    page: Page,
    runner: deps.Runner,
    sessions: deps.Sessions,
) -> dict[str, Any]:
    """Deny: nothing runs."""
    return approval_json(await _decide(approval_id, False, body, page, runner), sessions)


@router.get("/sessions")
async def list_sessions(_: Page, sessions: deps.Sessions) -> list[dict[str, Any]]:
    """The agent sessions, most recent first (what the session list shows, no tokens)."""
    return [
        {
            "id": s.id,
            "agent": s.agent,
            "working_dir": s.working_dir,
            "state": s.state,
            "started_at": s.started_at.isoformat(),
            "ended_at": s.ended_at.isoformat() if s.ended_at else None,
            "end_reason": s.end_reason,
            "sandbox": s.sandbox.runtime if s.sandbox is not None else None,
            "exposed": [e.binding for e in s.exposed],
        }
        for s in reversed(sessions.list(limit=100))
    ]


@router.get("/audit")
async def recent_audit(
    _: Page, audit: deps.Audit, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[dict[str, Any]]:
    """The most recent audit records, newest first."""
    records: list[dict[str, Any]] = [
        converter.unstructure(r) for r in audit.list(since=None, type=None, limit=limit)
    ]
    return records[::-1]


@router.get("/audit/verify")
async def verify(_: Page, verifier: deps.Verifier) -> dict[str, Any]:
    """The audit log's verification state (as ``aileron audit verify`` reports it)."""
    return await verifier.verify(witness=False)


@router.get("/events")
async def events(
    _: StreamPage, approvals: deps.Approvals, sessions: deps.Sessions
) -> StreamingResponse:
    """Server-sent events (:mod:`aileron_cli.daemon.http.sse`; the page key as ``?k=``):
    ``ready`` once subscribed (the page then reads the list), one ``approval`` per change of
    any approval, in full, ``gap`` where changes were lost, a ``: ping`` comment while quiet."""
    return approval_events(approvals.feed, lambda approval: approval_json(approval, sessions))
