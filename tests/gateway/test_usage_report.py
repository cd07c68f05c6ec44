"""``GET /v1/usage``: the gateway's ``gateway.request`` audit records grouped and summed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.http.routes.usage import since_instant
from aileron_core.audit import Actor, AuditRecord

AGENT = Actor("agent", "codex")


def _usage(input: int, output: int, cached: int = 0) -> dict[str, int]:
    return {"input": input, "output": output, "cached": cached}


def write(
    api: TestClient,
    session: str | None,
    *,
    model: str | None = "gpt-5",
    agent: str | None = "codex",
    provider: str = "openai",
    usage: dict[str, int] | None = None,
    cost: float | None = None,
    type: str = "gateway.request",
) -> AuditRecord:
    """Append one record as the gateway writes it, through the daemon's own audit log."""
    audit: AuditLog = api.app.state.daemon.audit  # type: ignore[attr-defined]
    payload: dict[str, Any] = {
        "provider": provider,
        "method": "POST",
        "path": "/v1/chat/completions",
        "model": model,
        "agent": agent,
        "status": 200,
        "usage": usage,
        "cost": cost,
        "priced": None if cost is None else "gpt-5*",
    }
    assert api.portal is not None
    record: AuditRecord = api.portal.call(audit.append, type, AGENT, session, payload)
    return record


def report(api: TestClient, **params: str) -> dict[str, Any]:
    answer = api.get("usage", params=params)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def groups(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["key"]: g for g in document["groups"]}


def test_requests_are_grouped_by_model_and_summed_most_expensive_first(api: TestClient) -> None:
    """By default each model is one group with its requests, tokens and cost summed, the
    groups ordered by cost then tokens, and the total sums every record."""
    write(api, "s1", model="gpt-5", usage=_usage(100, 20, 40), cost=0.5)
    write(api, "s2", model="gpt-5", usage=_usage(10, 5), cost=0.25)
    write(api, "s1", model="gpt-5-mini", usage=_usage(1000, 500), cost=0.125)
    write(api, "s1", model="claude-x", provider="anthropic", usage=_usage(7, 3), cost=1.0)
    document = report(api)
    assert document["by"] == "model"
    assert document["since"] is None and document["session"] is None
    assert [g["key"] for g in document["groups"]] == ["claude-x", "gpt-5", "gpt-5-mini"]
    assert groups(document)["gpt-5"] == {
        "key": "gpt-5",
        "requests": 2,
        "input": 110,
        "output": 25,
        "cached": 40,
        "cost": 0.75,
        "unpriced_requests": 0,
        "unreported_requests": 0,
    }
    assert document["total"] == {
        "requests": 4,
        "input": 1117,
        "output": 528,
        "cached": 40,
        "cost": 1.875,
        "unpriced_requests": 0,
        "unreported_requests": 0,
    }


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("agent", {"codex": 2, "goose": 1}),
        ("session", {"s1": 2, "s2": 1}),
        ("provider", {"openai": 1, "local": 2}),
    ],
)
def test_requests_can_be_grouped_by_agent_session_or_provider(
    api: TestClient, by: str, expected: dict[str, int]
) -> None:
    """``by`` picks the record field that keys the groups (the session from the record)."""
    write(api, "s1", agent="codex", provider="openai", usage=_usage(1, 1))
    write(api, "s1", agent="codex", provider="local", usage=_usage(1, 1))
    write(api, "s2", agent="goose", provider="local", usage=_usage(1, 1))
    document = report(api, by=by)
    assert document["by"] == by
    assert {key: g["requests"] for key, g in groups(document).items()} == expected


def test_a_group_without_any_price_has_no_cost_and_a_partly_priced_one_says_so(
    api: TestClient,
) -> None:
    """A group none of whose requests was priced has cost null; one priced in part sums the
    priced ones and counts the others as unpriced, in the total as well."""
    write(api, "s1", model="local-llama", usage=_usage(50, 50))
    write(api, "s1", model="gpt-5", usage=_usage(10, 10), cost=0.5)
    write(api, "s1", model="gpt-5", usage=_usage(10, 10))
    found = groups(report(api))
    assert found["local-llama"]["cost"] is None
    assert found["local-llama"]["unpriced_requests"] == 1
    assert found["gpt-5"]["cost"] == 0.5
    assert found["gpt-5"]["unpriced_requests"] == 1
    total = report(api)["total"]
    assert (total["cost"], total["unpriced_requests"]) == (0.5, 2)


