"""A local echo server for the ``local://echo`` example connector (demo and tests).

``POST /echo`` with a JSON body answers ``{"echo": <message>, "authorized": true}`` when the
request carries ``Authorization: Bearer <token>``, else 401. Every request is recorded (method,
path, headers, body) so tests can check exactly what arrived. Run it by hand with
``python -m aileron_cli.examples.echo_server --port 8765 --token TOKEN``.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: 32 clients connecting at once (the load
    # benchmark, the reliability suite) overflow the kernel's accept queue, and now and then a
    # connection is reset, which the daemon answers as a 502 upstream_unreachable.
    request_queue_size = 128


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class EchoServer:
    """A threaded HTTP server on 127.0.0.1 that checks a bearer token and echoes."""

    token: str
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    redirect_to: str | None = None  # when set, every request is answered 307 to this URL

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do
            disable_nagle_algorithm = True  # headers and body go out without a 40 ms stall
            wbufsize = 1 << 16  # one write per answer (flushed after each request)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                server.seen.append(Seen("POST", self.path, dict(self.headers.items()), body))
                if server.redirect_to is not None:
                    self.send_response(307)
                    self.send_header("Location", server.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("Authorization") != f"Bearer {server.token}":
                    self._answer(401, {"error": "bad or missing credentials"})
                    return
                try:
                    message = json.loads(body or b"{}").get("message")
                except (ValueError, AttributeError):
                    self._answer(400, {"error": "expected a JSON object"})
                    return
                self._answer(200, {"echo": message, "authorized": True})

            def _answer(self, status: int, document: dict[str, Any]) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> EchoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    with EchoServer(args.token, args.port) as server:
        print(f"echo server on http://{server.host}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
