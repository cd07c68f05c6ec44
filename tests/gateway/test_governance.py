"""Providers as configuration, model policies, prices and the ledger of rates and budgets
(ADR 0030), unit by unit."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gateway.support import Gw, session_headers

from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.gateway.auth import GatewayRefused
from aileron_cli.daemon.gateway.config import (
    Limits,
    ModelPolicy,
    ModelRule,
    Provider,
    parse_gateway_config,
)
from aileron_cli.daemon.gateway.governance import Ledger, check_model, estimate, named_model
from aileron_cli.daemon.gateway.usage import Price, Usage
from aileron_core.audit import Actor
from aileron_core.errors import ConfigError

SOURCE = "/home/u/.aileron/config.toml"


def parse(text: str) -> object:
    return parse_gateway_config(tomllib.loads(text), SOURCE)


def test_a_provider_of_ones_own_is_configured_by_name_with_a_kind() -> None:
    """`[gateway.providers.local]` adds an OpenAI-compatible provider whose binding defaults to
    api_key/local/default and whose key travels as the kind's; the built-ins stay."""
    config = parse_gateway_config(
        tomllib.loads(
            '[gateway.providers.local]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1/"\n'
            '[gateway.providers.router]\nkind = "anthropic"\nbase_url = "https://r.example"\n'
            'binding = "api_key/router/team"\n'
        ),
        SOURCE,
    )
    local, router = config.provider("local"), config.provider("router")
    assert (local.kind, local.base_url, local.binding, local.key_header) == (
        "openai",
        "http://127.0.0.1:9/v1",
        "api_key/local/default",
        "authorization",
    )
    assert (router.kind, router.binding, router.key_header) == (
        "anthropic",
        "api_key/router/team",
        "x-api-key",
    )
    assert set(config.providers) == {"openai", "anthropic", "local", "router"}


def test_the_built_ins_take_policies_and_limits_and_keep_their_defaults() -> None:
    """`[gateway.providers.openai]` may set models and limits only; the old `[gateway.openai]`
    base_url still applies beside it."""
    config = parse_gateway_config(
        tomllib.loads(
            '[gateway.openai]\nbase_url = "http://127.0.0.1:8400"\n'
            '[gateway.providers.openai]\nmodels.deny = ["o1*"]\nlimits.requests_per_minute = 5\n'
        ),
        SOURCE,
    )
    openai = config.provider("openai")
    assert openai.base_url == "http://127.0.0.1:8400"
    assert openai.models.rule == ModelRule(None, ("o1*",))
    assert openai.limits == Limits(requests_per_minute=5)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[gateway.providers.x]\nbase_url = "https://x"\n', "kind"),
        ('[gateway.providers.x]\nkind = "gemini"\nbase_url = "https://x"\n', "kind"),
        ('[gateway.providers.x]\nkind = "openai"\n', "base_url in"),
        ('[gateway.providers.X]\nkind = "openai"\nbase_url = "https://x"\n', "name"),
        ('[gateway.providers.openai]\nkind = "anthropic"\n', "the built-in openai is openai"),
        (
            '[gateway.openai]\nbase_url = "https://a"\n[gateway.providers.openai]\n'
            'base_url = "https://b"\n',
            "keep one",
        ),
        ('[gateway.providers.x]\nkind = "openai"\nbase_url = "http://10.0.0.1"\n', "clear text"),
        ('[gateway.providers.openai]\nbinding = "key"\n', "binding name"),
        ('[gateway.providers.openai]\nmodels.allow = "gpt-*"\n', "list of model names"),
        ('[gateway.providers.openai]\nmodels.allow = [""]\n', "list of model names"),
        ('[gateway.providers.openai]\nmodels.block = ["x"]\n', "unknown setting 'block'"),
        ("[gateway.providers.openai]\nlimits.requests_per_minute = 0\n", "above 0"),
        ("[gateway.providers.openai]\nlimits.requests_per_minute = 1.5\n", "whole number"),
        ("[gateway.providers.openai]\nlimits.session_cost = true\n", "a number above 0"),
        ("[gateway.providers.openai]\nlimits.monthly_cost = 5\n", "unknown setting"),
        ('[gateway.providers.openai.agents."Bad Agent"]\nmodels.deny = []\n', "agent name"),
        ('[gateway.prices.nobody."x"]\ninput = 1\noutput = 1\n', "no provider 'nobody'"),
        ('[gateway.prices.openai."x"]\ninput = 1\n', "output in"),
        ('[gateway.prices.openai."x"]\ninput = -1\noutput = 1\n', "0 or more"),
        ('[gateway.prices.openai."x"]\ninput = 1\noutput = 1\ncache = 1\n', "unknown setting"),
        ('[gateway.mistral]\nbase_url = "https://x"\n', "[gateway.providers.mistral]"),
        ("[gateway]\nproviders = 3\n", "table of providers"),
    ],
)
def test_every_malformed_setting_is_a_clear_error(text: str, problem: str) -> None:
    """A malformed provider, policy, limit or price is a ConfigError naming it and the file —
    never a policy that silently does nothing."""
    with pytest.raises(ConfigError) as raised:
        parse(text)
    message = f"{raised.value} {raised.value.hint or ''}"
    assert problem in message
    assert SOURCE in message


