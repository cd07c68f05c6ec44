"""Actions through the daemon's API: credentials injected, never shown; approvals; errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from actions.support import SECRET, echo_spec, manifest, restartable_daemon
from fastapi.testclient import TestClient

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.paths import Layout


def setup_echo(api: TestClient, echo: EchoServer, *, binding: bool = True) -> None:
    assert api.post("vault/init", json={"passphrase": "pw"}).status_code == 201
    assert api.post("connectors", json={"spec": echo_spec(echo.host)}).status_code == 201
    for name in ("echo-say", "echo-careful"):
        assert api.post("actions", json={"manifest": manifest(name)}).status_code == 201
    if binding:
        added = api.post("bindings", json={"name": "token/echo/default", "value": SECRET})
        assert added.status_code == 201, added.text


def every_file(home: Path) -> str:
    return "".join(
        p.read_bytes().decode("utf-8", "replace") for p in home.rglob("*") if p.is_file()
    )


def test_action_runs_with_the_vault_credential_that_it_never_shows(
    api: TestClient, echo: EchoServer, layout: Layout
) -> None:
    """The server sees the bearer secret; the result, answers and files never contain it."""
    setup_echo(api, echo)
    answer = api.post("actions/echo-say/run", json={"args": {"message": "hello"}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == {"echo": "hello", "authorized": True}
    assert [s.headers["Authorization"] for s in echo.seen] == [f"Bearer {SECRET}"]
    assert json.loads(echo.seen[0].body) == {"message": "hello"}
    audit = api.get("audit").text
    for text in (answer.text, audit, api.get("bindings").text, api.get("vault/entries").text):
        assert SECRET not in text
    assert SECRET not in every_file(layout.home)
    types = [r["type"] for r in api.get("audit").json()]
    assert types[-3:] == ["execution.started", "binding.used", "execution.succeeded"]
    started, _, succeeded = api.get("audit").json()[-3:]
    assert started["payload"]["invocation_id"] == succeeded["payload"]["invocation_id"]
    assert answer.json()["audit_id"] == succeeded["id"]


def test_locked_vault_and_missing_binding_are_412(api: TestClient, echo: EchoServer) -> None:
    """A locked vault or a missing binding is 412 binding_required naming what to do."""
    setup_echo(api, echo, binding=False)
    missing = api.post("actions/echo-say/run", json={"args": {"message": "x"}})
    assert missing.status_code == 412
    assert "token/echo/default" in missing.json()["error"]["message"]
    api.post("bindings", json={"name": "token/echo/default", "value": SECRET})
    api.post("vault/lock")
    locked = api.post("actions/echo-say/run", json={"args": {"message": "x"}})
    assert locked.status_code == 412
    assert locked.json()["error"]["details"]["vault"] == "locked"
    assert echo.seen == []


def test_disabled_unknown_and_bad_args(api: TestClient, echo: EchoServer) -> None:
    """Disabled → 409, unknown → 404, bad args → 422 naming every field."""
    setup_echo(api, echo)
    assert api.patch("actions/echo-say", json={"enabled": False}).json()["enabled"] is False
    assert api.post("actions/echo-say/run", json={"args": {"message": "x"}}).status_code == 409
    api.patch("actions/echo-say", json={"enabled": True})
    assert api.post("actions/nope/run", json={"args": {}}).status_code == 404
    bad = api.post("actions/echo-say/run", json={"args": {"message": 5, "extra": 1}})
    assert bad.status_code == 422
    names = {f["name"] for f in bad.json()["error"]["details"]["fields"]}
    assert names == {"message", "extra"}
    assert echo.seen == []


def test_approval_runs_exactly_the_approved_args_once(api: TestClient, echo: EchoServer) -> None:
    """run → 202; approve → exactly one request with those args; re-deciding is refused."""
    setup_echo(api, echo)
    pending = api.post("actions/echo-careful/run", json={"args": {"message": "ship it"}})
    assert pending.status_code == 202
    approval_id = pending.json()["approval_id"]
    assert echo.seen == []
    assert api.get(f"approvals/{approval_id}").json()["status"] == "pending"
    decided = api.post(f"approvals/{approval_id}/decide", json={"approved": True})
    assert decided.json()["status"] == "succeeded"
    assert decided.json()["result"] == {"echo": "ship it", "authorized": True}
    assert [json.loads(s.body) for s in echo.seen] == [{"message": "ship it"}]
    again = api.post(f"approvals/{approval_id}/decide", json={"approved": True})
    assert again.status_code == 409
    assert len(echo.seen) == 1
    types = [r["type"] for r in api.get("audit").json()]
    assert types.index("approval.requested") < types.index("approval.approved")
    assert types.index("approval.approved") < types.index("execution.succeeded")


def test_denied_never_runs_and_new_args_need_a_new_approval(
    api: TestClient, echo: EchoServer
) -> None:
    """A denied approval never executes; other args create a different pending approval."""
    setup_echo(api, echo)
    first = api.post("actions/echo-careful/run", json={"args": {"message": "a"}}).json()
    denied = api.post(
        f"approvals/{first['approval_id']}/decide", json={"approved": False, "reason": "no"}
    )
    assert denied.json()["status"] == "denied"
    second = api.post("actions/echo-careful/run", json={"args": {"message": "b"}}).json()
    assert second["approval_id"] != first["approval_id"]
    assert api.get(f"approvals/{second['approval_id']}").json()["args"] == {"message": "b"}
    assert echo.seen == []


def test_session_token_runs_actions_but_cannot_manage_them(
    api: TestClient, echo: EchoServer
) -> None:
    """A session token may list and run actions and poll its approvals, nothing else."""
    setup_echo(api, echo)
    session = api.post("sessions", json={"agent": "codex", "working_dir": "/"}).json()
    agent = {"Authorization": f"Bearer {session['token']}"}
    assert [a["name"] for a in api.get("actions", headers=agent).json()["actions"]] == [
        "echo-careful",
        "echo-say",
    ]
    ran = api.post("actions/echo-say/run", json={"args": {"message": "m"}}, headers=agent)
    assert ran.status_code == 200
    pending = api.post("actions/echo-careful/run", json={"args": {"message": "m"}}, headers=agent)
    assert api.get(f"approvals/{pending.json()['approval_id']}", headers=agent).status_code == 200
    assert api.post("actions", json={"manifest": "x"}, headers=agent).status_code == 403
    assert (
        api.post("bindings", json={"name": "a/b/c", "value": "v"}, headers=agent).status_code == 403
    )
    decide = api.post(
        f"approvals/{pending.json()['approval_id']}/decide", json={"approved": True}, headers=agent
    )
    assert decide.status_code == 403
    records = api.get("audit", params={"session": session["id"]}).json()
    assert {"execution.succeeded", "approval.requested"} <= {r["type"] for r in records}


def test_operation_outside_declared_hosts_is_refused_and_audited(
    api: TestClient, echo: EchoServer
) -> None:
    """A redirect to a host the operation did not declare is refused and audited."""
    with EchoServer(SECRET) as other:
        spec = echo_spec(echo.host)
        api.post("vault/init", json={"passphrase": "pw"})
        api.post("bindings", json={"name": "token/echo/default", "value": SECRET})
        api.post("connectors", json={"spec": spec})
        echo.redirect_to = f"http://{other.host}/echo"
        answer = api.post(
            "connector-operations/run",
            json={
                "connector_fqn": "local://echo",
                "tool": "echo",
                "operation": "say",
                "args": {"message": "x"},
            },
        )
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["code"] == "host_not_allowed"
        assert other.seen == []
    failed = [r for r in api.get("audit").json() if r["type"] == "execution.failed"]
    assert failed and failed[-1]["payload"]["code"] == "host_not_allowed"


@pytest.mark.parametrize(
    "spec_change",
    [
        lambda s: s["tools"][0]["operations"][0].update(hosts=["evil.example:80"]),
        lambda s: s.update(schema_version="v0"),
    ],
)
def test_bad_connector_specs_are_422_and_change_nothing(
    api: TestClient, spec_change: object
) -> None:
    """A spec that fails validation is refused with 422 and nothing is installed."""
    spec = echo_spec("127.0.0.1:9")
    spec_change(spec)  # type: ignore[operator]
    answer = api.post("connectors", json={"spec": spec})
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_connector_spec"
    assert api.get("connectors").json() == []


def test_pending_approval_survives_a_restart(layout: Layout, echo: EchoServer) -> None:
    """A pending approval is still pending, and approvable, after the daemon restarts."""
    with restartable_daemon(layout) as first:
        setup_echo(first, echo)
        approval_id = first.post(
            "actions/echo-careful/run", json={"args": {"message": "later"}}
        ).json()["approval_id"]
    with restartable_daemon(layout) as second:
        assert second.get(f"approvals/{approval_id}").json()["status"] == "pending"
        second.post("vault/unlock", json={"passphrase": "pw"})
        decided = second.post(f"approvals/{approval_id}/decide", json={"approved": True}).json()
        assert decided["status"] == "succeeded"
    assert len(echo.seen) == 1


def test_approving_after_the_action_was_removed_fails_cleanly(
    api: TestClient, echo: EchoServer
) -> None:
    """An approval whose action is gone ends `failed` (never stuck `running`) and sends nothing."""
    setup_echo(api, echo)
    pending = api.post("actions/echo-careful/run", json={"args": {"message": "m"}}).json()
    assert api.delete("actions/echo-careful").status_code == 204
    decided = api.post(f"approvals/{pending['approval_id']}/decide", json={"approved": True})
    assert decided.status_code == 200
    assert decided.json()["status"] == "failed"
    assert decided.json()["error"]["code"] == "action_not_found"
    assert echo.seen == []
