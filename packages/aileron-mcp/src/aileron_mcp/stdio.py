"""Non-blocking stdin and stdout for the SDK's stdio transport, when they are pipes.

The SDK's ``stdio_server()`` reads and writes through worker threads (``anyio.wrap_file``):
three thread round trips per ``tools/call``. Measured on the reference machine with the daemon
replaced by a stub, that cost aileron-mcp 0.6–1.2 ms of CPU and 0.7–1.5 ms of latency per call,
against a B6 budget of 2 ms for everything aileron-mcp adds (BENCHMARKS.md); with the real
daemon, taking the threads out brought aileron-mcp from 2.9–3.5 to 2.1–2.4 ms of CPU per call.

So when fds 0 and 1 are pipes or sockets (which is how agent hosts start MCP servers), this
module hands ``stdio_server()`` asyncio pipe streams instead; the SDK still frames, parses and
serialises every message. Anything else (a terminal, a file) keeps the SDK's own files.

Like the SDK, it keeps stray output off the wire while serving: fd 0 then reads ``/dev/null``,
fd 1 writes to stderr, the protocol uses private duplicates, and both are restored on exit.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from anyio import AsyncFile

# One JSON-RPC message is one line; the SDK's own reader has no limit either.
LINE_LIMIT = 1 << 26


def _is_pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class _LineReader:
    """What ``stdio_server()`` reads from stdin: an async iterator of text lines."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> _LineReader:
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class _Wire(asyncio.Protocol):
    """Flow control for the stdout pipe: writers wait while the pipe is full."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()


class _LineWriter:
    """What ``stdio_server()`` writes to stdout: ``write`` then ``flush``."""

    def __init__(self, transport: asyncio.WriteTransport, wire: _Wire) -> None:
        self._transport = transport
        self._wire = wire

    async def write(self, text: str) -> int:
        if self._transport.is_closing():
            raise BrokenPipeError("the MCP client closed stdout")
        self._transport.write(text.encode("utf-8"))
        return len(text)

    async def flush(self) -> None:
        await self._wire.writable.wait()


@asynccontextmanager
async def pipe_stdio() -> AsyncIterator[tuple[AsyncFile[str] | None, AsyncFile[str] | None]]:
    """Streams for ``stdio_server(stdin, stdout)``: pipe readers, or ``None`` for its own."""
    if not (_is_pipe(0) and _is_pipe(1)):
        yield None, None
        return
    loop = asyncio.get_running_loop()
    saved = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        wire_in = os.fdopen(os.dup(0), "rb", buffering=0)
        wire_out = os.fdopen(os.dup(1), "wb", buffering=0)
        os.dup2(null, 0)
        os.dup2(2, 1)
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        try:
            reading, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), wire_in
            )
        except BaseException:
            wire_in.close()
            wire_out.close()
            raise
        try:
            writing, wire = await loop.connect_write_pipe(_Wire, wire_out)
        except BaseException:
            reading.close()  # closes wire_in
            wire_out.close()
            raise
        try:
            # Duck-typed: stdio_server() only iterates lines and calls write() and flush().
            yield (
                cast("AsyncFile[str]", _LineReader(reader)),
                cast("AsyncFile[str]", _LineWriter(writing, wire)),
            )
        finally:
            reading.close()  # the transports close the pipe files
            writing.close()
    finally:
        os.close(null)
        os.dup2(saved[0], 0)
        os.dup2(saved[1], 1)
        os.close(saved[0])
        os.close(saved[1])
