"""A local fake LLM provider shaped like OpenAI and Anthropic, for tests, benchmarks and the demo.

Routes (answers are deterministic: the same request gets the same bytes)::

    GET    /v1/models                 a model list
    POST   /v1/chat/completions       a chat completion; ``"stream": true`` → SSE
                                      ``data: {chunk}`` events, then ``data: [DONE]``
    POST   /v1/responses              a Responses API answer; ``"stream": true`` → SSE
                                      ``response.*`` events ending with ``response.completed``
    POST   /v1/messages               an Anthropic message; ``"stream": true`` → SSE
                                      ``message_start`` … ``message_stop``
    DELETE /v1/<anything>             ``{"id": …, "deleted": true}``

Every request is recorded (method, path with query, headers, body) in ``seen``. The key is
checked: OpenAI routes want ``Authorization: Bearer <key>``, ``/v1/messages`` wants
``x-api-key: <key>`` or ``Authorization: Bearer <key>`` (an OAuth login); otherwise 401 with a
provider-style error. Streams use chunked transfer encoding, one chunk per event, written as
soon as it is made.

Knobs, as attributes (defaults) or per request as headers: ``x-fake-chunks`` (content events
per stream), ``x-fake-chunk-bytes`` (pad each event's text to about this size),
``x-fake-delay-ms`` (pause between events), ``x-fake-break: N`` (close the connection after N
events, without ending the stream properly), ``x-fake-status`` (answer this error status with a
provider-style JSON body, e.g. 429 with ``retry-after``), ``x-fake-hold: 1`` (send the first
event, then hold the rest back until :meth:`FakeProvider.release`). A client that goes away
mid-stream (also while held) is noticed and its path added to ``disconnected``.

With ``script`` set (a :class:`~fakes.script.ToolScript`), streamed answers
play a tool loop instead: a call of the script's tool, then its final text.

Every answer also carries hop-by-hop headers (``Keep-Alive`` and ``X-Fake-Hop``, named in
``Connection``) that a proxy must not relay. Run it by hand with
``python -m fakes.provider --port 8400 --key sk-fake``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fakes.script import ToolScript, message_start, sse

CREATED = 1_700_000_000
WORDS = ("Hello", " from", " the", " fake", " provider", ".")
HOP_HEADERS = (("Connection", "keep-alive, X-Fake-Hop"), ("Keep-Alive", "timeout=30"))


@dataclass(frozen=True)
class Seen:
    """One request as the fake received it."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def header_names(self) -> set[str]:
        return {key.lower() for key, _ in self.headers}


class ClientGone(Exception):
    """The client closed its connection while an answer was being streamed."""


@dataclass
class FakeProvider:
    """A threaded fake provider on 127.0.0.1; use it as a context manager."""

    key: str
    port: int = 0
    chunks: int = 5
    chunk_bytes: int = 0
    delay_s: float = 0.0
    script: ToolScript | None = None
    """When set, streams answer with this script's tool call, then its final text."""
    seen: list[Seen] = field(default_factory=list)
    disconnected: list[str] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)
    """Set while some stream holds its events back."""
    gone: threading.Event = field(default_factory=threading.Event)
    """Set when a client went away mid-stream."""

    def __post_init__(self) -> None:
        self._httpd = _Server(("127.0.0.1", self.port), _handler(self))
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def release(self) -> None:
        """Let every held stream send the rest of its events."""
        self.released.set()

    def arm(self) -> None:
        """Forget earlier releases and departures: the next held stream waits again."""
        self.released.clear()
        self.gone.clear()

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many concurrent streams connect at once


@dataclass(frozen=True)
class _Knobs:
    chunks: int
    chunk_bytes: int
    delay_s: float
    hold: bool
    status: int | None
    break_after: int | None


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:24]


def _text(index: int, size: int) -> str:
    word = WORDS[index % len(WORDS)]
    return word + "x" * max(0, size - len(word))


def _chat_events(model: str, ident: str, knobs: _Knobs) -> Iterator[bytes]:
    base = {"id": f"chatcmpl-{ident}", "object": "chat.completion.chunk", "created": CREATED}
    first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    yield sse({**base, "model": model, "choices": [first]})
    for i in range(knobs.chunks):
        delta = {"index": 0, "delta": {"content": _text(i, knobs.chunk_bytes)}}
        yield sse({**base, "model": model, "choices": [{**delta, "finish_reason": None}]})
    last = {"index": 0, "delta": {}, "finish_reason": "stop"}
    yield sse({**base, "model": model, "choices": [last]})
    yield sse("[DONE]")


