"""Brokered credentials: the egress proxy swaps a session's sentinels for real secrets on the
hosts a binding is exposed to (issue #19, ADR 0028).

A sandboxed session that exposes a binding gets a *sentinel* (:func:`new_sentinel`, random,
per session and binding) in the container variable the binding's :class:`Exposure` names. Its
egress proxy hands a ``CONNECT`` to an exposed ``host:port`` to :meth:`Broker.serve`, which
terminates TLS with the session's CA (:class:`~.session_ca.SessionCA`) and relays each
HTTP/1.1 request (``h11`` on both sides) over one verified TLS connection to the real upstream:

- a request holding a sentinel (in a header value, raw or inside ``Basic`` credentials) of a
  binding exposed to this host and port gets the binding's *current* secret in the way its
  exposure's form says (``replace``/``header``/``basic``); ``binding.used`` is audited;
- a sentinel of a binding not exposed to this host and port is refused (403,
  ``egress.sentinel_misuse``) and not forwarded — :meth:`Broker.misuse` is the same check for
  the proxy's own ``CONNECT`` and ``http://`` heads;
- every form of every secret injected on the connection is redacted (``[REDACTED]`` padded
  with ``*`` to the form's length, :func:`~aileron_core.secret_forms.mask`) from the status
  line, the headers and the body streaming back (``gzip``/``deflate`` decoded first;
  ``identity`` is asked for); the response is re-framed since redaction changes lengths.

Hosts not exposed are never intercepted: the proxy tunnels them as before.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import secrets as random
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence

import attrs
import h11

from aileron_cli.daemon.egress.proxies import (
    CHUNK,
    CONNECT_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    MAX_HEAD_BYTES,
    EventSink,
    IPAddress,
)
from aileron_cli.daemon.egress.session_ca import SessionCA
from aileron_cli.daemon.egress.tls_stream import TLSStream
from aileron_cli.daemon.store.bindings import Exposure
from aileron_core.redaction import Secret
from aileron_core.secret_forms import SecretForms, StreamRedactor, compiled_forms, mask

__all__ = ["Broker", "Brokered", "SecretSource", "new_sentinel"]

log = logging.getLogger("aileron.daemon")

SecretSource = Callable[[str], Awaitable[Secret]]
"""Binding name → its current secret; raises (a ``DaemonError``) when it cannot be had now
(vault locked, binding revoked, escrowed in the enclave)."""

SENTINEL_PREFIX = "aileron-sentinel-"
_PREFIX = SENTINEL_PREFIX.encode()
_AUTHORIZATION = frozenset({b"authorization", b"proxy-authorization"})
_REQUEST_DROPPED = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"}
)
_RESPONSE_DROPPED = _REQUEST_DROPPED | {b"transfer-encoding"}
_DECODED = frozenset({b"gzip", b"x-gzip", b"deflate"})


def new_sentinel() -> str:
    """A fresh sentinel: ``aileron-sentinel-`` and 160 random bits in lowercase base32."""
    return SENTINEL_PREFIX + base64.b32encode(random.token_bytes(20)).decode().lower()


@attrs.frozen
class Brokered:
    """One binding exposed to one session."""

    binding: str
    exposure: Exposure
    sentinel: str


def _basic_credentials(value: bytes) -> bytes | None:
    """The decoded credentials of a ``Basic`` header value, or ``None``."""
    scheme, _, rest = value.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        return base64.b64decode(rest.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _holds(value: bytes, sentinel: bytes) -> bool:
    """Whether a header value holds ``sentinel`` (any case), raw or inside ``Basic``."""
    lowered = value.lower()
    if sentinel in lowered:
        return True
    decoded = _basic_credentials(value)
    return decoded is not None and sentinel in decoded.lower()


def _head_fields(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The request line and the ``(lower-case name, value)`` headers of a raw request head."""
    lines = head.split(b"\r\n")
    fields = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if colon:
            fields.append((name.strip().lower(), value.strip()))
    return lines[0], fields


