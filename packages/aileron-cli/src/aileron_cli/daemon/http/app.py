"""The daemon's FastAPI application.

``build_app`` builds the app around a lifespan (the composition root's, see
:func:`aileron_cli.daemon.daemon.create_app`) that opens the services before the first
request and closes them after the last. The
version check is a plain ASGI middleware: a client of another version gets ``409
version_mismatch`` with both versions and the fix, before any route runs. Every request then
goes through FastAPI's router (one routing system; ADR 0027).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from aileron_cli.daemon.errors import install_error_handlers
from aileron_cli.daemon.http.routes import (
    actions,
    approvals,
    audit,
    bindings,
    connectors,
    enclave,
    gateway,
    sessions,
    system,
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


def build_app(*, version: str, lifespan: Lifespan, touch: Callable[[], None]) -> FastAPI:
    """The daemon's HTTP edge: every route, the error handlers and the version gate, around a
    ``lifespan`` that opens the daemon's services before the first request (and puts them at
    ``app.state.daemon``) and closes them after the last; ``touch`` notes each request."""
    app = FastAPI(
        title="Aileron daemon",
        version=version,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    for module in (
        gateway,  # first: LLM traffic is the hottest path, and its prefix shadows nothing
        system,
        vault,
        sessions,
        audit,
        connectors,
        actions,
        bindings,
        approvals,
        enclave,
    ):
        app.include_router(module.router, prefix="/v1")

    app.add_middleware(VersionGate, version=version, touch=touch)
    return app