def test_the_price_of_a_model_is_its_own_entry_else_the_longest_matching_glob() -> None:
    """An exact model name wins over globs; among globs the longest (most specific) matching
    one sets the price; no match (or no model) is unpriced."""
    config = parse_gateway_config(
        tomllib.loads(
            '[gateway.prices.openai."gpt-*"]\ninput = 1\noutput = 2\n'
            '[gateway.prices.openai."gpt-5-mini*"]\ninput = 0.25\noutput = 2\n'
            '[gateway.prices.openai."gpt-5"]\ninput = 1.25\noutput = 10\ncached_input = 0.125\n'
        ),
        SOURCE,
    )
    assert config.price("openai", "gpt-5") == ("gpt-5", Price(1.25, 10.0, 0.125))
    assert config.price("openai", "gpt-5-mini-2025") == ("gpt-5-mini*", Price(0.25, 2.0))
    assert config.price("openai", "gpt-4o") == ("gpt-*", Price(1.0, 2.0))
    assert config.price("openai", "o3") is None
    assert config.price("openai", None) is None
    assert config.price("anthropic", "gpt-5") is None


def test_a_deny_glob_beats_an_allow_glob_and_an_agents_rule_narrows() -> None:
    """A model passes when an allow glob matches and no deny glob does; an agent's own rule is
    applied on top, and each refusal names the setting that decided."""
    policy = ModelPolicy(
        ModelRule(("gpt-5*", "o4-*"), ("*-preview",)),
        {"codex": ModelRule(None, ("o4-*",))},
    )
    assert policy.refuses("gpt-5", "claude") is None
    assert policy.refuses("gpt-5-preview", "claude") == "models.deny"
    assert policy.refuses("gpt-4o", "claude") == "models.allow"
    assert policy.refuses("o4-mini", "claude") is None
    assert policy.refuses("o4-mini", "codex") == "agents.codex.models.deny"
    assert policy.refuses("GPT-5", "claude") == "models.allow"  # globs are case-sensitive


@pytest.mark.parametrize(
    ("content_type", "body", "model"),
    [
        ("application/json", b'{"model": "m1", "input": "hi"}', "m1"),
        ("application/json", b'{"input": "hi"}', None),
        ("application/json", b'{"MODEL": "m2"}', "m2"),
        ("application/json", b'{"mod\\u0065l": "m3"}', "m3"),
        ("application/json", b'{"tools": [{"model": "a", "model": "b"}], "model": "m4"}', "m4"),
        ("application/json", b'{"model": ["m5"]}', '["m5"]'),
        ("", b"", None),
        ("application/x-www-form-urlencoded", b"model=m6&x=1", "m6"),
        (
            "multipart/form-data; boundary=XyZ",
            b'--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nm7\r\n'
            b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
            b"RIFF\r\n--XyZ--\r\n",
            "m7",
        ),
    ],
)
def test_the_model_a_body_names_is_read_as_a_provider_would(
    content_type: str, body: bytes, model: str | None
) -> None:
    """JSON (any key case, escapes, nested fields of that name ignored), url-encoded forms and
    multipart forms all give the model a provider would read."""
    assert named_model(content_type, body) == model


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"model": "ok", "model": "denied"}'),
        ("application/json", b'{"model": "ok", "Model": "denied"}'),
        ("application/x-www-form-urlencoded", b"model=ok&model=denied"),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nok\r\n'
            b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\ndenied\r\n--b--\r\n',
        ),
    ],
)
def test_a_body_that_names_the_model_twice_is_refused(content_type: str, body: bytes) -> None:
    """Two models in one request — which the provider reads is its choice — is a refusal."""
    provider = Provider("openai", "https://x", "api_key/openai/default", "openai")
    with pytest.raises(GatewayRefused) as raised:
        check_model(provider, "codex", content_type, body)
    assert raised.value.reason == "ambiguous_model"


