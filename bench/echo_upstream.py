"""The connector's server for B4-B6: ``local://echo``'s API, fast enough not to be measured.

``aileron_cli.examples.echo_server`` (http.server, a thread per connection) is the demo's and
the tests' echo server; under B5's 32 clients it is itself the bottleneck (on the reference
machine it serves ~100-200 requests/s with a p99 near a second, GIL convoys between its 32
threads), so a benchmark against it measures http.server, not the daemon. This server answers
the same requests the same way — ``POST /echo`` with ``Authorization: Bearer <token>`` →
``{"echo": <message>, "authorized": true}``, else 401 — on asyncio and httptools, in its own
process, with HTTP/1.1 keep-alive.

Run: ``python bench/echo_upstream.py --token TOKEN [--port 0]``; it prints
``echo server on http://127.0.0.1:PORT`` once it listens, and serves until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket

import httptools


class _Echo(asyncio.Protocol):
    def __init__(self, token: bytes) -> None:
        self._expected = b"Bearer " + token
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._auth = b""
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment] # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def on_message_begin(self) -> None:
        self._auth = b""
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"authorization":
            self._auth = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._auth != self._expected:
            status, document = b"401 Unauthorized", {"error": "bad or missing credentials"}
        else:
            try:
                message = json.loads(b"".join(self._body) or b"{}").get("message")
                status, document = b"200 OK", {"echo": message, "authorized": True}
            except (ValueError, AttributeError):
                status, document = b"400 Bad Request", {"error": "expected a JSON object"}
        data = json.dumps(document).encode()
        head = b"HTTP/1.1 %b\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        assert self._transport is not None
        self._transport.write(head % (status, len(data)) + data)
        if not self._parser.should_keep_alive():
            self._transport.close()


async def serve(token: str, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Echo(token.encode()), sock=sock)
    print(f"echo server on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.token, args.port))
    else:
        uvloop.run(serve(args.token, args.port))


if __name__ == "__main__":
    main()
