"""The contract between the daemon's uvicorn glue and the installed uvicorn (ADR 0027).

``aileron_cli.daemon.http.uvicorn_glue`` bends uvicorn through its public API only: it
subclasses ``uvicorn.Config`` (``load`` swaps the loaded ``http_protocol_class`` for a wrapper
and wraps ``loaded_app``) and ``uvicorn.Server`` (``capture_signals``), and passes uvicorn's
protocol arguments through unchanged. Each test here checks one thing it relies on, against a
real server on a real socket, on both event loops the daemon may run (asyncio's and uvloop's),
so that an upgrade that breaks the glue fails here, by name, rather than in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import attrs
import pytest
import uvicorn
import uvloop
from starlette.types import Receive, Scope, Send

from aileron_cli.daemon.access.peers import PEER_SCOPE_KEY, ConnectionPeer
from aileron_cli.daemon.http import uvicorn_glue
from aileron_cli.daemon.http.uvicorn_glue import Config, Connection, Server, http_server
from aileron_core.unix_sockets import bind_unix

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Iterator[Callable[[Any], Any]]:
    """Run a coroutine to its end on the event loop of the parameter."""
    with asyncio.Runner(loop_factory=LOOPS[request.param]) as runner:
        yield runner.run


async def peer_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app that answers each request with the peer in its scope, as JSON."""
    assert scope["type"] == "http"
    peer: ConnectionPeer | None = scope.get(PEER_SCOPE_KEY)
    body = json.dumps(None if peer is None else attrs.asdict(peer)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def tcp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


@contextlib.asynccontextmanager
async def serving(server: Server, sock: socket.socket) -> AsyncIterator[None]:
    """``server`` serving ``sock`` in this loop until the block ends."""
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "the server stopped while starting"
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
    """One keep-alive ``GET /`` on an open connection; its JSON body."""
    writer.write(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return json.loads(await reader.readexactly(length))


def test_the_public_surface_the_glue_uses_is_there() -> None:
    """uvicorn still exports Config and Server at its top, with the keywords, methods and
    attributes the glue uses."""
    assert uvicorn.Config is Config.__mro__[1] and uvicorn.Server is Server.__mro__[1]
    keywords = inspect.signature(uvicorn.Config).parameters
    for name in (
        "http",
        "ws",
        "lifespan",
        "log_config",
        "access_log",
        "proxy_headers",
        "server_header",
        "timeout_graceful_shutdown",
    ):
        assert name in keywords, name
    assert "sockets" in inspect.signature(uvicorn.Server.serve).parameters
    assert "sockets" in inspect.signature(uvicorn.Server.run).parameters
    assert callable(getattr(uvicorn.Server, "capture_signals", None))
    config = Config(peer_app, http="httptools", log_config=None)
    config.load()
    assert config.loaded
    assert config.http_protocol_class is Connection
    assert issubclass(config.inner_protocol_class, asyncio.Protocol)  # type: ignore[arg-type]
    assert isinstance(config.loaded_app, uvicorn_glue.PeerInScope)
    server = Server(config, handle_signals=False)
    assert (server.started, server.should_exit) == (False, False)


@attrs.define
class Counting(asyncio.Protocol):
    """A protocol in front of the glue's: hands it a transport that counts its writes."""

    inner: asyncio.Protocol
    writes: list[bytes]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(CountingTransport(transport, self.writes))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)


@attrs.define
class CountingTransport:
    """A real transport that notes each ``write`` it is given."""

    transport: Any
    writes: list[bytes]

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class CountingConfig(Config):
    """The glue's config, with every connection's writes to the socket counted."""

    writes: list[bytes]

    def load(self) -> None:
        super().load()
        glue = self.http_protocol_class
        writes: list[bytes] = []
        self.writes = writes

        def counted(**arguments: Any) -> asyncio.Protocol:
            return Counting(glue(**arguments), writes)

        self.http_protocol_class = counted  # type: ignore[assignment]


def test_each_answer_leaves_in_one_write_over_a_real_socket(
    run: Callable[[Any], Any],
) -> None:
    """Three keep-alive answers on one TCP connection are three writes to the socket, each
    holding its head and its body together."""
    config = CountingConfig(
        peer_app, http="httptools", lifespan="off", log_config=None, access_log=False
    )
    server = Server(config, handle_signals=False)
    sock = tcp_socket()
    port = sock.getsockname()[1]

    async def scenario() -> None:
        async with serving(server, sock):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(3):
                assert await get(reader, writer) == {"transport": "tcp", "pid": 0, "uid": -1}
            writer.close()

    run(scenario())
    assert len(config.writes) == 3
    for data in config.writes:
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b'"uid": -1}')


