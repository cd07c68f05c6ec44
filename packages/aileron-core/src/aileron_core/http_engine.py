"""The one HTTP engine for the daemon's upstream traffic: HTTP/1.1 as an httpx transport.

Every action run (:mod:`aileron_cli.daemon.egress.executor`), every gateway request
(:mod:`aileron_cli.daemon.gateway.proxy`) and every call to an attached enclave
(:mod:`aileron_cli.daemon.enclave.client`) goes through an ``HttpEngine`` (ADR 0025 records why
this engine and not a library's). Through httpx's default
transport (httpcore on anyio, with h11 parsing in pure Python) that exchange was most of the
daemon's own CPU per run (BENCHMARKS.md B4/B5/B9; profiles in the closing notes of the
benchmark issue). This transport does the same job on asyncio directly: an
``asyncio.Protocol`` per connection, httptools (llhttp, the C parser uvicorn already uses in
the daemon) to parse answers, the request head and a known-length body sent with one write.

Being an ``httpx.AsyncBaseTransport``, it keeps the callers speaking httpx requests and
responses (errors included: ``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``,
``WriteTimeout``, ``PoolTimeout``, ``ReadError``, ``WriteError``, ``RemoteProtocolError``),
and tests can still hand the callers any other transport.

What it does:

- **Connections** are kept alive per origin (scheme, host, port) and reused, most recently
  used first; an idle connection is dropped after ``keepalive_expiry`` seconds or when the
  server has closed it. At most ``max_connections`` are open at once; a request that finds
  none free waits up to the ``pool`` timeout (``PoolTimeout``), an idle connection to another
  origin being closed to make room. At most ``max_idle`` idle connections are kept.
- **Proxies and TLS** follow the engine's ``Network`` (:mod:`aileron_core.network`: the
  proxy variables, ``NO_PROXY``, ``SSL_CERT_FILE``/``SSL_CERT_DIR`` and ``[network]
  ca_bundle``), read once by the daemon; the engine itself reads no environment variable. An
  origin with a proxy is reached through a ``CONNECT`` tunnel, TLS to the origin running inside
  it: the proxy gets the ``CONNECT`` line (with ``Proxy-Authorization`` when the proxy URL has
  credentials) and then only the exchange's bytes, never a request to forward. A proxy that
  refuses the tunnel (407, 502, ...) or fails is a ``ConnectError`` naming the proxy (never its
  credentials) and the origin. A caller may pass its own ``ssl_context`` (the enclave client
  pins one certificate); the answer's ``network_stream`` extension gives ``get_extra_info``
  (``ssl_object``: the peer's certificate) as httpx's own transport does.
- **Stale connections**: a request sent on a reused keep-alive connection that the server had
  closed meanwhile (the connection breaks before one byte of answer) is sent again once on a
  fresh connection when it is idempotent (``GET``, ``HEAD``, ``PUT``, ``DELETE``, ``OPTIONS``,
  ``TRACE``) and its body is in memory; any other request fails as it would have.
- **Requests**: the head is written as the request's raw headers (httpx has added ``Host``
  and ``Content-Length``); a body of unknown length goes ``Transfer-Encoding: chunked``, as
  its headers say. A header name or value with a CR, LF or NUL is refused
  (``LocalProtocolError``) before anything is sent.
- **Answers** stream: the response is returned once its head has arrived, and its body is
  handed out as it arrives (``aiter_raw``). Reading pauses (TCP backpressure) while more than
  ``READ_BUFFER`` bytes wait for the reader. Informational (1xx) answers are skipped; a
  ``HEAD`` answer and 204/304 have no body; an answer with neither ``Content-Length`` nor
  chunked framing ends when the server closes. A connection goes back to the pool only when
  its answer was read to the end and both sides want to keep it; a response closed early
  (a body too large, a cancelled request) closes its connection.
- **Timeouts** come from the request's ``timeout`` extension (``connect``, ``read``,
  ``write``, ``pool``), as httpx sets them; ``read`` bounds each wait for more of the answer.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import httptools
import httpx

from aileron_core.network import Network, Proxy

__all__ = ["HttpEngine"]

Origin = tuple[str, str, int]

READ_BUFFER = 256 * 1024
"""Answer bytes buffered ahead of the reader before the socket's reading is paused."""

CLOSE_WAIT_S = 1.0
"""How long ``aclose`` waits for the idle connections' sockets to close."""

