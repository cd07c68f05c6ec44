"""Per-session listeners: how a sandboxed agent reaches the daemon (SPEC §11 step 5).

The daemon's main socket stays on 127.0.0.1 for host clients. ``POST
/v1/sessions/{id}/listener`` binds one more socket and serves the same app there behind
:class:`SessionGate`: a TCP socket on an address the container reaches, or (``unix``) the Unix
socket ``api.sock`` in the session's run folder (:meth:`Layout.run_dir`), which a sandboxed
agent's container mounts at ``/run/aileron`` and reaches through its in-container bridge
(ADR 0023). The gate looks at every token a request presents (``Authorization``, ``x-api-key``,
``X-Aileron-Session-Token`` — the headers the gateway reads):

- any of them is the master token → 403 ``master_token_refused``;
- any of them belongs to another live session → 403 ``forbidden``;
- otherwise the request goes to the app unchanged and its own auth applies (no token, or the
  token of an ended session → 401; ``GET /v1/health`` needs none).

Each listener is one more server of the uvicorn glue (:mod:`aileron_cli.daemon.http.uvicorn_glue`:
the main socket's kind, without its signal handlers) in the daemon's event loop, on the
pre-bound socket. It stops accepting connections the moment its session ends; requests already
running get :data:`GRACE_S` to finish, in the background. The daemon's shutdown closes what is left
and waits for it within a bound, so a listener never holds the daemon up.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from aileron_cli.daemon.access.tokens import TokenRegistry
from aileron_cli.daemon.errors import STATUS_BY_CODE, DaemonError, envelope
from aileron_cli.daemon.gateway.auth import SESSION_HEADER
from aileron_cli.daemon.http.uvicorn_glue import Server, http_server
from aileron_core.unix_sockets import bind_unix, remove_socket

log = logging.getLogger("aileron.daemon")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

TOKEN_HEADERS = ("authorization", "x-api-key", SESSION_HEADER)
BACKLOG = 128
GRACE_S = 3
"""Seconds a closing listener gives its running requests (uvicorn's graceful shutdown)."""
STOP_WAIT_S = GRACE_S + 1.0
"""Seconds the daemon's shutdown waits for its listeners before cancelling them."""

REFUSAL_HINT = "send this session's token (AILERON_TOKEN), nothing else"
API_SOCKET = "api.sock"
"""The session listener's Unix socket in the session's run folder."""


class SessionGate:
    """An ASGI wrapper that lets through no master token and no other session's token."""

    def __init__(self, app: ASGIApp, session_id: str, tokens: TokenRegistry) -> None:
        self.app = app
        self.session_id = session_id
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            refusal = self.refusal(Headers(scope=scope))
            if refusal is not None:
                if scope["type"] == "websocket":  # the daemon serves none; refuse the same way
                    await WebSocketClose(code=1008)(scope, receive, send)
                else:
                    await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, headers: Headers) -> Response | None:
        """The answer that refuses a request with these headers, or ``None`` to let it in."""
        foreign = False
        for token in presented_tokens(headers):
            principal = self.tokens.resolve(token)
            if principal is None:
                continue  # no token of ours: the app's own auth decides (401)
            if principal.kind == "master":
                return _refuse(
                    "master_token_refused",
                    "the master token is never accepted on a session's listener — " + REFUSAL_HINT,
                )
            if principal.session_id != self.session_id:
                foreign = True
        if foreign:
            return _refuse(
                "forbidden",
                f"this listener serves session {self.session_id} only — {REFUSAL_HINT}",
            )
        return None


def _refuse(code: str, message: str) -> Response:
    return envelope(STATUS_BY_CODE[code], code, message, retriable=False)


def presented_tokens(headers: Headers) -> list[str]:
    """Every value in a request that could be an Aileron token (never logged or echoed)."""
    found: list[str] = []
    for name in TOKEN_HEADERS:
        for value in headers.getlist(name):
            found.append(value.strip())
            if name == "authorization":
                # "Bearer <token>", and any other scheme too: the gateway forwards those.
                found.append(value.strip().partition(" ")[2].strip())
    return [value for value in found if value]


def parse_host(text: str) -> IPAddress:
    """The address a listener may bind: one IP literal, not a wildcard or a multicast group."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        problem = "must be an IP address (e.g. 10.0.2.2 or fd00::1), not a name"
    else:
        if not (address.is_unspecified or address.is_multicast):
            return address
        problem = "must be one address of this machine, not a wildcard or a multicast group"
    raise DaemonError(
        "invalid_request",
        f"invalid body.host: {text!r} {problem}",
        details={"fields": [{"location": ["body", "host"], "problem": problem}]},
    )


def _bind(address: IPAddress) -> socket.socket:
    """A listening TCP socket on ``address``, on a free port."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        # getaddrinfo turns a scoped IPv6 literal ("fe80::1%eth0") into its socket address.
        info = socket.getaddrinfo(
            str(address), 0, family, socket.SOCK_STREAM, socket.IPPROTO_TCP, socket.AI_NUMERICHOST
        )
        # IPPROTO_TCP explicitly, as for the main socket (server.py): accepted sockets then get
        # TCP_NODELAY from asyncio.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.bind(info[0][4])
            sock.listen(BACKLOG)
        except OSError:
            sock.close()
            raise
    except OSError as error:
        reason = error.strerror or str(error)
        raise DaemonError(
            "listener_bind_failed",
            f"cannot listen on {address}: {reason}",
            hint="name an address of this machine that the container reaches",
            details={"host": str(address), "errno": error.errno, "reason": reason},
        ) from None
    return sock


