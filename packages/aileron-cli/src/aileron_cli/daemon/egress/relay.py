"""The relay of one intercepted tunnel: the broker's HTTP/1.1 between an agent and the real
upstream (issue #19, ADR 0028).

``h11`` speaks the server's part toward the agent (over :class:`~.tls_stream.TLSStream` with
the session CA, kept alive) and the client's part toward the upstream (one TLS connection,
verified with the daemon's roots for the CONNECT's name, reused while it lives). Each request:

- a sentinel of a binding not exposed to this host and port → 403 and
  ``egress.sentinel_misuse``, not forwarded;
- a request that names another host than the tunnel's (``Host``, an absolute-form target, or
  user info in one) → 421, since a front-end serving several names may route by what the
  request names; a target neither origin nor absolute form, or ``CONNECT`` → 400/405; both
  ``Content-Length`` and ``Transfer-Encoding`` (smuggling) → 400; none is forwarded. An
  absolute-form target goes upstream in origin form, and a request without ``Host``
  (HTTP/1.0) gets the tunnel's; a chunked request's trailers are dropped (not looked into);
- the sentinels of bindings exposed here → the *current* secrets (:attr:`Broker.secrets
  <.broker.Broker.secrets>`, per request; a failure is 503 naming the binding) in the way each
  exposure's form says; ``Accept-Encoding: identity`` is asked for; hop-by-hop and ``Proxy-*``
  headers are dropped; ``binding.used`` is audited once the answer is relayed;
- the answer streams back with every form of every secret injected in the session (on any of
  its connections: :attr:`Broker.forms <.broker.Broker.forms>`) redacted
  (:func:`~aileron_core.secret_forms.mask`) from the reason, the headers and the body (a
  ``gzip``/``deflate`` body is inflated first; another coding, or more than one, is 502),
  re-framed by h11 (chunked: chunk extensions, trailers and 1xx heads but ``100 Continue`` do
  not reach the agent) since redaction changes lengths; ``HEAD``, 204 and 304 keep their
  headers.

Bodies stream both ways with backpressure; nothing is held whole. An upstream that cannot be
reached or is not trusted is 502 with a reason (never a secret).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import zlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import attrs
import h11

from aileron_cli.daemon.egress.proxies import (
    CHUNK,
    CONNECT_TIMEOUT_S,
    MAX_HEAD_BYTES,
    IPAddress,
    parse_authority,
)
from aileron_cli.daemon.egress.sentinels import Brokered, carries, inject
from aileron_cli.daemon.egress.tls_stream import TLSStream
from aileron_core.secret_forms import StreamRedactor, compiled_forms, mask

if TYPE_CHECKING:
    from aileron_cli.daemon.egress.broker import Broker

__all__ = ["Tunnel"]

_REQUEST_DROPPED = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"}
)
_RESPONSE_DROPPED = _REQUEST_DROPPED | {b"transfer-encoding"}
_DECODED = frozenset({b"gzip", b"x-gzip", b"deflate"})


class _Refused(Exception):
    """An answer the broker gives instead of forwarding (403, 502, 503)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@attrs.define(eq=False)
class _Upstream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    conn: h11.Connection = attrs.field(factory=lambda: h11.Connection(h11.CLIENT))