def test_the_peer_reaches_the_scope_on_a_unix_socket(
    run: Callable[[Any], Any], tmp_path: Path
) -> None:
    """A request over a Unix socket carries the connecting process (pid, uid) in its scope,
    on every request of a keep-alive connection; a pipelined second request too."""
    server = http_server(
        peer_app, handle_signals=False, lifespan=False, timeout_graceful_shutdown=1
    )
    path = tmp_path / "api.sock"
    me = {"transport": "unix", "pid": os.getpid(), "uid": os.getuid()}

    async def scenario() -> None:
        async with serving(server, bind_unix(path)):
            reader, writer = await asyncio.open_unix_connection(str(path))
            assert await get(reader, writer) == me
            assert await get(reader, writer) == me
            writer.write(b"GET / HTTP/1.1\r\nhost: t\r\n\r\nGET / HTTP/1.1\r\nhost: t\r\n\r\n")
            first = await reader.readuntil(b"}")
            second = await reader.readuntil(b"}")
            for answer in (first, second):
                assert json.loads(answer.partition(b"\r\n\r\n")[2]) == me
            writer.close()

    run(scenario())


def test_the_peer_is_not_seen_outside_a_connection(run: Callable[[Any], Any]) -> None:
    """A request over TCP is named TCP; the context variable is unset outside connections."""
    server = http_server(
        peer_app, handle_signals=False, lifespan=False, timeout_graceful_shutdown=1
    )
    sock = tcp_socket()
    port = sock.getsockname()[1]

    async def scenario() -> None:
        async with serving(server, sock):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await get(reader, writer) == {"transport": "tcp", "pid": 0, "uid": -1}
            writer.close()
        assert uvicorn_glue._PEER.get() is None

    run(scenario())


@contextlib.contextmanager
def sigterm_handler(handler: Any) -> Iterator[None]:
    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def test_a_listener_server_leaves_the_signal_handlers_alone(run: Callable[[Any], Any]) -> None:
    """A server made with ``handle_signals=False`` (a session listener) starts, serves and
    stops without replacing the process's SIGTERM or SIGINT handler."""
    seen: list[Any] = []

    def mine(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    server = http_server(
        peer_app, handle_signals=False, lifespan=False, timeout_graceful_shutdown=1
    )
    sock = tcp_socket()

    async def scenario() -> None:
        interrupt = signal.getsignal(signal.SIGINT)  # the runner's own
        async with serving(server, sock):
            seen.append(signal.getsignal(signal.SIGTERM))
            assert signal.getsignal(signal.SIGINT) is interrupt

    with sigterm_handler(mine):
        run(scenario())
        assert signal.getsignal(signal.SIGTERM) is mine
    assert seen == [mine]  # the handler in place while serving was ours; no signal was raised


def test_the_main_server_stops_on_sigterm_and_hands_the_signal_on(
    run: Callable[[Any], Any],
) -> None:
    """A server made with ``handle_signals=True`` (the main socket) takes SIGTERM while it
    serves, stops gracefully on it, then restores the previous handler and raises the signal
    again for it."""
    seen: list[int] = []
    server = http_server(peer_app, handle_signals=True, lifespan=False, timeout_graceful_shutdown=1)
    sock = tcp_socket()

    async def scenario() -> None:
        task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        assert signal.getsignal(signal.SIGTERM) == server.handle_exit
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, timeout=30)

    with sigterm_handler(lambda signum, frame: seen.append(signum)):
        run(scenario())
    assert server.should_exit
    assert seen == [signal.SIGTERM]
