"""TLS servers standing in for GitHub and a package registry, with a private CA of their own.

``TlsUpstream`` is a threaded HTTP/1.1 server on 127.0.0.1 (random port) that speaks real TLS
with a certificate from a ``network_support.PrivateCA`` for the names it stands in for (so a
client must trust that CA, e.g. through the daemon's ``[network] ca_bundle``, and reach the
names through a pin such as ``[sandbox.resolve]``). It records every request it got (method,
path with query, headers, body with any chunked transfer encoding decoded) and answers through
one of the handlers:

``Echo``
    answers ``200`` with JSON of the request's method, path, headers and body (text), and the
    ``Authorization`` it got in the answer's ``X-Echo-Authorization`` header: an upstream that
    echoes the credential back.
``GitHttp``
    git smart HTTP: the real ``git http-backend`` CGI over bare repositories under a folder
    (``GIT_PROJECT_ROOT``, every repository exported, push allowed), reached only with
    ``Authorization: Basic`` user:token (``401`` with ``WWW-Authenticate`` otherwise). Every
    Basic credential it was sent is kept in ``credentials``.
``NpmRegistry``
    enough of a registry for ``npm whoami`` (``GET /-/whoami``) and ``npm publish``
    (``PUT /<package>``), both wanting ``Authorization: Bearer <token>``; every token it was
    sent is kept in ``tokens`` and published documents in ``published``.

Use the server as a context manager: ``with TlsUpstream(ca, ["api.github.test"], Echo()) as up``.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from network_support import PrivateCA

GIT_HTTP_BACKEND = Path("/usr/lib/git-core/git-http-backend")


@dataclass(frozen=True)
class Request:
    """One request as an upstream received it."""

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


@dataclass(frozen=True)
class Response:
    """What a handler answers."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class Handler(Protocol):
    def __call__(self, request: Request) -> Response: ...


def _json(status: int, value: object, *headers: tuple[str, str]) -> Response:
    body = json.dumps(value).encode()
    return Response(status, [("Content-Type", "application/json"), *headers], body)


