"""Session tokens run connector operations directly only as the user exposed them (ADR 0017)."""

from __future__ import annotations

import json
from typing import Any

from actions.support import SECRET, echo_spec, manifest, restartable_daemon
from fastapi.testclient import TestClient

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.paths import Layout

FQN = "local://echo"
WRAPS_SAY = (
    manifest("echo-careful")
    .replace('op = "say-carefully"', 'op = "say"')
    .replace('name = "echo-careful"', 'name = "echo-gated"')
)


def setup(api: TestClient, echo: EchoServer, *manifests: str) -> dict[str, str]:
    """Vault, echo connector, binding, the given actions; the headers of a fresh session."""
    assert api.post("vault/init", json={"passphrase": "pw"}).status_code == 201
    assert api.post("connectors", json={"spec": echo_spec(echo.host)}).status_code == 201
    assert api.post("bindings", json={"name": "token/echo/default", "value": SECRET}).is_success
    for text in manifests:
        assert api.post("actions", json={"manifest": text}).status_code == 201
    session = api.post("sessions", json={"agent": "codex", "working_dir": "/"}).json()
    return {"Authorization": f"Bearer {session['token']}"}


def run(api: TestClient, op: str, headers: dict[str, str] | None = None) -> Any:
    body = {"connector_fqn": FQN, "tool": "echo", "operation": op, "args": {"message": "m"}}
    return api.post("connector-operations/run", json=body, headers=headers or {})


def verdict(api: TestClient, op: str) -> dict[str, Any]:
    connector = api.get(f"connectors/{FQN}").json()
    found: dict[str, Any] = next(
        v for v in connector["agent_operations"] if (v["tool"], v["operation"]) == ("echo", op)
    )
    return found


def test_plain_operation_runs_directly_for_a_session(api: TestClient, echo: EchoServer) -> None:
    """An operation no action wraps, without its own approval flag, runs for a session token."""
    agent = setup(api, echo)
    ran = run(api, "say", agent)
    assert ran.status_code == 200, ran.text
    assert [json.loads(s.body) for s in echo.seen] == [{"message": "m"}]
    assert verdict(api, "say") == {
        "tool": "echo",
        "operation": "say",
        "allowed": True,
        "approval_required": False,
        "reason": None,
        "approved_by": [],
    }


def test_operation_wrapped_by_a_gated_action_waits_for_approval(
    api: TestClient, echo: EchoServer
) -> None:
    """A session's direct run of an operation an approval-gated enabled action wraps is 202."""
    agent = setup(api, echo, WRAPS_SAY)
    pending = run(api, "say", agent)
    assert pending.status_code == 202, pending.text
    assert pending.json()["status"] == "pending_approval"
    assert echo.seen == []
    assert verdict(api, "say")["approved_by"] == ["echo-gated"]
    # the human (master token) is not held by the agents' gate
    assert run(api, "say").status_code == 200


def test_operation_wrapped_by_a_disabled_action_is_refused(
    api: TestClient, echo: EchoServer
) -> None:
    """When the user disabled an action wrapping an operation, a session may not run it."""
    agent = setup(api, echo, manifest("echo-say"))
    assert api.patch("actions/echo-say", json={"enabled": False}).status_code == 200
    refused = run(api, "say", agent)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "operation_not_exposed"
    assert "echo-say" in refused.json()["error"]["message"]
    assert echo.seen == []
    assert verdict(api, "say")["allowed"] is False


def test_closing_a_connector_or_an_operation_to_agents(
    api: TestClient, echo: EchoServer, layout: Layout
) -> None:
    """PATCH closes a connector or one operation to sessions, durably and audited."""
    agent = setup(api, echo)
    closed = api.patch(
        f"connectors/{FQN}", json={"agents": False, "tool": "echo", "operation": "say"}
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["agents"] is True
    assert run(api, "say", agent).json()["error"]["code"] == "operation_not_exposed"
    assert run(api, "say-carefully", agent).status_code == 202
    assert api.patch(f"connectors/{FQN}", json={"agents": False}).json()["agents"] is False
    assert run(api, "say-carefully", agent).status_code == 403
    assert echo.seen == []
    stored = json.loads((layout.home / "store" / "connectors" / "agents.json").read_text())
    assert stored == {"connectors": [FQN], "operations": [[FQN, "echo", "say"]]}
    types = [r["type"] for r in api.get("audit").json()]
    assert types.count("connector.agents_disabled") == 2
    assert run(api, "say").status_code == 200  # the human still runs it
    api.patch(f"connectors/{FQN}", json={"agents": True})
    api.patch(f"connectors/{FQN}", json={"agents": True, "tool": "echo", "operation": "say"})
    assert run(api, "say", agent).status_code == 200


def test_patch_refuses_half_an_operation_and_unknown_names(
    api: TestClient, echo: EchoServer
) -> None:
    """PATCH needs tool and operation together, and names that exist; a session may not."""
    agent = setup(api, echo)
    assert api.patch(f"connectors/{FQN}", json={"agents": False, "tool": "echo"}).status_code == 422
    unknown = api.patch(
        f"connectors/{FQN}", json={"agents": False, "tool": "echo", "operation": "x"}
    )
    assert unknown.status_code == 404
    assert api.patch("connectors/local://nope", json={"agents": False}).status_code == 404
    assert api.patch(f"connectors/{FQN}", json={"agents": False}, headers=agent).status_code == 403
    assert run(api, "say", agent).status_code == 200


def test_switches_outlive_a_restart_and_a_corrupt_file_closes_everything(
    layout: Layout, echo: EchoServer
) -> None:
    """agents.json is read at start; one that does not parse closes every connector."""
    with restartable_daemon(layout) as first:
        setup(first, echo)
        first.patch(f"connectors/{FQN}", json={"agents": False, "tool": "echo", "operation": "say"})
    with restartable_daemon(layout) as second:
        second.post("vault/unlock", json={"passphrase": "pw"})
        session = second.post("sessions", json={"agent": "codex", "working_dir": "/"}).json()
        agent = {"Authorization": f"Bearer {session['token']}"}
        assert run(second, "say", agent).status_code == 403
        assert run(second, "say-carefully", agent).status_code == 202
    (layout.home / "store" / "connectors" / "agents.json").write_text("{not json")
    with restartable_daemon(layout) as third:
        session = third.post("sessions", json={"agent": "codex", "working_dir": "/"}).json()
        agent = {"Authorization": f"Bearer {session['token']}"}
        refused = run(third, "say-carefully", agent)
        assert refused.json()["error"]["code"] == "operation_not_exposed"
        assert third.get(f"connectors/{FQN}").json()["agents"] is False
    assert echo.seen == []
