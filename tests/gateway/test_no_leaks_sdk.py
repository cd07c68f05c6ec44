"""End to end with the official SDKs and a real daemon: no Aileron token ever reaches the
provider, wherever a client puts it; path tricks are refused with the SDK's own error and
audited; and an endpoint that echoes the injected key cannot hand it to the agent."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import quote

import anthropic
import httpx
import openai
import pytest
from anthropic.types import MessageParam
from fakes.provider import Seen
from gateway.support import REAL_KEY, Live
from openai.types.chat import ChatCompletionMessageParam

from aileron_cli.daemon.gateway.leaks import token_in

MODEL = "gpt-fake"
CLAUDE = "claude-fake"
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
HI_CLAUDE: list[MessageParam] = [{"role": "user", "content": "hi"}]
TRICKS = ["v1/%2e%2e/admin", "v1/%2E./admin", "v1/..%5cadmin", "v1/..;/admin", "v1%2f..%2fadmin"]


def _percent_all(text: str) -> str:
    return "".join(f"%{byte:02x}" for byte in text.encode())


def _basic(user: str, token: str) -> str:
    return base64.b64encode(f"{user}:{token}".encode()).decode()


def _spellings(token: str) -> list[str]:
    """Every spelling of ``token`` the test looks for in what the provider saw."""
    return [
        token,
        quote(token, safe=""),
        _percent_all(token),
        _percent_all(token).upper(),
        base64.b64encode(token.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(token.encode()).decode().rstrip("="),
        *(_basic(user, token).rstrip("=") for user in ("me", "x", "")),
    ]


def _everything(seen: list[Seen]) -> str:
    """Every request line and header the provider saw (bodies are the agent's: not scanned)."""
    return "\n".join(
        f"{request.method} {request.path}\n"
        + "\n".join(f"{name}: {value}" for name, value in request.headers)
        for request in seen
    )


def _assert_no_token(seen: list[Seen], tokens: list[str]) -> None:
    text = _everything(seen)
    for token in tokens:
        for spelling in _spellings(token):
            assert spelling not in text
    assert not token_in(text.encode())


@pytest.fixture
def tokens(live: Live) -> Iterator[tuple[str, str, str]]:
    """A live session token, the master token and an ended session's token."""
    _, token = live.new_session()
    dead_id, dead = live.new_session()
    with live.admin() as admin:
        admin.post(f"sessions/{dead_id}/end", json={"exit_code": 0}).raise_for_status()
    yield token, live.info.token, dead


def _hostile_headers(token: str, master: str, dead: str) -> dict[str, str]:
    return {
        "X-Foo": master,
        "X-Bar": token,
        "X-Upstream-Auth": f"Basic {_basic('me', token)}",
        "X-Trace": f"session={quote(_percent_all(token))}",
        "X-Old": dead,
        "X-Ordinary": "kept",
    }


def _hostile_query(token: str, master: str, dead: str) -> dict[str, str]:
    return {
        "k": token,
        "m": master,
        "enc": _percent_all(token),
        "dead": dead,
        "b": _basic("x", token),
        "api-version": "2024-10-21",
    }


def test_no_token_reaches_an_openai_provider(live: Live, tokens: tuple[str, str, str]) -> None:
    """With the session token as its API key and every Aileron token also in other headers and
    the query (raw, percent-encoded, in basic credentials, a dead one), the OpenAI SDK's calls
    succeed and the provider never sees any token in any spelling."""
    token, master, dead = tokens
    before = len(live.fake.seen)
    client = openai.OpenAI(
        api_key=token,
        base_url=f"{live.url}/v1/gateway/openai/v1",
        default_headers=_hostile_headers(token, master, dead),
        default_query=_hostile_query(token, master, dead),
        max_retries=0,
    )
    with client:
        answer = client.chat.completions.create(model=MODEL, messages=HI)
        assert answer.choices[0].message.content
        stream = client.chat.completions.create(
            model=MODEL,
            messages=HI,
            stream=True,
            extra_query={"q": token},
        )
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert client.responses.create(model=MODEL, input="hi").output_text
        assert [model.id for model in client.models.list()] == ["fake-1"]
    seen = live.fake.seen[before:]
    assert len(seen) == 4
    for request in seen:
        assert request.path.endswith("?api-version=2024-10-21")
        assert request.header("x-ordinary") == "kept"
        assert request.header("authorization") == f"Bearer {REAL_KEY}"
    _assert_no_token(seen, [token, master, dead])


def test_no_token_reaches_an_anthropic_provider(live: Live, tokens: tuple[str, str, str]) -> None:
    """The same through the Anthropic SDK (its key in `x-api-key`), streamed and not."""
    token, master, dead = tokens
    before = len(live.fake.seen)
    client = anthropic.Anthropic(
        api_key=token,
        base_url=f"{live.url}/v1/gateway/anthropic",
        default_headers=_hostile_headers(token, master, dead),
        default_query=_hostile_query(token, master, dead),
        max_retries=0,
    )
    with client:
        message = client.messages.create(model=CLAUDE, max_tokens=64, messages=HI_CLAUDE)
        assert message.content
        with client.messages.stream(model=CLAUDE, max_tokens=64, messages=HI_CLAUDE) as stream:
            assert "".join(stream.text_stream)
    seen = live.fake.seen[before:]
    assert len(seen) == 2
    for request in seen:
        assert request.header("x-api-key") == REAL_KEY
        assert request.header("x-ordinary") == "kept"
    _assert_no_token(seen, [token, master, dead])


@pytest.mark.parametrize("trick", TRICKS)
def test_path_tricks_get_the_sdks_own_error_and_are_audited(live: Live, trick: str) -> None:
    """A dot-segment or separator trick the SDK sends as written is refused before anything is
    forwarded: the OpenAI and Anthropic SDKs raise their own 422 error, and each refusal is
    audited as `gateway.refused` with reason `bad_path`."""
    session_id, token = live.new_session()
    before = len(live.fake.seen)
    gateway = f"{live.url}/v1/gateway"
    with openai.OpenAI(api_key=token, base_url=f"{gateway}/openai", max_retries=0) as client:
        with pytest.raises(openai.UnprocessableEntityError) as refused:
            client.get(trick, cast_to=httpx.Response)
    assert "does not forward this path" in refused.value.message
    with anthropic.Anthropic(
        api_key=token, base_url=f"{gateway}/anthropic", max_retries=0
    ) as claude:
        with pytest.raises(anthropic.UnprocessableEntityError):
            claude.get(trick, cast_to=httpx.Response)
    assert len(live.fake.seen) == before
    refusals = [record["payload"] for record in live.audit("gateway.refused", session_id)]
    assert [(r["provider"], r["reason"]) for r in refusals] == [
        ("openai", "bad_path"),
        ("anthropic", "bad_path"),
    ]
    assert all(r["path"] == "/" + trick for r in refusals)


ECHO = {"x-fake-echo-key": "1"}


def test_an_openai_endpoint_echoing_the_key_cannot_hand_it_to_the_sdk(live: Live) -> None:
    """A provider that echoes the credential it received (the injected key) in its answer, as
    JSON or in every streamed event: the OpenAI SDK's text holds the mask, never the key."""
    _, token = live.new_session()
    base_url = f"{live.url}/v1/gateway/openai/v1"
    with openai.OpenAI(
        api_key=token, base_url=base_url, default_headers=ECHO, max_retries=0
    ) as client:
        whole = client.chat.completions.create(model=MODEL, messages=HI)
        chat = client.chat.completions.create(model=MODEL, messages=HI, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in chat if c.choices)
        events = client.responses.create(model=MODEL, input="hi", stream=True)
        responses = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    for text in (whole.choices[0].message.content or "", streamed, responses):
        assert "[REDACTED]" in text
        assert REAL_KEY not in text


def test_an_anthropic_endpoint_echoing_the_key_cannot_hand_it_to_the_sdk(live: Live) -> None:
    """The same for Anthropic's messages, whole and streamed (the key echoed from `x-api-key`)."""
    _, token = live.new_session()
    base_url = f"{live.url}/v1/gateway/anthropic"
    with anthropic.Anthropic(
        api_key=token, base_url=base_url, default_headers=ECHO, max_retries=0
    ) as client:
        whole = client.messages.create(model=CLAUDE, max_tokens=64, messages=HI_CLAUDE)
        with client.messages.stream(model=CLAUDE, max_tokens=64, messages=HI_CLAUDE) as stream:
            streamed = "".join(stream.text_stream)
    texts = [block.text for block in whole.content if block.type == "text"]
    for text in (*texts, streamed):
        assert "[REDACTED]" in text
        assert REAL_KEY not in text
