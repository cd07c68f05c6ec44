"""aileron-mcp in-process, in front of the real daemon app: tools, calls, approvals, errors."""

from __future__ import annotations

import json
import socket
from typing import Any

import anyio
import pytest
from actions.support import SECRET
from mcp import Client, types

from aileron_cli.examples.echo_server import EchoServer
from aileron_mcp.daemon_client import AsyncDaemonClient
from aileron_mcp.server import AileronMcp

MODES = pytest.mark.parametrize("mode", ["legacy", "auto"])


def text(result: types.CallToolResult) -> str:
    """The text of a one-block tool result."""
    [block] = result.content
    assert isinstance(block, types.TextContent)
    return block.text


@MODES
def test_tools_are_the_enabled_actions_plus_check_action_status(rig: Any, mode: str) -> None:
    """Each enabled action is a tool (`-` → `_`) with its description and input schema."""
    actions = {a["name"]: a for a in rig.api.get("actions").json()["actions"]}

    async def scenario() -> tuple[types.ListToolsResult, types.ServerCapabilities]:
        async with rig.connect(mode=mode) as client:
            return await client.list_tools(), client.server_capabilities

    listed, capabilities = rig.run(scenario)
    tools = {t.name: t for t in listed.tools}
    assert set(tools) == {"echo_say", "echo_careful", "check_action_status"}
    say = tools["echo_say"]
    assert say.description == actions["echo-say"]["description"]
    assert say.description.startswith("Echo a message through the local echo server")
    assert say.input_schema == actions["echo-say"]["input_schema"]
    assert say.input_schema["required"] == ["message"]
    assert say.input_schema["properties"]["message"]["type"] == "string"
    status = tools["check_action_status"].input_schema
    assert status["required"] == ["approval_id"]
    assert status["properties"]["approval_id"]["type"] == "string"
    assert capabilities.tools is not None and capabilities.tools.list_changed is True


@MODES
def test_a_call_runs_the_action_and_returns_its_result(
    rig: Any, echo: EchoServer, mode: str
) -> None:
    """tools/call → POST run: the result as JSON text; the echo server saw the credential."""

    async def scenario() -> types.CallToolResult:
        async with rig.connect(mode=mode) as client:
            await client.list_tools()
            result: types.CallToolResult = await client.call_tool("echo_say", {"message": "hello"})
            return result

    result = rig.run(scenario)
    assert result.is_error is False
    assert json.loads(text(result)) == {"echo": "hello", "authorized": True}
    assert [s.headers["Authorization"] for s in echo.seen] == [f"Bearer {SECRET}"]
    assert SECRET not in result.model_dump_json()


def test_approval_is_normal_content_and_check_action_status_follows_it(
    rig: Any, echo: EchoServer
) -> None:
    """A 202 is non-error content naming the approval id; the status tool tracks the decision."""

    async def scenario() -> list[types.CallToolResult]:
        async with rig.connect() as client, rig.admin() as admin:
            pending = await client.call_tool("echo_careful", {"message": "ship it"})
            [approval] = (await admin.get("approvals", params={"status": "pending"})).json()
            assert approval["id"] in text(pending)
            before = await client.call_tool("check_action_status", {"approval_id": approval["id"]})
            assert echo.seen == []
            decided = await admin.post(
                f"approvals/{approval['id']}/decide", json={"approved": True}
            )
            assert decided.json()["status"] == "succeeded"
            after = await client.call_tool("check_action_status", {"approval_id": approval["id"]})
            return [pending, before, after]

    pending, before, after = rig.run(scenario)
    assert pending.is_error is False
    assert "needs approval" in text(pending)
    assert before.is_error is False
    assert ": pending" in text(before)
    assert after.is_error is False
    assert ": succeeded" in text(after)
    assert '{"echo": "ship it", "authorized": true}' in text(after)
    assert [json.loads(s.body) for s in echo.seen] == [{"message": "ship it"}]


def test_a_denied_approval_is_an_error_result_and_nothing_runs(rig: Any, echo: EchoServer) -> None:
    """check_action_status on a denied approval is isError with the reason; nothing was sent."""

    async def scenario() -> types.CallToolResult:
        async with rig.connect() as client, rig.admin() as admin:
            await client.call_tool("echo_careful", {"message": "no"})
            [approval] = (await admin.get("approvals")).json()
            await admin.post(
                f"approvals/{approval['id']}/decide", json={"approved": False, "reason": "not now"}
            )
            status: types.CallToolResult = await client.call_tool(
                "check_action_status", {"approval_id": approval["id"]}
            )
            return status

    denied = rig.run(scenario)
    assert denied.is_error is True
    assert ": denied" in text(denied) and "not now" in text(denied)
    assert echo.seen == []


