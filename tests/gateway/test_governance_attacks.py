"""A hostile agent holding only its session token against the gateway's governance: model
policy, budgets and the key, each attack as the agent would send it to a real daemon whose
providers are the scripted fake (ADR 0030)."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from fakes.provider import FakeProvider
from gateway.support import OPENAI, REAL_KEY, Daemon, run_daemon

from aileron_cli.daemon.gateway.governance import (
    AmbiguousModel,
    UnreadableBody,
    chargeable,
    named_model,
)
from aileron_cli.daemon.gateway.usage import Usage

ATTACKED = """
[gateway.providers.openai.models]
deny = ["gpt-5-forbidden"]

[gateway.providers.anthropic.models]
deny = ["claude-denied"]

[gateway.providers.budgeted]
kind = "anthropic"
base_url = "{url}"
binding = "api_key/budgeted/default"
limits.session_tokens = 1000

[gateway.providers.priced]
kind = "openai"
base_url = "{url}"
binding = "api_key/priced/default"
limits.session_cost = 0.5

[gateway.providers.silent]
kind = "openai"
base_url = "{silent}"
binding = "api_key/silent/default"
limits.session_tokens = 100

[gateway.providers.echoer]
kind = "openai"
base_url = "{echoer}"
binding = "api_key/echoer/default"

[gateway.providers.ratey]
kind = "openai"
base_url = "{url}"
binding = "api_key/ratey/default"
limits.requests_per_minute = 3

[gateway.prices.priced."gpt-fake*"]
input = 100000.0
output = 100000.0
"""

FORBIDDEN = {"model": "gpt-5-forbidden", "messages": [{"role": "user", "content": "hi"}]}
CHAT_PATH = f"{OPENAI}/v1/chat/completions"


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, FakeProvider]]:
    """A real daemon with a deny list on openai, a token-budgeted anthropic-kind provider and
    a cost-budgeted openai-kind provider, in front of one fake provider."""
    home = tmp_path_factory.mktemp("attacked")
    with FakeProvider(REAL_KEY) as fake, _silent() as silent, _echoer() as echoer:
        extra = ATTACKED.format(url=fake.url, silent=silent, echoer=echoer)
        with run_daemon(home, fake.url, extra) as daemon:
            yield daemon, fake


@contextmanager
def _silent() -> Iterator[str]:
    """A provider that takes every request and never answers (a model thinking for ever)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for connection in held:
            connection.close()


@pytest.fixture
def agent(
    attacked: tuple[Daemon, FakeProvider],
) -> Iterator[tuple[httpx.Client, Daemon, FakeProvider, str]]:
    """An agent's raw HTTP client holding a fresh session's token (and nothing else)."""
    daemon, fake = attacked
    session, token = daemon.new_session()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=daemon.url, headers=headers, timeout=30) as client:
        yield client, daemon, fake, session


def _post(client: httpx.Client, body: bytes, content_type: str) -> httpx.Response:
    return client.post(CHAT_PATH, content=body, headers={"content-type": content_type})


# --- a denied model, smuggled past the policy --------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"not json"),
        ("application/json", b'{"model": "m"} {"model": "n"}'),
        ("", b'{"model": "m"}\xff'),
        ("text/plain", b"[" * 100_000),
    ],
)
def test_a_body_that_is_not_json_nor_its_form_is_unreadable(content_type: str, body: bytes) -> None:
    """A non-empty body that is neither JSON nor the form its Content-Type names cannot be
    read for its model (the policy then refuses it rather than guess)."""
    with pytest.raises(UnreadableBody):
        named_model(content_type, body)


def test_json_is_read_whatever_the_content_type_and_must_agree_with_the_form() -> None:
    """A JSON body is read as JSON under a form Content-Type too; a body whose JSON and form
    readings name different models is ambiguous."""
    assert named_model("multipart/form-data; boundary=b", b'{"model": "m"}') == "m"
    assert named_model("application/x-www-form-urlencoded", b'{"model": "m"}') == "m"
    assert (
        named_model("application/x-www-form-urlencoded", b'{"model": "m", "x": "&model=m&"}') == "m"
    )
    with pytest.raises(AmbiguousModel):
        named_model("application/x-www-form-urlencoded", b'{"model": "m", "x": "&model=n&"}')


