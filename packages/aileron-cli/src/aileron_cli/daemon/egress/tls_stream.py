"""TLS on top of an open asyncio stream, through memory BIOs: the broker's side of an agent's
tunnel once the proxy has answered ``200 Connection Established``.

The event loop's own ``start_tls`` is not used: uvloop's hangs when upgrading a stream that a
``StreamReader`` was reading (MagicStack/uvloop#707; asyncio loses what the reader had already
buffered, python/cpython#142352). Here the ciphertext is read through the ``StreamReader``
itself, so nothing it holds is lost and any loop works; ``ssl.SSLObject`` does the TLS.
"""

from __future__ import annotations

import asyncio
import ssl

__all__ = ["TLSStream"]

READ_SIZE = 256 << 10


class TLSStream:
    """The plaintext side of a server-side TLS session over ``reader``/``writer``."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext
    ) -> None:
        self.reader = reader
        self.writer = writer
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)

    def _send_pending(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self.writer.write(pending)

    async def _receive(self) -> bool:
        """Feed the next ciphertext to the TLS object; ``False`` at the peer's EOF."""
        self._send_pending()
        await self.writer.drain()
        data = await self.reader.read(READ_SIZE)
        if not data:
            self._incoming.write_eof()
            return False
        self._incoming.write(data)
        return True

    async def handshake(self) -> None:
        """Complete the handshake (``ssl.SSLError`` or ``ConnectionError`` when it fails)."""
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if not await self._receive():
                    raise ConnectionError("the agent closed during the TLS handshake") from None
        self._send_pending()
        await self.writer.drain()

    async def read(self, size: int) -> bytes:
        """Up to ``size`` bytes of plaintext; ``b""`` at the end of the stream."""
        while True:
            try:
                return self._tls.read(size)
            except ssl.SSLWantReadError:
                if not await self._receive():
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def write(self, data: bytes) -> None:
        """Encrypt ``data`` and queue it on the writer."""
        self._tls.write(data)
        self._send_pending()

    async def drain(self) -> None:
        await self.writer.drain()

    def close_notify(self) -> None:
        """Say goodbye in TLS (best effort; the connection closes right after)."""
        try:
            self._tls.unwrap()
        except (ssl.SSLError, ValueError):
            pass
        self._send_pending()

    @property
    def alpn(self) -> str | None:
        return self._tls.selected_alpn_protocol()
