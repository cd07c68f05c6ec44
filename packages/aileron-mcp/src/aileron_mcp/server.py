"""The MCP server: the daemon's enabled actions as tools, every call forwarded to the daemon.

It holds no secrets and no policy. ``tools/list`` is ``GET /v1/actions``; ``tools/call`` is
``POST /v1/actions/{name}/run`` (or ``GET /v1/approvals/{id}`` for ``check_action_status``).
A tool failure is always a tool result with ``isError: true``, never a JSON-RPC error.

**Noticing new actions.** The daemon has no change feed, so the server looks:

- every ``tools/list`` fetches the list from the daemon (no cache), and remembers what the
  client was given;
- while the client is connected, a poll re-fetches it every ``poll_seconds`` (2 s by default,
  ``AILERON_MCP_POLL_SECONDS``), and so does a call that the daemon refuses as an unknown or
  disabled action;
- when a re-fetch differs from what the client was given (names, descriptions or input
  schemas), the client is told ``notifications/tools/list_changed``, once per change.

The notification reaches both protocol eras the SDK serves: on a handshake-era connection
(what agent hosts speak today) it goes out on the connection's stream; on a 2026-07-28
connection it is published to ``subscriptions/listen`` streams. ``tools.listChanged`` is
declared in either case.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp import types
from mcp.server import CacheHint, NotificationOptions, Server, ServerRequestContext
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.shared.exceptions import MCPError
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

from aileron_core.client import ApiError
from aileron_core.errors import AileronError
from aileron_mcp.__about__ import __version__
from aileron_mcp.config import DEFAULT_POLL_SECONDS
from aileron_mcp.daemon_client import AsyncDaemonClient, path_segment
from aileron_mcp.tools import (
    CHECK_STATUS,
    Fingerprint,
    action_name,
    action_tools,
    approval_result,
    fingerprint,
    run_result,
    text_result,
)

log = logging.getLogger("aileron.mcp")

INSTRUCTIONS = """\
These tools run Aileron actions. Aileron's daemon holds the credentials and runs each action for
you; you never see a secret. When an action answers that it needs approval, ask the user to
approve it, then call check_action_status with the approval id for the result."""

# Daemon answers to a call that mean the client's tool list is out of date.
STALE_LIST_CODES = frozenset({"action_not_found", "action_disabled"})

Context = ServerRequestContext[None, Any]


class _Server(Server[None]):
    """The SDK's low-level server, declaring ``tools.listChanged`` however it is started.

    Transports that build the initialization options themselves (the SDK's in-memory one
    does) would otherwise declare the capability off.
    """

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )


class AileronMcp:
    """The MCP server of one agent session, in front of one daemon client.

    ``server`` is the SDK server to run (``server.run`` over stdio, or ``mcp.Client(server)``
    in-process). The client is the caller's to close.
    """

    def __init__(
        self, client: AsyncDaemonClient, *, poll_seconds: float = DEFAULT_POLL_SECONDS
    ) -> None:
        self._client = client
        self._poll_seconds = poll_seconds
        self._given: Fingerprint | None = None  # what the client was last told the tools are
        self._last_tools: list[types.Tool] | None = None
        self._legacy_session: ServerSession | None = None
        self._bus = InMemorySubscriptionBus()
        self.server: Server[None] = _Server(
            "aileron",
            version=__version__,
            title="Aileron",
            instructions=INSTRUCTIONS,
            lifespan=self._lifespan,
            # The list changes whenever an action is installed: never serve it from a cache.
            cache_hints={"tools/list": CacheHint(ttl_ms=0, scope="private")},
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(self._bus),
        )

    # --- MCP handlers ------------------------------------------------------------------------

    async def _list_tools(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            self._legacy_session = ctx.session  # where list_changed goes on this connection
        try:
            tools = await self._fetch_tools()
        except AileronError as error:
            if self._last_tools is None:
                raise MCPError(types.INTERNAL_ERROR, str(error)) from error
            log.warning("%s; serving the last tool list", error)
            tools = self._last_tools
        self._given = fingerprint(tools)
        return types.ListToolsResult(tools=tools)

    async def _call_tool(
        self, ctx: Context, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        args = params.arguments or {}
        try:
            if params.name == CHECK_STATUS:
                return await self._check_status(args)
            answer = await self._client.post(
                f"actions/{path_segment(action_name(params.name))}/run", {"args": args}
            )
            return run_result(answer)
        except ApiError as error:
            if error.code in STALE_LIST_CODES:
                await self.check_for_changes()
            return text_result(f"{error}\ncode: {error.code}", error=True)
        except AileronError as error:  # the daemon is unreachable
            return text_result(str(error), error=True)
        except Exception as error:  # a tool failure is a tool result, never a JSON-RPC error
            log.exception("tools/call %s failed", params.name)
            return text_result(f"aileron-mcp failed: {error.__class__.__name__}", error=True)

    async def _check_status(self, args: Mapping[str, Any]) -> types.CallToolResult:
        approval_id = args.get("approval_id")
        if not isinstance(approval_id, str) or not approval_id.strip():
            return text_result(
                f"{CHECK_STATUS} needs approval_id: the id named by the action's answer",
                error=True,
            )
        approval = await self._client.get(f"approvals/{path_segment(approval_id.strip())}")
        return approval_result(approval)

    # --- noticing changes --------------------------------------------------------------------

    async def _fetch_tools(self) -> list[types.Tool]:
        answer = await self._client.get("actions")
        tools = action_tools(answer["actions"])
        self._last_tools = tools
        return tools

    async def check_for_changes(self) -> bool:
        """Re-fetch the tools; tell the client when they differ from what it was given."""
        if self._given is None:  # the client has not listed the tools yet: nothing is stale
            return False
        try:
            current = fingerprint(await self._fetch_tools())
        except Exception as error:  # the daemon is down or answered oddly: look again later
            log.debug("could not re-fetch the actions: %s", error)
            return False
        if current == self._given:
            return False
        self._given = current
        await self._bus.publish(ToolsListChanged())
        session = self._legacy_session
        if session is not None:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await session.send_tool_list_changed()
        return True

    async def _poll(self) -> None:
        while True:
            await anyio.sleep(self._poll_seconds)
            await self.check_for_changes()

    @asynccontextmanager
    async def _lifespan(self, _: Server[None]) -> AsyncIterator[None]:
        """Runs for as long as a client is connected: the poll lives here."""
        async with anyio.create_task_group() as tasks:
            if self._poll_seconds > 0:
                tasks.start_soon(self._poll)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()


async def serve_stdio(
    api_url: str, token: str, session_id: str, *, poll_seconds: float = DEFAULT_POLL_SECONDS
) -> None:
    """Serve MCP on this process's stdin and stdout until the client hangs up."""
    from mcp.server.stdio import stdio_server

    from aileron_mcp.stdio import pipe_stdio

    async with AsyncDaemonClient(api_url, token, session_id=session_id) as client:
        app = AileronMcp(client, poll_seconds=poll_seconds)
        async with (
            pipe_stdio() as (stdin, stdout),
            stdio_server(stdin, stdout) as (read_stream, write_stream),
        ):
            await app.server.run(
                read_stream, write_stream, app.server.create_initialization_options()
            )
