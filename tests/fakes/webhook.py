"""A local stand-in for a chat tool's incoming webhook: records every POST (path, headers,
body) and answers ``status``; with ``hold`` set, each answer waits until :meth:`release` (a
webhook that takes its time)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOLD_LIMIT_S = 60.0
"""A held answer is given anyway after this long (so a failing test never hangs)."""


class FakeWebhook:
    """``with FakeWebhook() as hook:`` — a webhook on ``hook.url``; posts land in ``posts``."""

    def __init__(self, status: int = 200, *, hold: bool = False) -> None:
        self.status = status
        self.posts: list[dict[str, Any]] = []
        self.answered = 0
        """Posts answered so far (a held one is not, until :meth:`release`)."""
        self.received = threading.Condition()
        self._released = threading.Event()
        if not hold:
            self._released.set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with fake.received:
                    fake.posts.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    fake.received.notify_all()
                fake._released.wait(HOLD_LIMIT_S)
                self.send_response(fake.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                with fake.received:
                    fake.answered += 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/T0/B0/secretpath"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The first ``count`` posts, once they have arrived (``AssertionError`` if not)."""
        with self.received:
            arrived = self.received.wait_for(lambda: len(self.posts) >= count, timeout)
        assert arrived, f"the webhook got {len(self.posts)} posts, not {count}"
        return self.posts[:count]

    def payload(self, index: int) -> Any:
        return json.loads(self.posts[index]["body"])

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> FakeWebhook:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
