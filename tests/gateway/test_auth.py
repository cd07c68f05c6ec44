"""Who may use the gateway, and which credential reaches the provider (in-process daemon)."""

from __future__ import annotations

import json

import pytest
from gateway.support import CHAT, MESSAGE, REAL_KEY, Gw, session_headers

CHAT_PATH = "gateway/openai/v1/chat/completions"
MESSAGES_PATH = "gateway/anthropic/v1/messages"


def _refusals(gw: Gw) -> list[dict[str, object]]:
    return [record["payload"] for record in gw.audit("gateway.refused")]


def test_unknown_session_token_is_refused_and_audited(gw: Gw) -> None:
    """A token that is no live session's gets 401 (envelope), nothing is forwarded, and the
    refusal is audited with its reason but without the token."""
    forged = "ais_" + "x" * 43
    answer = gw.client.post(CHAT_PATH, json=CHAT, headers=session_headers(forged))
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert gw.fake.seen == []
    assert _refusals(gw) == [
        {
            "provider": "openai",
            "method": "POST",
            "path": "/v1/chat/completions",
            "reason": "unknown_token",
        }
    ]
    assert forged not in gw.state.config.layout.audit.read_text()


def test_ended_session_token_is_refused(gw: Gw) -> None:
    """Once its session has ended, a session token opens nothing: 401 and audited."""
    ended = gw.client.post(
        f"sessions/{gw.session_id}/end", json={"exit_code": 0}, headers=gw.master
    )
    ended.raise_for_status()
    answer = gw.client.post(CHAT_PATH, json=CHAT, headers=session_headers(gw.token))
    assert answer.status_code == 401
    assert gw.fake.seen == []
    assert [r["reason"] for r in _refusals(gw)] == ["unknown_token"]
    assert gw.token not in gw.state.config.layout.audit.read_text()


def test_missing_token_is_refused(gw: Gw) -> None:
    """A request without any session token is 401 with a hint, and audited as `no_token`."""
    answer = gw.client.get("gateway/openai/v1/models")
    assert answer.status_code == 401
    assert "session token" in answer.json()["error"]["message"]
    assert [r["reason"] for r in _refusals(gw)] == ["no_token"]


@pytest.mark.parametrize("header", ["authorization", "x-api-key", "x-aileron-session-token"])
def test_master_token_is_not_an_llm_key(gw: Gw, header: str) -> None:
    """The master token is refused (403) in every header a key may travel in, and audited."""
    master = gw.master["Authorization"].removeprefix("Bearer ")
    value = f"Bearer {master}" if header == "authorization" else master
    answer = gw.client.post(CHAT_PATH, json=CHAT, headers={header: value})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert gw.fake.seen == []
    assert [r["reason"] for r in _refusals(gw)] == ["master_token"]
    assert master not in gw.state.config.layout.audit.read_text()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("style", ["openai", "anthropic"])
def test_either_key_header_works_for_either_provider(gw: Gw, provider: str, style: str) -> None:
    """The session token is accepted as `Authorization: Bearer` or `x-api-key`, and the
    provider receives the real key in its own header and never the session token."""
    path, body = (CHAT_PATH, CHAT) if provider == "openai" else (MESSAGES_PATH, MESSAGE)
    answer = gw.client.post(path, json=body, headers=session_headers(gw.token, style))
    assert answer.status_code == 200, answer.text
    (seen,) = gw.fake.seen
    if provider == "openai":
        assert seen.header("authorization") == f"Bearer {REAL_KEY}"
        assert seen.header("x-api-key") is None
    else:
        assert seen.header("x-api-key") == REAL_KEY
        assert seen.header("authorization") is None
    assert all(gw.token not in value for _, value in seen.headers)


def test_binding_replaces_the_agents_own_credential(gw: Gw) -> None:
    """With a binding, every credential the agent sent is dropped and the real key injected."""
    headers = {"Authorization": "Bearer sk-agent-own", "X-Aileron-Session-Token": gw.token}
    answer = gw.client.post(CHAT_PATH, json=CHAT, headers=headers)
    assert answer.status_code == 200
    assert gw.fake.seen[0].header("authorization") == f"Bearer {REAL_KEY}"
    payload = gw.audit("gateway.request")[0]["payload"]
    assert (payload["credential"], payload["binding"]) == ("binding", "api_key/openai/default")
    used = gw.audit("binding.used")[0]
    assert used["session_id"] == gw.session_id
    assert used["payload"] == {"binding": "api_key/openai/default", "provider": "openai"}


def test_without_binding_the_agents_own_oauth_login_passes_through(gw_unbound: Gw) -> None:
    """With no binding, a subscription login's own bearer goes through unchanged while the
    session token (in X-Aileron-Session-Token) is stripped, like every X-Aileron-* header."""
    headers = {
        "Authorization": f"Bearer {REAL_KEY}",  # the user's own OAuth token, say
        "X-Aileron-Session-Token": gw_unbound.token,
        "X-Aileron-Session-Id": gw_unbound.session_id,
        "anthropic-version": "2023-06-01",
    }
    answer = gw_unbound.client.post(MESSAGES_PATH, json=MESSAGE, headers=headers)
    assert answer.status_code == 200, answer.text
    (seen,) = gw_unbound.fake.seen
    assert seen.header("authorization") == f"Bearer {REAL_KEY}"
    assert not any(name.startswith("x-aileron-") for name in seen.header_names())
    assert all(gw_unbound.token not in value for _, value in seen.headers)
    payload = gw_unbound.audit("gateway.request")[0]["payload"]
    assert (payload["credential"], payload["binding"]) == ("agent", None)


