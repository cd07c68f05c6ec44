"""Complete or cancelled, through a real daemon: an agent that hangs up on the final event
(codex on `response.completed`) got the whole answer; one that hangs up before it did not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gateway.lingering import STREAMS, Lingering
from gateway.support import ANTHROPIC, OPENAI, Daemon, run_daemon, session_headers

ROUTES = [
    ("openai", OPENAI, "/v1/chat/completions"),
    ("openai", OPENAI, "/v1/responses"),
    ("anthropic", ANTHROPIC, "/v1/messages"),
]
BODY = {"model": "m", "stream": True}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Lingering]:
    with Lingering() as server:
        yield server


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, upstream: Lingering) -> Iterator[Daemon]:
    """A real daemon whose gateway points at the lingering provider."""
    with run_daemon(tmp_path_factory.mktemp("gateway-linger"), upstream.url) as running:
        yield running


def _read_until(
    daemon: Daemon, provider: str, prefix: str, path: str, last: bytes, linger: str
) -> tuple[str, dict[str, Any]]:
    """Read the stream until ``last`` has arrived, then hang up at once; the audit payload."""
    session_id, token = daemon.new_session()
    headers = {**session_headers(token, provider), "x-linger": linger}
    received = b""
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", daemon.url + prefix + path, json=BODY, headers=headers) as answer,
    ):
        assert answer.status_code == 200
        for chunk in answer.iter_raw():
            received += chunk
            if received.endswith(last):
                break
    # leaving the blocks closes the connection with the answer's end of body still unread
    return session_id, daemon.wait_audit("gateway.request", session_id)["payload"]


@pytest.mark.parametrize(("provider", "prefix", "path"), ROUTES)
def test_hanging_up_right_after_the_final_event_is_complete(
    daemon: Daemon, upstream: Lingering, provider: str, prefix: str, path: str
) -> None:
    """An agent that closes its connection as soon as it has read the final event, before the
    provider's end of body arrived, is audited as complete (not cancelled)."""
    upstream.arm()
    events = STREAMS[path]
    _, payload = _read_until(daemon, provider, prefix, path, events[-1], linger="end")
    assert upstream.gone.wait(10), "the agent never left before the provider's end of body"
    assert "cancelled" not in payload, payload
    assert payload["status"] == 200
    assert payload["bytes_in"] == len(b"".join(events))


@pytest.mark.parametrize(("provider", "prefix", "path"), ROUTES)
def test_hanging_up_before_the_final_event_is_cancelled(
    daemon: Daemon, upstream: Lingering, provider: str, prefix: str, path: str
) -> None:
    """An agent that leaves after every event but the final one is audited as cancelled."""
    upstream.arm()
    events = STREAMS[path]
    _, payload = _read_until(daemon, provider, prefix, path, events[-2], linger="final")
    assert upstream.gone.wait(10), "the provider never saw the agent leave"
    assert payload["cancelled"] is True
    assert payload["bytes_in"] == len(b"".join(events[:-1]))
