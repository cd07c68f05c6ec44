"""Approvals are bound to what will run: a change between the request and the decision makes
the approval stale, nothing is sent, and the decider and the agent are told why (ADR 0016)."""

from __future__ import annotations

import json
from typing import Any

from actions.support import SECRET, echo_spec, manifest, restartable_daemon
from fastapi.testclient import TestClient

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.paths import Layout


def setup(api: TestClient, echo: EchoServer) -> str:
    """An installed echo connector, actions and binding; returns a pending approval's id."""
    assert api.post("vault/init", json={"passphrase": "pw"}).status_code == 201
    assert api.post("connectors", json={"spec": echo_spec(echo.host)}).status_code == 201
    for name in ("echo-say", "echo-careful"):
        assert api.post("actions", json={"manifest": manifest(name)}).status_code == 201
    added = api.post("bindings", json={"name": "token/echo/default", "value": SECRET})
    assert added.status_code == 201, added.text
    pending = api.post("actions/echo-careful/run", json={"args": {"message": "m"}})
    assert pending.status_code == 202, pending.text
    return str(pending.json()["approval_id"])


def approve(api: TestClient, approval_id: str) -> Any:
    return api.post(f"approvals/{approval_id}/decide", json={"approved": True})


def audit_of(api: TestClient, kind: str) -> list[dict[str, Any]]:
    return [r["payload"] for r in api.get("audit").json() if r["type"] == kind]


def assert_stale(api: TestClient, approval_id: str, changed: list[str]) -> None:
    decided = approve(api, approval_id)
    assert decided.status_code == 409, decided.text
    error = decided.json()["error"]
    assert error["code"] == "approval_stale"
    assert error["details"]["changed"] == changed
    shown = api.get(f"approvals/{approval_id}").json()
    assert shown["status"] == "failed"
    assert shown["error"]["code"] == "approval_stale"
    assert "nothing was sent" in shown["error"]["message"]
    failed = audit_of(api, "approval.failed")
    assert failed[-1] == {
        "approval_id": approval_id,
        "reason": "approval_stale",
        "changed": changed,
    }
    again = approve(api, approval_id)
    assert again.json()["error"]["code"] == "approval_decided"


def test_unchanged_approval_runs_and_shows_what_it_runs(api: TestClient, echo: EchoServer) -> None:
    """Nothing changed: the approval shows connector, operation, origin and binding, and runs."""
    approval_id = setup(api, echo)
    shown = api.get(f"approvals/{approval_id}").json()
    assert shown["steps"] == [
        {
            "connector": "local://echo",
            "operation": "echo say-carefully",
            "origins": [f"http://{echo.host}"],
            "binding": "token/echo/default",
        }
    ]
    assert len(shown["plan_sha256"]) == 64
    assert set(shown["plan_parts"]) == {"action", "connectors", "operations", "bindings", "origins"}
    requested = audit_of(api, "approval.requested")[-1]
    assert requested["plan_sha256"] == shown["plan_sha256"]
    decided = approve(api, approval_id)
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "succeeded"
    assert [json.loads(s.body) for s in echo.seen] == [{"message": "m"}]
    assert audit_of(api, "approval.approved")[-1] == {"approval_id": approval_id, "process": None}


def test_connector_replaced_with_a_new_host_is_stale_and_sends_nothing(
    api: TestClient, echo: EchoServer
) -> None:
    """A connector reinstalled for another host between request and approval: stale, unsent."""
    approval_id = setup(api, echo)
    with EchoServer(SECRET) as other:
        assert api.post("connectors", json={"spec": echo_spec(other.host)}).status_code == 201
        assert_stale(api, approval_id, ["connectors", "origins"])
        assert other.seen == []
    assert echo.seen == []
    types = [r["type"] for r in api.get("audit").json()]
    assert "execution.started" not in types


def test_action_manifest_changed_is_stale(api: TestClient, echo: EchoServer) -> None:
    """An action manifest reinstalled with other steps' arguments: stale, nothing sent."""
    approval_id = setup(api, echo)
    changed = manifest("echo-careful").replace(
        'args = { message = "${args.message}" }', 'args = { message = "leak ${args.message}" }'
    )
    assert changed != manifest("echo-careful")
    assert api.post("actions", json={"manifest": changed}).status_code == 201
    assert_stale(api, approval_id, ["action"])
    assert echo.seen == []


def test_binding_rebound_is_stale(api: TestClient, echo: EchoServer) -> None:
    """The binding revoked and added again (another credential) makes the approval stale."""
    approval_id = setup(api, echo)
    assert api.delete("bindings/token/echo/default").status_code == 204
    added = api.post("bindings", json={"name": "token/echo/default", "value": SECRET + "-2"})
    assert added.status_code == 201
    assert_stale(api, approval_id, ["bindings"])
    assert echo.seen == []


def test_a_second_candidate_binding_is_stale(api: TestClient, echo: EchoServer) -> None:
    """Another */echo/default binding appearing changes which credential would go: stale."""
    approval_id = setup(api, echo)
    added = api.post("bindings", json={"name": "key/echo/default", "value": "other"})
    assert added.status_code == 201
    assert_stale(api, approval_id, ["bindings"])
    assert echo.seen == []


def test_denying_a_changed_approval_still_denies(api: TestClient, echo: EchoServer) -> None:
    """Denial needs no check of what would run: a changed approval is simply denied."""
    approval_id = setup(api, echo)
    with EchoServer(SECRET) as other:
        api.post("connectors", json={"spec": echo_spec(other.host)})
        denied = api.post(f"approvals/{approval_id}/decide", json={"approved": False})
    assert denied.status_code == 200
    assert denied.json()["status"] == "denied"
    assert audit_of(api, "approval.denied")[-1]["process"] is None


def test_approval_recorded_before_plans_were_bound_is_stale(
    layout: Layout, echo: EchoServer
) -> None:
    """An approvals.jsonl record without plan_sha256 (older daemon) fails as stale, unsent."""
    with restartable_daemon(layout) as first:
        approval_id = setup(first, echo)
    log = layout.approvals
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    for line in lines:
        for key in ("plan_sha256", "plan_parts", "steps"):
            line.pop(key, None)
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with restartable_daemon(layout) as second:
        assert second.get(f"approvals/{approval_id}").json()["plan_sha256"] is None
        second.post("vault/unlock", json={"passphrase": "pw"})
        decided = approve(second, approval_id)
        assert decided.status_code == 409
        assert decided.json()["error"]["details"]["changed"] == [
            "action",
            "connectors",
            "operations",
            "bindings",
            "origins",
        ]
    assert echo.seen == []
