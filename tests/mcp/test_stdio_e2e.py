"""The real `aileron-mcp` over real stdio, in front of a real daemon process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
from actions.support import SECRET, echo_spec, manifest
from helpers import script
from mcp import Client, StdioServerParameters, types
from mcp.client.stdio import stdio_client

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.client import DaemonClient
from aileron_core.discovery import DaemonInfo


def test_an_agent_host_runs_an_action_through_aileron_mcp(
    real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path
) -> None:
    """stdio client → aileron-mcp (session token only) → daemon → echo: no secret comes back."""
    with DaemonClient.for_daemon(real_daemon) as admin:
        admin.post("vault/init", {"passphrase": "pw"})
        admin.post("connectors", {"spec": echo_spec(echo.host)})
        admin.post("actions", {"manifest": manifest("echo-say")})
        admin.post("bindings", {"name": "token/echo/default", "value": SECRET})
        session = admin.post("sessions", {"agent": "claude", "working_dir": str(tmp_path)})
    env = {
        "AILERON_URL": real_daemon.url,  # without /v1, as `aileron daemon status` prints it
        "AILERON_TOKEN": session["token"],
        "AILERON_SESSION_ID": session["id"],
        "PATH": os.environ["PATH"],
    }
    server = StdioServerParameters(command=script("aileron-mcp"), env=env)
    errlog = tmp_path / "aileron-mcp.stderr"

    async def scenario() -> tuple[types.ListToolsResult, types.CallToolResult]:
        with errlog.open("w") as stderr:
            async with Client(stdio_client(server, errlog=stderr), mode="legacy") as client:
                listed = await client.list_tools()
                called = await client.call_tool("echo_say", {"message": "over stdio"})
        return listed, called

    listed, called = anyio.run(scenario)
    assert {t.name for t in listed.tools} == {"echo_say", "check_action_status"}
    assert called.is_error is False
    [block] = called.content
    assert isinstance(block, types.TextContent)
    assert json.loads(block.text) == {"echo": "over stdio", "authorized": True}
    assert [s.headers["Authorization"] for s in echo.seen] == [f"Bearer {SECRET}"]
    said = listed.model_dump_json() + called.model_dump_json() + errlog.read_text()
    for secret in (SECRET, real_daemon.token):
        assert secret not in said
    assert real_daemon.token not in env.values()