def test_a_refused_model_names_the_policy_and_the_model() -> None:
    """check_model raises model_denied (403) with the full setting name and the model."""
    provider = Provider(
        "local", "https://x", "api_key/local/default", "openai", ModelPolicy(ModelRule(("a*",)))
    )
    with pytest.raises(GatewayRefused) as raised:
        check_model(provider, "codex", "application/json", b'{"model": "b"}')
    assert raised.value.code == "model_denied"
    assert raised.value.details == {"model": "b", "policy": "gateway.providers.local.models.allow"}
    assert check_model(provider, "codex", "application/json", b'{"model": "a1"}') == "a1"


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


NOON = datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp()


def limited(**limits: float) -> Provider:
    return Provider(
        "p",
        "https://x",
        "api_key/p/default",
        "openai",
        limits=Limits(**limits),  # type: ignore[arg-type]
    )


def test_the_rate_limit_counts_a_sliding_minute_per_session() -> None:
    """With 2 requests a minute, a third within the minute is refused with the seconds to wait;
    another session is not affected; a minute after the first, one more passes."""
    clock = Clock(NOON)
    ledger = Ledger(None, clock)
    provider = limited(requests_per_minute=2)
    ledger.admit(provider, "s1")
    clock.now += 20
    ledger.admit(provider, "s1")
    with pytest.raises(GatewayRefused) as raised:
        ledger.admit(provider, "s1")
    assert raised.value.code == "rate_limited"
    assert raised.value.details["retry_after"] == pytest.approx(40)
    ledger.admit(provider, "s2")
    clock.now += 40
    ledger.admit(provider, "s1")


def test_a_session_budget_admits_until_spent_and_a_daily_one_renews_at_midnight_utc() -> None:
    """Tokens charged to a session count against its budget only; the daily budget counts every
    session and starts again the next UTC day."""
    clock = Clock(NOON)
    ledger = Ledger(None, clock)
    provider = limited(session_tokens=100, daily_tokens=250)
    ledger.admit(provider, "s1")
    ledger.charge(provider, "s1", Usage(80, 30), None)
    with pytest.raises(GatewayRefused) as raised:
        ledger.admit(provider, "s1")
    assert (raised.value.code, raised.value.details["spent"]) == ("budget_exceeded", 110)
    ledger.admit(provider, "s2")
    ledger.charge(provider, "s2", Usage(90, 0), None)
    ledger.admit(provider, "s3")
    ledger.charge(provider, "s3", Usage(60, 0), None)
    with pytest.raises(GatewayRefused) as daily:
        ledger.admit(provider, "s4")
    assert "daily_tokens" in str(daily.value)
    assert "renews at 2026-12-06 00:00 UTC" in (daily.value.hint or "")
    clock.now += 12 * 3600
    ledger.admit(provider, "s4")


def test_a_cost_budget_counts_the_charged_cost() -> None:
    """A session cost budget refuses once the charged costs reach it."""
    ledger = Ledger(None, Clock(NOON))
    provider = limited(session_cost=0.01)
    ledger.admit(provider, "s1")
    ledger.charge(provider, "s1", Usage(10, 10), 0.006)
    ledger.admit(provider, "s1")
    ledger.charge(provider, "s1", Usage(10, 10), 0.006)
    with pytest.raises(GatewayRefused, match="session_cost"):
        ledger.admit(provider, "s1")


