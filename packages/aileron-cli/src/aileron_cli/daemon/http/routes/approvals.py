"""``/v1/approvals``: what waits for a human, and the human's decision."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import StreamingResponse

from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.errors import ERROR_RESPONSES, DaemonError
from aileron_cli.daemon.http import deps
from aileron_cli.daemon.http.schemas import ApprovalOut, Decision, GrantOut
from aileron_cli.daemon.http.sse import approval_events
from aileron_cli.daemon.store.grants import GrantTerms
from aileron_core.convert import converter
from aileron_core.models import Approval, Grant

router = APIRouter(prefix="/approvals", tags=["approvals"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require(ADMIN))]
Poller = Annotated[Principal, Depends(require("approvals:poll"))]
ApprovalId = Annotated[str, Path(min_length=1, max_length=64)]


def approval_out(approval: Approval, link: str | None = None) -> ApprovalOut:
    return ApprovalOut.model_validate(converter.unstructure(approval) | {"link": link})


@router.get("", response_model=list[ApprovalOut])
async def list_approvals(
    approvals: deps.Approvals,
    who: Poller,
    status: Annotated[str | None, Query(max_length=16)] = None,
    session: Annotated[str | None, Query(max_length=64)] = None,
) -> list[ApprovalOut]:
    """Approvals, oldest first; a session token sees only its own session's."""
    if who.kind == "session":
        session = who.session_id
    return [approval_out(a) for a in approvals.list(status=status, session_id=session)]


@router.get("/events", response_class=StreamingResponse)
async def approval_events_stream(
    approvals: deps.Approvals, runner: deps.Runner, _: Admin
) -> StreamingResponse:
    """Server-sent events of every approval change (``aileron approval watch``; issue #20):
    ``ready`` once subscribed, one ``approval`` (as ``GET /approvals/{id}`` answers) per
    change, ``gap`` where changes were lost, a ``: ping`` comment while quiet. Declared before
    ``/{approval_id}``, which would otherwise take ``events`` for an id."""
    return approval_events(
        approvals.feed,
        lambda approval: approval_out(approval, runner.link(approval.id)).model_dump(mode="json"),
    )


# Grants (issue #20): declared before ``/{approval_id}``, which would take ``grants`` for an id.
GrantId = Annotated[str, Path(min_length=1, max_length=64)]


def grant_out(grant: Grant) -> GrantOut:
    return GrantOut.model_validate(converter.unstructure(grant))


@router.get("/grants", response_model=list[GrantOut])
async def list_grants(
    grants: deps.Grants, _: Admin, all: Annotated[bool, Query()] = False
) -> list[GrantOut]:
    """The live grants, oldest first (``all``: revoked and expired ones too)."""
    return [grant_out(g) for g in grants.list(all=all)]


@router.delete("/grants/{grant_id}", response_model=GrantOut)
async def revoke_grant(
    grant_id: GrantId, grants: deps.Grants, audit: deps.Audit, who: Admin
) -> GrantOut:
    """Revoke a grant: the requests it covered wait for a human again."""
    was_live = grants.live(grants.get(grant_id))
    grant = grants.revoke(grant_id, who.actor.id)
    if was_live:
        await audit.record(
            "grant.revoked",
            who.actor,
            grant.session_id,
            grant_id=grant.id,
            target=grant.target,
            process=who.process.to_json() if who.process is not None else None,
        )
    return grant_out(grant)


@router.get("/{approval_id}", response_model=ApprovalOut)
async def show_approval(
    approval_id: ApprovalId, approvals: deps.Approvals, runner: deps.Runner, who: Poller
) -> ApprovalOut:
    """One approval: its status and, once run, its result; ``link`` is its web page."""
    approval = approvals.get(approval_id)
    if who.kind == "session" and approval.session_id != who.session_id:
        raise DaemonError("approval_not_found", f"no approval {approval_id!r}")
    return approval_out(approval, runner.link(approval.id))


@router.post("/{approval_id}/decide", response_model=ApprovalOut)
async def decide_approval(
    approval_id: ApprovalId, body: Decision, runner: deps.Runner, who: Admin
) -> ApprovalOut:
    """Approve (runs the exact approved arguments once, then answers) or deny. Approving
    something whose action, connector, binding or target changed since the request is 409
    ``approval_stale`` and runs nothing; an expired one is 409 ``approval_expired``. Approving
    with ``grant`` also approves later requests it covers, for the session or N minutes."""
    grant = GrantTerms.parse(body.grant.lasts, body.grant.match) if body.grant is not None else None
    decided = await runner.decide(
        approval_id, body.approved, who.actor, body.reason, who.process, grant=grant
    )
    return approval_out(decided)
