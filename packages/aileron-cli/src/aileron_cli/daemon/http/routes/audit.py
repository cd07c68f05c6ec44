"""``/v1/audit``: read and verify the hash-chained audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.errors import ERROR_RESPONSES, DaemonError
from aileron_cli.daemon.http import deps
from aileron_cli.daemon.http.schemas import AuditRecordOut
from aileron_core.audit import AuditRecord
from aileron_core.convert import converter

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require(ADMIN))]


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise DaemonError(
            "invalid_request",
            f"since={text!r} is not an ISO 8601 time with a zone",
            details={
                "fields": [{"location": ["query", "since"], "problem": "not an ISO 8601 time"}]
            },
        )
    return moment


def _out(record: AuditRecord) -> AuditRecordOut:
    return AuditRecordOut.model_validate(converter.unstructure(record))


@router.get("", response_model=list[AuditRecordOut])
async def list_audit(
    audit: deps.Audit,
    _: Admin,
    since: Annotated[
        str | None, Query(max_length=64, description="ISO 8601 time with a zone, inclusive")
    ] = None,
    type: Annotated[str | None, Query(max_length=128)] = None,
    session: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> list[AuditRecordOut]:
    """Records oldest first; ``limit`` keeps the most recent."""
    records = audit.list(since=_instant(since), type=type, session_id=session, limit=limit)
    return [_out(r) for r in records]


@router.get("/verify")
async def verify_audit(
    verifier: deps.Verifier,
    _: Admin,
    witness: Annotated[bool, Query(description="also require the enclave's marks")] = False,
) -> dict[str, Any]:
    """Prove the log complete: the chain across segments, every signed head, that the log
    reaches the last head and ends at what this daemon wrote; names the first problem."""
    return await verifier.verify(witness=witness)


@router.post("/ack")
async def acknowledge(notices: deps.Notices, who: Admin) -> dict[str, int]:
    """Acknowledge the recoveries and rejected checkpoints ``aileron status`` shows."""
    return {"through_seq": await notices.acknowledge(who.actor)}


@router.get("/{record_id}", response_model=AuditRecordOut)
async def get_audit(
    record_id: Annotated[str, Path(min_length=1, max_length=64)], audit: deps.Audit, _: Admin
) -> AuditRecordOut:
    """One record by id."""
    record = audit.get(record_id)
    if record is None:
        raise DaemonError("audit_record_not_found", f"no audit record {record_id!r}")
    return _out(record)