def test_without_binding_an_own_api_key_beside_the_session_bearer_passes_through(
    gw_unbound: Gw,
) -> None:
    """With no binding, the agent may send the session token as the bearer and its own key in
    x-api-key: only the bearer is stripped."""
    headers = {**session_headers(gw_unbound.token), "x-api-key": REAL_KEY}
    headers["anthropic-version"] = "2023-06-01"
    answer = gw_unbound.client.post(MESSAGES_PATH, json=MESSAGE, headers=headers)
    assert answer.status_code == 200, answer.text
    (seen,) = gw_unbound.fake.seen
    assert (seen.header("x-api-key"), seen.header("authorization")) == (REAL_KEY, None)


def test_without_binding_or_own_credential_nothing_is_forwarded(gw_unbound: Gw) -> None:
    """No binding and only the session token: 412 binding_required naming the binding, and
    nothing reaches the provider."""
    answer = gw_unbound.client.post(CHAT_PATH, json=CHAT, headers=session_headers(gw_unbound.token))
    assert answer.status_code == 412
    error = answer.json()["error"]
    assert error["code"] == "binding_required"
    assert "aileron binding add api_key/openai/default" in error["message"]
    assert gw_unbound.fake.seen == []
    assert [r["reason"] for r in _refusals(gw_unbound)] == ["no_credential"]


def test_locked_vault_with_a_binding_asks_to_unlock(gw: Gw) -> None:
    """A binding that exists while the vault is locked → 412 binding_required, hint: unlock."""
    gw.client.post("vault/lock", headers=gw.master).raise_for_status()
    answer = gw.client.post(CHAT_PATH, json=CHAT, headers=session_headers(gw.token))
    assert answer.status_code == 412
    error = answer.json()["error"]
    assert error["code"] == "binding_required"
    assert "aileron vault unlock" in error["message"]
    assert error["details"] == {"binding": "api_key/openai/default", "vault": "locked"}
    assert gw.fake.seen == []
    assert [r["reason"] for r in _refusals(gw)] == ["vault_locked"]


def test_tokens_of_two_sessions_are_refused(gw: Gw) -> None:
    """A request carrying two different sessions' tokens is refused (401)."""
    other = gw.client.post("sessions", json={"agent": "x", "working_dir": "/"}, headers=gw.master)
    headers = {"Authorization": f"Bearer {gw.token}", "x-api-key": other.json()["token"]}
    answer = gw.client.post(CHAT_PATH, json=CHAT, headers=headers)
    assert answer.status_code == 401
    assert [r["reason"] for r in _refusals(gw)] == ["conflicting_tokens"]


def test_a_secret_that_cannot_be_a_header_is_refused_without_showing_it(gw_unbound: Gw) -> None:
    """A bound secret with a newline is never sent: 412 invalid_credential, value not shown."""
    gw_unbound.bind("openai", "sk-bad\nInjected: 1")
    answer = gw_unbound.client.post(CHAT_PATH, json=CHAT, headers=session_headers(gw_unbound.token))
    assert answer.status_code == 412
    assert answer.json()["error"]["code"] == "invalid_credential"
    assert "sk-bad" not in json.dumps(answer.json())
    assert gw_unbound.fake.seen == []


def test_a_changed_key_is_used_from_the_next_request(gw: Gw) -> None:
    """The gateway keeps no stale key: a new value for the binding's vault entry, or a revoked
    and re-added binding, is what the very next request carries."""
    auth = session_headers(gw.token)
    assert gw.client.post(CHAT_PATH, json=CHAT, headers=auth).status_code == 200
    entry = "vault/entries/api_key/openai/default"
    gw.client.put(entry, json={"value": "sk-rotated"}, headers=gw.master).raise_for_status()
    assert gw.client.post(CHAT_PATH, json=CHAT, headers=auth).status_code == 401  # fake: bad key
    gw.client.delete("bindings/api_key/openai/default", headers=gw.master).raise_for_status()
    gw.bind("openai", "sk-third")
    gw.client.post(CHAT_PATH, json=CHAT, headers=auth)
    sent = [seen.header("authorization") for seen in gw.fake.seen]
    assert sent == [f"Bearer {REAL_KEY}", "Bearer sk-rotated", "Bearer sk-third"]


def test_a_locked_vault_stops_the_keys_at_once(gw: Gw) -> None:
    """After a successful request, locking the vault refuses the next one (no cached key is
    used), and unlocking lets requests through again."""
    auth = session_headers(gw.token)
    assert gw.client.post(CHAT_PATH, json=CHAT, headers=auth).status_code == 200
    gw.client.post("vault/lock", headers=gw.master).raise_for_status()
    assert gw.client.post(CHAT_PATH, json=CHAT, headers=auth).status_code == 412
    unlock = {"passphrase": "gateway tests"}
    gw.client.post("vault/unlock", json=unlock, headers=gw.master).raise_for_status()
    assert gw.client.post(CHAT_PATH, json=CHAT, headers=auth).status_code == 200
    assert len(gw.fake.seen) == 2
