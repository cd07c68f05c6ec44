"""The daemon's app builds its routes once it is up, not on a request's time (ADR 0027)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from aileron_cli.daemon.http.app import build_app, warm_routes


class Probe(BaseRoute):
    """A route that notes each path it is asked to match, and matches none."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        self.asked.append(scope["path"])
        return Match.NONE, {}


def test_warming_asks_every_route_once_with_a_path_none_serves() -> None:
    """``warm_routes`` has each route of the app match once, on a path under ``/v1/`` that no
    route answers (so FastAPI's routers build every route they hold)."""
    app = FastAPI()
    probes = [Probe(), Probe()]
    app.router.routes.extend(probes)
    asyncio.run(warm_routes(app))
    assert [p.asked for p in probes] == [["/v1/.warm"], ["/v1/.warm"]]


def test_the_daemon_app_warms_its_routes_once_its_services_are_open() -> None:
    """The app ``build_app`` makes runs the warm-up after the given lifespan has opened, and
    its first request is answered as usual."""
    order: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        order.append("open")
        yield
        order.append("closed")

    app = build_app(version="1.0", lifespan=lifespan, touch=lambda: None, warm_after_s=0)
    probe = Probe()
    app.router.routes.append(probe)

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            assert order == ["open"]
            for _ in range(len(app.router.routes) + 2):
                await asyncio.sleep(0)
            assert probe.asked == ["/v1/.warm"]
        assert order == ["open", "closed"]

    asyncio.run(scenario())
