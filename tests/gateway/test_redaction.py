"""The gateway never hands the injected key back: every spelling of it is masked in the
provider's answer, its headers and a streamed body cut anywhere, and framing stays right."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from executor.echo_forms import EchoFormsServer, echoed_forms, leaks
from fastapi.testclient import TestClient
from gateway.support import REAL_KEY, session_headers, write_config

from aileron_core.paths import Layout

PROVIDER = "gateway/openai"


@pytest.fixture
def upstream() -> Iterator[EchoFormsServer]:
    """A provider that echoes the key it receives in every listed spelling."""
    with EchoFormsServer().running() as server:
        yield server


@pytest.fixture
def echoing(layout: Layout, upstream: EchoFormsServer) -> EchoFormsServer:
    """config.toml pointing the providers at the echoing upstream (before the app starts)."""
    write_config(layout.home, upstream.url)
    return upstream


@pytest.fixture
def agent(echoing: EchoFormsServer, api: TestClient) -> TestClient:
    """The in-process daemon with the key bound; the client carries a session token only."""
    master = {"Authorization": api.headers.pop("authorization")}
    api.post("vault/init", json={"passphrase": "gw"}, headers=master).raise_for_status()
    body = {"name": "api_key/openai/default", "value": REAL_KEY}
    api.post("bindings", json=body, headers=master).raise_for_status()
    session = api.post("sessions", json={"agent": "codex", "working_dir": "/w"}, headers=master)
    session.raise_for_status()
    api.headers.update(session_headers(session.json()["token"]))
    return api


def test_a_streamed_answer_echoing_the_key_is_masked(
    agent: TestClient, echoing: EchoFormsServer
) -> None:
    """Server-sent events written 7 bytes at a time, each event one spelling of the key: the
    agent gets every event, each still valid JSON, none holding the key in any spelling."""
    with agent.stream("POST", f"{PROVIDER}/v1/chat/completions", json={"stream": True}) as answer:
        body = b"".join(answer.iter_raw()).decode()
        assert answer.status_code == 200, body
    assert echoing.seen == [REAL_KEY]
    events = [line.removeprefix("data: ") for line in body.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    decoded = [json.loads(event) for event in events[:-1]]
    assert [event["form"] for event in decoded] == list(echoed_forms(REAL_KEY))
    assert all(
        len(event["text"]) == len(echoed_forms(REAL_KEY)[event["form"]]) for event in decoded
    )
    assert "[REDACTED]" in body
    assert leaks(body, REAL_KEY) == []


def test_a_fixed_length_answer_keeps_its_length_and_loses_the_key(
    agent: TestClient, echoing: EchoFormsServer
) -> None:
    """A Content-Length answer is masked byte for byte (its length stays right), and an
    X-Echo header with every spelling of the key comes back masked too."""
    answer = agent.get(f"{PROVIDER}/forms")
    assert answer.status_code == 200
    assert int(answer.headers["content-length"]) == len(answer.content)
    document = answer.json()
    assert document["authorization"].startswith("Bearer [REDACTED]")
    assert leaks(answer.text, REAL_KEY) == []
    assert leaks(answer.headers["x-echo"], REAL_KEY) == []
    assert set(document["echo"]) == set(echoed_forms(REAL_KEY))


def test_an_error_answer_echoing_the_key_is_masked(agent: TestClient) -> None:
    """A provider's 400 with the key in its body (as providers' 'invalid key' errors do)."""
    answer = agent.get(f"{PROVIDER}/fail")
    assert answer.status_code == 400
    assert answer.text.startswith("bad key: [REDACTED]")
    assert leaks(answer.text, REAL_KEY) == []


def test_the_key_injected_request_asks_for_identity_and_a_compressed_answer_is_refused(
    agent: TestClient, echoing: EchoFormsServer
) -> None:
    """The agent's Accept-Encoding is replaced by identity; a provider that compresses anyway
    is answered 502 upstream_bad_response, and none of its compressed bytes reach the agent."""
    answer = agent.get(f"{PROVIDER}/gzip", headers={"Accept-Encoding": "gzip, br"})
    assert echoing.accept_encodings == ["identity"]
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "upstream_bad_response"
    assert "compressed" in answer.json()["error"]["message"]
    assert leaks(answer.text, REAL_KEY) == []