_DEFAULT_PORTS = {"http": 80, "https": 443}
_BAD_HEADER = re.compile(rb"[\r\n\x00]")
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
_TUNNEL_HEAD_LIMIT = 64 * 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: ([^\r\n]*))?\r\n")


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: at most one exchange at a time."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Done once the connection's socket is closed."""
        self.reused = False
        self._write_paused = False
        self._drained: asyncio.Future[None] | None = None
        self._begin(head_only=False)

    def _begin(self, *, head_only: bool) -> None:
        """Get ready to read the answer to a new request."""
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = False
        self._framed = False
        self._informational = False
        self.head_done = False
        self.complete = False
        self.failure: Exception | None = None
        self.answered = False
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # a stream transport

    def data_received(self, data: bytes) -> None:
        if self._over():
            self.close()  # a server talking out of turn (nothing was asked): never reused
            return
        self.answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols"))
        except httptools.HttpParserError as error:
            if self._over():  # bytes after a whole answer: keep the answer, drop the connection
                self.keep_alive = False
            else:
                self._fail(httpx.RemoteProtocolError(f"malformed answer: {error}"))
        if self._over():
            if not self.keep_alive or self.failure is not None:
                self.close()
            self._wake()

    def _over(self) -> bool:
        """Whether the current exchange's answer is complete or failed."""
        return self.complete or self.failure is not None

    def eof_received(self) -> bool:
        self.closed = True
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.gone.done():
            self.gone.set_result(None)
        unframed = self.head_done and not self._framed
        if unframed and exc is None and not self.complete and self.failure is None:
            self.complete = True  # an answer without framing ends with the connection
        elif not self.complete and self.failure is None:
            if not self.head_done:
                message = "the server closed the connection without answering"
            else:
                message = "the server closed the connection before the answer was complete"
            if exc is not None:
                self._fail(httpx.ReadError(f"{message}: {exc}"))
            else:
                self._fail(httpx.RemoteProtocolError(message))
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # --- httptools callbacks -----------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self.reason = status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._informational = True  # 100 Continue and the like: the answer comes next
            self.headers = []
            return
        self.status = status
        self.keep_alive = bool(self._parser.should_keep_alive())
        names = {name.lower() for name, _ in self.headers}
        no_body = self._head_only or status in (204, 304)
        self._framed = no_body or b"content-length" in names or b"transfer-encoding" in names
        self.head_done = True
        if self._head_only:
            # A HEAD answer has no body whatever its Content-Length says; the parser cannot be
            # told, so the exchange ends here and the next one gets a fresh parser.
            self.complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if not body:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > READ_BUFFER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self.complete = True

    # --- used by the transport ---------------------------------------------------------------

    def _fail(self, error: Exception) -> None:
        if self.failure is None:
            self.failure = error

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self, timeout: float | None) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._waiter
        except TimeoutError:
            raise httpx.ReadTimeout(f"no answer from the server within {timeout} s") from None
        finally:
            self._waiter = None

    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        if self.closed or self.transport.is_closing():
            raise httpx.WriteError("the connection was closed before the request was sent")
        self.transport.write(data)

    async def drain(self, timeout: float | None) -> None:
        if not self._write_paused or self.closed:
            return
        self._drained = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._drained
        except TimeoutError:
            raise httpx.WriteTimeout(f"could not send the request within {timeout} s") from None
        finally:
            self._drained = None
        if not self.usable():
            raise httpx.WriteError("the connection closed while the request was being sent")

    async def head(self, timeout: float | None) -> None:
        """Wait for the answer's head (raising the exchange's failure, if any)."""
        while not self.head_done and self.failure is None:
            await self._wait(timeout)
        if self.failure is not None and not self.head_done:
            raise self.failure

    async def body(self, timeout: float | None) -> bytes | None:
        """The next piece of the answer's body, or ``None`` once it is complete."""
        while not self._chunks:
            if self.failure is not None:
                raise self.failure
            if self.complete:
                return None
            await self._wait(timeout)
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = []
        self._buffered = 0
        if self._reading_paused and self.transport is not None and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return (
            self.complete
            and self.failure is None
            and self.keep_alive
            and not self._chunks
            and self.usable()
        )

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Body(httpx.AsyncByteStream):
    """An answer's body as it arrives; closing it hands the connection back or closes it."""

    def __init__(self, pool: HttpEngine, connection: _Connection, timeout: float | None) -> None:
        self._pool = pool
        self._connection = connection
        self._timeout = timeout
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (data := await self._connection.body(self._timeout)) is not None:
            yield data

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool._release(self._connection)


