"""The approvals web page (issue #20): login links, the login, the page and its guard.

- ``POST /v1/ui/links`` (:data:`links`, the human only: ADMIN, ADR 0014) mints a one-time login
  link (:mod:`aileron_cli.daemon.access.ui_sessions`), audited ``ui.link_created``.
- ``GET /ui/login?t=TOKEN`` redeems it: a session cookie (HttpOnly, SameSite=Strict, Path=/ui)
  and a redirect to the page with the session's page key in the URL fragment (``#k=KEY``: the
  browser never sends a fragment to a server); a used, unknown or expired link is a 403 page.
  The cookie alone opens nothing (a browser sends it to every port of the host): every
  ``/ui/api`` request must carry the page key too (:mod:`.ui_api`).
- ``/ui/`` and ``/ui/approvals/{id}`` are one static page; ``/ui/app.js`` and ``/ui/app.css``
  its script and style, files of this wheel (``ui_static/``). The page reads and decides
  through ``/ui/api/`` (:mod:`.ui_api`).

:class:`UiGuard` stands in front of every ``/ui`` request: it must reach the daemon's own
loopback TCP address (not its Unix socket, not a session's listener), name it in ``Host``
(``127.0.0.1:PORT`` or ``localhost:PORT``, else 421: a DNS-rebinding page names its own host)
and, for anything but GET/HEAD, send an ``Origin`` of that address (else 403); while a
contained agent session lives, it must come from a process outside every agent's tree (found
through ``/proc``: :func:`_agent_refusal`), as the admin API requires. Every ``/ui``
answer carries :data:`SECURITY_HEADERS` (a strict Content-Security-Policy: no inline script or
style, nothing from elsewhere, no framing).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aileron_cli.daemon.access.peers import (
    PEER_SCOPE_KEY,
    ConnectionPeer,
    PeerProcess,
    tcp_peer_pid,
)
from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.errors import ERROR_RESPONSES
from aileron_cli.daemon.http import deps
from aileron_cli.daemon.http.schemas import Strict
from aileron_core.audit import Actor

__all__ = ["COOKIE", "PAGE_KEY_FRAGMENT", "SECURITY_HEADERS", "UiGuard", "links", "router"]

COOKIE = "aileron_ui"
PAGE_KEY_FRAGMENT = "k"
"""The login redirect's fragment ``#k=KEY`` hands the page its key (read by ``app.js``)."""
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
)
SAFE_METHODS = frozenset({"GET", "HEAD"})

links = APIRouter(prefix="/ui", tags=["ui"], responses=ERROR_RESPONSES)
router = APIRouter(prefix="/ui", include_in_schema=False)
Admin = Annotated[Principal, Depends(require(ADMIN))]


def _is_ui(path: str) -> bool:
    return path == "/ui" or path.startswith("/ui/")


def own_port(scope: Scope) -> int:
    """The port of the daemon's main (loopback TCP) address."""
    split = urlsplit(scope["app"].state.daemon.process.url)
    return split.port or 80


def own_origins(port: int) -> frozenset[str]:
    return frozenset({f"http://127.0.0.1:{port}", f"http://localhost:{port}"})