def _response_object(model: str, ident: str, text: str, status: str) -> dict[str, Any]:
    output = []
    if status == "completed":
        output = [
            {
                "id": f"msg_{ident}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ]
    return {
        "id": f"resp_{ident}",
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "model": model,
        "output": output,
        "usage": {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": len(WORDS),
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 10 + len(WORDS),
        },
    }


def _responses_events(model: str, ident: str, knobs: _Knobs) -> Iterator[bytes]:
    texts = [_text(i, knobs.chunk_bytes) for i in range(knobs.chunks)]
    created = _response_object(model, ident, "", "in_progress")
    yield sse({"type": "response.created", "response": created}, "response.created")
    item = {"id": f"msg_{ident}", "type": "message", "status": "in_progress", "role": "assistant"}
    added = {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": {**item, "content": []},
    }
    yield sse(added, "response.output_item.added")
    for text in texts:
        delta = {
            "type": "response.output_text.delta",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "delta": text,
        }
        yield sse(delta, "response.output_text.delta")
    done = _response_object(model, ident, "".join(texts), "completed")
    item_done = {"type": "response.output_item.done", "output_index": 0, "item": done["output"][0]}
    yield sse(item_done, "response.output_item.done")
    yield sse({"type": "response.completed", "response": done}, "response.completed")


def _message_events(model: str, ident: str, knobs: _Knobs) -> Iterator[bytes]:
    yield message_start(model, ident)
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    yield sse(block, "content_block_start")
    for i in range(knobs.chunks):
        delta = {"type": "text_delta", "text": _text(i, knobs.chunk_bytes)}
        yield sse(
            {"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"
        )
    yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    end = {"stop_reason": "end_turn", "stop_sequence": None}
    usage = {"output_tokens": knobs.chunks}
    yield sse({"type": "message_delta", "delta": end, "usage": usage}, "message_delta")
    yield sse({"type": "message_stop"}, "message_stop")


def _whole(path: str, model: str, ident: str, knobs: _Knobs) -> dict[str, Any]:
    text = "".join(_text(i, knobs.chunk_bytes) for i in range(knobs.chunks))
    if path == "/v1/chat/completions":
        return {
            "id": f"chatcmpl-{ident}",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": knobs.chunks, "total_tokens": 15},
        }
    if path == "/v1/responses":
        return _response_object(model, ident, text, "completed")
    return {
        "id": f"msg_{ident}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": knobs.chunks},
    }


EVENTS = {
    "/v1/chat/completions": _chat_events,
    "/v1/responses": _responses_events,
    "/v1/messages": _message_events,
}


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the other side has closed the connection (without blocking)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _handler(fake: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._handle()

        def do_POST(self) -> None:  # noqa: N802
            self._handle()

        def do_PUT(self) -> None:  # noqa: N802
            self._handle()

        def do_PATCH(self) -> None:  # noqa: N802
            self._handle()

        def do_DELETE(self) -> None:  # noqa: N802
            self._handle()

        # -- reading ----------------------------------------------------------------------

        def _read_body(self) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                parts: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _knobs(self) -> _Knobs:
            def number(name: str, default: float) -> float:
                value = self.headers.get(name)
                return float(value) if value else default

            status = self.headers.get("x-fake-status")
            cut = self.headers.get("x-fake-break")
            return _Knobs(
                chunks=int(number("x-fake-chunks", fake.chunks)),
                chunk_bytes=int(number("x-fake-chunk-bytes", fake.chunk_bytes)),
                delay_s=number("x-fake-delay-ms", fake.delay_s * 1000) / 1000,
                hold=self.headers.get("x-fake-hold") == "1",
                status=int(status) if status else None,
                break_after=int(cut) if cut else None,
            )

        def _authorized(self, path: str) -> bool:
            bearer = self.headers.get("Authorization") == f"Bearer {fake.key}"
            if path in ("/v1/messages", "/v1/models"):  # Anthropic's routes take x-api-key
                return bearer or self.headers.get("x-api-key") == fake.key
            return bearer

        # -- answering --------------------------------------------------------------------

        def _handle(self) -> None:
            body = self._read_body()
            fake.seen.append(Seen(self.command, self.path, list(self.headers.items()), body))
            path = self.path.split("?", 1)[0]
            knobs = self._knobs()
            if not self._authorized(path):
                self._error(401, "invalid_api_key", "Incorrect API key provided", path)
                return
            if knobs.status is not None:
                self._error(knobs.status, "rate_limit_exceeded", "Rate limit reached", path)
                return
            ident = _digest(self.command.encode() + self.path.encode() + body)
            if self.command == "DELETE":
                self._json(200, {"id": path.rsplit("/", 1)[-1], "deleted": True})
                return
            if self.command == "GET" and path == "/v1/models":
                models = [{"id": m, "object": "model", "created": CREATED} for m in ("fake-1",)]
                self._json(200, {"object": "list", "data": models})
                return
            if self.command != "POST" or path not in EVENTS:
                self._error(404, "not_found", f"no route {self.command} {path}", path)
                return
            try:
                request = json.loads(body or b"{}")
            except ValueError:
                self._error(400, "invalid_json", "the body is not JSON", path)
                return
            model = str(request.get("model") or "fake-1")
            if request.get("stream") is True and fake.script is not None:
                self._stream(path, fake.script.events(path, model, ident, request), knobs, ident)
            elif request.get("stream") is True:
                self._stream(path, EVENTS[path](model, ident, knobs), knobs, ident)
            else:
                self._json(200, _whole(path, model, ident, knobs), ident)

        def _head(self, status: int, content_type: str, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for name, value in (*HOP_HEADERS, ("X-Fake-Hop", "hop-by-hop"), *headers):
                self.send_header(name, value)
            self.end_headers()

        def _json(self, status: int, document: dict[str, Any], ident: str = "") -> None:
            data = json.dumps(document).encode()
            extra = [("Content-Length", str(len(data)))]
            if ident:
                extra.append(("X-Request-Id", f"req_{ident}"))
            self._head(status, "application/json", extra)
            self.wfile.write(data)

        def _error(self, status: int, code: str, message: str, path: str) -> None:
            if path == "/v1/messages":
                kind = "authentication_error" if status == 401 else "rate_limit_error"
                document: dict[str, Any] = {
                    "type": "error",
                    "error": {"type": kind, "message": message},
                }
            else:
                error = {"message": message, "type": "requests", "param": None, "code": code}
                document = {"error": error}
            data = json.dumps(document).encode()
            extra = [("Content-Length", str(len(data)))]
            if status == 429:
                extra.append(("Retry-After", "1"))
            self._head(status, "application/json", extra)
            self.wfile.write(data)

        def _stream(self, path: str, events: Iterator[bytes], knobs: _Knobs, ident: str) -> None:
            extra = [
                ("Transfer-Encoding", "chunked"),
                ("Cache-Control", "no-cache"),
                ("X-Request-Id", f"req_{ident}"),
            ]
            self._head(200, "text/event-stream; charset=utf-8", extra)
            try:
                for index, event in enumerate(events):
                    if index == knobs.break_after:
                        self.close_connection = True
                        return
                    if index == 1 and knobs.hold:
                        self._hold()
                    elif index and knobs.delay_s:
                        time.sleep(knobs.delay_s)
                    self._chunk(event)
                self._chunk(b"")
            except ClientGone:
                fake.disconnected.append(path)
                fake.gone.set()
                self.close_connection = True

        def _chunk(self, data: bytes) -> None:
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            except (BrokenPipeError, ConnectionResetError) as error:
                raise ClientGone from error

        def _hold(self) -> None:
            fake.holding.set()
            try:
                while not fake.released.wait(0.01):
                    if _peer_closed(self.connection):
                        raise ClientGone
            finally:
                fake.holding.clear()

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument("--key", required=True, help="the real key the fake accepts")
    parser.add_argument("--chunks", type=int, default=5, help="content events per stream")
    parser.add_argument("--chunk-bytes", type=int, default=0, help="pad each event's text")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="pause between events")
    args = parser.parse_args()
    with FakeProvider(
        args.key,
        args.port,
        chunks=args.chunks,
        chunk_bytes=args.chunk_bytes,
        delay_s=args.delay_ms / 1000,
    ) as fake:
        print(f"fake provider on {fake.url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