class HttpEngine(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive to any origin, on asyncio and httptools, through the
    ``network``'s proxies and with its trusted roots (see the module)."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_idle: int = 20,
        keepalive_expiry: float = 5.0,
        network: Network | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._network = network or Network()
        self._max_connections = max_connections
        self._max_idle = max_idle
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._idle_count = 0
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    # --- the pool ----------------------------------------------------------------------------

    def _checkout(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if connection.usable() and now - connection.idle_since < self._keepalive_expiry:
                connection.reused = True
                return connection
            self._forget(connection)
        return None

    def _forget(self, connection: _Connection) -> None:
        """Close ``connection`` and free its place."""
        connection.close()
        self._open -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def _release(self, connection: _Connection) -> None:
        """The exchange on ``connection`` is over: keep the connection idle, or close it."""
        if self._closed or not connection.reusable() or self._idle_count >= self._max_idle:
            self._forget(connection)
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.origin, []).append(connection)
        self._idle_count += 1
        while self._waiters:  # a waiter for another origin may close this one to make room
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def _evict_idle(self) -> bool:
        """Close the oldest idle connection (to any origin); whether there was one."""
        oldest: _Connection | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest.idle_since):
                oldest = idle[0]
        if oldest is None:
            return False
        self._idle[oldest.origin].remove(oldest)
        self._idle_count -= 1
        self._forget(oldest)
        return True

    async def _acquire(
        self, origin: Origin, request: httpx.Request, timeouts: dict[str, Any], *, fresh: bool
    ) -> _Connection:
        if self._closed:
            raise httpx.ConnectError("the transport is closed", request=request)
        deadline = None
        pool_timeout = timeouts.get("pool")
        while True:
            connection = None if fresh else self._checkout(origin)
            if connection is not None:
                return connection
            if self._open < self._max_connections or self._evict_idle():
                self._open += 1
                try:
                    return await self._connect(origin, request, timeouts.get("connect"))
                except BaseException:
                    self._open -= 1
                    raise
            if deadline is None and pool_timeout is not None:
                deadline = time.monotonic() + pool_timeout
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(None if deadline is None else _loop_time(deadline)):
                    await waiter
            except TimeoutError:
                raise httpx.PoolTimeout(
                    f"no connection free within {pool_timeout} s", request=request
                ) from None
            finally:
                if not waiter.done():
                    waiter.cancel()

    async def _connect(
        self, origin: Origin, request: httpx.Request, timeout: float | None
    ) -> _Connection:
        scheme, host, port = origin
        proxy = self._network.proxy_for(scheme, host, port)
        try:
            async with asyncio.timeout(timeout):
                if proxy is None:
                    return await self._direct(origin)
                return await self._tunnel(origin, proxy)
        except TimeoutError:
            via = f" through the proxy {proxy.display}" if proxy is not None else ""
            raise httpx.ConnectTimeout(
                f"no connection to {host}:{port}{via} within {timeout} s", request=request
            ) from None
        except httpx.ConnectError as error:
            error.request = request
            raise
        except (OSError, ssl.SSLError, ssl.CertificateError) as error:
            reason = str(error) or type(error).__name__
            if proxy is not None:
                reason = f"{reason} (through the proxy {proxy.display})"
            raise httpx.ConnectError(reason, request=request) from error

    async def _direct(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        context = self._tls() if scheme == "https" else None
        transport, connection = await asyncio.get_running_loop().create_connection(
            lambda: _Connection(origin),
            host,
            port,
            ssl=context,
            server_hostname=host if context is not None else None,
        )
        # uvloop may call connection_made only after create_connection has returned.
        connection.transport = connection.transport or transport
        return connection

    async def _tunnel(self, origin: Origin, proxy: Proxy) -> _Connection:
        """A connection to ``origin`` through a ``CONNECT`` tunnel of ``proxy``."""
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        try:
            raw, tunnel = await loop.create_connection(_Tunnel, proxy.host, proxy.port)
        except OSError as error:
            raise httpx.ConnectError(
                f"could not connect to the proxy {proxy.display}: {error}"
            ) from error
        try:
            target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            head = [f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode("ascii")]
            if proxy.authorization is not None:
                head.append(b"Proxy-Authorization: " + proxy.authorization + b"\r\n")
            raw.write(b"".join(head) + b"\r\n")
            status, reason = await tunnel.answer()
            if status is None:
                raise httpx.ConnectError(f"the proxy {proxy.display} {reason}")
            if not 200 <= status < 300:
                raise httpx.ConnectError(
                    f"the proxy {proxy.display} refused the tunnel to {target}:"
                    f" {status} {reason}".rstrip()
                )
            connection = _Connection(origin)
            if scheme == "https":
                secure = await loop.start_tls(raw, connection, self._tls(), server_hostname=host)
                if secure is None:  # pragma: no cover (the loop closed the transport)
                    raise httpx.ConnectError(f"the proxy {proxy.display} closed the tunnel")
                connection.transport = secure  # a stream transport
            else:
                raw.set_protocol(connection)
                connection.connection_made(raw)
            return connection
        except BaseException:
            raw.close()
            raise

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = self._network.ssl_context()
        return self._ssl_context

    # --- one exchange ------------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        origin = (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        head = _head(request)
        replayable = request.method in _IDEMPOTENT and isinstance(request.stream, httpx.ByteStream)
        fresh = False
        while True:
            connection = await self._acquire(origin, request, timeouts, fresh=fresh)
            try:
                connection._begin(head_only=request.method == "HEAD")
                await _send(connection, request, head, timeouts.get("write"))
                await connection.head(timeouts.get("read"))
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as error:
                self._forget(connection)
                if connection.reused and not connection.answered and replayable and not fresh:
                    fresh = True  # the server had closed the idle connection: once more, anew
                    continue
                error.request = request
                raise
            except httpx.RequestError as error:
                self._forget(connection)
                error.request = request
                raise
            except BaseException:
                self._forget(connection)
                raise
            break
        return httpx.Response(
            connection.status,
            headers=connection.headers,
            stream=_Body(self, connection, timeouts.get("read")),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": connection.reason,
                "network_stream": _NetworkInfo(connection.transport),
            },
            request=request,
        )

    async def aclose(self) -> None:
        """Close the idle connections and wait (briefly) until their sockets are closed: the
        loop may end right after (no TLS close_notify is waited for: every answer was framed)."""
        self._closed = True
        gone = []
        for idle in self._idle.values():
            for connection in idle:
                connection.closed = True
                if connection.transport is not None:
                    connection.transport.abort()
                    gone.append(connection.gone)
        self._idle.clear()
        self._idle_count = 0
        if gone:
            await asyncio.wait(gone, timeout=CLOSE_WAIT_S)