def url_host(address: IPAddress) -> str:
    """``address`` as the host part of a URL: IPv6 in brackets, its zone's ``%`` escaped."""
    if address.version == 6:
        return "[" + str(address).replace("%", "%25") + "]"
    return str(address)


class Listener:
    """One session's socket (TCP, or a Unix socket at ``path``) and the uvicorn server
    answering on it."""

    def __init__(
        self,
        session_id: str,
        address: IPAddress | None,
        port: int | None,
        server: Server,
        path: Path | None = None,
    ) -> None:
        self.session_id = session_id
        self.address = address
        self.port = port
        self.server = server
        self.path = path

    @property
    def host(self) -> str | None:
        return None if self.address is None else str(self.address)

    @property
    def url(self) -> str | None:
        """The daemon's API base as the agent sees it through a TCP listener."""
        if self.address is None:
            return None
        return f"http://{url_host(self.address)}:{self.port}/v1"

    @property
    def where(self) -> str:
        """The listener's address for the log: its URL or its socket's path."""
        return self.url or str(self.path)

    def stop_accepting(self) -> None:
        """Refuse new connections at once; uvicorn then finishes the open ones and exits."""
        self.server.stop_accepting()


class SessionListeners:
    """The open listeners of a daemon, at most one per session."""

    def __init__(self, tokens: TokenRegistry) -> None:
        self._tokens = tokens
        self._open: dict[str, Listener] = {}
        self._running: set[asyncio.Task[None]] = set()  # servers not yet exited, closing ones too

    def get(self, session_id: str) -> Listener | None:
        return self._open.get(session_id)

    async def open(self, session_id: str, host: str, app: ASGIApp) -> tuple[Listener, bool]:
        """Serve ``app`` for ``session_id`` on ``host``; the listener, and whether it is new.

        The session's existing listener on the same address is returned as is; one on another
        address is a 409 ``listener_exists``. The caller checks that the session is running.
        """
        address = parse_host(host)
        existing = self._existing(session_id, address=address)
        if existing is not None:
            return existing, False
        sock = _bind(address)
        port: int = sock.getsockname()[1]
        return await self._serve(session_id, sock, app, address=address, port=port), True

    async def open_unix(self, session_id: str, path: Path, app: ASGIApp) -> tuple[Listener, bool]:
        """Serve ``app`` for ``session_id`` on the Unix socket ``path`` (0600, its folder
        0700); the listener, and whether it is new (as :meth:`open`)."""
        existing = self._existing(session_id, path=path)
        if existing is not None:
            return existing, False
        sock = bind_unix(path, backlog=BACKLOG, private_folders=2)  # run/ and run/<id>
        try:
            return await self._serve(session_id, sock, app, path=path), True
        except BaseException:
            remove_socket(path, prune_folder=True)
            raise

    def _existing(
        self, session_id: str, *, address: IPAddress | None = None, path: Path | None = None
    ) -> Listener | None:
        """The session's open listener if it is the one asked for; 409 if it is another."""
        existing = self._open.get(session_id)
        if existing is None:
            return None
        if existing.address == address and existing.path == path:
            return existing
        raise DaemonError(
            "listener_exists",
            f"session {session_id} already has a listener on {existing.where}",
            hint="use that one; a session has one listener, closed when the session ends",
            details=(
                {"socket": str(existing.path)}
                if existing.path is not None
                else {"host": existing.host, "port": existing.port}
            ),
        )

    async def _serve(
        self,
        session_id: str,
        sock: socket.socket,
        app: ASGIApp,
        *,
        address: IPAddress | None = None,
        port: int | None = None,
        path: Path | None = None,
    ) -> Listener:
        """Run a gated server for ``session_id`` on the bound ``sock`` until it is closed."""
        server = http_server(
            SessionGate(app, session_id, self._tokens),
            handle_signals=False,  # the main server's, in the same loop, stay in place
            lifespan=False,  # the main server runs the app's lifespan, once
            timeout_graceful_shutdown=GRACE_S,
        )
        listener = Listener(session_id, address, port, server, path)
        self._open[session_id] = listener  # before any await: a concurrent call finds it
        task = asyncio.get_running_loop().create_task(
            server.serve(sockets=[sock]), name=f"aileron listener {session_id}"
        )
        self._running.add(task)
        task.add_done_callback(self._exited)
        try:
            while not server.started:
                if task.done():
                    raise RuntimeError("the listener's server stopped while starting")
                await asyncio.sleep(0)
        except BaseException:
            self.close(session_id)
            if task.done():
                sock.close()  # uvicorn closes it on a clean exit only
            raise
        log.info("session %s: listening for its agent on %s", session_id, listener.where)
        return listener

    def close(self, session_id: str) -> None:
        """Stop the session's listener, if it has one (closing twice is harmless)."""
        listener = self._open.pop(session_id, None)
        if listener is not None:
            listener.stop_accepting()
            if listener.path is not None:
                remove_socket(listener.path, prune_folder=True)
            log.info("session %s: listener on %s closed", session_id, listener.where)

    async def aclose(self) -> None:
        """Close every listener and wait for their servers, cancelling any that overstay."""
        for session_id in list(self._open):
            self.close(session_id)
        running = set(self._running)
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=STOP_WAIT_S)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    def _exited(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed: %r", task.get_name(), task.exception())
