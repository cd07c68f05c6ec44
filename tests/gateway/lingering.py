"""A provider whose end of body comes late: it streams a short SSE answer, then waits.

Over a real network the chunk that ends a streamed answer often arrives after its last event,
and an agent such as codex hangs up as soon as it has read that event. This local server
stands in for such a provider: it sends every event of a stream at once, then holds back the
rest — the end of body (``x-linger: end``, the default), or the final event and the end of
body (``x-linger: final``) — until :meth:`Lingering.release` or until the client goes away,
which it records in ``gone``.
"""

from __future__ import annotations

import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STREAMS: dict[str, list[bytes]] = {
    "/v1/chat/completions": [
        b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,'
        b'"delta":{"content":"Hello"},"finish_reason":null}]}\n\n',
        b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,'
        b'"delta":{},"finish_reason":"stop"}]}\n\n',
        b"data: [DONE]\n\n",
    ],
    "/v1/responses": [
        b'event: response.created\ndata: {"type":"response.created","response":'
        b'{"id":"r1","status":"in_progress"}}\n\n',
        b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
        b'"delta":"response.completed"}\n\n',
        b'event: response.completed\ndata: {"type":"response.completed","response":'
        b'{"id":"r1","status":"completed","output":[{"type":"message","content":'
        b'[{"type":"output_text","text":"' + b"x" * 3000 + b'"}]}]}}\n\n',
    ],
    "/v1/messages": [
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"m1"}}\n\n',
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"message_stop"}}\n\n',
        b'event: message_delta\ndata: {"type":"message_delta","delta":'
        b'{"stop_reason":"end_turn"}}\n\n',
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ],
}
"""A short stream per route, its final event last (two of them quote a final event's name in
the model's text, which must not count)."""


class Lingering:
    """A threaded SSE server on 127.0.0.1 that holds back the end of its answers."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.gone = threading.Event()
        """Set when a client went away while the answer was held back."""
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def release(self) -> None:
        self.released.set()

    def arm(self) -> None:
        """Hold the next answer again."""
        self.released.clear()
        self.gone.clear()

    def __enter__(self) -> Lingering:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def _closed(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _handler(server: Lingering) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            events = STREAMS[self.path]
            held = 1 if self.headers.get("x-linger") == "final" else 0
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for event in events[: len(events) - held]:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
            while not server.released.wait(0.01):
                if _closed(self.connection):
                    server.gone.set()
                    self.close_connection = True
                    return
            for event in events[len(events) - held :]:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.write(b"0\r\n\r\n")

    return Handler
