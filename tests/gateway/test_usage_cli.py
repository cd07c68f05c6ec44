"""``aileron usage``: the daemon's usage report, as a table or as JSON, against a real daemon."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from gateway.support import CHAT, OPENAI, Live, isolated_env, session_headers
from helpers import aileron

from aileron_cli.cli.usage import show


def _chat(live: Live, token: str) -> None:
    with httpx.Client(timeout=10) as client:
        answer = client.post(
            f"{live.url}{OPENAI}/v1/chat/completions", json=CHAT, headers=session_headers(token)
        )
    assert answer.status_code == 200, answer.text


def _tally(requests: int, cost: float | None, **counts: int) -> dict[str, Any]:
    return {
        "requests": requests,
        "input": counts.get("input", 0),
        "output": counts.get("output", 0),
        "cached": counts.get("cached", 0),
        "cost": cost,
        "unpriced_requests": counts.get("unpriced", 0),
        "unreported_requests": counts.get("unreported", 0),
    }


def test_usage_json_and_table_report_a_sessions_gateway_requests(live: Live) -> None:
    """Two requests through the real gateway show up in ``aileron usage --session ID --json``
    under their model, in the table with a total row, and by session under the session id."""
    session_id, token = live.new_session()
    _chat(live, token)
    _chat(live, token)
    deadline = time.monotonic() + 10
    while len(live.audit("gateway.request", session_id)) < 2:  # audited once relayed
        assert time.monotonic() < deadline, "the two requests were never audited"
        time.sleep(0.05)
    env = isolated_env(live.home)

    done = aileron("usage", "--session", session_id, "--since", "1h", "--json", env=env)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["session"] == session_id and document["by"] == "model"
    assert [(g["key"], g["requests"]) for g in document["groups"]] == [(CHAT["model"], 2)]
    assert document["total"]["requests"] == 2

    table = aileron("usage", "--session", session_id, env=env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "REQUESTS", "INPUT", "OUTPUT", "CACHED", "COST"]
    assert lines[1].split()[:2] == [CHAT["model"], "2"]
    assert lines[2].split()[:2] == ["TOTAL", "2"]

    by_session = aileron("usage", "--session", session_id, "--by", "session", "--json", env=env)
    assert by_session.returncode == 0, by_session.stderr
    assert [g["key"] for g in json.loads(by_session.stdout)["groups"]] == [session_id]


@pytest.mark.parametrize("since", ["yesterday", "2026-01-01T00:00:00"])
def test_usage_with_a_bad_since_fails_naming_it(live: Live, since: str) -> None:
    """A --since that is neither a zoned ISO time nor a span exits 1 with the daemon's reason."""
    done = aileron("usage", "--since", since, env=isolated_env(live.home))
    assert done.returncode == 1
    assert "since" in done.stderr and "24h" in done.stderr


def test_usage_refuses_an_unknown_grouping(live: Live) -> None:
    """--by takes model, agent, session or provider only (a usage error, exit 2)."""
    done = aileron("usage", "--by", "cost", env=isolated_env(live.home))
    assert done.returncode == 2
    assert "--by" in done.stderr


def test_the_table_prints_costs_with_four_decimals_a_dash_when_unpriced_and_notes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each group and the total row show requests, tokens and cost (4 decimals, "—" when
    nothing was priced); the notes say how many requests had no price or no usage."""
    show(
        {
            "by": "agent",
            "groups": [
                {"key": "codex", **_tally(3, 1.23456, input=100, output=20, cached=5)},
                {"key": "goose", **_tally(1, None, input=7, output=1, unpriced=1)},
                {"key": "(none)", **_tally(1, None, unreported=1)},
            ],
            "total": _tally(5, 1.23456, input=107, output=21, cached=5, unpriced=1, unreported=1),
        }
    )
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == ["AGENT", "REQUESTS", "INPUT", "OUTPUT", "CACHED", "COST"]
    assert lines[1] == ["codex", "3", "100", "20", "5", "1.2346"]
    assert lines[2] == ["goose", "1", "7", "1", "0", "—"]
    assert lines[3] == ["(none)", "1", "0", "0", "0", "—"]
    assert lines[4] == ["TOTAL", "5", "107", "21", "5", "1.2346"]
    assert " ".join(lines[5]).startswith("note: 1 request(s) matched no price")
    assert " ".join(lines[6]).startswith("note: 1 request(s) reported no usage")
