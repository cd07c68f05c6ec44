"""Streaming through a real daemon process: identical bytes, no buffering, cancellation."""

from __future__ import annotations

import socket

import httpx
import pytest
from gateway.support import (
    ANTHROPIC,
    CHAT,
    MESSAGE,
    OPENAI,
    REAL_KEY,
    Live,
    read_stream,
    session_headers,
)

STREAMS = [
    ("openai", OPENAI, "/v1/chat/completions", {**CHAT, "stream": True}),
    ("openai", OPENAI, "/v1/responses", {"model": "gpt-fake", "input": "hi", "stream": True}),
    ("anthropic", ANTHROPIC, "/v1/messages", {**MESSAGE, "stream": True}),
]


@pytest.mark.parametrize(("provider", "prefix", "path", "body"), STREAMS)
def test_streamed_answers_are_byte_identical_and_keys_stay_in_the_daemon(
    live: Live, provider: str, prefix: str, path: str, body: dict[str, object]
) -> None:
    """An SSE stream through the gateway has the bytes of a direct call; the provider saw the
    real key and never the session token; the real key is in no response, log or audit line."""
    session_id, token = live.new_session()
    key_header = {"x-api-key": REAL_KEY} if provider == "anthropic" else {}
    direct_headers = {"Authorization": f"Bearer {REAL_KEY}", **key_header}
    with httpx.Client(timeout=10) as client:
        with client.stream(
            "POST", live.fake.url + path, json=body, headers=direct_headers
        ) as direct:
            direct_bytes = read_stream(direct)
        with client.stream(
            "POST",
            live.url + prefix + path,
            json=body,
            headers=session_headers(token, provider),
        ) as through:
            through_bytes = read_stream(through)
            through_headers = dict(through.headers)
    assert through.status_code == direct.status_code == 200
    assert through_bytes == direct_bytes
    assert through_bytes.count(b"\n\n") >= 7
    assert through_headers["content-type"].startswith("text/event-stream")
    seen = live.fake.seen[-1]
    expected = (
        ("x-api-key", REAL_KEY)
        if provider == "anthropic"
        else ("authorization", f"Bearer {REAL_KEY}")
    )
    assert seen.header(expected[0]) == expected[1]
    assert all(token not in value for _, value in seen.headers)
    assert REAL_KEY not in str(through_headers)
    record = live.wait_audit("gateway.request", session_id)
    assert record["payload"]["status"] == 200
    assert record["payload"]["bytes_in"] == len(through_bytes)
    home = live.home / ".aileron"
    for name in ("daemon.log", "audit.jsonl"):
        text = (home / name).read_text()
        assert REAL_KEY not in text, name
        assert token not in text, name


def test_the_first_chunk_arrives_while_the_provider_holds_back_the_rest(live: Live) -> None:
    """No buffering: the client reads the first SSE event while the fake provider is still
    holding every later event back; the rest follows once released."""
    _, token = live.new_session()
    live.fake.arm()
    headers = {**session_headers(token), "x-fake-hold": "1"}
    body = {**CHAT, "stream": True}
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=5)) as client,
        client.stream(
            "POST", f"{live.url}{OPENAI}/v1/chat/completions", json=body, headers=headers
        ) as answer,
    ):
        chunks = answer.iter_raw()
        first = next(chunks)
        assert live.fake.holding.wait(5)  # the provider has sent only the first event
        assert first.startswith(b"data: {") and first.endswith(b"\n\n")
        assert b"[DONE]" not in first
        live.fake.release()
        rest = b"".join(chunks)
    assert rest.endswith(b"data: [DONE]\n\n")


def test_a_client_that_hangs_up_mid_stream_cancels_the_upstream(live: Live) -> None:
    """When the agent disconnects mid-stream, the daemon closes the upstream connection (the
    fake sees it go) and audits the request as cancelled."""
    session_id, token = live.new_session()
    live.fake.arm()
    headers = {**session_headers(token), "x-fake-hold": "1"}
    body = {**CHAT, "stream": True}
    with httpx.Client(timeout=10) as client:
        with client.stream(
            "POST", f"{live.url}{OPENAI}/v1/chat/completions", json=body, headers=headers
        ) as answer:
            first = next(answer.iter_raw())
            assert live.fake.holding.wait(5)
        # leaving the block closes the half-read response, and with it the connection
    assert live.fake.gone.wait(10), "the provider never saw the connection close"
    record = live.wait_audit("gateway.request", session_id)
    payload = record["payload"]
    assert payload["cancelled"] is True
    assert payload["status"] == 200
    assert payload["bytes_in"] == len(first)


def test_a_provider_that_breaks_off_breaks_off_the_agents_answer(live: Live) -> None:
    """A provider connection that dies mid-stream is not passed off as a complete answer: the
    agent's read fails, and the audit record says so."""
    session_id, token = live.new_session()
    headers = {**session_headers(token), "x-fake-break": "3"}
    body = {**CHAT, "stream": True}
    with httpx.Client(timeout=10) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            with client.stream(
                "POST", f"{live.url}{OPENAI}/v1/chat/completions", json=body, headers=headers
            ) as answer:
                read_stream(answer)
    payload = live.wait_audit("gateway.request", session_id)["payload"]
    assert payload["error"] == "upstream_broke_off"


@pytest.mark.parametrize("path", ["/v1/../../v1/status", "/./v1/models", "/v1/%2e%2e/admin"])
def test_dot_segments_are_refused(live: Live, path: str) -> None:
    """A raw request whose path has `.`/`..` segments is refused (422) and never forwarded."""
    _, token = live.new_session()
    before = len(live.fake.seen)
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"GET {OPENAI}{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        reply = b""
        while data := sock.recv(65536):
            reply += data
    assert reply.startswith(b"HTTP/1.1 422"), reply[:200]
    assert len(live.fake.seen) == before