def test_an_answer_cut_short_is_charged_at_least_the_output_relayed() -> None:
    """A whole answer is charged what it reported; one cut short at least a token per 4 bytes
    relayed; one that reported nothing the estimate both ways."""
    reported = Usage(input=10, output=1, cached=2)
    assert chargeable(reported, 400, 8000, whole=True) == reported
    assert chargeable(reported, 400, 8000, whole=False) == Usage(10, 2000, 2)
    assert chargeable(None, 400, 8000, whole=True) == Usage(100, 2000, 0)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        # Trailing data: Python's json refuses it, Go's json.Decoder (Ollama, gin) reads the
        # first value and ignores the rest.
        (json.dumps(FORBIDDEN).encode() + b" trailing", "application/json"),
        # Invalid UTF-8: Python's json refuses it, Go's replaces it with U+FFFD.
        (json.dumps(FORBIDDEN).encode().replace(b'"hi"', b'"h\xffi"'), "application/json"),
        # A comment: refused by Python, accepted by lenient JSON5-ish local servers.
        (b"/* x */" + json.dumps(FORBIDDEN).encode(), "application/json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ],
    ids=["trailing-data", "invalid-utf8", "comment", "deep-nesting"],
)
def test_a_body_the_gateway_cannot_read_is_refused_not_forwarded(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str], body: bytes, content_type: str
) -> None:
    """With a model policy in force, a body the gateway cannot read as JSON (which a more
    lenient provider might still read, model and all) is refused with a 422 and never sent."""
    client, _, fake, _ = agent
    before = len(fake.seen)
    answer = _post(client, body, content_type)
    assert answer.status_code == 422, answer.text
    assert "model" in answer.json()["error"]["message"]
    assert len(fake.seen) == before


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data; boundary=xyz", "application/x-www-form-urlencoded", "text/plain"],
)
def test_a_json_body_under_another_content_type_is_still_checked(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str], content_type: str
) -> None:
    """A JSON body naming a denied model is refused whatever Content-Type claims (a provider
    that parses JSON regardless of it — Ollama, llama.cpp — would otherwise run the model)."""
    client, _, fake, _ = agent
    before = len(fake.seen)
    answer = _post(client, json.dumps(FORBIDDEN).encode(), content_type)
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["code"] == "model_denied"
    assert len(fake.seen) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/gateway/anthropic/v1/messages/batches",
            {
                "requests": [
                    {"custom_id": "a", "params": {"model": "claude-denied", "max_tokens": 9}}
                ]
            },
        ),
        (
            f"{OPENAI}/v1/realtime/client_secrets",
            {"session": {"type": "realtime", "model": "gpt-5-forbidden"}},
        ),
        (CHAT_PATH, {"model": "gpt-fake", "models": ["gpt-5-forbidden"], "messages": []}),
    ],
    ids=["anthropic-batch", "openai-realtime-session", "router-fallback-list"],
)
def test_a_denied_model_nested_in_another_api_is_refused(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str], path: str, body: dict[str, object]
) -> None:
    """A denied model named inside the body — a message batch's requests, a realtime session,
    a router's fallback list (OpenRouter's `models`) — is refused like the body's own model,
    and never sent."""
    client, _, fake, _ = agent
    before = len(fake.seen)
    answer = client.post(path, json=body, headers={"anthropic-version": "2023-06-01"})
    assert answer.status_code == 403, answer.text
    assert len(fake.seen) == before


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xef\xbb\xbf" + json.dumps(FORBIDDEN).encode(), "application/json"),
        (json.dumps(FORBIDDEN).encode("utf-16"), "application/json"),
        (b'{"model": "gpt-5-forbidde\\u006e", "messages": []}', "application/json"),
        (b'{"MODEL": "gpt-5-forbidden", "messages": []}', "application/json"),
        (b"model=gpt-5-forbidden&x=1", "application/x-www-form-urlencoded"),
        (b"mod%65l=gpt-5-forbidden", "application/x-www-form-urlencoded"),
        (
            b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-5-forbidden\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
            b"RIFF\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
        ),
    ],
    ids=["bom", "utf-16", "unicode-escape", "upper-case-key", "form", "form-escape", "multipart"],
)
def test_every_spelling_of_a_denied_model_is_refused(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str], body: bytes, content_type: str
) -> None:
    """A BOM, UTF-16, a \\u escape, an upper-case key, a form field (escaped or not) and a
    multipart part all name the denied model as a provider would read it: 403, not sent."""
    client, _, fake, _ = agent
    before = len(fake.seen)
    answer = _post(client, body, content_type)
    assert answer.status_code == 403, answer.text
    assert len(fake.seen) == before


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (
            [("content-type", "multipart/form-data; boundary=c; boundary=b")],
            b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-5-forbidden\r\n'
            b"--b--\r\n",
        ),
        (
            [("content-type", "multipart/form-data; boundary=b")],
            b'--b\r\nContent-Disposition: form-data; name="x"; name="model"\r\n\r\n'
            b"gpt-5-forbidden\r\n--b--\r\n",
        ),
        (
            [
                ("content-type", "application/json"),
                ("content-type", "multipart/form-data; boundary=b"),
            ],
            b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-5-forbidden\r\n'
            b"--b--\r\n",
        ),
    ],
    ids=["two-boundaries", "two-part-names", "two-content-types"],
)
def test_a_multipart_body_parsers_read_differently_is_refused(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str],
    headers: list[tuple[str, str]],
    body: bytes,
) -> None:
    """Two boundaries, a part with two names, two Content-Types: the gateway's reading and a
    provider's (Starlette's keeps the last) could differ on the model, so it is refused."""
    client, _, fake, _ = agent
    before = len(fake.seen)
    answer = client.post(CHAT_PATH, content=body, headers=headers)
    assert answer.status_code in (403, 422), answer.text
    assert len(fake.seen) == before


