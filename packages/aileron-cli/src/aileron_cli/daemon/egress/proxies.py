"""Per-session egress proxies: the only way out of a sandboxed agent's container (issue #18).

``POST /v1/sessions/{id}/egress`` serves an HTTP proxy on ``egress.sock`` in the session's run
folder (:meth:`~aileron_core.paths.Layout.run_dir`, mounted at ``/run/aileron`` in the
container, where a bridge exposes it as ``HTTP(S)_PROXY``). It speaks just enough HTTP/1.1:

- ``CONNECT host:port`` → a byte tunnel to that host and port (https; no interception);
- an absolute-form request (``GET http://host[:port]/path``) → forwarded once, as one request
  per connection: ``Proxy-*`` and hop-by-hop headers are dropped, ``Host`` is the URL's and
  ``Connection: close`` is added;
- anything else (an origin-form target, ``https://`` without CONNECT, a method not proxied, a
  malformed or oversized head) → 400 or 405 with a one-line reason.

Brokered credentials (issue #19): with a :class:`~.broker.Broker`, a ``CONNECT`` to a host and
port a binding is exposed to is answered 200 and handed to :meth:`Broker.serve
<.broker.Broker.serve>` (TLS terminated with the session's CA, ``ca.pem`` next to the socket);
a head carrying a session's sentinel for a host its binding is not exposed to is refused (403,
``egress.sentinel_misuse``). ``pins`` (``[sandbox.resolve]``) make a name resolve to the
address the user gave, which is then allowed even when loopback.

Policy (:class:`EgressPolicy`): default deny; an allowed name is resolved once, here, and the
connection goes to the resolved addresses, so a name that changes its answer between the check
and the connection (DNS rebinding) gains nothing. A loopback, link-local or unspecified address
is refused unless an allow entry is that IP literal. A denial answers 403 with the text of
:func:`denial_message`. Each connection is audited once, when it ends: ``egress.allowed``
``{host, port, method, bytes_up, bytes_down, ms}`` (plus ``error`` when the upstream could not
be reached) or ``egress.denied`` ``{host, port, reason}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from aileron_cli.sandbox.config import AllowEntry, normalize_host
from aileron_core.paths import Layout
from aileron_core.unix_sockets import bind_unix, remove_socket

if TYPE_CHECKING:
    from aileron_cli.daemon.egress.broker import Broker

log = logging.getLogger("aileron.daemon")

SOCKET_NAME = "egress.sock"
CA_FILE = "ca.pem"
"""The session CA's certificate, next to the socket while a broker serves (public, 0644)."""
MAX_HEAD_BYTES = 16 << 10
"""The most a request head (request line and headers) may take."""
HEAD_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 300.0
"""A connection with no byte in either direction for this long is closed."""
CHUNK = 256 << 10
MAX_CONNECTIONS = 256
"""Open connections one session's proxy holds at most (each takes two file descriptors of the
daemon); one more is answered 503."""
STOP_WAIT_S = 3.0
"""Seconds the daemon's shutdown waits for closing connections to record themselves."""

FORWARDED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "te", "trailer", "upgrade"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
NO_PINS: Mapping[str, IPAddress] = MappingProxyType({})
EventSink = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Records one audit event (``egress.allowed``/``egress.denied``) of the proxy's session."""


def denial_message(host: str, port: int) -> str:
    """What a denied agent is told (and may show its user)."""
    return (
        f"blocked by Aileron's sandbox policy: {host}:{port} is not allowed — add "
        f"`--allow-host {host}` (this session) or `[sandbox] allow` in config.toml"
    )


