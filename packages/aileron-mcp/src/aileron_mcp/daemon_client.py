"""An asynchronous client of the daemon's ``/v1`` API, for the MCP server's event loop.

It is the async twin of :class:`aileron_core.client.DaemonClient`: the same headers (bearer
token, ``X-Aileron-Version``, ``X-Aileron-Session-Id``) and the same typed errors, built by the
core's :func:`~aileron_core.client.error_from_response`. It lives here until the core grows
an ``AsyncDaemonClient`` of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import httpx

from aileron_core.client import client_headers, error_from_response, unreachable
from aileron_mcp.loopback import LoopbackTransport

# A run may wait on an upstream API for the executor's own timeout (30 s by default).
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=5.0)


def path_segment(value: str) -> str:
    """``value`` quoted as one URL path segment (no ``/`` or ``..`` can reach another route)."""
    return quote(value, safe="")


class AsyncDaemonClient:
    """An asynchronous client of the daemon's ``/v1`` API.

    Every ``tools/call`` crosses it, and BENCHMARKS.md B6 gives aileron-mcp 2 ms in all, so it
    is lean: requests go straight to a transport (by default the keep-alive
    :class:`~aileron_mcp.loopback.LoopbackTransport`) rather than through ``httpx.AsyncClient``,
    whose per-request machinery (URL merging, auth and redirect flows, cookies, hooks) costs
    0.2–0.4 ms of CPU here and does nothing the daemon needs.
    """

    def __init__(
        self,
        api_url: str,
        token: str | None,
        *,
        session_id: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._headers = httpx.Headers(client_headers(token, session_id))
        # Parsing a URL is a third of what building a request costs; the paths repeat.
        self._url = lru_cache(maxsize=256)(self._parse_url)
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
        self._transport = transport or LoopbackTransport()

    def _parse_url(self, path: str) -> httpx.URL:
        return httpx.URL(f"{self.api_url}/{path.lstrip('/')}")

    async def __aenter__(self) -> AsyncDaemonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer, or a typed error."""
        request = httpx.Request(
            method,
            self._url(path),
            params={k: v for k, v in params.items() if v is not None} if params else None,
            json=json,
            headers=self._headers,
            extensions=self._extensions,
        )
        try:
            response = await self._transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
        except httpx.TransportError as error:
            raise unreachable(self.api_url, error) from error
        if response.is_success:
            return response.json() if response.content else None
        raise error_from_response(response)

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, json: Any = None) -> Any:
        return await self.request("POST", path, json=json if json is not None else {})