class UiGuard:
    """The DNS-rebinding and cross-site guard, and the security headers, of every ``/ui``
    request (see the module docstring); every other request passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_ui(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in names]
                message = {**message, "headers": [*kept, *SECURITY_HEADERS]}
            await send(message)

        refusal = _refusal(scope) or await _agent_refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, secured)
            return
        await self.app(scope, receive, secured)


def _refusal(scope: Scope) -> Response | None:
    """Why a ``/ui`` request may not reach the page, as the answer to give, or ``None``."""
    port = own_port(scope)
    peer: ConnectionPeer | None = scope.get(PEER_SCOPE_KEY)
    server = scope.get("server")
    if (peer is not None and peer.transport != "tcp") or (server is not None and server[1] != port):
        return PlainTextResponse(
            "the approvals page is served on the daemon's loopback address only", 403
        )
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in (b"host", b"origin") and name in headers:
            return PlainTextResponse(f"more than one {name.decode()} header", 400)
        headers[name] = value
    hosts = {origin.removeprefix("http://") for origin in own_origins(port)}
    if headers.get(b"host", b"").decode("latin-1") not in hosts:
        return PlainTextResponse(
            f"this page answers to 127.0.0.1:{port} or localhost:{port} only", 421
        )
    if scope["method"] not in SAFE_METHODS:
        origin = headers.get(b"origin", b"").decode("latin-1")
        if origin not in own_origins(port):
            return PlainTextResponse("cross-origin request refused", 403)
    return None


async def _agent_refusal(scope: Scope) -> Response | None:
    """A ``/ui`` request from a process of a live agent session's tree is refused, as the
    admin API refuses one (ADR 0014): the login link travels on the browser's command line,
    where a same-user agent could read it and race the browser to it. The caller of a TCP
    request is found through ``/proc`` (:func:`~aileron_cli.daemon.access.peers.tcp_peer_pid`),
    only while a contained session lives; a caller that cannot be told is refused then too."""
    daemon = scope["app"].state.daemon
    trees = daemon.gate.trees
    if not trees:
        return None
    client, server = scope.get("client"), scope.get("server")
    pid = tcp_peer_pid(tuple(client), tuple(server)) if client and server else None
    if pid is None:
        return PlainTextResponse(
            "while an agent session runs, the page answers only a process it can tell is"
            " not the agent's",
            403,
        )
    session_id = trees.session_of(pid)
    if session_id is None:
        return None
    process = PeerProcess.of(ConnectionPeer("tcp", pid, -1))
    await daemon.audit.record(
        "auth.refused",
        Actor(type="agent", id=f"session:{session_id}"),
        session_id,
        reason="the approvals page from a process of an agent session",
        capability="ui",
        process=process.to_json(),
    )
    return PlainTextResponse(
        "agent_process_refused: this process belongs to an agent session; the approvals page"
        " is the human's",
        403,
    )


class NewLink(Strict):
    approval: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Land on this approval's page after the login.",
    )


class LinkOut(BaseModel):
    url: str = Field(description="The one-time login link: good once, for 60 s.")
    expires_at: str


def minted_by(who: Principal) -> str:
    """Who minted a link, as its page's decisions name the decider: the user, and the
    terminal the link was asked from when known."""
    tty = who.process.tty if who.process is not None else None
    return f"{who.actor.id} on {tty}" if tty else who.actor.id


@links.post("/links", response_model=LinkOut, status_code=201)
async def create_link(
    body: NewLink,
    who: Admin,
    process: deps.Process,
    audit: deps.Audit,
    ui: deps.UiSessionsDep,
    approvals: deps.Approvals,
) -> LinkOut:
    """A one-time login link to the approvals page (optionally to one approval); the human
    only: an agent's process tree is refused, as on every admin route."""
    if body.approval is not None:
        approvals.get(body.approval)  # an unknown approval is 404 before anything is minted
    token, expires = ui.mint_link(minted_by(who), body.approval)
    await audit.record(
        "ui.link_created",
        who.actor,
        None,
        approval=body.approval,
        process=who.process.to_json() if who.process is not None else None,
        terminal=who.process.tty if who.process is not None else None,
    )
    return LinkOut(url=f"{process.url}/ui/login?t={token}", expires_at=expires.isoformat())


@functools.cache
def static_file(name: str) -> bytes:
    """One file of the page (read once from the wheel)."""
    return resources.files("aileron_cli.daemon.http").joinpath("ui_static", name).read_bytes()


TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}


def _file(name: str) -> Response:
    return Response(static_file(name), media_type=TYPES[name])


LOGIN_REFUSED = (
    "This login link was already used, has expired or is unknown.\n"
    "Run `aileron open` in your terminal for a new one (links are good once, for 60 s).\n"
)


@router.get("/login")
async def login(
    audit: deps.Audit,
    ui: deps.UiSessionsDep,
    t: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    """Redeem a login link: a session cookie and the page, its key in the fragment; or 403."""
    redeemed = ui.redeem(t) if t else None
    if redeemed is None:
        return PlainTextResponse(LOGIN_REFUSED, 403)
    await audit.record(
        "ui.login", Actor(type="human", id=redeemed.session.by), None, approval=redeemed.approval
    )
    target = "/ui/" if redeemed.approval is None else f"/ui/approvals/{redeemed.approval}"
    answer = RedirectResponse(f"{target}#{PAGE_KEY_FRAGMENT}={redeemed.key}", status_code=303)
    answer.set_cookie(
        COOKIE,
        redeemed.cookie,
        max_age=int(redeemed.session.expires - ui.now()),
        path="/ui",
        httponly=True,
        samesite="strict",
    )
    return answer


@router.get("/")
async def index() -> Response:
    return _file("index.html")


@router.get("/approvals/{approval_id}")
async def approval_page(approval_id: str) -> Response:
    """The page, opened on one approval (the script reads the id from the path)."""
    return _file("index.html")


@router.get("/app.js")
async def script() -> Response:
    return _file("app.js")


@router.get("/app.css")
async def style() -> Response:
    return _file("app.css")
