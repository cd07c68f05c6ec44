"""What an agent sees through aileron-mcp when its approval went stale (ADR 0016)."""

from __future__ import annotations

from typing import Any

from actions.support import SECRET, echo_spec
from mcp import types

from aileron_cli.examples.echo_server import EchoServer


def test_a_stale_approval_tells_the_agent_why_and_nothing_runs(rig: Any, echo: EchoServer) -> None:
    """The connector moved to another host before approval: check_action_status is an error
    result saying the approval is stale and nothing was sent; neither host got a request."""

    async def scenario(other: EchoServer) -> tuple[int, types.CallToolResult]:
        async with rig.connect() as client, rig.admin() as admin:
            await client.call_tool("echo_careful", {"message": "to the old host"})
            [approval] = (await admin.get("approvals")).json()
            moved = await admin.post("connectors", json={"spec": echo_spec(other.host)})
            assert moved.status_code == 201, moved.text
            decided = await admin.post(
                f"approvals/{approval['id']}/decide", json={"approved": True}
            )
            status: types.CallToolResult = await client.call_tool(
                "check_action_status", {"approval_id": approval["id"]}
            )
            return decided.status_code, status

    with EchoServer(SECRET) as other:
        code, status = rig.run(lambda: scenario(other))
        assert other.seen == []
    assert code == 409
    assert status.is_error is True
    [block] = status.content
    assert isinstance(block, types.TextContent)
    assert ": failed" in block.text
    assert "is stale" in block.text and "nothing was sent" in block.text
    assert "(connectors, origins)" in block.text
    assert echo.seen == []
