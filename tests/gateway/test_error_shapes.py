"""The gateway's own errors come in the provider's error shape, with Aileron's code and message,
so that the official SDKs raise their own error classes."""

from __future__ import annotations

import anthropic
import attrs
import openai
import pytest
from gateway.support import ANTHROPIC, CHAT, MESSAGE, OPENAI, Gw, Live, session_headers

from aileron_cli.daemon.gateway.config import DEFAULTS, GatewayConfig

FORGED = "ais_" + "x" * 43
UNKNOWN = (
    "Aileron gateway: unknown or ended session token — the session may have ended; start the"
    " agent again with `aileron launch`"
)


def test_an_openai_route_refuses_in_openais_shape(gw: Gw) -> None:
    """A bad session token on an OpenAI route is 401 `{"error": {message, type, param, code}}`
    with Aileron's code and message, and the usual WWW-Authenticate header."""
    answer = gw.client.post(
        "gateway/openai/v1/chat/completions", json=CHAT, headers=session_headers(FORGED)
    )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json() == {
        "error": {
            "message": UNKNOWN,
            "type": "authentication_error",
            "param": None,
            "code": "unauthorized",
        }
    }


def test_an_anthropic_route_refuses_in_anthropics_shape(gw: Gw) -> None:
    """A bad session token on an Anthropic route is 401 `{"type": "error", "error": {…}}` with
    Aileron's code also where the SDK reads an error code (`details.error_code`)."""
    answer = gw.client.post(
        "gateway/anthropic/v1/messages",
        json=MESSAGE,
        headers=session_headers(FORGED, "anthropic"),
    )
    assert answer.status_code == 401
    assert answer.json() == {
        "type": "error",
        "error": {
            "type": "authentication_error",
            "message": UNKNOWN,
            "code": "unauthorized",
            "details": {"error_code": "unauthorized"},
        },
    }


@pytest.mark.parametrize(
    ("provider", "path"),
    [
        ("openai", "gateway/openai/v1/models"),
        ("anthropic", "gateway/anthropic/v1/models"),
    ],
)
def test_a_missing_binding_is_refused_in_the_providers_shape(
    gw_unbound: Gw, provider: str, path: str
) -> None:
    """No binding and no credential of the agent's: 412 with the binding named in `details`."""
    answer = gw_unbound.client.get(path, headers=session_headers(gw_unbound.token, provider))
    assert answer.status_code == 412
    document = answer.json()
    error = document["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "binding_required")
    assert error["details"]["binding"] == f"api_key/{provider}/default"
    assert "aileron binding add" in error["message"]
    assert ("type" in document) is (provider == "anthropic")


@pytest.mark.parametrize(
    ("headers", "anthropic_shape"), [({}, False), ({"anthropic-version": "2023-06-01"}, True)]
)
def test_an_unknown_provider_is_404_in_the_shape_its_sdk_expects(
    gw: Gw, headers: dict[str, str], anthropic_shape: bool
) -> None:
    """A provider name the gateway does not serve is 404 `not_found`, shaped as Anthropic's when
    the request comes from an Anthropic SDK (`anthropic-version`), else as OpenAI's."""
    answer = gw.client.get(
        "gateway/mistral/v1/models", headers={**session_headers(gw.token), **headers}
    )
    assert answer.status_code == 404
    document = answer.json()
    assert (document.get("type") == "error") is anthropic_shape
    assert (document["error"]["type"], document["error"]["code"]) == (
        "not_found_error",
        "not_found",
    )
    assert gw.fake.seen == []


def test_an_unreachable_provider_is_a_502_in_the_providers_shape(gw: Gw) -> None:
    """A provider that cannot be reached is 502 `upstream_unreachable` in its own shape
    (`api_error`), the host named in `details`."""
    providers = dict(gw.state.gateway.config.providers)
    providers["anthropic"] = attrs.evolve(DEFAULTS["anthropic"], base_url="http://127.0.0.1:9")
    gw.state.gateway.config = GatewayConfig(providers)
    answer = gw.client.post(
        "gateway/anthropic/v1/messages",
        json=MESSAGE,
        headers=session_headers(gw.token, "anthropic"),
    )
    assert answer.status_code == 502
    document = answer.json()
    assert document["type"] == "error"
    error = document["error"]
    assert (error["type"], error["code"]) == ("api_error", "upstream_unreachable")
    assert error["details"] == {"host": "127.0.0.1", "error_code": "upstream_unreachable"}
    assert error["message"].startswith("Aileron gateway: the provider at 127.0.0.1 could not")


def test_the_openai_sdk_raises_its_authentication_error_with_aileron_s_message(
    live: Live,
) -> None:
    """The official `openai` SDK, given a bad session token as its key, raises
    `openai.AuthenticationError` carrying Aileron's message, code and error type."""
    before = len(live.fake.seen)
    client = openai.OpenAI(base_url=f"{live.url}{OPENAI}/v1", api_key=FORGED, max_retries=0)
    with client, pytest.raises(openai.AuthenticationError) as raised:
        client.chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "hi"}]
        )
    assert UNKNOWN in str(raised.value)
    assert raised.value.code == "unauthorized"
    assert raised.value.type == "authentication_error"
    assert len(live.fake.seen) == before


def test_the_anthropic_sdk_raises_its_authentication_error_with_aileron_s_message(
    live: Live,
) -> None:
    """The official `anthropic` SDK, given a bad session token as its key, raises
    `anthropic.AuthenticationError` carrying Aileron's message and code."""
    before = len(live.fake.seen)
    client = anthropic.Anthropic(base_url=f"{live.url}{ANTHROPIC}", api_key=FORGED, max_retries=0)
    with client, pytest.raises(anthropic.AuthenticationError) as raised:
        client.messages.create(
            model="claude-fake", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert UNKNOWN in str(raised.value)
    body = raised.value.body
    assert isinstance(body, dict)
    assert body["error"]["type"] == "authentication_error"
    assert body["error"]["code"] == "unauthorized"
    assert len(live.fake.seen) == before