def is_special(address: IPAddress) -> bool:
    """A loopback, link-local or unspecified address (``0.0.0.0/8`` counts), also as an
    IPv4-mapped IPv6 address: never reached through a name."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address) and address.packed[0] == 0:
        return True
    return address.is_loopback or address.is_link_local or address.is_unspecified


@attrs.frozen
class EgressPolicy:
    """The allow-list of one session."""

    entries: tuple[AllowEntry, ...]

    def allows(self, host: str, port: int) -> bool:
        """Whether a normalized ``host`` on ``port`` is in the allow-list."""
        return any(entry.matches(host, port) for entry in self.entries)

    def allows_address(self, address: IPAddress, port: int) -> bool:
        """Whether the connection may go to ``address``: any address but a special one, which
        only an entry naming that very address allows."""
        if not is_special(address):
            return True
        return any(entry.address == address and entry.allows_port(port) for entry in self.entries)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host`` (an IP literal is its own), in the resolver's order."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    found: list[IPAddress] = []
    for _, _, _, _, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in found:
            found.append(address)
    return found


class _Refusal(Exception):
    """An answer to send instead of proxying (400, 403, 405, 502 …)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    408: "Request Timeout",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@attrs.frozen
class _Request:
    method: str
    host: str
    port: int
    target: str
    """The origin-form path for a forwarded request; empty for CONNECT."""
    headers: tuple[tuple[str, str], ...]


def parse_authority(text: str, default_port: int | None) -> tuple[str, int]:
    """``(normalized host, port)`` of ``host[:port]`` or ``[v6][:port]``."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("bad IPv6 literal")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not port_text:
        if default_port is None:
            raise ValueError("no port")
        port = default_port
    elif port_text.isdigit() and 1 <= int(port_text) <= 65535:
        port = int(port_text)
    else:
        raise ValueError("bad port")
    if not host:
        raise ValueError("no host")
    return normalize_host(host), port


def parse_head(head: bytes) -> _Request:
    """The request a proxy head asks for; :class:`_Refusal` (400/405) when it is not one this
    proxy serves."""
    try:
        text = head.decode("latin-1")
        lines = text.split("\r\n")
        request_line, header_lines = lines[0], [line for line in lines[1:] if line]
        method, target, version = request_line.split(" ")
    except ValueError:
        raise _Refusal(400, "malformed", "malformed request line") from None
    if not version.startswith("HTTP/1.") or not method.isalpha() or not method.isupper():
        raise _Refusal(400, "malformed", "malformed request line")
    headers: list[tuple[str, str]] = []
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or any(c in name for c in " \t"):
            raise _Refusal(400, "malformed", f"malformed header line {line[:80]!r}")
        headers.append((name, value.strip()))
    if method == "CONNECT":
        try:
            host, port = parse_authority(target, None)
        except ValueError as error:
            raise _Refusal(400, "malformed", f"CONNECT needs host:port ({error})") from None
        return _Request(method, host, port, "", tuple(headers))
    if method not in FORWARDED_METHODS:
        raise _Refusal(405, "method", f"{method} is not proxied (CONNECT, or {_methods()})")
    if target.lower().startswith("https://"):
        raise _Refusal(400, "https", "use CONNECT for https:// (this proxy does not intercept)")
    if not target.lower().startswith("http://"):
        raise _Refusal(
            400, "origin_form", "this is a proxy: send an absolute http:// URL or CONNECT"
        )
    rest = target[len("http://") :].partition("#")[0]
    end = min([i for i in (rest.find(c) for c in "/?") if i >= 0], default=len(rest))
    authority, origin = rest[:end], rest[end:]
    if "@" in authority:
        raise _Refusal(400, "malformed", "a URL with user info is not proxied")
    try:
        host, port = parse_authority(authority, 80)
    except ValueError as error:
        raise _Refusal(400, "malformed", f"bad URL authority ({error})") from None
    if not origin.startswith("/"):
        origin = "/" + origin
    return _Request(method, host, port, origin, tuple(headers))


def _methods() -> str:
    return ", ".join(sorted(FORWARDED_METHODS))


def forwarded_head(request: _Request) -> bytes:
    """The head sent upstream for an absolute-form request: origin-form target, the URL's
    ``Host``, no ``Proxy-*`` or hop-by-hop header, ``Connection: close``."""
    host = f"[{request.host}]" if ":" in request.host else request.host
    if request.port != 80:
        host = f"{host}:{request.port}"
    lines = [f"{request.method} {request.target} HTTP/1.1", f"Host: {host}"]
    dropped = set(_HOP_BY_HOP)
    for name, value in request.headers:
        if name.lower() == "connection":  # and the headers it names
            dropped.update(token.strip().lower() for token in value.split(","))
    for name, value in request.headers:
        lowered = name.lower()
        if lowered == "host" or lowered.startswith("proxy-") or lowered in dropped:
            continue
        lines.append(f"{name}: {value}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _answer(status: int, message: str) -> bytes:
    body = (message + "\n").encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


@attrs.define(eq=False)
class _Pipe:
    """The two streams of one proxied connection, and what went through them."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    bytes_up: int = 0
    bytes_down: int = 0
    last: float = attrs.field(factory=time.monotonic)

    def abort(self) -> None:
        """Close both streams now, dropping what is unsent (the pumps end on the error)."""
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()

    def close(self) -> None:
        """Close both streams once what is buffered is sent."""
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.close()


