"""uvicorn's httptools protocol, with each loop iteration's writes sent as one.

uvicorn writes a response's head as soon as the app sends ``http.response.start`` and its body
with each ``http.response.body``: two ``send`` system calls (two TCP segments, two wake-ups of
the client) for every JSON answer. On loopback each such call also runs the receiving side's
TCP processing, and the pair was the largest single item of the daemon's CPU per action run
(py-spy, BENCHMARKS.md B4/B5). :class:`BatchedWrites` collects what is written during one
event-loop iteration and sends it with one call at the iteration's end, so a head and its body
leave together; a head whose body comes later (a streamed gateway answer) still leaves within
the same iteration. Closing the connection sends what is pending first.

It also names each connection's peer (:func:`aileron_cli.daemon.access.peers.connection_peer`: the
process behind a Unix-socket connection, or "TCP") in every request's ASGI scope, under
:data:`~aileron_cli.daemon.access.peers.PEER_SCOPE_KEY`, where authentication reads it.

Used by :func:`aileron_cli.daemon.server.serve` as uvicorn's ``http`` protocol class.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from aileron_cli.daemon.access.peers import PEER_SCOPE_KEY, ConnectionPeer, connection_peer

__all__ = ["BatchedHttpToolsProtocol", "BatchedWrites"]


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


class BatchedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`BatchedWrites` transport, naming the peer."""

    peer: ConnectionPeer

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # The kernel's answer is fixed at connect(): read once per connection.
        self.peer = connection_peer(transport.get_extra_info("socket"))
        super().connection_made(BatchedWrites(transport, self.loop))  # type: ignore[arg-type]

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope[PEER_SCOPE_KEY] = self.peer  # type: ignore[literal-required]
