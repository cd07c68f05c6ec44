"""A small real HTTP server on 127.0.0.1 that records requests and answers as it is told.

Each path can be given a ``Reply``; any other path echoes the request back as JSON. The server
runs in a thread (``http.server``), speaks HTTP/1.0 (one request per connection) and is
stopped, with every sleeping handler released, when its context exits.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    target: str
    """The raw request target: path and query exactly as sent."""
    headers: dict[str, str]
    """Header names lowercased."""
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def echo(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "target": self.target,
            "headers": self.headers,
            "body": self.body.decode("utf-8", errors="replace"),
        }


@dataclass
class Reply:
    """How to answer a path. ``body=None`` echoes the request as JSON."""

    status: int = 200
    body: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    echo_header: str | None = None
    """Answer with the text of this request header as the body."""
    stream_total: int = 0
    """Stream this many bytes (in 64 KiB chunks, no Content-Length) instead of ``body``."""
    declare_length: int | None = None
    """Send this Content-Length header whatever the body is."""


class UpstreamServer:
    """The server; use ``running()`` to get one."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self.seen: list[Seen] = []
        self.streamed = 0
        self.stream_done = threading.Event()
        self.release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._httpd.upstream = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``, as a connector spec lists it."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@contextmanager
def running() -> Iterator[UpstreamServer]:
    """A started server, stopped on exit."""
    server = UpstreamServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""

    def _serve(self) -> None:
        upstream: UpstreamServer = self.server.upstream  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(
            method=self.command,
            target=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        upstream.seen.append(seen)
        reply = upstream.replies.get(seen.path, Reply())
        if reply.delay_s:
            upstream.release.wait(reply.delay_s)
        if reply.stream_total:
            self._stream(upstream, reply)
            return
        if reply.echo_header is not None:
            body = seen.headers.get(reply.echo_header.lower(), "").encode()
        elif reply.body is None:
            body = json.dumps(seen.echo()).encode()
        else:
            body = reply.body
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        length_text = reply.declare_length if reply.declare_length is not None else len(body)
        self.send_header("Content-Length", str(length_text))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _stream(self, upstream: UpstreamServer, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.end_headers()
        chunk = b"x" * 65536
        try:
            while upstream.streamed < reply.stream_total:
                self.wfile.write(chunk)
                upstream.streamed += len(chunk)
        except OSError:
            pass  # the client hung up, which is what the test wants
        finally:
            upstream.stream_done.set()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve
