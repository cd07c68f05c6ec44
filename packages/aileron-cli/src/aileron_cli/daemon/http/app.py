"""The daemon's FastAPI application.

``build_app`` builds the app around a lifespan (the composition root's, see
:func:`aileron_cli.daemon.daemon.create_app`) that opens the services before the first
request and closes them after the last. The
version check is a plain ASGI middleware: a client of another version gets ``409
version_mismatch`` with both versions and the fix, before any route runs. The four busiest
paths (health, status, an action run, the gateway) are plain Starlette routes first in the
app's router (:mod:`aileron_cli.daemon.http.fast`: same limits, authentication, services and
error handlers as their FastAPI declarations, which stay behind them for ``/openapi.json``);
every other request goes through FastAPI's routes (ADR 0027).

FastAPI builds a route's request handling (its dependencies, the models of its answers) on the
first request that reaches the route's router, not when the route is declared: tens of
milliseconds of CPU for a router with many routes, which the first request would wait for.
The health and status routes come first, so the first ``aileron status`` after an auto-spawn
builds only theirs; :func:`warm_routes` builds the rest shortly after the daemon is up
(:data:`WARM_AFTER_S`: past the CLI's first request, before an agent's first call), one router
per event-loop turn, so that no request waits for a whole app's build.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from aileron_cli.daemon.errors import install_error_handlers
from aileron_cli.daemon.http import fast
from aileron_cli.daemon.http.routes import (
    actions,
    approvals,
    audit,
    bindings,
    connectors,
    enclave,
    gateway,
    oauth,
    providers,
    sessions,
    system,
    ui,
    ui_api,
    usage,
    vault,
)

VERSION_HEADER = b"x-aileron-version"


class VersionGate:
    """Refuse requests from clients of another version; note activity for the idle timer."""

    def __init__(self, app: ASGIApp, version: str, touch: Callable[[], None]) -> None:
        self.app = app
        self.version = version.encode()
        self.touch = touch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.touch()
            for name, value in scope["headers"]:
                if name == VERSION_HEADER and value != self.version:
                    await _refuse_version(send, value.decode("latin-1"), self.version.decode())
                    return
        await self.app(scope, receive, send)


async def _refuse_version(send: Send, client: str, daemon: str) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "version_mismatch",
                "message": (
                    f"this daemon runs Aileron {daemon} but the client is {client}"
                    " — run `aileron daemon stop`; the next command starts the matching daemon"
                ),
                "details": {"daemon_version": daemon, "client_version": client},
                "retriable": False,
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 409,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

# A path under every router's prefix that no route matches: matching it builds every route.
WARM_SCOPE: Scope = {
    "type": "http",
    "method": "GET",
    "path": "/v1/.warm",
    "root_path": "",
    "headers": [],
    "query_string": b"",
}


WARM_AFTER_S: float | None = 0.5
"""Seconds after the services open at which :func:`warm_routes` starts; ``None``: never (the
routes are built on their first request). The test suite sets ``None`` for the apps it runs in
its own process: Python's ``warnings.catch_warnings``, which FastAPI uses while it builds a
route, is not thread-safe, and a build in a background thread can swap the warning filters
while pytest installs its own for the next test."""


async def warm_routes(app: Starlette, *, after_s: float = 0.0) -> None:
    """After ``after_s``, have each of ``app``'s routes match a request once, one per
    event-loop turn, so that the routers build their routes' handling now rather than on a
    request."""
    await asyncio.sleep(after_s)
    for route in app.router.routes:
        await asyncio.sleep(0)
        route.matches(dict(WARM_SCOPE))


def _warming(lifespan: Lifespan, after_s: float | None) -> Lifespan:
    """``lifespan``, with :func:`warm_routes` started once it has opened the services, after
    ``after_s`` (``None``: :data:`WARM_AFTER_S` as it is when the lifespan opens)."""

    @contextlib.asynccontextmanager
    async def warmed(app: FastAPI) -> AsyncIterator[None]:
        async with lifespan(app):
            delay = WARM_AFTER_S if after_s is None else after_s
            if delay is None:
                yield
                return
            warm = warm_routes(app, after_s=delay)
            task = asyncio.get_running_loop().create_task(warm, name="warm routes")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return warmed


def build_app(
    *,
    version: str,
    lifespan: Lifespan,
    touch: Callable[[], None],
    warm_after_s: float | None = None,
) -> FastAPI:
    """The daemon's HTTP edge: every route, the error handlers and the version gate, around a
    ``lifespan`` that opens the daemon's services before the first request (and puts them at
    ``app.state.daemon``) and closes them after the last; ``touch`` notes each request. The
    routes are built ``warm_after_s`` (default :data:`WARM_AFTER_S`) after the services open
    (:func:`warm_routes`)."""
    app = FastAPI(
        title="Aileron daemon",
        version=version,
        lifespan=_warming(lifespan, warm_after_s),
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    for module in (
        system,  # first: the first request after a start is `aileron status` (see above)
        gateway,  # then the hottest path (LLM traffic); its prefix shadows nothing
        vault,
        sessions,
        audit,
        connectors,
        actions,
        oauth,  # before bindings: its /bindings/oauth2/… paths match /bindings/{name:path}
        bindings,
        approvals,
        enclave,
        providers,
        usage,
    ):
        app.include_router(module.router, prefix="/v1")
    app.include_router(ui.links, prefix="/v1")
    app.include_router(ui.router)  # the approvals page (issue #20), behind UiGuard
    app.include_router(ui_api.router)
    app.router.routes[0:0] = fast.routes()  # first: see the module docstring

    app.add_middleware(ui.UiGuard)
    app.add_middleware(VersionGate, version=version, touch=touch)
    return app