class _Tunnel(asyncio.Protocol):
    """A connection to a proxy until its answer to ``CONNECT`` has arrived."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._answered: asyncio.Future[tuple[int | None, str]] = (
            asyncio.get_running_loop().create_future()
        )

    def data_received(self, data: bytes) -> None:
        if self._answered.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _TUNNEL_HEAD_LIMIT:
                self._answer(None, "sent an answer to CONNECT that is too long")
            return
        if end + 4 != len(self._buffer):  # nothing may come before the client speaks
            self._answer(None, "sent bytes after its answer to CONNECT")
            return
        match = _STATUS_LINE.match(self._buffer)
        if match is None:
            self._answer(None, "sent a malformed answer to CONNECT")
            return
        reason = (match.group(2) or b"").decode("latin-1")[:100]
        self._answer(int(match.group(1)), "".join(c for c in reason if c.isprintable()))

    def connection_lost(self, exc: Exception | None) -> None:
        self._answer(None, "closed the connection before answering CONNECT")

    def _answer(self, status: int | None, reason: str) -> None:
        if not self._answered.done():
            self._answered.set_result((status, reason))

    async def answer(self) -> tuple[int | None, str]:
        """The proxy's status and reason phrase, or ``None`` and what went wrong."""
        return await self._answered


class _NetworkInfo:
    """The ``network_stream`` extension of an answer: what the connection's transport knows
    (``ssl_object``, ``peername``, ...), as ``get_extra_info``."""

    def __init__(self, transport: asyncio.Transport | None) -> None:
        self._transport = transport

    def get_extra_info(self, name: str) -> Any:
        return None if self._transport is None else self._transport.get_extra_info(name)


def _loop_time(deadline: float) -> float:
    """A ``time.monotonic`` deadline on the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())


def _head(request: httpx.Request) -> bytes:
    """The request line and headers, refusing a header that would split the head."""
    lines = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        if _BAD_HEADER.search(name) or _BAD_HEADER.search(value):
            raise httpx.LocalProtocolError(
                "a request header contains CR, LF or NUL", request=request
            )
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


async def _send(
    connection: _Connection, request: httpx.Request, head: bytes, timeout: float | None
) -> None:
    """Write the request: head and a known body in one write, or the body as it comes."""
    stream = request.stream
    if isinstance(stream, httpx.ByteStream):
        connection.write(head + request.content)
        await connection.drain(timeout)
        return
    chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
    connection.write(head)
    assert isinstance(stream, httpx.AsyncByteStream)
    async for chunk in stream:
        if chunk:
            connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            await connection.drain(timeout)
    if chunked:
        connection.write(b"0\r\n\r\n")
    await connection.drain(timeout)