def test_a_compressed_body_is_refused_not_forwarded_unread(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str],
) -> None:
    """A gzip-compressed body (Content-Encoding: gzip) hides its model from the gateway but
    not from a provider that decompresses it: under a policy it is refused (422), never sent."""
    client, _, fake, _ = agent
    before = len(fake.seen)
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    answer = client.post(
        CHAT_PATH, content=gzip.compress(json.dumps(FORBIDDEN).encode()), headers=headers
    )
    assert answer.status_code == 422, answer.text
    assert len(fake.seen) == before


def test_a_model_named_differently_by_json_and_by_the_form_is_refused(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str],
) -> None:
    """A url-encoded body that is also JSON naming another model (which one the provider reads
    depends on whether it trusts the Content-Type) is refused as ambiguous."""
    client, _, fake, _ = agent
    before = len(fake.seen)
    body = b'{"model": "gpt-fake", "x": "&model=gpt-5-forbidden&"}'
    answer = _post(client, body, "application/x-www-form-urlencoded")
    assert answer.status_code in (403, 422), answer.text
    assert len(fake.seen) == before


def test_a_chunked_body_over_the_policy_limit_is_refused_before_anything_is_sent(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str],
) -> None:
    """A chunked body whose model comes after 64 MiB of padding is refused (413) rather than
    streamed up unchecked."""
    client, _, fake, _ = agent
    before = len(fake.seen)
    pad = b" " * (1 << 20)

    def body() -> Iterator[bytes]:
        yield b'{"messages": []'
        for _ in range(65):
            yield pad
        yield b', "model": "gpt-5-forbidden"}'

    answer = client.post(CHAT_PATH, content=body(), headers={"content-type": "application/json"})
    assert answer.status_code == 413, answer.text
    assert len(fake.seen) == before


# --- spending without being charged -------------------------------------------------------


def test_hanging_up_before_the_last_usage_event_still_charges_the_output_relayed(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str],
) -> None:
    """An Anthropic stream reports its output tokens only in the closing message_delta: an
    agent that hangs up after the content but before it is charged for what was relayed, so
    the token budget (1000) refuses its next request."""
    client, daemon, _, session = agent
    body = {"model": "claude-fake", "max_tokens": 64, "stream": True, "messages": []}
    knobs = {"x-fake-chunks": "60", "x-fake-chunk-bytes": "400", "x-fake-delay-ms": "50"}
    headers = {"anthropic-version": "2023-06-01", **knobs}
    url = "/v1/gateway/budgeted/v1/messages"
    with client.stream("POST", url, json=body, headers=headers) as answer:
        assert answer.status_code == 200
        received = 0
        for chunk in answer.iter_raw():
            received += len(chunk)
            if received >= 8000:
                break
    record = daemon.wait_audit("gateway.request", session)["payload"]
    assert record["cancelled"] is True
    assert record["usage"]["output"] >= 1000
    refused = client.post(url, json={**body, "stream": False}, headers=headers)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["type"] == "rate_limit_error"


def test_hanging_up_before_the_answer_begins_still_charges_the_prompt(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str],
) -> None:
    """An agent that sends a big prompt and hangs up while the provider is still thinking (no
    answer head yet) is charged its prompt's estimate, so the token budget (100) refuses its
    next request."""
    client, daemon, _, session = agent
    url = "/v1/gateway/silent/v1/chat/completions"
    body = {"model": "gpt-fake", "messages": [{"role": "user", "content": "x" * 2000}]}
    with pytest.raises(httpx.ReadTimeout):
        client.post(url, json=body, timeout=httpx.Timeout(30, read=0.5))
    record = daemon.wait_audit("gateway.request", session)["payload"]
    assert record["cancelled"] is True
    assert record["usage"]["input"] >= 500
    refused = client.post(url, json=body)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "budget_exceeded"