class Tunnel:
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
        self.bytes_up = 0
        self.bytes_down = 0
        self.counted = (0, 0)
        self.status: int | None = None
        """The status of the answer being relayed, once its head went to the agent."""
        """``(bytes_up, bytes_down)`` when the current request began."""
        self.last = time.monotonic()

    # --- reading and writing -------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader | TLSStream) -> bytes:
        idle = self.broker.idle_timeout_s
        while True:
            try:
                async with asyncio.timeout(idle):  # no task per read, unlike wait_for
                    data = await reader.read(CHUNK)
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
            async with asyncio.timeout(self.broker.idle_timeout_s):
                await self.agent.drain()
            self.last = time.monotonic()

    async def _to_upstream(self, upstream: _Upstream, event: h11.Event) -> None:
        data = upstream.conn.send(event)
        if data:
            upstream.writer.write(data)
            self.bytes_up += len(data)
            async with asyncio.timeout(self.broker.idle_timeout_s):
                await upstream.writer.drain()
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
        head = len(request.method) + len(request.target) + 12
        if head + sum(len(n) + len(v) + 4 for n, v in request.headers) > MAX_HEAD_BYTES:
            # h11 caps only a head that arrives in pieces; one read may bring a whole one
            await self._answer(431, "request head too large")
            return False
        carried = self.broker.found(request.method + b" " + request.target, request.headers)
        for brokered in carried:
            if not self.broker.exposes(brokered, self.host, self.port):
                reason = f"sentinel of {brokered.binding} is not exposed to {self.host}"
                await self._misuse(brokered, method, reason)
                await self._answer(403, f"blocked by Aileron: {reason}:{self.port}")
                return False
        try:
            target = self._origin_target(request)
        except _Refused as refused:
            if refused.status == 421:  # the sentinels were sent toward another host
                for brokered in carried:
                    await self._misuse(brokered, method, refused.message)
            await self._answer(refused.status, refused.message)
            return False
        path = target.partition(b"?")[0].decode("latin-1")
        headers = [
            (name, value)
            for name, value in request.headers
            if name not in _REQUEST_DROPPED
            and not name.startswith(b"proxy-")
            and name != b"accept-encoding"
        ]
        # The sentinels to swap: in the headers as each form takes them (never the target's).
        found = [b for b in self.broker.found(b"", headers) if carries(headers, b)]
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
                self.broker.forms[secret.value] = forms
            headers = inject(headers, brokered, secret.value.encode())
        headers.append((b"accept-encoding", b"identity"))
        if not any(name == b"host" for name, _ in headers):  # HTTP/1.0
            headers.insert(0, (b"host", self._authority().encode()))
        try:
            return await self._relay(target, request, headers, method, path, found, started)
        except _Refused as refused:
            await self._used(found, method, path, refused.status, started, error=refused.message)
            await self._answer(refused.status, refused.message)
            return False

    async def _misuse(self, brokered: Brokered, method: str, reason: str) -> None:
        await self.broker.event(
            "egress.sentinel_misuse",
            binding=brokered.binding,
            host=self.host,
            port=self.port,
            method=method,
            reason=reason,
        )

    def _authority(self) -> str:
        """This tunnel's ``host[:port]`` as a ``Host`` header says it."""
        return self.host if self.port == 443 else f"{self.host}:{self.port}"

    def _names_this_tunnel(self, authority: bytes) -> bool:
        """Whether ``authority`` names this tunnel's host (and its port, if it names one)."""
        try:
            named = parse_authority(authority.decode("latin-1"), self.port)
            return named == (self.host, self.port)
        except ValueError:  # not a host name
            return False

    def _origin_target(self, request: h11.Request) -> bytes:
        """The target to send upstream; :class:`_Refused` when the request names another
        host than the tunnel's (a front-end shared by several names may route by what the
        request names, and the secret would go there), or is not one the broker relays."""
        if {b"transfer-encoding", b"content-length"} <= {name for name, _ in request.headers}:
            raise _Refused(400, "Content-Length and Transfer-Encoding together")
        for name, value in request.headers:
            if name == b"host" and not self._names_this_tunnel(value):
                raise _Refused(421, f"this connection is for {self._authority()} only")
        if request.method == b"CONNECT":
            raise _Refused(405, "CONNECT inside a brokered tunnel is not relayed")
        target = request.target
        if target.startswith(b"/") or (target == b"*" and request.method == b"OPTIONS"):
            return target
        scheme, separator, rest = target.partition(b"://")
        if not separator or scheme.lower() not in (b"https", b"http"):
            raise _Refused(400, "a request in this tunnel needs an origin-form target (/path)")
        end = min([i for i in (rest.find(c) for c in b"/?#") if i >= 0], default=len(rest))
        authority, origin = rest[:end], rest[end:].partition(b"#")[0]
        if b"@" in authority or not self._names_this_tunnel(authority):
            raise _Refused(421, f"this connection is for {self._authority()} only")
        return origin if origin.startswith(b"/") else b"/" + origin

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
        target: bytes,
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
                h11.Request(method=request.method, target=target, headers=headers),
            )
        except h11.LocalProtocolError:  # e.g. a secret that is not a valid header value
            raise _Refused(502, "the request could not be sent upstream") from None
        except (OSError, TimeoutError):
            raise _Refused(502, f"{self.host}:{self.port} closed the connection") from None
        body = asyncio.create_task(self._request_body(upstream))
        self.status = None
        try:
            status = await self._response(upstream, method)
        except _Refused:
            raise  # recorded and answered by the caller
        except Exception:  # cut in the middle: recorded with what the agent was sent
            cut = "the connection was cut during the answer"
            await self._used(found, method, path, self.status or 502, started, error=cut)
            raise
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
            if isinstance(event, h11.Data):
                await self._to_upstream(upstream, event)
            if isinstance(event, h11.EndOfMessage):  # its trailers are not looked into: dropped
                await self._to_upstream(upstream, h11.EndOfMessage())
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
        encodings: list[bytes] = []  # every coding of every Content-Encoding, in order
        headers = []
        for name, value in event.headers:
            if name in _RESPONSE_DROPPED or (name == b"content-length" and not no_body):
                continue
            if name == b"content-encoding" and not no_body:
                codings = (coding.strip().lower() for coding in value.split(b","))
                encodings += [coding for coding in codings if coding not in (b"", b"identity")]
                continue
            headers.append((name, self._redact(value)))
        if len(encodings) > 1 or (encodings and encodings[0] not in _DECODED):
            # one layer is inflated and redacted; what a second would hide is not looked into
            shown = b", ".join(encodings).decode("latin-1")[:40]
            raise _Refused(502, f"Aileron cannot inspect {shown!r} content")
        decoder = _Inflater() if encodings else None
        reason = self._redact(event.reason)
        await self._to_client(h11.Response(status_code=status, headers=headers, reason=reason))
        self.status = status
        chain = [StreamRedactor(forms) for forms in self.broker.forms.values()]
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
        for forms in self.broker.forms.values():
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