def basic_credentials(value: str | None) -> tuple[str, str] | None:
    """The (user, password) of an ``Authorization: Basic`` value, or ``None``."""
    if value is None:
        return None
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def bearer_token(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` value, or ``None``."""
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


@dataclass
class Echo:
    """Answers the request back as JSON (see the module)."""

    def __call__(self, request: Request) -> Response:
        echoed = {
            "method": request.method,
            "path": request.path,
            "headers": request.headers,
            "body": request.body.decode(errors="replace"),
        }
        authorization = request.header("Authorization")
        extra = [("X-Echo-Authorization", authorization)] if authorization else []
        return _json(200, echoed, *extra)


@dataclass
class GitHttp:
    """``git http-backend`` over bare repositories in ``root``, behind Basic user:token."""

    root: Path
    user: str
    token: str
    credentials: list[tuple[str, str]] = field(default_factory=list)
    """Every Basic (user, password) a request carried, right or wrong."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, name: str, files: dict[str, bytes] | None = None) -> Path:
        """A bare repository ``root/name`` with one commit of ``files`` (a README by default)."""
        work = self.root / f".{name}.work"
        work.mkdir(parents=True)
        for relative, content in (files or {"README.md": b"# stand-in\n"}).items():
            (work / relative).write_bytes(content)
        identity = ["-c", "user.name=Upstream", "-c", "user.email=upstream@example.test"]
        _git("init", "-q", "-b", "main", str(work))
        _git("-C", str(work), "add", "-A")
        _git("-C", str(work), *identity, "commit", "-q", "-m", "initial")
        bare = self.root / name
        _git("clone", "-q", "--bare", str(work), str(bare))
        _git("-C", str(bare), "config", "http.receivepack", "true")
        return bare

    def log(self, name: str) -> list[str]:
        """The subjects of branch main's commits in repository ``name``, newest first."""
        out = _git("-C", str(self.root / name), "log", "--format=%s", "main")
        return out.splitlines()

    def __call__(self, request: Request) -> Response:
        given = basic_credentials(request.header("Authorization"))
        if given is not None:
            with self._lock:
                self.credentials.append(given)
        if given != (self.user, self.token):
            challenge = ("WWW-Authenticate", 'Basic realm="stand-in git"')
            return Response(401, [challenge, ("Content-Type", "text/plain")], b"unauthorized\n")
        path, _, query = request.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "REMOTE_USER": self.user,
            "REMOTE_ADDR": "127.0.0.1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": request.method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_LENGTH": str(len(request.body)),
            "CONTENT_TYPE": request.header("Content-Type") or "",
        }
        for name in ("Content-Encoding", "Git-Protocol"):
            value = request.header(name)
            if value is not None:
                env["HTTP_" + name.upper().replace("-", "_")] = value
        env["GIT_PROTOCOL"] = request.header("Git-Protocol") or ""
        done = subprocess.run(  # noqa: S603 - a fixed binary with the test's own request
            [str(GIT_HTTP_BACKEND)], input=request.body, env=env, capture_output=True, check=False
        )
        return _cgi_response(done.stdout)


@dataclass
class NpmRegistry:
    """``npm whoami`` and ``npm publish`` against Bearer ``token`` (see the module)."""

    token: str
    user: str = "stand-in-user"
    tokens: list[str] = field(default_factory=list)
    """Every Bearer token a request carried, right or wrong."""
    published: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Request) -> Response:
        given = bearer_token(request.header("Authorization"))
        if given is not None:
            with self._lock:
                self.tokens.append(given)
        if given != self.token:
            challenge = ("WWW-Authenticate", 'Bearer realm="stand-in registry"')
            return _json(401, {"error": "unauthorized"}, challenge)
        path = request.path.partition("?")[0]
        if request.method == "GET" and path == "/-/whoami":
            return _json(200, {"username": self.user})
        if request.method == "PUT" and path.count("/") in (1, 2) and not path.startswith("/-/"):
            document = json.loads(request.body)
            with self._lock:
                self.published[document["name"]] = document
            return _json(201, {"ok": True, "id": document["name"]})
        return _json(404, {"error": "not found"})


class TlsUpstream:
    """A TLS server on 127.0.0.1 for ``names``, answering through ``handler`` (see the module)."""

    def __init__(self, ca: PrivateCA, names: Sequence[str], handler: Handler) -> None:
        self.names = tuple(names)
        self.handler = handler
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        context = ca.server_context(*self.names)
        context.set_alpn_protocols(["http/1.1"])
        self._httpd = _TlsServer(("127.0.0.1", 0), _request_handler(self), context)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, name: str | None = None) -> str:
        """``https://<name>:<port>`` (the first name by default)."""
        return f"https://{name or self.names[0]}:{self.port}"

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def __enter__(self) -> TlsUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        context: ssl.SSLContext,
    ) -> None:
        super().__init__(address, handler)
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake runs in the connection's own thread, so a client that never completes
        # it holds up nobody else.
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


def _request_handler(upstream: TlsUpstream) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as servers do: no 40 ms stall on a kept-alive answer
        wbufsize = 1 << 16  # the head and body in one write (flushed after each request)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            pass

        def _body(self) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                return _read_chunked(self.rfile)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _serve(self) -> None:
            request = Request(self.command, self.path, list(self.headers.items()), self._body())
            upstream.record(request)
            response = upstream.handler(request)
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve  # noqa: N815

    return RequestHandler


def _read_chunked(stream: Any) -> bytes:
    body = bytearray()
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        body += stream.read(size)
        stream.readline()


def _cgi_response(output: bytes) -> Response:
    head, sep, body = output.partition(b"\r\n\r\n")
    if not sep:
        head, _, body = output.partition(b"\n\n")
    status = 200
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split(" ")[0])
        elif name:
            headers.append((name.strip(), value.strip()))
    return Response(status, headers, body)


def _git(*args: str) -> str:
    done = subprocess.run(  # noqa: S603 - the host's git with the test's own arguments
        ["git", *args],
        capture_output=True,
        text=True,
        check=True,  # noqa: S607
    )
    return done.stdout
