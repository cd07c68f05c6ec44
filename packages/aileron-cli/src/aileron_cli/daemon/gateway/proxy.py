"""Forwarding one gateway request to its provider and relaying the answer as it arrives.

- **Headers.** Hop-by-hop headers (``Connection`` and every header it names, ``Keep-Alive``,
  ``Proxy-*``, ``TE``, ``Trailer``, ``Transfer-Encoding``, ``Upgrade``) are dropped in both
  directions, as are ``Host`` and ``Expect`` going up and ``Date`` coming back (the daemon's
  server sets its own). ``Content-Length`` is never copied as a header: going up, httpx sets it
  from the body actually sent (a body of unknown length goes up chunked); coming back, the
  provider's value is relayed only for a fixed-length answer, whose bytes are relayed
  unchanged. ``X-Aileron-*`` headers never leave the daemon.
- **Bodies** are never changed or logged. A request body of known length up to
  ``MODEL_PEEK_BYTES`` is read whole, then sent; a longer one, or one of unknown length,
  streams up as it arrives — except under a model policy or a cost budget, where the whole
  body is read and checked first (:meth:`RequestBody.whole`,
  :mod:`aileron_cli.daemon.gateway.governance`). Its head (the whole of a small body) is kept
  so that the audit record can name the ``model``. The answer streams back as it arrives
  (``aiter_raw``: still encoded as the provider sent it), never buffered whole: a reader task
  puts each chunk into a small pipe, and the sender sends whatever is in the pipe when it is
  free, so a burst of events costs a few writes while a lone event goes out at once.
- **Redaction.** When the gateway injected a key, the answer must not hand it back (a provider
  may echo a key in an error, hex- or base64-encoded, in any case; ADR 0015). The request then
  asks for ``Accept-Encoding: identity`` and a compressed answer is refused (502
  ``upstream_bad_response``) before anything is relayed, as the executor does; every form of
  the key in a header value or in the body is replaced by a mask of the same length
  (:class:`aileron_core.secret_forms.StreamRedactor`), so ``Content-Length`` stays right and
  the answer still streams: only a chunk's tail that may be the start of the key waits for the
  next chunk.
- **Cancellation.** Once the request body is read, a watcher listens for the agent hanging up
  and then cancels the exchange, which closes the upstream response and with it the upstream
  connection, so the provider sees the agent leave (also while the daemon still waits for the
  answer's head). The request is audited as ``cancelled`` only if the agent left before the
  answer ended: an answer whose every byte went out, or an event stream whose final event
  went out (:mod:`aileron_cli.daemon.gateway.stream_end`; codex hangs up on ``response.completed``,
  often before the provider's end of body arrives), is complete. A provider that breaks off
  mid-answer makes the daemon break off the agent's connection in turn (by raising
  :class:`ProviderBrokeOff` out of the app), so a truncated answer never looks complete.
- **Usage.** Each relayed chunk is fed to a
  :class:`~aileron_cli.daemon.gateway.usage.UsageMeter`, which reads the tokens the answer
  reports without keeping the stream; the outcome carries them.
- **Audit.** ``on_done`` runs exactly once per forwarded request with an :class:`Outcome`: when
  the answer is complete (before its last empty frame goes out, so the record is durable
  before the answer ends), or when the exchange is cancelled or fails.

The daemon runs on asyncio (uvloop) only, so this hot path uses plain asyncio tasks and events
rather than anyio task groups, and sends requests straight to an httpx transport.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import attrs
import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.gateway.auth import GatewayRefused
from aileron_cli.daemon.gateway.config import GatewayConfig, Kind
from aileron_cli.daemon.gateway.errors import provider_error
from aileron_cli.daemon.gateway.governance import Ledger
from aileron_cli.daemon.gateway.leaks import token_in
from aileron_cli.daemon.gateway.stream_end import StreamEnd
from aileron_cli.daemon.gateway.usage import Usage, UsageMeter
from aileron_cli.daemon.store.bindings import Binding
from aileron_core.http_engine import HttpEngine
from aileron_core.http_headers import HOP_BY_HOP
from aileron_core.network import Network
from aileron_core.secret_forms import SecretForms, StreamRedactor, compiled_forms, mask

log = logging.getLogger("aileron.gateway")

REQUEST_DROPPED = HOP_BY_HOP | {"host", "content-length", "expect"}
RESPONSE_DROPPED = HOP_BY_HOP | {"content-length", "date"}
AILERON_PREFIX = b"x-aileron-"

MODEL_PEEK_BYTES = 1 << 20
"""Request bodies of known length up to this size are read whole before they are sent; bodies
up to this size are parsed (after the exchange) to find ``model`` for the audit record."""

TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=30.0)
"""A model may think for minutes before its first byte; a dead connection is found sooner."""

EXTENSIONS = {"timeout": TIMEOUT.as_dict()}

PIPE_BYTES = 1 << 20
"""Most answer bytes read ahead of a slow agent; beyond, reading waits (TCP backpressure)."""

PUMP_BATCH = 32
"""The reader lets the sender run after the first chunk and then at least every this many
chunks, even when a burst of them is already buffered."""

RawHeaders = list[tuple[bytes, bytes]]


class _Pipe:
    """Answer chunks between the reader and the sender: whatever has arrived by the time the
    sender is free goes out as one piece, so a burst costs a few writes instead of one per
    event, and nothing ever waits for more to arrive."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._closed = False
        self._data = asyncio.Event()
        self._room = asyncio.Event()

    async def put(self, chunk: bytes) -> None:
        while self._size >= PIPE_BYTES:
            self._room = asyncio.Event()
            await self._room.wait()
        self._chunks.append(chunk)
        self._size += len(chunk)
        self._data.set()

    def close(self) -> None:
        self._closed = True
        self._data.set()

    async def take(self) -> bytes | None:
        """The bytes that have arrived (waiting for some), or ``None`` once closed and empty."""
        while not self._chunks:
            if self._closed:
                return None
            self._data = asyncio.Event()
            await self._data.wait()
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        self._room.set()
        return data