def test_daemon_errors_are_error_results_with_the_daemons_message(
    rig: Any, echo: EchoServer
) -> None:
    """Bad args, a disabled action, an unknown tool or approval: isError, never a JSON-RPC error."""

    async def scenario() -> dict[str, types.CallToolResult]:
        async with rig.connect() as client, rig.admin() as admin:
            results = {
                "bad_args": await client.call_tool("echo_say", {"message": 5, "extra": 1}),
                "unknown": await client.call_tool("no_such_tool", {}),
                "traversal": await client.call_tool("../vault/lock", {}),
                "no_id": await client.call_tool("check_action_status", {}),
                "bad_id": await client.call_tool("check_action_status", {"approval_id": "nope"}),
                "id_traversal": await client.call_tool(
                    "check_action_status", {"approval_id": "../actions"}
                ),
            }
            await admin.patch("actions/echo-say", json={"enabled": False})
            results["disabled"] = await client.call_tool("echo_say", {"message": "x"})
            return results

    results = rig.run(scenario)
    assert all(r.is_error for r in results.values())
    bad_args = text(results["bad_args"])
    assert "invalid arguments for" in bad_args and "message" in bad_args and "extra" in bad_args
    assert "code: invalid_arguments" in bad_args
    assert "no action 'no-such-tool' is installed" in text(results["unknown"])
    assert "approval_id" in text(results["no_id"])
    assert "code: approval_not_found" in text(results["bad_id"])
    assert "code: not_found" in text(results["id_traversal"])  # a path segment, not a path
    assert "action 'echo-say' is disabled" in text(results["disabled"])
    assert "code: action_disabled" in text(results["disabled"])
    assert rig.api.get("vault/status").json()["state"] == "unlocked"
    assert echo.seen == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_daemon_is_an_error_result_naming_its_url() -> None:
    """With nothing at AILERON_URL, a call is isError "Aileron daemon unreachable at <url>"."""
    url = f"http://127.0.0.1:{closed_port()}/v1"

    async def scenario() -> list[types.CallToolResult]:
        async with AsyncDaemonClient(url, "ais_whatever", session_id="s") as daemon:
            app = AileronMcp(daemon, poll_seconds=0)
            async with Client(app.server, mode="legacy") as client:
                return [
                    await client.call_tool("echo_say", {"message": "x"}),
                    await client.call_tool("check_action_status", {"approval_id": "a"}),
                ]

    for result in anyio.run(scenario):
        assert result.is_error is True
        assert text(result).startswith(f"Aileron daemon unreachable at {url}")


def test_listing_tools_with_the_daemon_down_is_a_clear_protocol_error() -> None:
    """tools/list (not a tool call) with no daemon fails with the unreachable message."""
    from mcp.shared.exceptions import MCPError

    url = f"http://127.0.0.1:{closed_port()}/v1"

    async def scenario() -> str:
        async with AsyncDaemonClient(url, "ais_whatever", session_id="s") as daemon:
            app = AileronMcp(daemon, poll_seconds=0)
            async with Client(app.server, mode="legacy") as client:
                with pytest.raises(MCPError) as raised:
                    await client.list_tools()
                return str(raised.value)

    assert f"Aileron daemon unreachable at {url}" in anyio.run(scenario)


def test_only_a_session_token_is_used_and_no_output_holds_a_secret(
    rig: Any, echo: EchoServer
) -> None:
    """The daemon sees the session (never the master token); no output holds a token or SECRET."""
    before = len(rig.api.get("audit").json())

    async def scenario() -> str:
        async with rig.connect() as client:
            outputs = [
                await client.list_tools(),
                await client.call_tool("echo_say", {"message": "hi"}),
                await client.call_tool("echo_careful", {"message": "hi"}),
                await client.call_tool("echo_say", {"message": 1}),
            ]
            return "".join(o.model_dump_json() for o in outputs)

    everything = rig.run(scenario)
    records = rig.api.get("audit").json()[before:]
    assert {"execution.succeeded", "approval.requested"} <= {r["type"] for r in records}
    assert {(r["actor"]["type"], r["actor"]["id"]) for r in records} == {
        ("agent", f"session:{rig.session_id}")
    }
    master = rig.api.headers["Authorization"].removeprefix("Bearer ")
    assert master.startswith("aim_") and rig.token.startswith("ais_")
    for secret in (master, rig.token, SECRET):
        assert secret not in everything
    assert len(echo.seen) == 1
