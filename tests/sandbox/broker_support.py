"""The broker's test world: a real egress proxy with a broker on a real Unix socket (its event
loop in a thread), a TLS upstream with its own private CA (``network_support.PrivateCA``)
standing in for GitHub, and a client that speaks CONNECT, then TLS trusting only what it is
told to.

The upstream here answers what the broker's own tests need (gzip, a claimed brotli, a reason
phrase and a header echoing the credential, big bodies with the credential across chunk edges,
keep-alive with its peer recorded); ``fakes.tls_upstreams`` has the git, npm and echo stand-ins
the tool tests use.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import attrs
import uvloop
from network_support import PrivateCA

from aileron_cli.daemon.egress.broker import Broker, Brokered, new_sentinel
from aileron_cli.daemon.egress.proxies import EgressProxies, EgressProxy
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.bindings import Exposure, parse_exposure
from aileron_cli.sandbox.config import parse_allow_entry
from aileron_core.paths import Layout
from aileron_core.redaction import Secret

T = TypeVar("T")

SECRET = "ghp_RealGitHubToken0123456789abcdefXYZ"
OTHER_SECRET = "npm_RealNpmToken9876543210zyxwvuQPO"
EXPOSED = "api.github.test"
OTHER = "registry.npm.test"
PLAIN = "plain.github.test"
ROGUE = "rogue.github.test"


# --- a private CA and a TLS upstream ------------------------------------------------------------


@attrs.define
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body_sha: str
    body_size: int
    peer: tuple[str, int]


class _Upstream(BaseHTTPRequestHandler):
    """Answers by path: ``/echo`` (the request's headers as JSON), ``/gzip`` (the same,
    gzip-encoded), ``/br`` (claims brotli), ``/reason`` (the Authorization value in the reason
    phrase and a header), ``/big?n=N`` (N bytes with the Authorization value planted across
    chunk edges), ``/sink`` (the body's size and hash)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # the head and the body are two writes
    seen: list[Seen]

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        body = self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.seen.append(  # type: ignore[attr-defined]
            Seen(
                self.command,
                self.path,
                headers,
                hashlib.sha256(body).hexdigest(),
                len(body),
                self.client_address,
            )
        )
        auth = headers.get("authorization", "")
        path, _, query = self.path.partition("?")
        encoding = None
        reason = None
        extra: list[tuple[str, str]] = []
        if path == "/sink":
            out = json.dumps({"size": len(body), "sha": hashlib.sha256(body).hexdigest()})
            payload = out.encode()
        elif path == "/big":
            size = int(query.partition("=")[2])
            piece = (b"x" * 65531 + auth.encode()) * (size // (65531 + len(auth)) + 1)
            payload = piece[:size]
        else:
            payload = json.dumps({"headers": headers, "body": body.decode("latin-1")}).encode()
            if path == "/gzip":
                payload, encoding = gzip.compress(payload), "gzip"
            elif path == "/br":
                encoding = "br"
            elif path == "/reason":
                reason = f"OK {auth}"
                extra.append(("X-Echo", auth))
        self.send_response(200, reason)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_HEAD = _handle  # noqa: N815 (http.server's names)

    def log_message(self, *args: Any) -> None:
        pass


class TLSUpstream:
    """A threaded HTTPS server on 127.0.0.1 for ``names``, its certificate from ``ca``."""

    def __init__(self, ca: PrivateCA, names: list[str]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
        self.server.daemon_threads = True
        context = ca.server_context(*names)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.server.seen = []  # type: ignore[attr-defined]
        self.port: int = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def seen(self) -> list[Seen]:
        return self.server.seen  # type: ignore[attr-defined,no-any-return]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the daemon's side ------------------------------------------------------------------------


class Loop:
    """An event loop in a thread (the daemon's, as far as the proxy knows): uvloop, as the
    daemon runs, or asyncio's own."""

    def __init__(
        self, factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    ) -> None:
        self.loop = factory()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def call(self, function: Callable[[], T]) -> T:
        async def call() -> T:
            return function()

        return self.run(call())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Audit:
    """The events the proxy and the broker recorded."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, type: str, payload: dict[str, Any]) -> None:
        self.events.append((type, payload))

    def of(self, type: str) -> list[dict[str, Any]]:
        return [payload for kind, payload in self.events if kind == type]

    def wait(self, type: str, count: int = 1) -> list[dict[str, Any]]:
        """The events of ``type`` once there are ``count`` (a connection records itself as it
        ends, after its last answer)."""
        deadline = time.monotonic() + 10
        while len(found := self.of(type)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return found


@attrs.define
class World:
    """A session's proxy with a broker, the upstreams and the secrets behind it."""

    loop: Loop
    layout: Layout
    proxies: EgressProxies
    proxy: EgressProxy
    broker: Broker
    audit: Audit
    upstream: TLSUpstream
    rogue: TLSUpstream
    upstream_ca: PrivateCA
    sentinels: dict[str, str]
    secrets: dict[str, str]

    @property
    def socket(self) -> str:
        return str(self.proxy.path)

    def tunnel(self, host: str, trust: str | None = None) -> ssl.SSLSocket:
        """CONNECT to ``host`` at the upstream's port, then TLS trusting ``trust`` (default:
        the session CA only)."""
        port = self.rogue.port if host == ROGUE else self.upstream.port
        raw = connect(self.socket)
        raw.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        head = read_head(raw)
        assert head.startswith(b"HTTP/1.1 200"), head
        context = ssl.create_default_context(cadata=trust or self.broker.ca_pem.decode())
        return context.wrap_socket(raw, server_hostname=host)

    def http(self, host: str = EXPOSED, trust: str | None = None) -> http.client.HTTPConnection:
        """An HTTP/1.1 client connection (keep-alive) inside a tunnel to ``host``."""
        sock = self.tunnel(host, trust)
        connection = http.client.HTTPConnection(host, timeout=20)
        connection.sock = sock
        return connection


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(path)
    return sock


def read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            return data
        data += chunk
    return data


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


BINDINGS: dict[str, tuple[str, dict[str, str]]] = {
    # name: (secret, exposure options) — the hosts are added with the upstream's port
    "token/github/default": (SECRET, {}),
    "token/github/header": (SECRET, {"header": "Authorization: token {}"}),
    "token/github/basic": (SECRET, {"basic": "x-access-token:{}"}),
    "token/github/locked": ("", {}),
    "token/npm/default": (OTHER_SECRET, {}),
}


def exposure(name: str, port: int, rogue_port: int) -> Exposure:
    """The binding's exposure: npm's on the registry, the others on the API (the default one
    on the rogue upstream too)."""
    _, options = BINDINGS[name]
    hosts = [f"{OTHER if name.startswith('token/npm') else EXPOSED}:{port}"]
    if name == "token/github/default":
        hosts.append(f"{ROGUE}:{rogue_port}")
    return parse_exposure(hosts, name.split("/")[2].upper() + "_TOKEN", **options)


async def source(name: str) -> Secret:
    """The vault stand-in: every binding's secret, but the locked one."""
    value, _ = BINDINGS[name]
    if not value:
        raise DaemonError("vault_locked", f"the vault is locked (cannot read {name})")
    return Secret(value)


def make_broker(session_id: str, port: int, rogue_port: int, trust: str, audit: Audit) -> Broker:
    brokered = [Brokered(n, exposure(n, port, rogue_port), new_sentinel()) for n in BINDINGS]
    return Broker(
        session_id,
        brokered,
        secrets=source,
        upstream_tls=ssl.create_default_context(cadata=trust),
        sink=audit,
    )


def serve(
    loop: Loop,
    layout: Layout,
    session_id: str,
    broker: Broker,
    allow: list[str],
    pinned: list[str],
) -> tuple[EgressProxies, EgressProxy]:
    """The session's egress proxy with ``broker``, allowing ``allow``, the ``pinned`` names
    resolving to 127.0.0.1 (as `[sandbox.resolve]` would)."""
    proxies = EgressProxies(layout, lambda _: broker.sink)
    here = ipaddress.ip_address("127.0.0.1")
    proxy, _ = loop.run(
        proxies.open(
            session_id,
            [parse_allow_entry(text) for text in allow],
            broker=broker,
            pins=dict.fromkeys(pinned, here),
        )
    )
    return proxies, proxy


def open_world(loop: Loop, layout: Layout, folder: Path, session_id: str = "s1") -> World:
    ca = PrivateCA(folder, "test upstream CA")
    upstream = TLSUpstream(ca, [EXPOSED, OTHER, PLAIN])
    rogue = TLSUpstream(PrivateCA(folder, "rogue CA"), [ROGUE])
    audit = Audit()
    broker = make_broker(session_id, upstream.port, rogue.port, ca.pem.read_text(), audit)
    allow = [f"{name}:{upstream.port}" for name in (EXPOSED, OTHER, PLAIN)]
    allow.append(f"{ROGUE}:{rogue.port}")
    proxies, proxy = serve(loop, layout, session_id, broker, allow, [EXPOSED, OTHER, PLAIN, ROGUE])
    return World(
        loop,
        layout,
        proxies,
        proxy,
        broker,
        audit,
        upstream,
        rogue,
        ca,
        {b.binding: b.sentinel for b in broker.brokered},
        {name: value for name, (value, _) in BINDINGS.items()},
    )


class Forwarder:
    """A TCP port on 127.0.0.1 forwarding every connection to a Unix socket: how the
    container's bridge exposes egress.sock, for the host's curl and git."""

    def __init__(self, loop: Loop, path: str) -> None:
        self.loop = loop
        self.path = path
        self.server = loop.run(self._start())
        self.port: int = self.server.sockets[0].getsockname()[1]

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.path)
        except OSError:
            writer.close()
            return

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(1 << 16):
                    sink.write(data)
                    await sink.drain()
                if sink.can_write_eof():
                    sink.write_eof()
            except OSError:
                sink.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        writer.close()
        up_writer.close()

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()

        self.loop.run(stop())


def close_world(world: World) -> None:
    world.loop.run(world.proxies.aclose())
    world.upstream.close()
    world.rogue.close()


def world_fixture(loop: Loop, layout: Layout, folder: Path) -> Iterator[World]:
    world = open_world(loop, layout, folder)
    try:
        yield world
    finally:
        close_world(world)
