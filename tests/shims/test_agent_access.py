"""The shims offer an agent exactly the operations the daemon lets it run directly (ADR 0017)."""

from __future__ import annotations

import pytest
from actions.support import echo_spec, manifest
from fastapi.testclient import TestClient

from aileron_shims import ShimError, from_api, generate

FQN = "local://echo"
GATED_SAY = (
    manifest("echo-careful")
    .replace('op = "say-carefully"', 'op = "say"')
    .replace('name = "echo-careful"', 'name = "echo-gated"')
    .replace('fqn = "local://echo"', 'fqn = "local://other"')
    .replace('connector = "local://echo"', 'connector = "local://other"')
)


def install(api: TestClient) -> None:
    """local://echo (no action requires it: its tool is spec-derived) and local://other."""
    other = echo_spec("127.0.0.1:9")
    other["connector"]["fqn"] = "local://other"
    for spec in (echo_spec("127.0.0.1:9"), other):
        assert api.post("connectors", json={"spec": spec}).status_code == 201


def echo_tool(api: TestClient) -> str:
    """The generated shim of local://echo and tools.txt, from the daemon's own answers."""
    connectors = [c for c in api.get("connectors").json() if c["fqn"] == FQN]
    shims = generate(*from_api(connectors, []), agent_command="codex")
    [shim] = shims.shims.values()
    return shims.tools_txt + shim


def test_a_closed_operation_gets_no_subcommand(api: TestClient) -> None:
    """An operation the user closed to agents is not in the shim nor in tools.txt."""
    install(api)
    assert "'echo.say')" in echo_tool(api)
    closed = api.patch(
        f"connectors/{FQN}", json={"agents": False, "tool": "echo", "operation": "say"}
    )
    assert closed.status_code == 200
    text = echo_tool(api)
    assert "'echo.say')" not in text
    assert "'echo.say-carefully')" in text
    assert "Aileron connector operations: echo.say-carefully (" in text
    api.patch(f"connectors/{FQN}", json={"agents": False})
    assert (
        from_api([c for c in api.get("connectors").json() if c["fqn"] == FQN], [])[0][0].operations
        == ()
    )


def test_operations_that_wait_for_approval_say_so(api: TestClient) -> None:
    """tools.txt and the subcommand's help name the operations a human must approve."""
    install(api)
    text = echo_tool(api)
    assert "(need a human's approval: echo.say-carefully)" in text
    assert text.count("A human must approve each call before it runs") == 1
    # an approval-gated action wrapping other's say makes its direct run wait too
    assert api.post("actions", json={"manifest": GATED_SAY}).status_code == 201
    other = [c for c in api.get("connectors").json() if c["fqn"] == "local://other"]
    [connector], _ = from_api(other, [])
    assert {op.name: op.approval_required for op in connector.operations} == {
        "say": True,
        "say-carefully": True,
    }


def test_malformed_verdicts_are_a_shim_error() -> None:
    """A verdict of the wrong shape names its place."""
    connector = {
        "fqn": "local://a",
        "tools": [{"name": "t", "operations": [{"name": "o"}]}],
        "agent_operations": [{"tool": "t", "operation": "o", "allowed": "yes"}],
    }
    with pytest.raises(ShimError, match=r"agent_operations\[0\]\.allowed"):
        from_api([connector], [])


def test_an_operation_without_a_verdict_is_left_out() -> None:
    """When the daemon sends verdicts, an operation it gave none for is not offered."""
    connector = {
        "fqn": "local://a",
        "tools": [{"name": "t", "operations": [{"name": "o"}, {"name": "p"}]}],
        "agent_operations": [{"tool": "t", "operation": "o", "allowed": True}],
    }
    [built], _ = from_api([connector], [])
    assert [op.name for op in built.operations] == ["o"]