class EgressProxy:
    """One session's proxy on its Unix socket."""

    def __init__(
        self,
        session_id: str,
        path: Path,
        policy: EgressPolicy,
        sink: EventSink,
        *,
        resolver: Resolver = resolve,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        broker: Broker | None = None,
        pins: Mapping[str, IPAddress] = NO_PINS,
    ) -> None:
        self.session_id = session_id
        self.path = path
        self.policy = policy
        self.broker = broker
        self.pins = dict(pins)
        self._sink = sink
        self._resolver = resolver
        self._idle = idle_timeout_s
        self._server: asyncio.Server | None = None
        self._pipes: set[_Pipe] = set()
        self.tasks: set[asyncio.Task[Any]] = set()

    @property
    def allow(self) -> list[str]:
        return [str(entry) for entry in self.policy.entries]

    @property
    def ca_file(self) -> Path | None:
        """Where the session CA's certificate is, when a broker serves."""
        return self.path.parent / CA_FILE if self.broker is not None else None

    async def start(self) -> None:
        """Listen on :attr:`path` (0600, in a 0700 folder; an old socket there is replaced)."""
        sock = bind_unix(self.path, private_folders=2)  # run/ and run/<session>
        try:
            self._server = await asyncio.start_unix_server(
                self._handle, sock=sock, limit=MAX_HEAD_BYTES
            )
            if self.ca_file is not None and self.broker is not None:
                self._write_ca(self.ca_file, self.broker.ca_pem)
        except BaseException:
            if self._server is not None:
                self._server.close()
                self._server = None
            sock.close()
            self._remove_ca()
            remove_socket(self.path, prune_folder=True)
            raise

    @staticmethod
    def _write_ca(path: Path, pem: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            os.fchmod(fd, 0o644)
            os.write(fd, pem)
        finally:
            os.close(fd)

    def _remove_ca(self) -> None:
        if self.ca_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self.ca_file.unlink()

    def close(self) -> None:
        """Stop accepting, remove the socket (and the run folder once empty), cut every open
        connection (they still record themselves as they end)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self._remove_ca()
        remove_socket(self.path, prune_folder=True)
        if self.broker is not None:
            self.broker.close()
        for pipe in list(self._pipes):
            pipe.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        pipe = _Pipe(writer)
        if len(self._pipes) >= MAX_CONNECTIONS:
            with contextlib.suppress(Exception):  # read the head: an unread close is a reset
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            message = f"too many open connections ({MAX_CONNECTIONS}); close some and retry"
            await self._refuse(pipe, _Refusal(503, "busy", message))
            pipe.close()
            return
        self._pipes.add(pipe)
        try:
            await self._serve(reader, pipe)
        except Exception:  # a bug here must not take the proxy down: log it, drop the client
            log.exception("session %s: egress connection failed", self.session_id)
        finally:
            self._pipes.discard(pipe)
            pipe.close()

    async def _serve(self, reader: asyncio.StreamReader, pipe: _Pipe) -> None:
        started = time.monotonic()
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        except (asyncio.LimitOverrunError, ValueError):
            await self._refuse(pipe, _Refusal(400, "too_large", "request head too large"))
            return
        except TimeoutError:
            await self._refuse(pipe, _Refusal(408, "timeout", "request head not received"))
            return
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # the client left before asking anything
        try:
            request = parse_head(head)
        except _Refusal as refusal:
            await self._refuse(pipe, refusal)
            return
        except ValueError:  # a host that is not a name (normalize_host)
            await self._refuse(pipe, _Refusal(400, "malformed", "not a valid host name"))
            return
        if self.broker is not None:
            binding = self.broker.misuse(head, request.host, request.port)
            if binding is not None:
                await self._misuse(pipe, request, binding)
                return
        if not self.policy.allows(request.host, request.port):
            await self._deny(pipe, request, "not in the allow-list")
            return
        pinned = self.pins.get(request.host)
        try:
            if pinned is not None:
                addresses = [pinned]
            else:
                addresses = await self._resolver(request.host, request.port)
        except OSError as error:
            await self._failed(pipe, request, started, f"cannot resolve: {error}")
            return
        usable = [
            a for a in addresses if a == pinned or self.policy.allows_address(a, request.port)
        ]
        if not usable:
            shown = ", ".join(str(a) for a in addresses) or "nothing"
            await self._deny(
                pipe, request, f"resolves to {shown} (loopback, link-local or unspecified)"
            )
            return
        if (
            request.method == "CONNECT"
            and self.broker is not None
            and self.broker.intercepts(request.host, request.port)
        ):
            pipe.client.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            try:
                pipe.bytes_up, pipe.bytes_down = await self.broker.serve(
                    reader, pipe.client, request.host, request.port, usable
                )
            finally:
                await self._allowed(pipe, request, started, brokered=True)
            return
        upstream_reader: asyncio.StreamReader | None = None
        error_text = "no address"
        for address in usable:
            try:
                upstream_reader, pipe.upstream = await asyncio.wait_for(
                    asyncio.open_connection(str(address), request.port, limit=4 * CHUNK),
                    CONNECT_TIMEOUT_S,
                )
                break
            except (OSError, TimeoutError) as error:
                error_text = f"{address}: {getattr(error, 'strerror', None) or error!r}"
        if upstream_reader is None or pipe.upstream is None:
            await self._failed(pipe, request, started, f"cannot connect: {error_text}")
            return
        tunnel = request.method == "CONNECT"
        if tunnel:
            pipe.client.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        else:
            first = forwarded_head(request)
            pipe.upstream.write(first)
            pipe.bytes_up += len(first)
        try:
            # A tunnel half-closes each way on its own; a forwarded request (Connection: close)
            # is over when the upstream has answered and closed.
            await asyncio.gather(
                self._pump(reader, pipe.upstream, pipe, up=True),
                self._pump(upstream_reader, pipe.client, pipe, up=False, last=not tunnel),
            )
        finally:
            await self._allowed(pipe, request, started)

    async def _allowed(self, pipe: _Pipe, request: _Request, started: float, **extra: Any) -> None:
        """Record a connection that was let through, once it has ended."""
        await self._event(
            "egress.allowed",
            host=request.host,
            port=request.port,
            method=request.method,
            bytes_up=pipe.bytes_up,
            bytes_down=pipe.bytes_down,
            ms=round((time.monotonic() - started) * 1000),
            **extra,
        )

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pipe: _Pipe,
        *,
        up: bool,
        last: bool = False,
    ) -> None:
        """Copy ``reader`` to ``writer`` until EOF (then half-close ``writer``, or with
        ``last`` close the whole connection), with backpressure; an error or the idle timeout
        cuts both directions."""
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(CHUNK), self._idle)
                except TimeoutError:
                    if time.monotonic() - pipe.last < self._idle:
                        continue  # the other direction is busy
                    pipe.abort()
                    return
                if not data:
                    if last:
                        pipe.close()
                    elif writer.can_write_eof() and not writer.is_closing():
                        writer.write_eof()
                    return
                pipe.last = time.monotonic()
                writer.write(data)
                if up:
                    pipe.bytes_up += len(data)
                else:
                    pipe.bytes_down += len(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pipe.abort()

    async def _refuse(self, pipe: _Pipe, refusal: _Refusal) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            pipe.client.write(_answer(refusal.status, refusal.message))
            await pipe.client.drain()

    async def _deny(self, pipe: _Pipe, request: _Request, reason: str) -> None:
        await self._refuse(
            pipe, _Refusal(403, "denied", denial_message(request.host, request.port))
        )
        await self._event("egress.denied", host=request.host, port=request.port, reason=reason)

    async def _misuse(self, pipe: _Pipe, request: _Request, binding: str) -> None:
        """A sentinel sent toward a host its binding is not exposed to: 403, audited."""
        reason = f"sentinel of {binding} is not exposed to {request.host}:{request.port}"
        await self._event(
            "egress.sentinel_misuse",
            binding=binding,
            host=request.host,
            port=request.port,
            method=request.method,
            reason=reason,
        )
        await self._refuse(pipe, _Refusal(403, "misuse", f"blocked by Aileron: {reason}"))

    async def _failed(self, pipe: _Pipe, request: _Request, started: float, error: str) -> None:
        """Allowed, but the upstream could not be reached: 502, recorded as allowed."""
        await self._refuse(
            pipe, _Refusal(502, "upstream", f"{request.host}:{request.port} {error}")
        )
        await self._event(
            "egress.allowed",
            host=request.host,
            port=request.port,
            method=request.method,
            bytes_up=0,
            bytes_down=0,
            ms=round((time.monotonic() - started) * 1000),
            error=error,
        )

    async def _event(self, type: str, **payload: Any) -> None:
        try:
            await self._sink(type, payload)
        except Exception as error:  # an audit failure is the audit log's to report
            log.warning("session %s: could not record %s: %r", self.session_id, type, error)


class EgressProxies:
    """The open egress proxies of a daemon, at most one per session."""

    def __init__(self, layout: Layout, sink: Callable[[str], EventSink]) -> None:
        self._layout = layout
        self._sink = sink
        self._open: dict[str, EgressProxy] = {}
        self._closing: set[asyncio.Task[Any]] = set()

    def get(self, session_id: str) -> EgressProxy | None:
        return self._open.get(session_id)

    def sink_for(self, session_id: str) -> EventSink:
        """Where ``session_id``'s proxy records its events (a broker records through it too)."""
        return self._sink(session_id)

    async def open(
        self,
        session_id: str,
        entries: Sequence[AllowEntry],
        *,
        broker: Broker | None = None,
        pins: Mapping[str, IPAddress] = NO_PINS,
    ) -> tuple[EgressProxy, bool]:
        """Serve ``session_id``'s proxy allowing ``entries`` (brokering with ``broker``,
        resolving the names of ``pins`` to their address); the proxy, and whether it is new
        (an open one is returned as it is, and ``broker`` is then closed unused). The caller
        checks that the session is running."""
        existing = self._open.get(session_id)
        if existing is not None:
            if broker is not None and broker is not existing.broker:
                broker.close()
            return existing, False
        unique = tuple(dict.fromkeys(entries))
        path = self._layout.run_dir(session_id) / SOCKET_NAME
        proxy = EgressProxy(
            session_id,
            path,
            EgressPolicy(unique),
            self._sink(session_id),
            broker=broker,
            pins=pins,
        )
        self._open[session_id] = proxy  # before any await: a concurrent call finds it
        try:
            await proxy.start()
        except BaseException:
            self.close(session_id)
            raise
        log.info("session %s: egress proxy on %s", session_id, proxy.path)
        return proxy, True

    def close(self, session_id: str) -> None:
        """Close the session's proxy, if it has one."""
        proxy = self._open.pop(session_id, None)
        if proxy is None:
            return
        proxy.close()
        for task in proxy.tasks:
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        log.info("session %s: egress proxy closed", session_id)

    async def aclose(self) -> None:
        """Close every proxy and wait (within a bound) for their connections to record."""
        for session_id in list(self._open):
            self.close(session_id)
        running = {task for task in self._closing if not task.done()}
        self._closing.clear()
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=STOP_WAIT_S)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
