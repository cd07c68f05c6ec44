"""The loopback transport: keep-alive, idle-closed connections, timeouts and failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack

import anyio
import httpx
import pytest

from aileron_core.client import DaemonUnreachable
from aileron_mcp.daemon_client import AsyncDaemonClient
from aileron_mcp.loopback import LoopbackTransport

OK = b'{"ok": true}'


class RawServer:
    """A bare HTTP/1.1 server on 127.0.0.1; ``behave(n)`` decides how to treat request n."""

    def __init__(self, behave: Callable[[int], str]) -> None:
        self.behave = behave
        self.connections = 0
        self.requests = 0
        self.url = ""

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                self.requests += 1
                how = self.behave(self.requests)
                if how == "drop":  # as if it had closed the idle connection just before
                    return
                if how == "hang":
                    await asyncio.sleep(30)
                    return
                close = b"Connection: close\r\n" if how == "answer-close" else b""
                answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                answer += close + b"Content-Length: %d\r\n\r\n" % len(OK) + OK
                if how == "half":
                    writer.write(answer[:-4])
                    await writer.drain()
                    return
                writer.write(answer)
                await writer.drain()
                if how in ("answer-close", "answer-then-close"):
                    return
        finally:
            writer.close()


async def fetch_all(server: RawServer, count: int, *, pause: float = 0.0) -> list[object]:
    """``count`` sequential GETs through one AsyncDaemonClient on the loopback transport."""
    answers: list[object] = []
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            AsyncDaemonClient(server.url, "ais_t", timeout=httpx.Timeout(0.5))
        )
        for _ in range(count):
            answers.append(await client.get("thing"))
            await anyio.sleep(pause)
    return answers


def run(behave: Callable[[int], str], count: int, *, pause: float = 0.0) -> RawServer:
    async def scenario() -> RawServer:
        async with RawServer(behave) as server:
            answers = await fetch_all(server, count, pause=pause)
            assert answers == [{"ok": True}] * count
            return server

    return anyio.run(scenario)


def test_requests_share_one_kept_alive_connection() -> None:
    """Sequential requests reuse one connection."""
    server = run(lambda n: "answer", 5)
    assert (server.connections, server.requests) == (1, 5)


def test_connection_close_is_honoured() -> None:
    """An answer with `Connection: close` retires the connection; the next request dials anew."""
    server = run(lambda n: "answer-close", 3)
    assert (server.connections, server.requests) == (3, 3)


def test_a_connection_closed_while_idle_is_not_reused() -> None:
    """A connection the server closed after answering is not reused: a new one is dialled."""
    server = run(lambda n: "answer-then-close", 3, pause=0.05)
    assert (server.connections, server.requests) == (3, 3)


def test_a_reused_connection_closed_before_answering_is_retried_once() -> None:
    """Idle-close race: nothing came back on a reused connection, so it is resent once."""
    server = run(lambda n: "drop" if n == 2 else "answer", 3)
    assert (server.connections, server.requests) == (2, 4)


@pytest.mark.parametrize(
    ("behave", "requests"),
    [
        (lambda n: "drop", 1),  # a fresh connection that answers nothing: not retried
        (lambda n: "half" if n == 2 else "answer", 2),  # an answer cut short: not retried
    ],
)
def test_failures_that_may_have_run_are_not_retried(
    behave: Callable[[int], str], requests: int
) -> None:
    """A fresh connection closed unanswered, or an answer cut short, fails without a resend."""

    async def scenario() -> RawServer:
        async with RawServer(behave) as server:
            with pytest.raises(DaemonUnreachable, match="RemoteProtocolError"):
                await fetch_all(server, 2)
            return server

    assert anyio.run(scenario).requests == requests


def test_no_answer_within_the_timeout_is_a_read_timeout() -> None:
    """A server that never answers gives ReadTimeout after the client's read timeout."""

    async def scenario() -> None:
        async with RawServer(lambda n: "hang") as server:
            transport = LoopbackTransport()
            request = httpx.Request(
                "GET", server.url, extensions={"timeout": httpx.Timeout(0.2).as_dict()}
            )
            with pytest.raises(httpx.ReadTimeout), anyio.fail_after(5):
                await transport.handle_async_request(request)
            await transport.aclose()

    anyio.run(scenario)


def test_nothing_listening_is_a_connect_error() -> None:
    """Dialling a port nobody listens on is httpx.ConnectError (the daemon is unreachable)."""

    async def scenario() -> None:
        async with RawServer(lambda n: "answer") as server:
            url = server.url
        transport = LoopbackTransport()
        with pytest.raises(httpx.ConnectError):
            await transport.handle_async_request(httpx.Request("GET", url))
        await transport.aclose()

    anyio.run(scenario)