def _inject(
    headers: Iterable[tuple[bytes, bytes]], brokered: Brokered, secret: bytes
) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``brokered``'s sentinel turned into ``secret`` as its form says."""
    sentinel = brokered.sentinel.encode()
    exposure = brokered.exposure
    if exposure.form == "replace":
        out = []
        for name, value in headers:
            decoded = _basic_credentials(value) if name in _AUTHORIZATION else None
            if decoded is not None and sentinel in decoded:
                value = b"Basic " + base64.b64encode(decoded.replace(sentinel, secret))
            out.append((name, value.replace(sentinel, secret)))
        return out
    template = (exposure.template or "").encode()
    if exposure.form == "header":
        header, _, pattern = template.partition(b":")
        target, value = header.strip().lower(), pattern.strip().replace(b"{}", secret)
    else:  # basic
        target = b"authorization"
        value = b"Basic " + base64.b64encode(template.replace(b"{}", secret))
    kept = [(n, v) for n, v in headers if n != target and not _holds(v, sentinel)]
    return [*kept, (target, value)]


class _Refused(Exception):
    """An answer the broker gives instead of forwarding (403, 502, 503)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Broker:
    """The brokered bindings of one session, its CA, and the relay for intercepted tunnels."""

    def __init__(
        self,
        session_id: str,
        brokered: Sequence[Brokered],
        *,
        secrets: SecretSource,
        upstream_tls: ssl.SSLContext,
        sink: EventSink,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.session_id = session_id
        self.brokered = tuple(brokered)
        self.secrets = secrets
        self.upstream_tls = upstream_tls
        self.sink = sink
        self.idle_timeout_s = idle_timeout_s
        self._exposed = {
            (b.binding, pair) for b in self.brokered for pair in b.exposure.host_ports()
        }
        self._host_ports = {pair for _, pair in self._exposed}
        names = sorted({name for name, _ in self._host_ports})
        self._ca: SessionCA | None = SessionCA.create(session_id, names)
        self.ca_pem: bytes = self._ca.cert_pem
        self._context: ssl.SSLContext | None = self._ca.server_context()
        self._tunnels: set[_Tunnel] = set()

    def intercepts(self, host: str, port: int) -> bool:
        """Whether ``host:port`` is exposed by some brokered binding."""
        return (host, port) in self._host_ports

    def exposes(self, brokered: Brokered, host: str, port: int) -> bool:
        return (brokered.binding, (host, port)) in self._exposed

    def found(self, target: bytes, headers: Iterable[tuple[bytes, bytes]]) -> list[Brokered]:
        """The brokered bindings whose sentinel is in ``target`` or a header value."""
        values = [target, *(value for _, value in headers)]
        if not any(_PREFIX in v.lower() or _basic_credentials(v) for v in values):
            return []
        return [b for b in self.brokered if any(_holds(v, b.sentinel.encode()) for v in values)]

    def misuse(self, head: bytes, host: str, port: int) -> str | None:
        """The binding whose sentinel is in this request head (raw or inside ``Basic``
        credentials) although its exposure does not list ``host:port``; ``None`` otherwise."""
        request_line, headers = _head_fields(head)
        for brokered in self.found(request_line, headers):
            if not self.exposes(brokered, host, port):
                return brokered.binding
        return None

    async def serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        port: int,
        addresses: Sequence[IPAddress],
    ) -> tuple[int, int]:
        """Serve one intercepted tunnel (the proxy has answered ``200 Connection
        Established``): TLS with the session CA toward the agent, each request relayed to the
        upstream; ``(bytes_up, bytes_down)`` of the decrypted traffic."""
        if self._context is None:
            raise RuntimeError("this broker is closed")
        agent = TLSStream(reader, writer, self._context)
        try:
            await asyncio.wait_for(agent.handshake(), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ssl.SSLError) as error:
            log.info("session %s: agent TLS to %s failed: %r", self.session_id, host, error)
            return 0, 0
        tunnel = _Tunnel(self, agent, host, port, addresses)
        self._tunnels.add(tunnel)
        try:
            await tunnel.run()
        except (OSError, TimeoutError) as error:  # a peer that left, or went quiet
            log.info(
                "session %s: brokered connection to %s:%s ended (%s)",
                self.session_id,
                host,
                port,
                type(error).__name__,
            )
        except Exception as error:  # any failure closes this connection only; no message:
            # an exception's text may hold a header value, and so a secret
            log.warning(
                "session %s: brokered connection to %s:%s failed (%s)",
                self.session_id,
                host,
                port,
                type(error).__name__,
            )
        finally:
            self._tunnels.discard(tunnel)
            tunnel.close_upstream()
            with contextlib.suppress(Exception):
                agent.close_notify()
        return tunnel.bytes_up, tunnel.bytes_down

    def close(self) -> None:
        """Forget the CA's keys and the server context (no new tunnel can be served) and cut
        the upstream connections of open tunnels (the proxy cuts their agents' side)."""
        if self._ca is not None:
            self._ca.forget()
        self._ca = None
        self._context = None
        for tunnel in list(self._tunnels):
            tunnel.close_upstream()

    async def event(self, type: str, **payload: object) -> None:
        try:
            await self.sink(type, dict(payload))
        except Exception as error:  # an audit failure is the audit log's to report
            log.warning("session %s: could not record %s: %r", self.session_id, type, error)


@attrs.define(eq=False)
class _Upstream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    conn: h11.Connection = attrs.field(factory=lambda: h11.Connection(h11.CLIENT))


class _Tunnel:
    """One intercepted connection: h11 server toward the agent, h11 client upstream."""

    def __init__(
        self,
        broker: Broker,
        agent: TLSStream,
        host: str,
        port: int,
        addresses: Sequence[IPAddress],
    ) -> None:
        self.broker = broker
        self.agent = agent
        self.host = host
        self.port = port
        self.addresses = tuple(addresses)
        self.client = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self.upstream: _Upstream | None = None
        self.forms: dict[str, SecretForms] = {}
        """The forms of every secret injected on this connection (redacted from answers)."""
        self.bytes_up = 0
        self.bytes_down = 0
        self.counted = (0, 0)
        """``(bytes_up, bytes_down)`` when the current request began."""
        self.last = time.monotonic()

    # --- reading and writing -------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader | TLSStream) -> bytes:
        idle = self.broker.idle_timeout_s
        while True:
            try:
                data = await asyncio.wait_for(reader.read(CHUNK), idle)
            except TimeoutError:
                if time.monotonic() - self.last < idle:
                    continue  # the other direction is busy
                raise
            self.last = time.monotonic()
            return data

    async def _client_event(self) -> h11.Event:
        while True:
            event = self.client.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            self.client.receive_data(await self._read(self.agent))

    async def _upstream_event(self, upstream: _Upstream) -> h11.Event:
        while True:
            event = upstream.conn.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            upstream.conn.receive_data(await self._read(upstream.reader))

    async def _to_client(self, event: h11.Event) -> None:
        data = self.client.send(event)
        if data:
            self.agent.write(data)
            self.bytes_down += len(data)
            await asyncio.wait_for(self.agent.drain(), self.broker.idle_timeout_s)
            self.last = time.monotonic()

    async def _to_upstream(self, upstream: _Upstream, event: h11.Event) -> None:
        data = upstream.conn.send(event)
        if data:
            upstream.writer.write(data)
            self.bytes_up += len(data)
            await asyncio.wait_for(upstream.writer.drain(), self.broker.idle_timeout_s)
            self.last = time.monotonic()

    async def _answer(self, status: int, message: str) -> None:
        """A plain-text answer of the broker's own (the connection closes after it)."""
        if self.client.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return  # IDLE: the agent's head was malformed, and h11 lets a server answer it
        body = (message + "\n").encode()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await self._to_client(h11.Response(status_code=status, headers=headers))
        await self._to_client(h11.Data(data=body))
        await self._to_client(h11.EndOfMessage())

    def close_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.writer.transport.abort()
            self.upstream = None

    # --- the exchange ----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve requests until the agent closes, an error, or a refusal."""
        while True:
            try:
                event = await self._client_event()
            except h11.RemoteProtocolError as error:
                status = error.error_status_hint
                await self._answer(status, "malformed or oversized request head")
                return
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed
            if not await self._exchange(event):
                return
            if self.client.our_state is h11.DONE and self.client.their_state is h11.DONE:
                self.client.start_next_cycle()
            else:
                return

    async def _exchange(self, request: h11.Request) -> bool:
        """Relay one request and its answer; whether the connection may serve another."""
        started = time.monotonic()
        self.counted = (self.bytes_up, self.bytes_down)
        method = request.method.decode("ascii", "replace")
        path = request.target.partition(b"?")[0].decode("latin-1")
        head = len(request.method) + len(request.target) + 12
        if head + sum(len(n) + len(v) + 4 for n, v in request.headers) > MAX_HEAD_BYTES:
            # h11 caps only a head that arrives in pieces; one read may bring a whole one
            await self._answer(431, "request head too large")
            return False
        for brokered in self.broker.found(request.target, request.headers):
            if not self.broker.exposes(brokered, self.host, self.port):
                reason = f"sentinel of {brokered.binding} is not exposed to {self.host}"
                await self.broker.event(
                    "egress.sentinel_misuse",
                    binding=brokered.binding,
                    host=self.host,
                    port=self.port,
                    method=method,
                    reason=reason,
                )
                await self._answer(403, f"blocked by Aileron: {reason}:{self.port}")
                return False
        headers = [
            (name, value)
            for name, value in request.headers
            if name not in _REQUEST_DROPPED
            and not name.startswith(b"proxy-")
            and name != b"accept-encoding"
        ]
        found = self.broker.found(b"", headers)  # the target's sentinel is not replaced
        for brokered in found:
            try:
                secret = await self.broker.secrets(brokered.binding)
            except Exception as error:
                first = (str(error).splitlines() or [type(error).__name__])[0][:200]
                reason = f"cannot use {brokered.binding} now: {first}"
                await self._used(found, method, path, 503, started, error=reason)
                await self._answer(503, f"Aileron: {reason}")
                return False
            forms = compiled_forms(secret.value)
            if forms is not None:
                self.forms[secret.value] = forms
            headers = _inject(headers, brokered, secret.value.encode())
        headers.append((b"accept-encoding", b"identity"))
        try:
            return await self._relay(request, headers, method, path, found, started)
        except _Refused as refused:
            await self._used(found, method, path, refused.status, started, error=refused.message)
            await self._answer(refused.status, refused.message)
            return False

    async def _connect(self) -> _Upstream:
        if self.upstream is not None:
            state = self.upstream.conn.our_state
            if state is h11.IDLE and not self.upstream.reader.at_eof():
                return self.upstream
            self.close_upstream()
        error_text = "no address"
        for address in self.addresses:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        str(address),
                        self.port,
                        ssl=self.broker.upstream_tls,
                        server_hostname=self.host,
                        limit=4 * CHUNK,
                    ),
                    CONNECT_TIMEOUT_S,
                )
            except ssl.SSLCertVerificationError as error:
                raise _Refused(
                    502,
                    f"{self.host}:{self.port}: the upstream's certificate is not trusted "
                    f"({error.verify_message})",
                ) from None
            except (OSError, TimeoutError) as error:
                error_text = f"{address}: {getattr(error, 'strerror', None) or error!r}"
                continue
            self.upstream = _Upstream(reader, writer)
            return self.upstream
        raise _Refused(502, f"{self.host}:{self.port} cannot connect: {error_text}")

    async def _relay(
        self,
        request: h11.Request,
        headers: list[tuple[bytes, bytes]],
        method: str,
        path: str,
        found: list[Brokered],
        started: float,
    ) -> bool:
        upstream = await self._connect()
        try:
            await self._to_upstream(
                upstream,
                h11.Request(method=request.method, target=request.target, headers=headers),
            )
        except h11.LocalProtocolError:  # e.g. a secret that is not a valid header value
            raise _Refused(502, "the request could not be sent upstream") from None
        except (OSError, TimeoutError):
            raise _Refused(502, f"{self.host}:{self.port} closed the connection") from None
        body = asyncio.create_task(self._request_body(upstream))
        status = 502
        try:
            status = await self._response(upstream, method)
        finally:
            complete = body.done() and not body.cancelled() and body.exception() is None
            if not body.done():
                body.cancel()
            with contextlib.suppress(BaseException):
                await body
            await self._used(found, method, path, status, started)
        if upstream.conn.our_state is h11.DONE and upstream.conn.their_state is h11.DONE:
            upstream.conn.start_next_cycle()
        else:
            self.close_upstream()
        return complete

    async def _request_body(self, upstream: _Upstream) -> None:
        while True:
            event = await self._client_event()
            if isinstance(event, h11.Data | h11.EndOfMessage):
                await self._to_upstream(upstream, event)
            if isinstance(event, h11.EndOfMessage):
                return
            if isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the agent closed in the middle of a request")

    async def _response(self, upstream: _Upstream, method: str) -> int:
        """Relay the upstream's answer (redacted); its status."""
        while True:
            try:
                event = await self._upstream_event(upstream)
            except (h11.RemoteProtocolError, OSError) as error:
                raise _Refused(
                    502, f"{self.host}:{self.port} answered badly ({type(error).__name__})"
                ) from None
            if isinstance(event, h11.InformationalResponse):
                if event.status_code == 100 and self.client.they_are_waiting_for_100_continue:
                    await self._to_client(h11.InformationalResponse(status_code=100, headers=[]))
                continue
            if isinstance(event, h11.Response):
                break
            raise _Refused(502, f"{self.host}:{self.port} closed without an answer")
        status = event.status_code
        no_body = method == "HEAD" or status in (204, 304)
        decoder = None
        headers = []
        for name, value in event.headers:
            if name in _RESPONSE_DROPPED or (name == b"content-length" and not no_body):
                continue
            if name == b"content-encoding" and not no_body:
                encoding = value.strip().lower()
                if encoding in _DECODED:
                    decoder = _Inflater()
                elif encoding != b"identity":
                    shown = encoding.decode("latin-1")[:40]
                    raise _Refused(502, f"Aileron cannot inspect {shown!r} content")
                continue
            headers.append((name, self._redact(value)))
        reason = self._redact(event.reason)
        await self._to_client(h11.Response(status_code=status, headers=headers, reason=reason))
        chain = [StreamRedactor(forms) for forms in self.forms.values()]
        while True:
            try:
                event = await self._upstream_event(upstream)
            except h11.RemoteProtocolError:
                raise ConnectionError("the upstream's body is malformed") from None
            if isinstance(event, h11.Data):
                data = bytes(event.data)
                pieces = decoder.pieces(data) if decoder is not None else iter([data])
                for piece in pieces:
                    for redactor in chain:
                        piece = redactor.feed(piece)
                    if piece:
                        await self._to_client(h11.Data(data=piece))
            elif isinstance(event, h11.EndOfMessage):
                tail = decoder.flush() if decoder is not None else b""
                for redactor in chain:
                    tail = redactor.feed(tail) + redactor.flush()
                if tail:
                    await self._to_client(h11.Data(data=tail))
                await self._to_client(h11.EndOfMessage())
                return status
            else:
                raise ConnectionError("the upstream closed in the middle of an answer")

    def _redact(self, value: bytes) -> bytes:
        for forms in self.forms.values():
            value = forms.sub_bytes(mask, value)
        return value

    async def _used(
        self,
        found: list[Brokered],
        method: str,
        path: str,
        status: int,
        started: float,
        error: str | None = None,
    ) -> None:
        for brokered in found:
            payload: dict[str, object] = {
                "binding": brokered.binding,
                "host": self.host,
                "port": self.port,
                "method": method,
                "path": path,
                "status": status,
                "bytes_up": self.bytes_up - self.counted[0],
                "bytes_down": self.bytes_down - self.counted[1],
                "ms": round((time.monotonic() - started) * 1000),
            }
            if error is not None:
                payload["error"] = error
            await self.broker.event("binding.used", **payload)


class _Inflater:
    """A ``gzip`` or ``deflate`` (zlib) body, inflated as it streams."""

    def __init__(self) -> None:
        self._decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)  # either header

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """``data`` inflated in pieces of at most ``CHUNK`` bytes (a small body may inflate
        to a huge one: never all at once)."""
        while data:
            yield self._decoder.decompress(data, CHUNK)
            data = self._decoder.unconsumed_tail

    def flush(self) -> bytes:
        return self._decoder.flush()
