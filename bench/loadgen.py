"""A lean HTTP/1.1 load generator for B5: N keep-alive clients POSTing JSON back to back.

Each client is one connection on asyncio, its answers parsed by httptools, so generating the
load costs ~0.1-0.2 ms of CPU per request. httpx's async client costs ~3 ms per request with
32 clients (~8 ms when they share one client's pool); on the 2 cores the daemon shares with
its load, that made the load generator, not the daemon, the bottleneck of B5.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httptools

__all__ = ["Result", "run"]


class Result:
    """What the clients got: acknowledged (2xx) runs with their latencies, and failures."""

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.failed = 0
        self.statuses: dict[int, int] = {}


class _Client(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("the server closed the connection"))
        if not self.lost.done():
            self.lost.set_result(None)


async def run(
    url: str,
    headers: dict[str, str],
    clients: int,
    seconds: float,
    body: Callable[[str], Any],
) -> Result:
    """``clients`` connections each POST ``body(tag)`` (as JSON) to ``url`` back to back for
    ``seconds``; a client whose connection fails reconnects."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    fixed = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\n{fixed}"
    head += "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    result = Result()
    deadline = time.monotonic() + seconds
    loop = asyncio.get_running_loop()

    async def client(index: int) -> None:
        n = 0
        connection: _Client | None = None
        while time.monotonic() < deadline:
            if connection is None or connection.lost.done():
                transport, connection = await loop.create_connection(_Client, host, port)
                connection.transport = transport  # type: ignore[assignment] # (uvloop)
            data = json.dumps(body(f"c{index}-{n}")).encode()
            n += 1
            connection.done = loop.create_future()
            start = time.perf_counter()
            assert connection.transport is not None
            connection.transport.write((head % len(data)).encode() + data)
            try:
                status = await connection.done
            except ConnectionError:
                result.failed += 1
                continue
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if 200 <= status < 300:
                result.latencies_ms.append((time.perf_counter() - start) * 1000)
            else:
                result.failed += 1
        if connection is not None and connection.transport is not None:
            connection.transport.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    return result
