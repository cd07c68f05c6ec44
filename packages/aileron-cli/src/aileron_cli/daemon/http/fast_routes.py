"""The daemon's hot routes, answered as plain ASGI before FastAPI's router sees the request.

Most of the daemon's traffic is four routes: ``GET /v1/health`` (every CLI command's probe),
``GET /v1/status`` (``aileron status``), ``POST /v1/actions/{name}/run`` (every agent's tool
call) and the LLM gateway ``/v1/gateway/{openai,anthropic}/…``. For them FastAPI's machinery
cost more than the work: routing through every route, dependency solving (FastAPI runs the
plain-function dependencies in a worker thread: two thread round trips per run), pydantic
validation, and on a fresh daemon the lazy build of every route's state on the first request
(~150 ms, which ``aileron status`` right after an auto-spawn used to wait for). Measured in
``bench/actions_bench.py`` and ``bench/cli_bench.py`` (BENCHMARKS.md B3, B4, B5, B9).

:class:`HotRoutes` answers those requests itself with the same authentication
(:meth:`aileron_cli.daemon.access.tokens.Gate.admit`), the same validation, the same code
(:mod:`aileron_cli.daemon.run.runner`, :mod:`aileron_cli.daemon.http.routes.gateway`) and the same
errors: an ``AileronError`` is answered by the app's own exception handler, anything else
goes up to the app's error middleware as before. Every ``/v1/gateway/…`` request goes to the
gateway's own code, which answers its errors in the provider's shape (an unknown provider or
method too). The FastAPI routes stay declared, so ``/openapi.json`` describes these routes
exactly as before.

Only the plain case is answered here. A request whose answer would be a validation error (a
body that is not a JSON object of the declared shape, a parameter out of its bounds, another
content type) is handed to FastAPI unchanged, its body replayed, so that its answer is
FastAPI's own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette._utils import is_async_callable
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aileron_cli.daemon.access.peers import PEER_SCOPE_KEY
from aileron_cli.daemon.access.tokens import ADMIN
from aileron_cli.daemon.http.routes.actions import answer, session_of
from aileron_cli.daemon.http.routes.gateway import forward_request
from aileron_cli.daemon.http.routes.system import current_status
from aileron_cli.daemon.http.schemas import Health, RunDone
from aileron_cli.daemon.run import runner
from aileron_core.errors import AileronError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from aileron_cli.daemon.daemon import DaemonState

__all__ = ["HotRoutes"]

# The FastAPI routes' own path patterns ({name} is [^/]+, {path:path} is .*).
RUN = re.compile(r"^/v1/actions/([^/]+)/run$")
GATEWAY = re.compile(r"^/v1/gateway/([^/]+)/(.*)$")  # any name: errors in a provider's shape
NAME_MAX = 64  # routes.actions.Name
SESSION_MAX = 64  # routes.actions.SessionHeader
SESSION_HEADER = b"x-aileron-session-id"
JSON_HEADERS = [(b"content-type", b"application/json")]


class HotRoutes:
    """ASGI middleware: answer the hot routes, pass everything else on to ``app``."""

    def __init__(
        self, app: ASGIApp, *, fastapi: FastAPI, state: Callable[[], DaemonState | None]
    ) -> None:
        self.app = app
        self.fastapi = fastapi
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state() if scope["type"] == "http" else None
        if state is None:  # not started yet (or a lifespan/websocket message): FastAPI's
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        try:
            if method == "POST" and path.startswith("/v1/actions/"):
                run = RUN.match(path)
                if run is not None:
                    await self._run(state, run.group(1), scope, receive, send)
                    return
            elif path.startswith("/v1/gateway/"):
                gateway = GATEWAY.match(path)
                if gateway is not None:
                    scope["path_params"] = {"path": gateway.group(2)}
                    response = await forward_request(Request(scope, receive), gateway.group(1))
                    await response(scope, receive, send)
                    return
            elif method == "GET" and path == "/v1/health":
                health = Health(status="ok", service="aileron", version=state.version)
                await _json(send, 200, health)
                return
            elif method == "GET" and path == "/v1/status":
                await state.gate.admit(
                    _header(scope, b"authorization"), ADMIN, scope.get(PEER_SCOPE_KEY)
                )
                await _json(send, 200, current_status(state))
                return
        except AileronError as error:
            await self._error(error, scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _run(
        self, state: DaemonState, name: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """``POST /v1/actions/{name}/run`` (``routes.actions.run_action``)."""
        messages, body = await _read_body(receive)
        args = _run_args(scope, body) if len(name) <= NAME_MAX else None
        plain, session = _session_header(scope)
        if args is None or not plain or messages[-1]["type"] != "http.request":
            await self.app(scope, _replay(messages, receive), send)
            return
        who = await state.gate.admit(
            _header(scope, b"authorization"), "actions:run", scope.get(PEER_SCOPE_KEY)
        )
        plan = runner.plan_action(state, name, args)
        result = answer(await runner.start(state, plan, who.actor, session_of(who, session)))
        if isinstance(result, RunDone):
            await _json(send, 200, result)
        else:  # 202, waiting for approval: the route's own JSONResponse
            await result(scope, receive, send)

    async def _error(self, error: AileronError, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``error`` with the app's own handler for it (as its ExceptionMiddleware)."""
        handler = None
        for cls in type(error).__mro__:
            handler = self.fastapi.exception_handlers.get(cls)
            if handler is not None:
                break
        if handler is None:
            raise error
        request = Request(scope, receive)
        if is_async_callable(handler):
            response = await handler(request, error)
        else:
            response = handler(request, error)
        await response(scope, receive, send)
        error.__traceback__ = None


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (as Starlette's ``Headers.get``)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _session_header(scope: Scope) -> tuple[bool, str | None]:
    """Whether the ``X-Aileron-Session-Id`` header is plainly valid (one value, not too long;
    else FastAPI judges it), and its value."""
    values = [v for k, v in scope["headers"] if k == SESSION_HEADER]
    if not values:
        return True, None
    text = str(values[0].decode("latin-1"))
    return len(values) == 1 and len(text) <= SESSION_MAX, text


def _run_args(scope: Scope, body: bytes) -> dict[str, Any] | None:
    """The arguments of a run body that ``RunBody`` accepts as it is, else ``None``."""
    if not body:
        return None
    content_type = _header(scope, b"content-type")
    if content_type is not None and (
        content_type.partition(";")[0].strip().lower() != "application/json"
    ):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or not document.keys() <= {"args"}:
        return None
    args = document.get("args", {})
    return args if isinstance(args, dict) else None


async def _read_body(receive: Receive) -> tuple[list[Message], bytes]:
    """Every message up to the body's end (or a disconnect), and the body."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    return messages, b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` again, then listens on."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _json(send: Send, status: int, model: Any) -> None:
    """Send ``model`` as FastAPI sends a ``response_model`` answer (pydantic's JSON)."""
    body: bytes = model.model_dump_json().encode()
    headers = [*JSON_HEADERS, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