def test_a_provider_without_limits_is_never_counted() -> None:
    """No limit: admit and charge keep nothing (the hot path stays free of bookkeeping)."""
    ledger = Ledger(None, Clock(NOON))
    provider = limited()
    for _ in range(1000):
        ledger.admit(provider, "s1")
        ledger.charge(provider, "s1", Usage(10**9, 10**9), 1000.0)
    ledger.admit(provider, "s1")  # still admitted
    assert not ledger._session and not ledger._daily and not ledger._recent


def test_the_ledger_starts_from_the_audit_log_so_a_restart_forgets_nothing(
    tmp_path: Path,
) -> None:
    """A new ledger (a restarted daemon) counts the session's and today's spending from the
    gateway.request records already in the audit log."""
    audit, _ = AuditLog.open(tmp_path / "audit.jsonl")
    actor = Actor(type="agent", id="session:s1")

    async def write() -> None:
        for usage in ({"input": 60, "output": 10, "cached": 0}, None):
            await audit.record("gateway.request", actor, "s1", provider="p", usage=usage, cost=0.5)
        await audit.record("gateway.request", actor, "s2", provider="other", usage=None)

    asyncio.run(write())
    clock = Clock(datetime.now(UTC).timestamp())
    with pytest.raises(GatewayRefused, match="session_tokens"):
        Ledger(audit, clock).admit(limited(session_tokens=70), "s1")
    with pytest.raises(GatewayRefused, match="daily_cost"):
        Ledger(audit, clock).admit(limited(daily_cost=1.0), "s9")
    Ledger(audit, clock).admit(limited(session_tokens=71), "s1")
    audit.close()


def test_an_answer_without_usage_is_estimated_at_a_token_per_four_bytes() -> None:
    """The stand-in usage counts the bytes each way, so omitting usage is never free."""
    assert estimate(4000, 801) == Usage(input=1000, output=200)


def test_the_shipped_example_is_a_valid_gateway_config() -> None:
    """examples/gateway.toml (shipped in the wheel) parses: a provider of one's own, policies,
    limits and a price table of every kind."""
    from importlib.resources import files

    text = files("aileron_cli.examples").joinpath("gateway.toml").read_text()
    config = parse_gateway_config(tomllib.loads(text), "gateway.toml")
    assert config.provider("local").kind == "openai"
    assert config.provider("openai").limits.budgets
    assert config.provider("openai").models.refuses("gpt-5-pro", "codex") is not None
    assert config.price("anthropic", "claude-sonnet-4-5") is not None


def test_two_providers_on_one_key_must_share_their_policy() -> None:
    """A provider that uses another's binding with other models or limits is a ConfigError
    (the agent would reach the key through the laxer one); the same settings are fine."""
    lax = (
        '[gateway.providers.lax]\nkind = "openai"\nbase_url = "https://x"\n'
        'binding = "api_key/openai/default"\n'
    )
    with pytest.raises(ConfigError, match="same binding api_key/openai/default"):
        parse(lax + '[gateway.providers.openai.models]\ndeny = ["o1*"]\n')
    config = parse_gateway_config(tomllib.loads(lax), SOURCE)
    assert config.provider("lax").binding == config.provider("openai").binding


@pytest.mark.parametrize(
    "path",
    [
        "/v1/realtime/client_secrets",
        "/v1/realtime/sessions/",
        "/v1/Realtime/Transcription_Sessions",
    ],
)
def test_an_endpoint_that_hands_out_a_credential_is_never_forwarded(gw: Gw, path: str) -> None:
    """OpenAI's ephemeral realtime keys would let the agent call the provider around the
    gateway: those paths are refused (403, audited credential_endpoint) and never sent."""
    answer = gw.client.post(
        f"gateway/openai{path}", json={"model": "gpt-fake"}, headers=session_headers(gw.token)
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert gw.fake.seen == []
    assert gw.audit("gateway.refused")[-1]["payload"]["reason"] == "credential_endpoint"
