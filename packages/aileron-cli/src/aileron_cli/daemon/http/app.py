"""The daemon's FastAPI application.

``create_app`` builds the app around a :class:`DaemonConfig`; its lifespan opens the stores
(recovering from a crash) before the first request and closes them after the last. The
version check is a plain ASGI middleware: a client of another version gets ``409
version_mismatch`` with both versions and the fix, before any route runs. Inside it, the hot
routes (health, status, action runs, the gateway) are answered as plain ASGI
(:mod:`aileron_cli.daemon.http.fast_routes`); every other request goes through FastAPI.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from aileron_cli.daemon.daemon import DaemonConfig, DaemonState
from aileron_cli.daemon.errors import install_error_handlers
from aileron_cli.daemon.http.fast_routes import HotRoutes
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


def create_app(
    config: DaemonConfig,
    *,
    on_ready: Callable[[DaemonState], None] | None = None,
    on_stopped: Callable[[DaemonState], None] | None = None,
) -> FastAPI:
    """Build the daemon app; ``on_ready`` runs once the stores are open, ``on_stopped`` once
    they are closed (inside the lifespan: uvicorn re-raises SIGTERM once it has shut down, so
    code after ``Server.run`` may never run)."""
    holder: dict[str, DaemonState] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = DaemonState.open(config)
        holder["state"] = state
        app.state.daemon = state
        state.guard_orphans()
        state.heads.start()
        if on_ready is not None:
            on_ready(state)
        try:
            yield
        finally:
            await state.listeners.aclose()  # first: no request may reach the closing stores
            await state.egress.aclose()  # its connections record themselves before the log closes
            state.launchers.close()
            await state.audit.drain()
            await state.executor.aclose()
            await state.gateway.aclose()
            await state.heads.aclose()
            state.close()  # signs the last head
            await state.stop_witness()  # and has it countersigned
            if on_stopped is not None:
                on_stopped(state)

    app = FastAPI(
        title="Aileron daemon",
        version=config.version,
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

    def touch() -> None:
        state = holder.get("state")
        if state is not None:
            state.last_activity = time.monotonic()

    # Inner first: the version gate runs before the hot routes (daemon.http.fast_routes).
    app.add_middleware(HotRoutes, fastapi=app, state=lambda: holder.get("state"))
    app.add_middleware(VersionGate, version=config.version, touch=touch)
    return app
