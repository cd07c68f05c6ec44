"""``/v1/usage``: what the gateway's traffic used and cost, from its audit records."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.errors import ERROR_RESPONSES, DaemonError
from aileron_cli.daemon.gateway.report import RECORD_TYPE, Grouping, Tally, UsageReport, summarize
from aileron_cli.daemon.http import deps
from aileron_cli.daemon.http.schemas import UsageGroup, UsageReportOut, UsageTally

router = APIRouter(prefix="/usage", tags=["usage"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require(ADMIN))]

_RELATIVE = re.compile(r"(\d{1,9})([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def since_instant(text: str | None, now: datetime) -> datetime | None:
    """``text`` as the first instant to count: an ISO 8601 time with a zone, or a span back
    from ``now`` (``30m``, ``24h``, ``7d``). A span reaching before year 1 counts everything
    (``None``)."""
    if text is None:
        return None
    relative = _RELATIVE.fullmatch(text)
    if relative is not None:
        try:
            return now - timedelta(**{_UNITS[relative[2]]: int(relative[1])})
        except OverflowError:
            return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise DaemonError(
            "invalid_request",
            f"since={text!r} is neither an ISO 8601 time with a zone nor a span like 24h",
            details={
                "fields": [
                    {
                        "location": ["query", "since"],
                        "problem": "not an ISO 8601 time with a zone, nor Nm, Nh or Nd",
                    }
                ]
            },
        )
    return moment


def _tally(tally: Tally) -> UsageTally:
    return UsageTally.model_validate(tally.as_record())


@router.get("", response_model=UsageReportOut)
async def usage_report(
    audit: deps.Audit,
    _: Admin,
    session: Annotated[str | None, Query(max_length=64, description="only this session")] = None,
    since: Annotated[
        str | None,
        Query(
            max_length=64,
            description="ISO 8601 time with a zone (inclusive), or a span back from now:"
            " 30m, 24h, 7d",
        ),
    ] = None,
    by: Annotated[Grouping, Query(description="what the groups are")] = "model",
) -> UsageReportOut:
    """Tokens, requests and cost of the gateway's requests, grouped, with their total."""
    start = since_instant(since, datetime.now(UTC))

    def tally() -> UsageReport:
        return summarize(audit.list(type=RECORD_TYPE, since=start, session_id=session), by)

    # Reading a long log's records takes seconds; off the event loop, so that the gateway's
    # streams (and every other request) go on meanwhile. The log's index has its own lock.
    report = await asyncio.to_thread(tally)
    return UsageReportOut(
        since=start,
        session=session,
        by=by,
        groups=[UsageGroup(key=key, **tally.as_record()) for key, tally in report.groups],
        total=_tally(report.total),
    )
