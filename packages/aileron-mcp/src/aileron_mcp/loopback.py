"""An httpx transport for the one hop aileron-mcp makes: HTTP/1.1 to the local daemon.

Keep-alive connections on asyncio streams, with h11 (httpx's own HTTP/1.1 engine) doing all
the parsing. It exists for speed: every ``tools/call`` crosses this hop, and BENCHMARKS.md B6
gives aileron-mcp 2 ms in all. On the reference machine (``bench/mcp_bench.py``, 1000 calls,
busy), aileron-mcp burnt 4.4–4.8 ms of CPU per call through ``httpx.AsyncClient`` (httpcore on
anyio) and 2.9–3.5 ms through this transport; B6 went from +3.6–4.6 ms to +2.6–3.0 ms (and to
+1.8–2.5 ms once :mod:`aileron_mcp.stdio` took the threads out of stdio).

Being an httpx transport, it keeps :class:`~aileron_mcp.daemon_client.AsyncDaemonClient`
speaking httpx requests and responses, and tests swap it for ``httpx.ASGITransport``. What it
leaves out, on purpose: proxies (the daemon is local), HTTP/2, streaming bodies, and any
event loop but asyncio's (``anyio.run`` uses asyncio).

A connection that the daemon closed while it sat idle (uvicorn drops idle keep-alive
connections after a few seconds) is noticed before reuse; if the close races the request and
nothing at all came back, the request is sent once more on a new connection: the daemon
closes only connections with no request in flight, so it never saw the first one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

import h11
import httpx

Origin = tuple[str, str, int]
READ_SIZE = 1 << 16


class _ClosedBeforeAnswer(Exception):
    """The connection ended before a single byte of the answer arrived."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    state: h11.Connection

    def reusable(self) -> bool:
        return (
            self.state.our_state is h11.IDLE
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        self.writer.close()


class LoopbackTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive to a local server, on asyncio streams and h11."""

    def __init__(self, *, max_idle: int = 8) -> None:
        self._max_idle = max_idle
        self._idle: dict[Origin, list[_Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        head = h11.Request(method=request.method, target=url.raw_path, headers=request.headers.raw)
        for attempt in (1, 2):
            connection = self._checkout(origin)
            reused = connection is not None
            if connection is None:
                connection = await _connect(origin, timeouts.get("connect"), request)
            try:
                response = await _exchange(connection, head, body, timeouts.get("read"), request)
            except _ClosedBeforeAnswer as closed:
                connection.close()
                if reused and attempt == 1:
                    continue
                raise httpx.RemoteProtocolError(
                    "the server closed the connection without answering", request=request
                ) from closed
            except BaseException:
                connection.close()
                raise
            self._checkin(origin, connection)
            return response
        raise AssertionError("unreachable")  # pragma: no cover (the loop returns or raises)

    def _checkout(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin, [])
        while idle:
            connection = idle.pop()
            if connection.reusable():
                return connection
            connection.close()
        return None

    def _checkin(self, origin: Origin, connection: _Connection) -> None:
        state = connection.state
        idle = self._idle.setdefault(origin, [])
        if (
            state.our_state is h11.DONE
            and state.their_state is h11.DONE
            and (len(idle) < self._max_idle)
        ):
            state.start_next_cycle()
            idle.append(connection)
        else:
            connection.close()

    async def aclose(self) -> None:
        connections = [c for idle in self._idle.values() for c in idle]
        self._idle.clear()
        for connection in connections:
            connection.close()
        for connection in connections:
            with contextlib.suppress(OSError):
                await connection.writer.wait_closed()


async def _connect(origin: Origin, timeout: float | None, request: httpx.Request) -> _Connection:
    scheme, host, port = origin
    context = ssl.create_default_context() if scheme == "https" else None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=context)
    except TimeoutError as error:
        raise httpx.ConnectTimeout(f"no connection within {timeout} s", request=request) from error
    except OSError as error:
        raise httpx.ConnectError(str(error), request=request) from error
    return _Connection(reader, writer, h11.Connection(h11.CLIENT))


async def _exchange(
    connection: _Connection,
    head: h11.Request,
    body: bytes,
    timeout: float | None,
    request: httpx.Request,
) -> httpx.Response:
    state = connection.state
    received = False
    status = 0
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []
    try:
        async with asyncio.timeout(timeout):
            out = state.send(head) or b""
            if body:
                out += state.send(h11.Data(data=body)) or b""
            connection.writer.write(out + (state.send(h11.EndOfMessage()) or b""))
            await connection.writer.drain()
            while True:
                event = state.next_event()
                if event is h11.NEED_DATA:
                    data = await connection.reader.read(READ_SIZE)
                    if not data and not received:
                        raise _ClosedBeforeAnswer
                    received = True
                    state.receive_data(data)
                elif isinstance(event, h11.Response):
                    status, headers = event.status_code, list(event.headers)
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    break
    except TimeoutError as error:
        raise httpx.ReadTimeout(f"no answer within {timeout} s", request=request) from error
    except (ConnectionError, h11.RemoteProtocolError) as error:
        if not received:
            raise _ClosedBeforeAnswer from error
        raise httpx.RemoteProtocolError(str(error), request=request) from error
    except OSError as error:
        raise httpx.ReadError(str(error), request=request) from error
    return httpx.Response(status, headers=headers, content=b"".join(chunks), request=request)
