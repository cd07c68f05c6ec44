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
event, then hold the rest back until :meth:`FakeProvider.release`), ``x-fake-usage:
INPUT,OUTPUT,CACHED`` (the token usage the answer reports; attribute ``usage``, default
input 10, output the number of content events, cached 0) and ``x-fake-echo-key: 1`` (attribute
``echo_key``: the answer's text — the JSON body's, or each streamed content event's — includes
the credential the fake received, the ``x-api-key`` or else the ``Authorization`` value, as an
endpoint that echoes its request would). A client that goes away mid-stream (also while held)
is noticed and its path added to ``disconnected``.

Every answer reports its usage in its API's real shape (see :class:`~fakes.script.FakeUsage`):
Chat Completions JSON ``usage`` (``prompt_tokens``, ``completion_tokens``, ``total_tokens``,
``prompt_tokens_details.cached_tokens``), and streamed a last chunk with ``"choices": []`` and
``usage`` only when the request has ``"stream_options": {"include_usage": true}`` (its other
chunks then carry ``"usage": null``); Responses ``usage`` (``input_tokens``,
``output_tokens``, ``total_tokens``, ``input_tokens_details.cached_tokens``), streamed in
``response.completed``'s ``response``; Anthropic ``usage`` (``input_tokens`` without the cached
tokens, ``cache_read_input_tokens``, ``cache_creation_input_tokens`` 0, ``output_tokens``),
streamed in ``message_start``'s ``message`` and ``message_delta``. So INPUT,OUTPUT,CACHED read
the same, normalised, from every API.

With ``script`` set (a :class:`~fakes.script.ToolScript`), streamed answers
play a tool loop instead: a call of the script's tool, then its final text (reporting input
10, output 5, cached 0 unless ``x-fake-usage`` or ``usage`` says otherwise; never echoing).

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fakes.script import (
    Counted,
    FakeUsage,
    ToolScript,
    chat_chunk,
    chat_end,
    include_usage,
    message_delta,
    message_start,
    sse,
)

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
    usage: FakeUsage | None = None
    """The usage every answer reports (``None``: input 10, output the content events)."""
    echo_key: bool = False
    """Every answer's text includes the credential the fake received."""

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
    usage: FakeUsage | None
    """The usage ``x-fake-usage`` (or the fake's ``usage``) sets, else ``None``."""
    echo: str
    """The credential to include in the answer's text (empty: none)."""

    def counted(self, request: dict[str, Any]) -> Counted:
        """The usage a plain answer to ``request`` reports."""
        usage = self.usage or FakeUsage(10, self.chunks, 0)
        return Counted(usage, include_usage(request))

    def text(self, index: int) -> str:
        """The text of content event ``index``."""
        return _text(index, self.chunk_bytes) + self.echo


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:24]


def _text(index: int, size: int) -> str:
    word = WORDS[index % len(WORDS)]
    return word + "x" * max(0, size - len(word))


def _chat_events(model: str, ident: str, knobs: _Knobs, request: dict[str, Any]) -> Iterator[bytes]:
    counted = knobs.counted(request)
    yield chat_chunk(model, ident, {"role": "assistant", "content": ""}, None, counted)
    for i in range(knobs.chunks):
        yield chat_chunk(model, ident, {"content": knobs.text(i)}, None, counted)
    yield chat_chunk(model, ident, {}, "stop", counted)
    yield from chat_end(model, ident, counted)


def _response_object(
    model: str, ident: str, text: str, status: str, usage: FakeUsage
) -> dict[str, Any]:
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
        "usage": usage.responses() if status == "completed" else None,
    }


def _responses_events(
    model: str, ident: str, knobs: _Knobs, request: dict[str, Any]
) -> Iterator[bytes]:
    usage = knobs.counted(request).usage
    texts = [knobs.text(i) for i in range(knobs.chunks)]
    created = _response_object(model, ident, "", "in_progress", usage)
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
    done = _response_object(model, ident, "".join(texts), "completed", usage)
    item_done = {"type": "response.output_item.done", "output_index": 0, "item": done["output"][0]}
    yield sse(item_done, "response.output_item.done")
    yield sse({"type": "response.completed", "response": done}, "response.completed")


def _message_events(
    model: str, ident: str, knobs: _Knobs, request: dict[str, Any]
) -> Iterator[bytes]:
    usage = knobs.counted(request).usage
    yield message_start(model, ident, usage)
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    yield sse(block, "content_block_start")
    for i in range(knobs.chunks):
        delta = {"type": "text_delta", "text": knobs.text(i)}
        yield sse(
            {"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"
        )
    yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    yield message_delta("end_turn", usage)
    yield sse({"type": "message_stop"}, "message_stop")


def _whole(path: str, model: str, ident: str, knobs: _Knobs) -> dict[str, Any]:
    usage = knobs.counted({}).usage
    text = "".join(knobs.text(i) for i in range(knobs.chunks))
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
            "usage": usage.chat(),
        }
    if path == "/v1/responses":
        return _response_object(model, ident, text, "completed", usage)
    return {
        "id": f"msg_{ident}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage.anthropic(),
    }


EVENTS: dict[str, Callable[[str, str, _Knobs, dict[str, Any]], Iterator[bytes]]] = {
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
            usage = self.headers.get("x-fake-usage")
            echo = self.headers.get("x-fake-echo-key") == "1" or fake.echo_key
            return _Knobs(
                chunks=int(number("x-fake-chunks", fake.chunks)),
                chunk_bytes=int(number("x-fake-chunk-bytes", fake.chunk_bytes)),
                delay_s=number("x-fake-delay-ms", fake.delay_s * 1000) / 1000,
                hold=self.headers.get("x-fake-hold") == "1",
                status=int(status) if status else None,
                break_after=int(cut) if cut else None,
                usage=FakeUsage(*(int(n) for n in usage.split(","))) if usage else fake.usage,
                echo=f" {self._credential()}" if echo else "",
            )

        def _credential(self) -> str:
            return self.headers.get("x-api-key") or self.headers.get("Authorization") or ""

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
                usage = knobs.usage or FakeUsage()
                events = fake.script.events(path, model, ident, request, usage)
                self._stream(path, events, knobs, ident)
            elif request.get("stream") is True:
                self._stream(path, EVENTS[path](model, ident, knobs, request), knobs, ident)
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