def test_requests_without_usage_or_model_still_count(api: TestClient) -> None:
    """A request whose answer reported no usage counts with 0 tokens as unreported (not as
    unpriced), and one without a model is grouped under "(none)", listed after priced ones."""
    write(api, "s1", model=None, usage=None)
    write(api, "s1", model="gpt-5", usage=None)
    write(api, "s1", model="gpt-5", usage=_usage(3, 4), cost=0.25)
    document = report(api)
    assert [g["key"] for g in document["groups"]] == ["gpt-5", "(none)"]
    none = groups(document)["(none)"]
    assert (none["requests"], none["input"], none["output"], none["cost"]) == (1, 0, 0, None)
    assert (none["unreported_requests"], none["unpriced_requests"]) == (1, 0)
    gpt = groups(document)["gpt-5"]
    assert (gpt["requests"], gpt["input"], gpt["output"], gpt["cost"]) == (2, 3, 4, 0.25)
    assert (gpt["unreported_requests"], gpt["unpriced_requests"]) == (1, 0)


def test_only_gateway_request_records_are_counted(api: TestClient) -> None:
    """Refusals and every other record type leave the report alone."""
    write(api, "s1", usage=_usage(5, 5), cost=0.25)
    write(api, "s1", usage=_usage(9, 9), cost=4.0, type="gateway.refused")
    write(api, "s1", usage=_usage(9, 9), cost=4.0, type="action.invoked")
    total = report(api)["total"]
    assert (total["requests"], total["input"], total["cost"]) == (1, 5, 0.25)


def test_session_filter_counts_only_that_session(api: TestClient) -> None:
    """``session`` keeps that session's records only (and an unknown one gives nothing)."""
    write(api, "s1", usage=_usage(1, 2), cost=0.25)
    write(api, "s2", usage=_usage(30, 40), cost=0.5)
    document = report(api, session="s2")
    assert document["session"] == "s2"
    assert (document["total"]["requests"], document["total"]["input"]) == (1, 30)
    empty = report(api, session="nobody")
    assert empty["groups"] == []
    assert empty["total"]["requests"] == 0 and empty["total"]["cost"] is None


def test_since_counts_records_from_that_instant_on(api: TestClient) -> None:
    """``since`` as an ISO time with a zone is inclusive; as a span (30m) it reaches back
    from now; both are echoed as the instant used."""
    first = write(api, "s1", usage=_usage(1, 1))
    second = write(api, "s1", usage=_usage(10, 10))
    after_first = report(api, since=second.ts.isoformat())
    assert first.ts < second.ts  # each append is durable before the next is written
    assert after_first["total"]["requests"] == 1
    assert datetime.fromisoformat(after_first["since"]) == second.ts
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert report(api, since=future)["total"]["requests"] == 0
    recent = report(api, since="30m")
    assert recent["total"]["requests"] == 2
    since = datetime.fromisoformat(recent["since"])
    assert since <= first.ts and datetime.now(UTC) - since >= timedelta(minutes=30)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-01T00:00:00"}, "since"),  # no zone
        ({"since": "24x"}, "since"),
        ({"since": "-5m"}, "since"),
        ({"since": "1" * 65}, "since"),
        ({"by": "cost"}, "by"),
        ({"session": "s" * 65}, "session"),
    ],
)
def test_bad_queries_are_refused_naming_the_field(
    api: TestClient, params: dict[str, str], field: str
) -> None:
    """A since that is neither a zoned ISO time nor a span, an unknown grouping or an
    over-long session is 422 invalid_request naming the query field."""
    answer = api.get("usage", params=params)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert ["query", field] in [f["location"] for f in error["details"]["fields"]]


def test_spans_reach_back_from_now_and_a_huge_one_counts_everything() -> None:
    """30m, 24h and 7d are subtracted from now; a span past year 1 means no lower bound."""
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert since_instant("30m", now) == now - timedelta(minutes=30)
    assert since_instant("24h", now) == now - timedelta(hours=24)
    assert since_instant("7d", now) == now - timedelta(days=7)
    assert since_instant("999999999d", now) is None
    assert since_instant("2026-04-01T00:00:00+02:00", now) == datetime(
        2026, 3, 31, 22, 0, tzinfo=UTC
    )
