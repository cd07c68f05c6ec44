"""The daemon's HTTP API, in-process: auth, errors, vault, sessions and audit."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from aileron_core.paths import Layout


def test_health_needs_no_token(api: TestClient) -> None:
    """GET /v1/health answers without a token, naming the service and version."""
    answer = api.get("health", headers={"Authorization": ""})
    assert answer.status_code == 200
    assert answer.json()["service"] == "aileron"


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer wrong-token", "Basic abc"])
def test_missing_or_bad_token_is_401(api: TestClient, header: str) -> None:
    """Every other route refuses a missing or bad token with 401 and the error envelope."""
    answer = api.get("vault/status", headers={"Authorization": header})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"


def test_session_token_outside_its_capabilities_is_403(api: TestClient) -> None:
    """A session token may not use admin routes (403), and dies when its session ends."""
    session = api.post("sessions", json={"agent": "codex", "working_dir": "/tmp"}).json()
    agent = {"Authorization": f"Bearer {session['token']}"}
    assert api.get("vault/status", headers=agent).status_code == 403
    assert (
        api.post("sessions", json={"agent": "x", "working_dir": "/"}, headers=agent).status_code
        == 403
    )
    api.post(f"sessions/{session['id']}/end", json={"exit_code": 0})
    assert api.get("vault/status", headers=agent).status_code == 401


def test_other_version_is_refused_with_the_fix(api: TestClient) -> None:
    """A client of another version gets 409 version_mismatch with both versions and the fix."""
    answer = api.get("status", headers={"X-Aileron-Version": "0.0.1"})
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "version_mismatch"
    assert error["details"]["client_version"] == "0.0.1"
    assert "aileron daemon stop" in error["message"]


def test_validation_errors_are_422_envelopes(api: TestClient) -> None:
    """A malformed or mistyped body is a 422 invalid_request naming the field, never plain text."""
    answer = api.post(
        "vault/init", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_request"
    answer = api.post("sessions", json={"agent": 5})
    assert answer.status_code == 422
    fields = {tuple(f["location"]) for f in answer.json()["error"]["details"]["fields"]}
    assert ("body", "agent") in fields and ("body", "working_dir") in fields


def test_unknown_route_and_method_are_envelopes(api: TestClient) -> None:
    """Unknown routes are 404 not_found and wrong methods 405, both as JSON envelopes."""
    assert api.get("no/such/route").json()["error"]["code"] == "not_found"
    answer = api.delete("health")
    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "method_not_allowed"


def test_vault_lifecycle_over_http(api: TestClient, layout: Layout) -> None:
    """init, put, list (no values), lock (423 after), wrong passphrase (401), unlock again."""
    assert api.get("vault/status").json() == {"state": "missing"}
    assert (
        api.post("vault/unlock", json={"passphrase": "x"}).json()["error"]["code"]
        == "vault_missing"
    )
    assert api.post("vault/init", json={"passphrase": "correct horse"}).status_code == 201
    assert api.post("vault/init", json={"passphrase": "again"}).status_code == 409
    put = api.put(
        "vault/entries/api_key/openai/default",
        json={"value": "sk-SECRET-1", "metadata": {"type": "api_key"}},
    )
    assert put.status_code == 200 and "sk-SECRET-1" not in put.text
    listing = api.get("vault/entries")
    assert [e["path"] for e in listing.json()] == ["api_key/openai/default"]
    assert "sk-SECRET-1" not in listing.text
    assert api.post("vault/lock").json() == {"state": "locked"}
    locked = api.put("vault/entries/x", json={"value": "v"})
    assert locked.status_code == 423 and locked.json()["error"]["code"] == "vault_locked"
    wrong = api.post("vault/unlock", json={"passphrase": "wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "wrong_passphrase"
    assert api.post("vault/unlock", json={"passphrase": "correct horse"}).status_code == 200
    assert api.post("vault/unlock", json={"passphrase": "correct horse"}).status_code == 409
    assert api.delete("vault/entries/api_key/openai/default").status_code == 204
    assert api.delete("vault/entries/api_key/openai/default").status_code == 404
    assert "sk-SECRET-1" not in layout.vault.read_text()


def test_wrong_passphrases_back_off(api: TestClient) -> None:
    """After repeated wrong passphrases, unlock is refused with 429 and a retry delay."""
    api.post("vault/init", json={"passphrase": "right"})
    api.post("vault/lock")
    codes = [api.post("vault/unlock", json={"passphrase": "wrong"}).status_code for _ in range(4)]
    assert codes[:3] == [401, 401, 401]
    assert codes[3] == 429
    refused = api.post("vault/unlock", json={"passphrase": "right"})
    assert refused.status_code == 429
    assert refused.json()["error"]["retriable"] is True
    assert "Retry-After" in refused.headers


def test_passphrase_change_and_rotate(api: TestClient) -> None:
    """passphrase change re-keys (old fails, new works) and rotate keeps the entries."""
    api.post("vault/init", json={"passphrase": "old pass"})
    api.put("vault/entries/token/github/default", json={"value": "ghp_x"})
    assert api.post("vault/passphrase", json={"old": "bad", "new": "n"}).status_code == 401
    assert (
        api.post("vault/passphrase", json={"old": "old pass", "new": "new pass"}).status_code == 200
    )
    assert api.post("vault/rotate").status_code == 200
    api.post("vault/lock")
    assert api.post("vault/unlock", json={"passphrase": "old pass"}).status_code == 401
    assert api.post("vault/unlock", json={"passphrase": "new pass"}).status_code == 200
    assert [e["path"] for e in api.get("vault/entries").json()] == ["token/github/default"]


def test_sessions_lifecycle(api: TestClient) -> None:
    """A session is created running with a token, listed, ended once with its exit code."""
    created = api.post(
        "sessions",
        json={
            "agent": "codex",
            "working_dir": "/work",
            "sandbox": {"runtime": "podman", "image": "img"},
        },
    )
    assert created.status_code == 201
    session = created.json()
    assert session["state"] == "running" and session["token"].startswith("ais_")
    assert [s["id"] for s in api.get("sessions", params={"active": True}).json()] == [session["id"]]
    assert "token" not in api.get(f"sessions/{session['id']}").json()
    ended = api.post(f"sessions/{session['id']}/end", json={"exit_code": 3}).json()
    assert ended["state"] == "ended" and ended["exit_code"] == 3
    again = api.post(f"sessions/{session['id']}/end", json={"exit_code": 0})
    assert again.status_code == 409 and again.json()["error"]["code"] == "session_ended"
    assert api.get("sessions/nope").status_code == 404
    assert api.get("sessions", params={"active": True}).json() == []


def test_audit_records_what_happened_and_verifies(api: TestClient) -> None:
    """Vault and session events are audited (paths, never values) and the chain verifies."""
    api.post("vault/init", json={"passphrase": "p"})
    api.put("vault/entries/api_key/x/default", json={"value": "VALUE-NEVER-AUDITED"})
    session = api.post("sessions", json={"agent": "goose", "working_dir": "/"}).json()
    api.post(f"sessions/{session['id']}/end", json={"exit_code": 0})
    records = api.get("audit").json()
    types = [r["type"] for r in records]
    for expected in (
        "daemon.started",
        "vault.initialized",
        "vault.entry_put",
        "session.started",
        "session.ended",
    ):
        assert expected in types
    assert "VALUE-NEVER-AUDITED" not in api.get("audit").text
    only = api.get("audit", params={"session": session["id"]}).json()
    assert {r["type"] for r in only} == {"session.started", "session.ended"}
    one = api.get(f"audit/{records[-1]['id']}").json()
    assert one == records[-1]
    assert api.get("audit/verify").json()["ok"] is True
    assert api.get("audit/nope").json()["error"]["code"] == "audit_record_not_found"
