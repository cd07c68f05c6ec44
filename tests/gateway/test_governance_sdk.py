"""Gateway governance as the official SDKs meet it: model policy, rate limits, budgets and usage
accounting, against a real daemon process whose providers are the scripted fake (ADR 0030)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import MessageParam
from fakes.provider import FakeProvider
from gateway.support import ANTHROPIC, OPENAI, REAL_KEY, Daemon, isolated_env, run_daemon
from helpers import aileron
from openai.types.chat import ChatCompletionMessageParam

GOVERNED = """
[gateway.providers.openai.models]
deny = ["gpt-5-forbidden", "*-preview"]

[gateway.providers.anthropic.models]
allow = ["claude-*"]

[gateway.providers.anthropic.agents.codex.models]
deny = ["claude-opus-*"]

[gateway.providers.ratey]
kind = "openai"
base_url = "{url}"
binding = "api_key/ratey/default"
limits.requests_per_minute = 3

[gateway.providers.budgeted]
kind = "anthropic"
base_url = "{url}"
binding = "api_key/budgeted/default"
limits.session_tokens = 150

[gateway.prices.openai."gpt-fake*"]
input = 2.0
output = 8.0
cached_input = 0.5

[gateway.prices.anthropic."claude-*"]
input = 3.0
output = 15.0
"""


@pytest.fixture(scope="module")
def gov(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, FakeProvider]]:
    """A real daemon with model policies, a rate-limited and a budgeted provider and a price
    table, in front of one fake provider."""
    home = tmp_path_factory.mktemp("governed")
    with FakeProvider(REAL_KEY) as fake:
        with run_daemon(home, fake.url, GOVERNED.format(url=fake.url)) as daemon:
            yield daemon, fake


OPENED: list[openai.OpenAI | anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def closed_clients() -> Iterator[None]:
    """Every SDK client a test opened is closed after it (no socket left to the collector)."""
    yield
    while OPENED:
        OPENED.pop().close()


def _openai(daemon: Daemon, token: str, provider: str = "openai") -> openai.OpenAI:
    base = f"{daemon.url}/v1/gateway/{provider}/v1" if provider != "openai" else None
    client = openai.OpenAI(
        base_url=base or f"{daemon.url}{OPENAI}/v1", api_key=token, max_retries=0
    )
    OPENED.append(client)
    return client


def _anthropic(daemon: Daemon, token: str, provider: str = "anthropic") -> anthropic.Anthropic:
    base = f"{daemon.url}/v1/gateway/{provider}" if provider != "anthropic" else None
    client = anthropic.Anthropic(
        base_url=base or f"{daemon.url}{ANTHROPIC}", api_key=token, max_retries=0
    )
    OPENED.append(client)
    return client


HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
HELLO: list[MessageParam] = [{"role": "user", "content": "hi"}]


def _usage(input: int, output: int, cached: int) -> dict[str, str]:
    return {"x-fake-usage": f"{input},{output},{cached}"}


def test_a_denied_model_is_the_sdks_permission_error_naming_the_policy(
    gov: tuple[Daemon, FakeProvider],
) -> None:
    """A model the deny list names gets openai's PermissionDeniedError naming the setting, is
    never forwarded and is audited; an allowed model passes."""
    daemon, fake = gov
    session, token = daemon.new_session()
    client = _openai(daemon, token)
    before = len(fake.seen)
    with pytest.raises(openai.PermissionDeniedError) as raised:
        client.chat.completions.create(model="gpt-5-forbidden", messages=HI)
    assert "gateway.providers.openai.models.deny" in str(raised.value)
    assert raised.value.code == "model_denied"
    assert len(fake.seen) == before
    answer = client.chat.completions.create(model="gpt-fake", messages=HI)
    assert answer.choices[0].message.content
    refused = daemon.wait_audit("gateway.refused", session)
    assert (refused["payload"]["reason"], refused["payload"]["model"]) == (
        "model_denied",
        "gpt-5-forbidden",
    )


def test_an_allow_list_and_an_agents_own_rule_refuse_with_anthropics_error(
    gov: tuple[Daemon, FakeProvider],
) -> None:
    """Outside the allow list, and inside it but denied for this agent (codex), the Anthropic
    SDK raises PermissionDeniedError naming each setting; an allowed model streams."""
    daemon, _ = gov
    _, token = daemon.new_session()
    client = _anthropic(daemon, token)
    for model, setting in (
        ("gpt-fake", "gateway.providers.anthropic.models.allow"),
        ("claude-opus-9", "gateway.providers.anthropic.agents.codex.models.deny"),
    ):
        with pytest.raises(anthropic.PermissionDeniedError) as raised:
            client.messages.create(model=model, max_tokens=16, messages=HELLO)
        assert setting in str(raised.value)
    with client.messages.stream(model="claude-fake", max_tokens=16, messages=HELLO) as stream:
        assert stream.get_final_text()


def test_a_model_named_twice_or_in_another_case_cannot_slip_past(
    gov: tuple[Daemon, FakeProvider],
) -> None:
    """A body naming `model` twice (any case) is refused; `Model` alone is checked like
    `model`; a chunked body is read whole and checked too."""
    daemon, fake = gov
    _, token = daemon.new_session()
    client = _openai(daemon, token)
    before = len(fake.seen)
    twice = b'{"model": "gpt-fake", "model": "gpt-5-forbidden", "messages": []}'
    cased = b'{"Model": "gpt-5-forbidden", "messages": []}'
    with client._client as http:  # the SDK's own httpx client, to send raw bodies
        url = f"{daemon.url}{OPENAI}/v1/chat/completions"
        headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
        assert http.post(url, content=twice, headers=headers).status_code == 422
        assert http.post(url, content=cased, headers=headers).status_code == 403
        chunked = http.post(url, content=iter([cased[:9], cased[9:]]), headers=headers)
        assert chunked.status_code == 403
    assert len(fake.seen) == before


def test_the_rate_limit_is_the_sdks_rate_limit_error_with_retry_after(
    gov: tuple[Daemon, FakeProvider],
) -> None:
    """Three requests a minute pass on the rate-limited provider; the fourth gets openai's
    RateLimitError with Retry-After, audited as rate_limited."""
    daemon, _ = gov
    session, token = daemon.new_session()
    client = _openai(daemon, token, provider="ratey")
    for _ in range(3):
        client.chat.completions.create(model="gpt-fake", messages=HI)
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="gpt-fake", messages=HI)
    assert 1 <= int(raised.value.response.headers["retry-after"]) <= 60
    assert "requests_per_minute" in str(raised.value)
    assert daemon.wait_audit("gateway.refused", session)["payload"]["reason"] == "rate_limited"
    other_session_client = _openai(daemon, daemon.new_session()[1], provider="ratey")
    assert other_session_client.chat.completions.create(model="gpt-fake", messages=HI)


def test_a_token_budget_is_enforced_from_the_usage_of_streamed_answers(
    gov: tuple[Daemon, FakeProvider],
) -> None:
    """With a session budget of 150 tokens, two streamed answers reporting 80 tokens each are
    admitted (the second crosses the budget) and the third is refused with a message naming the
    budget, as a 429 the SDK is told not to retry."""
    daemon, _ = gov
    session, token = daemon.new_session()
    client = _anthropic(daemon, token, provider="budgeted")
    for _ in range(2):
        with client.messages.stream(
            model="claude-fake", max_tokens=16, messages=HELLO, extra_headers=_usage(60, 20, 0)
        ) as stream:
            stream.get_final_text()
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(model="claude-fake", max_tokens=16, messages=HELLO)
    assert "session_tokens" in str(raised.value)
    assert "160" in str(raised.value)
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert "retry-after" not in raised.value.response.headers
    assert daemon.wait_audit("gateway.refused", session)["payload"]["reason"] == "budget_exceeded"


def _calls(daemon: Daemon, token: str) -> None:
    """Five calls through both SDKs, streamed and not, each reporting its own usage."""
    oa = _openai(daemon, token)
    oa.chat.completions.create(model="gpt-fake", messages=HI, extra_headers=_usage(100, 20, 30))
    chunks = oa.chat.completions.create(
        model="gpt-fake",
        messages=HI,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=_usage(50, 10, 0),
    )
    assert [c.usage for c in chunks if c.usage][0].prompt_tokens == 50
    events = oa.responses.create(
        model="gpt-fake-mini", input="hi", stream=True, extra_headers=_usage(70, 7, 20)
    )
    completed = [e for e in events if e.type == "response.completed"]
    assert completed[0].response.usage.input_tokens == 70  # type: ignore[union-attr]
    an = _anthropic(daemon, token)
    an.messages.create(
        model="claude-fake", max_tokens=16, messages=HELLO, extra_headers=_usage(40, 4, 10)
    )
    with an.messages.stream(
        model="claude-fake", max_tokens=16, messages=HELLO, extra_headers=_usage(30, 3, 0)
    ) as stream:
        stream.get_final_text()


EXPECTED = {  # model → (requests, input, output, cached, cost)
    "gpt-fake": (2, 150, 30, 30, (70 * 2 + 30 * 0.5 + 20 * 8 + 50 * 2 + 10 * 8) / 1e6),
    "gpt-fake-mini": (1, 70, 7, 20, (50 * 2 + 20 * 0.5 + 7 * 8) / 1e6),
    "claude-fake": (2, 70, 7, 10, (70 * 3 + 7 * 15) / 1e6),
}


def test_usage_is_recorded_per_request_from_every_answer_shape(
    gov: tuple[Daemon, FakeProvider],
) -> None:
    """Each gateway.request record carries the tokens the fake reported — streamed and not,
    OpenAI chat, Responses and Anthropic — with the agent and the cost from the price table."""
    daemon, _ = gov
    session, token = daemon.new_session()
    _calls(daemon, token)
    records = [r["payload"] for r in daemon.audit("gateway.request", session)]
    assert [(r["model"], r["usage"]) for r in records] == [
        ("gpt-fake", {"input": 100, "output": 20, "cached": 30}),
        ("gpt-fake", {"input": 50, "output": 10, "cached": 0}),
        ("gpt-fake-mini", {"input": 70, "output": 7, "cached": 20}),
        ("claude-fake", {"input": 40, "output": 4, "cached": 10}),
        ("claude-fake", {"input": 30, "output": 3, "cached": 0}),
    ]
    assert {r["agent"] for r in records} == {"codex"}
    assert records[0]["cost"] == pytest.approx((70 * 2 + 30 * 0.5 + 20 * 8) / 1e6)
    assert records[0]["priced"] == "gpt-fake*"


def test_aileron_usage_json_matches_what_the_fake_reported(
    gov: tuple[Daemon, FakeProvider],
) -> None:
    """`aileron usage --session ID --by model --json` sums the reported tokens per model and
    prices them from the configured table."""
    daemon, _ = gov
    session, token = daemon.new_session()
    _calls(daemon, token)
    env = isolated_env(daemon.home)
    done = aileron("usage", "--session", session, "--by", "model", "--json", env=env)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    groups = {g["key"]: g for g in report["groups"]}
    assert set(groups) == set(EXPECTED)
    for model, (requests, input, output, cached, cost) in EXPECTED.items():
        group = groups[model]
        assert (group["requests"], group["input"], group["output"], group["cached"]) == (
            requests,
            input,
            output,
            cached,
        )
        assert group["cost"] == pytest.approx(cost)
    assert report["total"]["cost"] == pytest.approx(sum(e[4] for e in EXPECTED.values()))
