"""An upstream that echoes the credential it received in every listed spelling, and checks
that none of them survived (imported as ``executor.echo_forms``).

The spellings (issue #14): raw, upper and lower case, JSON-escaped, percent-encoded (either
hex case), hex (either case), base64, base64url and base32 (with and without padding, lower
case too), each of the encodings also with the secret inside a longer blob at every byte
alignment.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

SECRET = 'tok_S3cr3t+/=~"echo\\9Qz'
"""A bearer credential that JSON escaping, percent-encoding and every base changes."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode()


def _b64_decode(run: str) -> bytes:
    return base64.b64decode(run.replace("-", "+").replace("_", "/"))


def _b32_decode(run: str) -> bytes:
    return base64.b32decode(run.upper())


def _hex_decode(run: str) -> bytes:
    return bytes.fromhex(run.rstrip("="))


ENCODINGS: dict[str, tuple[Callable[[bytes], str], str, int, Callable[[str], bytes]]] = {
    "base64": (_b64, r"[A-Za-z0-9+/]", 4, _b64_decode),
    "base64url": (_b64url, r"[A-Za-z0-9_-]", 4, _b64_decode),
    "base32": (_b32, r"[A-Za-z2-7]", 8, _b32_decode),
    "hex": (bytes.hex, r"[0-9A-Fa-f]", 2, _hex_decode),
}
"""Per encoding: encode, the alphabet of a run, characters per block, decode of one run."""


def recoverable(text: str, inner: bytes, encoding: str) -> bool:
    """Whether some run of the encoding's alphabet in ``text``, decoded at any alignment (any
    case for hex and base32), holds ``inner``."""
    _, alphabet, block, decode = ENCODINGS[encoding]
    for run in re.findall(f"{alphabet}+", text):
        for start in range(block):
            piece = run[start:]
            # The longest decodable head: the last block may be partial (then padded).
            for drop in range(block):
                head = piece[: len(piece) - drop]
                try:
                    decoded = decode(head + "=" * (-len(head) % block))
                except (ValueError, binascii.Error):
                    continue
                if inner in decoded:
                    return True
                break
    return False


def echoed_forms(secret: str) -> dict[str, str]:
    """Every listed spelling of ``secret``, by name, as an echoing upstream sends it."""
    raw = secret.encode()
    percent = quote(secret, safe="")
    forms = {
        "raw": secret,
        "upper": secret.upper(),
        "lower": secret.lower(),
        "json-escaped": json.dumps(secret)[1:-1],
        "percent": percent,
        "percent-lower": re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), percent),
        "hex": raw.hex(),
        "hex-upper": raw.hex().upper(),
        "base64": _b64(raw),
        "base64-unpadded": _b64(raw).rstrip("="),
        "base64url": _b64url(raw).rstrip("="),
        "base32": _b32(raw),
        "base32-lower": _b32(raw).lower().rstrip("="),
    }
    for name, (encode, *_) in ENCODINGS.items():
        for offset in range(1, 5 if name == "base32" else 3):
            blob = encode(bytes(range(200, 200 + offset)) + raw + b"\xfe\xfd")
            forms[f"{name}-at-{offset}"] = blob.lower() if name == "base32" else blob
    return forms


def proves_secret(name: str, form: str, secret: str) -> bool:
    """Whether ``form`` really is ``secret`` in the spelling ``name`` (decoded back)."""
    inner = secret.encode()
    encoding = name.split("-")[0]
    if encoding in ENCODINGS:
        return recoverable(form, inner, encoding)
    if name.startswith("percent"):
        from urllib.parse import unquote

        return unquote(form) == secret
    if name == "json-escaped":
        return bool(json.loads(f'"{form}"') == secret)
    return form.lower() == secret.lower()


def leaks(text: str, secret: str) -> list[str]:
    """The names of the spellings of ``secret`` that ``text`` still holds (decoded back where
    they are encodings; the edge bytes of a blob are not the secret)."""
    found = [
        name
        for name, form in echoed_forms(secret).items()
        if form.lower() in text.lower() and name.split("-")[0] not in ENCODINGS
    ]
    inner = secret.encode()[1:-1]
    found += [name for name in ENCODINGS if recoverable(text, inner, name)]
    if secret.lower() in text.lower():
        found.append("raw")
    return sorted(set(found))


def credential_of(headers: Any) -> str:
    """The credential a request presented (bearer or x-api-key)."""
    value: str = headers.get("Authorization") or headers.get("x-api-key") or ""
    return value.removeprefix("Bearer ")


class EchoFormsServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 that echoes the credential it received.

    - ``/forms``: 200, JSON ``{"echo": {name: form}, "authorization": <header>}`` with the
      forms also in an ``X-Echo`` header (fixed length).
    - ``/fail``: 400, every form in a plain-text body.
    - ``/gzip``: 200, every form, gzip-compressed whatever the request accepts.
    - ``/stream`` (any other path under ``/v1/``): 200, server-sent events, chunked, written a
      few bytes at a time so every form is cut across chunks.
    """

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.accept_encodings: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:  # noqa: N802
                self._serve()

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._serve()

            def _serve(self) -> None:
                secret = credential_of(self.headers)
                outer.seen.append(secret)
                outer.accept_encodings.append(self.headers.get("Accept-Encoding"))
                forms = echoed_forms(secret) if secret else {}
                if self.path.endswith("/forms"):
                    document = {"echo": forms, "authorization": self.headers["Authorization"]}
                    self._whole(200, "application/json", json.dumps(document).encode(), forms)
                elif self.path.endswith("/gzip"):
                    body = gzip.compress(" ".join(forms.values()).encode())
                    self.send_response(200)
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif self.path.endswith("/fail"):
                    text = "bad key: " + " | ".join(forms.values())
                    self._whole(400, "text/plain", text.encode(), forms)
                else:
                    self._stream(forms)

            def _whole(self, status: int, kind: str, body: bytes, forms: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Echo", " ".join(forms.values()))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self, forms: dict[str, str]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                events = b"".join(
                    f"data: {json.dumps({'form': name, 'text': form})}\n\n".encode()
                    for name, form in forms.items()
                )
                events += b"data: [DONE]\n\n"
                for at in range(0, len(events), 7):
                    piece = events[at : at + 7]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                    time.sleep(0.0005)
                self.wfile.write(b"0\r\n\r\n")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self.url = f"http://{self.host}"

    @contextmanager
    def running(self) -> Iterator[EchoFormsServer]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(5)