class ProviderBrokeOff(Exception):
    """Raised out of the app to make the server cut a half-relayed answer short."""


class Gateway:
    """The gateway's providers and its one connection pool (closed with the daemon); the
    providers' keys are read through the daemon's one secret cache (``gateway.credentials``).

    Requests go straight to an httpx *transport*, not through an ``httpx.AsyncClient``: a
    client's extras are all unwanted here (redirects are the agent's to follow, provider
    cookies are the agent's to keep, and no ``.netrc`` or proxy variable may add anything),
    and skipping them is a good share of the gateway's per-request cost. The transport is the
    daemon's one HTTP engine (:mod:`aileron_core.http_engine`), with the daemon's proxies and
    CA roots (``network``; none given: direct, the default roots).
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        network: Network | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.config = config
        self.ledger = Ledger(audit)
        """Rate limits and budgets (:mod:`aileron_cli.daemon.gateway.governance`)."""
        self._uses: set[tuple[object, ...]] = set()
        self.transport = transport or HttpEngine(max_connections=256, max_idle=64, network=network)

    def first_use(self, session_id: str, binding: Binding) -> bool:
        """Whether this session uses this binding (as created) for the first time."""
        use = (session_id, binding.name, binding.created_at)
        if use in self._uses:
            return False
        self._uses.add(use)
        return True

    async def aclose(self) -> None:
        await self.transport.aclose()


def _connection_named(headers: Iterable[tuple[bytes, bytes]]) -> set[str]:
    """Header names listed in ``Connection``: hop-by-hop for this message."""
    named: set[str] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(
                part.strip().lower() for part in value.decode("latin-1").split(",") if part.strip()
            )
    return named


def request_headers(
    raw: Iterable[tuple[bytes, bytes]], drop: Iterable[str], add: Iterable[tuple[str, str]]
) -> RawHeaders:
    """The headers to send upstream: ``raw`` without hop-by-hop, Aileron and ``drop`` headers
    and without every header that holds an Aileron token (:func:`leaks.token_in`), plus
    ``add``."""
    raw = list(raw)
    dropped = REQUEST_DROPPED | _connection_named(raw) | {d.lower() for d in drop}
    kept = [
        (name, value)
        for name, value in raw
        if name.lower().decode("latin-1") not in dropped
        and not name.lower().startswith(AILERON_PREFIX)
        and not token_in(value)
        and not token_in(name)
    ]
    kept.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in add)
    return kept


def response_headers(upstream: httpx.Response, forms: SecretForms | None = None) -> RawHeaders:
    """The headers to relay to the agent for ``upstream``'s answer (every form of the
    injected key masked when ``forms`` are given, and a header whose name holds one
    dropped)."""
    raw = upstream.headers.raw
    dropped = RESPONSE_DROPPED | _connection_named(raw)
    kept = [(name.lower(), value) for name, value in raw if name.lower().decode() not in dropped]
    if forms is not None:
        # A name holding the key is dropped (a masked name would not be a valid header name);
        # the names are looked at together first (no form of a key holds a line end).
        names = b"\n".join(name for name, _ in kept)
        if forms.sub_bytes(mask, names) != names:
            kept = [(n, v) for n, v in kept if forms.sub_bytes(mask, n) == n]
        kept = [(name, forms.sub_bytes(mask, value)) for name, value in kept]
    length = upstream.headers.get("content-length")
    if length is not None and "transfer-encoding" not in upstream.headers and length.isdigit():
        kept.append((b"content-length", length.encode()))
    return kept


class RequestBody:
    """The agent's request body on its way up: counted, and its head kept for the audit.

    A body of known length up to ``MODEL_PEEK_BYTES`` is read whole before it is sent (on
    loopback that costs nothing, and it saves streaming a few KiB piecemeal); a longer one, or
    one of unknown length (chunked), streams up as it arrives.
    """

    def __init__(self, request: Request, *, length: int | None, chunked: bool) -> None:
        self._request = request
        self.length = length
        self.has_body = chunked or bool(length)
        self.size = 0
        self._head: list[bytes] = []
        self._whole: bytes | None = None
        """The body, when :meth:`whole` read it before the exchange."""
        self.read = asyncio.Event()
        """Set once the whole body has been read (the agent can only hang up after that)."""
        if not self.has_body:
            self.read.set()

    async def whole(self, limit: int) -> bytes:
        """Read the whole body now (up to ``limit`` bytes, else ``GatewayRefused`` 413); the
        upstream request then sends it as read."""
        if not self.has_body:
            return b""
        if self.length is not None and self.length > limit:
            raise _too_large(limit)
        parts: list[bytes] = []
        try:
            async for chunk in self._request.stream():
                self.size += len(chunk)
                if self.size > limit:
                    raise _too_large(limit)
                parts.append(chunk)
        finally:
            self.read.set()
        data = b"".join(parts)
        self._head = [data]
        self._whole = data
        return data

    async def content(self) -> bytes | AsyncIterator[bytes] | None:
        """What to give httpx as the upstream request's content."""
        if not self.has_body:
            return None
        if self._whole is not None:
            return self._whole
        if self.length is not None and self.length <= MODEL_PEEK_BYTES:
            try:
                data = await self._request.body()
            finally:
                self.read.set()
            self.size = len(data)
            self._head = [data]
            return data
        return self._stream()

    async def _stream(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._request.stream():
                if not chunk:
                    continue
                self.size += len(chunk)
                if self.size <= MODEL_PEEK_BYTES:
                    self._head.append(chunk)
                yield chunk
        finally:
            self.read.set()

    def model(self) -> str | None:
        """The ``model`` of a small JSON body, else ``None``. Only the name is kept."""
        content_type = self._request.headers.get("content-type", "")
        if self.size == 0 or self.size > MODEL_PEEK_BYTES or "json" not in content_type.lower():
            return None
        try:
            document = json.loads(b"".join(self._head))
        except ValueError:
            return None
        model = document.get("model") if isinstance(document, dict) else None
        return model if isinstance(model, str) and 0 < len(model) <= 200 else None


def _too_large(limit: int) -> GatewayRefused:
    return GatewayRefused(
        "request_too_large",
        f"the request body is larger than the {limit >> 20} MiB the gateway reads whole to check"
        " the model it names",
        reason="request_too_large",
    )


@attrs.define
class Outcome:
    """What became of one forwarded request (the audit record's facts)."""

    status: int | None = None
    bytes_out: int = 0
    bytes_in: int = 0
    duration_ms: float = 0.0
    cancelled: bool = False
    error: str | None = None
    usage: Usage | None = None
    """The tokens the answer reported using (``None``: it reported none)."""


class Forward(Response):
    """The ASGI answer to one gateway request: send it upstream, relay what comes back.

    A ``Response`` only so that FastAPI passes it through as the route's answer; status,
    headers and body are the provider's, sent by :meth:`__call__`.
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        method: str,
        url: httpx.URL,
        headers: RawHeaders,
        body: RequestBody,
        on_done: Callable[[Outcome], Awaitable[None]],
        *,
        provider: str,
        kind: Kind,
        started: float,
        key: str | None = None,
    ) -> None:
        super().__init__()
        self._provider = provider
        self._kind = kind
        self._transport = transport
        self._method = method
        self._url = url
        self._forms = compiled_forms(key) if key is not None else None
        if self._forms is not None:
            # A compressed answer could not be redacted on the way: ask for none.
            headers = [(n, v) for n, v in headers if n.lower() != b"accept-encoding"]
            headers.append((b"accept-encoding", b"identity"))
        self._forward_headers = headers
        self._body = body
        self._on_done = on_done
        self._started = started
        self._response: httpx.Response | None = None
        self._pump_task: asyncio.Future[None] | None = None
        self._complete = False
        self._broken: BaseException | None = None
        self._exchanged = False
        self._hung_up = False
        self._gone = False
        """The agent left (hung up, or its connection failed) before the exchange was over."""
        self._ended = False
        """The whole answer went out: its last byte, or an event stream's final event."""
        self.outcome = Outcome()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Plain asyncio tasks rather than anyio task groups: the daemon runs on asyncio only,
        # and this is the per-request hot path.
        task = asyncio.current_task()
        assert task is not None
        watcher = asyncio.ensure_future(self._watch(receive, task))
        try:
            await self._exchange(scope, receive, send)
        except asyncio.CancelledError:
            if not self._hung_up:
                self.outcome.cancelled = True
                raise  # cancelled from outside (the server shutting down): let it go on
            task.uncancel()
            self._gone = True
        finally:
            self._exchanged = True
            watcher.cancel()
            await asyncio.shield(self._finish())
        if self._broken is not None:
            # After the answer started, the only way to say "this is not the whole answer" is
            # to break the connection; an exception out of the app makes the server do that.
            raise ProviderBrokeOff(f"the provider broke off the answer: {self._broken}") from None
        if self._complete:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        if self.background is not None:
            await self.background()

    async def _watch(self, receive: Receive, task: asyncio.Task[Any]) -> None:
        """Cancel the exchange when the agent hangs up (listening only once its body is read,
        as until then ``receive`` is the body's)."""
        await self._body.read.wait()
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                if not self._exchanged:
                    self._hung_up = True
                    task.cancel()
                return

    async def _exchange(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            content = await self._body.content()
            headers = self._forward_headers
            if isinstance(content, AsyncIterator) and self._body.length is not None:
                headers = [*headers, (b"content-length", str(self._body.length).encode())]
            request = httpx.Request(
                self._method, self._url, headers=headers, content=content, extensions=EXTENSIONS
            )
            self._response = await self._transport.handle_async_request(request)
        except ClientDisconnect:
            self._gone = True
            return
        except httpx.TimeoutException as error:
            await self._refuse(scope, receive, send, 504, "upstream_timeout", error)
            return
        except httpx.HTTPError as error:
            await self._refuse(scope, receive, send, 502, "upstream_unreachable", error)
            return
        response = self._response
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if self._forms is not None and encoding not in ("", "identity"):
            await self._refuse(
                scope,
                receive,
                send,
                502,
                "upstream_bad_response",
                ValueError(
                    f"it answered with a compressed body (Content-Encoding: {encoding[:40]})"
                    " though asked for identity, and a compressed answer cannot be checked"
                    " for the key"
                ),
            )
            return
        self.outcome.status = response.status_code
        head = {"type": "http.response.start", "status": response.status_code}
        pipe = _Pipe()
        pump = self._pump_task = asyncio.ensure_future(self._pump(response, pipe))
        content_type = response.headers.get("content-type", "")
        events = StreamEnd() if content_type.startswith("text/event-stream") else None
        meter = UsageMeter(self._kind, content_type)
        try:
            await send({**head, "headers": response_headers(response, self._forms)})
            while (data := await pipe.take()) is not None:
                self.outcome.bytes_in += len(data)
                meter.feed(data)
                await send({"type": "http.response.body", "body": data, "more_body": True})
                if events is not None and events.seen(data):
                    self._ended = True
            if self._broken is None:
                self._ended = True
        except OSError:  # ASGI 2.4 servers raise this from send() once the agent is gone
            self._gone = True
            return
        finally:
            self.outcome.usage = meter.usage()
            pump.cancel()
            await asyncio.wait([pump])  # the response is closed only once the pump is done
        self._complete = self._broken is None

    async def _pump(self, response: httpx.Response, pipe: _Pipe) -> None:
        """Read the answer into ``pipe`` as it arrives, until it ends or breaks off."""
        redactor = StreamRedactor(self._forms) if self._forms is not None else None
        try:
            count = 0
            async for chunk in response.aiter_raw():
                if redactor is not None:
                    chunk = redactor.feed(chunk)
                    if not chunk:
                        continue
                await pipe.put(chunk)
                count += 1
                if count % PUMP_BATCH == 1:
                    # Let the sender run now and then even when a burst is already buffered
                    # (at once after the first chunk: time to first byte).
                    await asyncio.sleep(0)
            if redactor is not None and (held := redactor.flush()):
                await pipe.put(held)
        except Exception as error:  # any failure mid-answer: never pass the rest off as whole
            self.outcome.error = "upstream_broke_off"
            self._broken = error
            log.warning("the provider broke off an answer: %s", type(error).__name__)
        finally:
            pipe.close()

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, code: str, error: Exception
    ) -> None:
        self.outcome.status = status
        self.outcome.error = code
        host = self._url.host
        what = "did not answer in time" if status == 504 else "could not be reached"
        detail = str(error) or type(error).__name__
        if self._forms is not None:
            detail = self._forms.sub("[REDACTED]", detail)
        refusal = DaemonError(
            code,
            f"the provider at {host} {what}: {detail}",
            details={"host": host},
            retriable=True,
        )
        await provider_error(self._provider, refusal)(scope, receive, send)
        self._complete = False  # the envelope already ended the answer

    async def _finish(self) -> None:
        pump = self._pump_task
        if pump is not None and not pump.done():  # the exchange was cancelled mid-wait
            pump.cancel()
            await asyncio.wait([pump])
        if self._response is not None:
            await self._response.aclose()
        if self._gone:
            self.outcome.cancelled = not self._ended
        if self._gone or self.outcome.cancelled:
            self._complete = False
            self._broken = None
        self.outcome.bytes_out = self._body.size
        self.outcome.duration_ms = round((time.perf_counter() - self._started) * 1000, 3)
        await self._on_done(self.outcome)