def test_the_rate_limit_holds_against_many_requests_at_once(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str],
) -> None:
    """Twelve requests sent at once on a 3-a-minute provider: exactly three are forwarded, the
    rest get 429 (a request is counted when admitted, not when its answer ends)."""
    client, _, fake, _ = agent
    before = len(fake.seen)
    url = "/v1/gateway/ratey/v1/chat/completions"
    body = {"model": "gpt-fake", "messages": []}
    with ThreadPoolExecutor(12) as pool:
        statuses = sorted(pool.map(lambda _: client.post(url, json=body).status_code, range(12)))
    assert statuses == [200] * 3 + [429] * 9
    assert len(fake.seen) == before + 3


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        # Past the 1 MiB the audit peeks at to name the model.
        (
            json.dumps({**FORBIDDEN, "model": "gpt-fake", "pad": " " * (1 << 20)}).encode(),
            "application/json",
        ),
        # Not labelled JSON: the audit's peek looked only at JSON content types.
        (json.dumps({**FORBIDDEN, "model": "gpt-fake"}).encode(), "text/plain"),
    ],
    ids=["over-1-MiB", "text-plain"],
)
def test_a_cost_budget_charges_requests_whose_model_is_hard_to_find(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str], body: bytes, content_type: str
) -> None:
    """A request the price table covers is charged even when its body is padded past 1 MiB
    or not labelled JSON, so the cost budget (0.5, spent by one answer) refuses the next."""
    client, daemon, _, session = agent
    url = "/v1/gateway/priced/v1/chat/completions"
    first = client.post(url, content=body, headers={"content-type": content_type})
    assert first.status_code == 200, first.text
    record = daemon.wait_audit("gateway.request", session)["payload"]
    assert record["model"] == "gpt-fake"
    assert record["cost"] and record["cost"] >= 0.5
    second = client.post(url, content=body, headers={"content-type": content_type})
    assert second.status_code == 429, second.text
    assert second.json()["error"]["code"] == "budget_exceeded"


def test_a_model_the_price_table_does_not_cover_is_refused_under_a_cost_budget(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str],
) -> None:
    """Under a cost budget a model without a price would cost nothing against it: it is
    refused naming the price table, and never sent."""
    client, _, fake, _ = agent
    before = len(fake.seen)
    url = "/v1/gateway/priced/v1/chat/completions"
    answer = client.post(url, json={**FORBIDDEN, "model": "o4-unpriced"})
    assert answer.status_code == 403, answer.text
    assert "gateway.prices.priced" in answer.json()["error"]["message"]
    assert len(fake.seen) == before


# --- the key -------------------------------------------------------------------------------


def test_an_echoed_key_split_across_events_never_reaches_the_agent(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str],
) -> None:
    """A provider that echoes the injected key in every streamed event (tiny events, so the
    key's forms straddle chunk boundaries) hands the agent none of it."""
    client, _, _, _ = agent
    body = {"model": "gpt-fake", "stream": True, "messages": []}
    headers = {"x-fake-echo-key": "1", "x-fake-chunks": "20"}
    with client.stream("POST", CHAT_PATH, json=body, headers=headers) as answer:
        assert answer.status_code == 200
        data = b"".join(answer.iter_raw(7))
    assert b"Hello" in data
    assert REAL_KEY.encode() not in data
    assert REAL_KEY[3:].encode() not in data


@contextmanager
def _echoer() -> Iterator[str]:
    """A provider that redirects every request to a URL holding the credential it received,
    and echoes that credential in a header's name and value and in its body."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer(connection: socket.socket) -> None:
        with connection:
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(65536)
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
            found = [line.split(":", 1)[1].strip() for line in head.split("\r\n")[1:]]
            key = next((v.removeprefix("Bearer ") for v in found if "sk-" in v), "none")
            body = f"echo {key}".encode()
            connection.sendall(
                b"HTTP/1.1 302 Found\r\n"
                + f"Location: https://elsewhere.example/?k={key}\r\n".encode()
                + f"X-Echo-{key}: {key}\r\n".encode()
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )

    def serve() -> None:
        while True:
            try:
                connection = server.accept()[0]
            except OSError:
                return
            threading.Thread(target=answer, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_a_redirect_holding_the_key_is_relayed_masked_and_not_followed(
    agent: tuple[httpx.Client, Daemon, FakeProvider, str],
) -> None:
    """A provider answering 302 with the key in Location, in a header's name and value and in
    its body: the agent gets the 302 itself (the gateway follows nothing) with every copy of
    the key masked."""
    client, _, _, _ = agent
    answer = client.post("/v1/gateway/echoer/v1/chat/completions", json={"messages": []})
    assert answer.status_code == 302
    assert answer.headers["location"].startswith("https://elsewhere.example/?k=")
    raw = b"".join(name + b": " + value for name, value in answer.headers.raw) + answer.content
    assert REAL_KEY.encode() not in raw
    assert REAL_KEY[3:].encode() not in raw
