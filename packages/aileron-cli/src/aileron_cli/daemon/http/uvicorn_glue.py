"""The daemon's one coupling to uvicorn, through names uvicorn exports at its top level only.

Every socket the daemon serves HTTP on (the main TCP port, ``daemon.sock``, each session
listener) is served by :func:`http_server`: a :class:`Server` (``uvicorn.Server``) on a
:class:`Config` (``uvicorn.Config``) that bends uvicorn in three ways, each through public API:

- **One write per answer.** uvicorn writes a response's head when the app sends
  ``http.response.start`` and its body with each ``http.response.body``: two ``send`` system
  calls (two TCP segments, two wake-ups of the client) for every JSON answer, the largest single
  item of the daemon's CPU per action run (ADR 0027). :meth:`Config.load` wraps the protocol
  class uvicorn loaded (its public ``http_protocol_class``) in :class:`Connection`, a plain
  ``asyncio.Protocol`` that hands uvicorn's protocol a :class:`BatchedWrites` transport: what is
  written during one event-loop iteration leaves with one call at the iteration's end.
- **The peer.** :class:`Connection` names its connection's peer once
  (:func:`~aileron_cli.daemon.access.peers.connection_peer`: the process behind a Unix-socket
  connection, or TCP) and sets it in a context variable around each ``data_received``; uvicorn
  starts each request's ASGI task there, and the task keeps a copy of that context. The app
  :meth:`Config.load` wraps (:class:`PeerInScope`) copies it into the request's scope under
  :data:`~aileron_cli.daemon.access.peers.PEER_SCOPE_KEY`, where authentication reads it.
- **Signals.** ``Server.serve`` installs SIGTERM/SIGINT handlers through the public
  ``capture_signals`` hook (and re-raises the signal when it exits). The main server keeps
  them; a session listener (``handle_signals=False``) runs in the main server's loop and must
  not touch them.

``tests/daemon/test_uvicorn_contract.py`` checks each of these against the installed uvicorn,
whose versions are bounded in the package's dependencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, cast

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from aileron_cli.daemon.access.peers import PEER_SCOPE_KEY, ConnectionPeer, connection_peer

__all__ = ["BatchedWrites", "Config", "Connection", "PeerInScope", "Server", "http_server"]

_PEER: ContextVar[ConnectionPeer | None] = ContextVar("aileron_peer", default=None)
"""The peer of the connection whose bytes are being parsed (set by :class:`Connection`)."""


class BatchedWrites:
    """A stream transport whose writes of one loop iteration go out as one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending = []
            if not self._transport.is_closing():
                self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(p) for p in self._pending)

    def __getattr__(self, name: str) -> Any:
        # is_closing, get_extra_info, pause_reading, resume_reading, set_protocol, ...
        return getattr(self._transport, name)


class Connection(asyncio.Protocol):
    """One connection: uvicorn's own protocol on a :class:`BatchedWrites` transport, with the
    connection's peer set around everything it parses.

    Built by uvicorn as its ``http_protocol_class`` (with uvicorn's keyword arguments, passed
    on unchanged to the protocol class the :class:`Config` loaded).
    """

    def __init__(self, *, config: Config, **uvicorn_arguments: Any) -> None:
        self._inner = config.inner_protocol_class(config=config, **uvicorn_arguments)
        self._peer: ConnectionPeer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # uvloop's are not asyncio's subclasses
        # The kernel's answer is fixed at connect(): read once per connection.
        self._peer = connection_peer(stream.get_extra_info("socket"))
        batched = BatchedWrites(stream, asyncio.get_running_loop())
        self._inner.connection_made(batched)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        token = _PEER.set(self._peer)
        try:
            self._inner.data_received(data)
        finally:
            _PEER.reset(token)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class PeerInScope:
    """ASGI: put the peer of the request's connection into its scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[PEER_SCOPE_KEY] = _PEER.get()
        await self.app(scope, receive, send)


class Config(uvicorn.Config):
    """``uvicorn.Config`` whose connections are :class:`Connection` s and whose app learns
    each request's peer."""

    inner_protocol_class: Callable[..., asyncio.Protocol]
    """The protocol class uvicorn chose (``http=``); each :class:`Connection` wraps one."""

    def load(self) -> None:
        super().load()
        self.inner_protocol_class = self.http_protocol_class
        self.http_protocol_class = Connection
        self.loaded_app = PeerInScope(self.loaded_app)


class Server(uvicorn.Server):
    """``uvicorn.Server`` that installs signal handlers only if ``handle_signals``."""

    def __init__(self, config: Config, *, handle_signals: bool) -> None:
        super().__init__(config)
        self.handle_signals = handle_signals
        self.on_shutdown: list[Callable[[], None]] = []
        """Run when the shutdown starts, before uvicorn waits for the open requests (ending
        the live event streams, which would otherwise hold that wait to its timeout)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for hook in self.on_shutdown:
            hook()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if not self.handle_signals:
            yield
            return
        with super().capture_signals():
            yield

    def stop_accepting(self) -> None:
        """Refuse new connections at once; the server then finishes the open ones and exits."""
        self.should_exit = True
        for server in getattr(self, "servers", ()):  # set once it has started
            server.close()  # the listening socket now, not at uvicorn's next tick


def http_server(
    app: ASGIApp,
    *,
    handle_signals: bool,
    lifespan: bool,
    timeout_graceful_shutdown: int,
) -> Server:
    """A server of ``app`` for pre-bound sockets (``Server.run``/``Server.serve`` with
    ``sockets=``): httptools, no uvicorn logging set-up, no access log, no ``server`` header,
    no proxy headers, no websockets; ``lifespan`` runs the app's lifespan (the main server
    does, once; listeners serve the same app without)."""
    return Server(
        Config(
            app,
            http="httptools",
            ws="none",
            lifespan="on" if lifespan else "off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=timeout_graceful_shutdown,
        ),
        handle_signals=handle_signals,
    )
