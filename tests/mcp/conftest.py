"""Fixtures for aileron-mcp tests: the echo connector, and the MCP server served in-process.

The daemon app runs in the ``api`` fixture's TestClient, on the event loop of its portal. An
MCP scenario runs on that same loop (``Rig.run``), so the MCP server's HTTP client reaches the
very app (and state) the test set up, through ``httpx.ASGITransport``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from actions.support import SECRET, echo_spec, manifest
from fastapi.testclient import TestClient
from mcp import Client
from mcp.client.session import MessageHandlerFnT

from aileron_cli.examples.echo_server import EchoServer
from aileron_mcp.daemon_client import AsyncDaemonClient
from aileron_mcp.server import AileronMcp

T = TypeVar("T")
API = "http://testserver/v1"


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    """A real local HTTP server that accepts only `Bearer SECRET` and records every request."""
    with EchoServer(SECRET) as server:
        yield server


def setup_echo(api: TestClient, echo: EchoServer) -> None:
    """Vault, the echo connector, its two actions and the binding, through the daemon's API."""
    assert api.post("vault/init", json={"passphrase": "pw"}).status_code == 201
    assert api.post("connectors", json={"spec": echo_spec(echo.host)}).status_code == 201
    for name in ("echo-say", "echo-careful"):
        assert api.post("actions", json={"manifest": manifest(name)}).status_code == 201
    added = api.post("bindings", json={"name": "token/echo/default", "value": SECRET})
    assert added.status_code == 201, added.text


@dataclass
class Rig:
    """An installed echo connector, a session, and ways to serve aileron-mcp for it."""

    api: TestClient
    session_id: str
    token: str

    def run(self, scenario: Callable[[], Awaitable[T]]) -> T:
        """Run ``scenario`` on the daemon app's own event loop."""
        assert self.api.portal is not None
        return self.api.portal.call(scenario)

    def daemon(self, *, api_url: str = API, asgi: bool = True) -> AsyncDaemonClient:
        """A daemon client with the session's token (through the in-process app by default)."""
        transport = httpx.ASGITransport(app=self.api.app) if asgi else None
        return AsyncDaemonClient(
            api_url, self.token, session_id=self.session_id, transport=transport
        )

    def admin(self) -> httpx.AsyncClient:
        """A master-token client of the in-process app, for changes made mid-session."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.api.app),
            base_url=API + "/",
            headers=dict(self.api.headers),
        )

    @asynccontextmanager
    async def connect(
        self,
        *,
        mode: str = "legacy",
        poll_seconds: float = 0.0,
        message_handler: MessageHandlerFnT | None = None,
        daemon: AsyncDaemonClient | None = None,
    ) -> AsyncIterator[Client]:
        """aileron-mcp for this session, and an MCP client connected to it in-process."""
        async with daemon or self.daemon() as client:
            app = AileronMcp(client, poll_seconds=poll_seconds)
            async with Client(app.server, mode=mode, message_handler=message_handler) as mcp:
                yield mcp


@pytest.fixture
def rig(api: TestClient, echo: EchoServer) -> Rig:
    """The echo actions installed and a session minted (aileron-mcp gets its token only)."""
    setup_echo(api, echo)
    session = api.post("sessions", json={"agent": "codex", "working_dir": "/"})
    assert session.status_code == 201, session.text
    body: dict[str, Any] = session.json()
    assert body["token"].startswith("ais_")
    return Rig(api, body["id"], body["token"])
