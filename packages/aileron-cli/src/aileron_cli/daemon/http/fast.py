"""Plain Starlette routes for the daemon's four busiest paths, first in the app's router.

Most of the daemon's traffic is ``GET /v1/health`` (every CLI command's probe), ``GET
/v1/status``, ``POST /v1/actions/{name}/run`` (every agent's tool call) and the LLM gateway
``/v1/gateway/{provider}/…``. Through FastAPI each pays for the dependency tree, routing through
the routes in front of it and the response model, and a fresh daemon builds its routers on the
first request (ADR 0027). :func:`routes` answers those paths with plain ``starlette.routing.Route``
objects that :func:`aileron_cli.daemon.http.app.build_app` puts first in the app's router:

- the same authentication: the very dependency functions the FastAPI routes declare
  (``routes.system.admin_caller``, ``routes.actions.may_run``, i.e. ``tokens.require``);
- the same services (``request.app.state.daemon``, as ``http.deps``) and the same code (the
  runner, ``routes.system.current_status``, ``routes.gateway.forward_request``);
- the same limits: the run route validates its path parameter, its session header and its body
  with the FastAPI declarations themselves (``routes.actions.Name``, ``SessionHeader``,
  ``schemas.RunBody``), and a request that fails raises the ``RequestValidationError`` FastAPI
  would raise (same locations, same messages, same order: an undecodable JSON body before the
  token is looked at, the token before the parameters);
- the same answers to failures: a ``Route`` inside the app gets the app's exception handlers.

The FastAPI routes stay declared behind these, so ``/openapi.json`` describes the four paths as
before; they answer only a request the routes here do not match (none, in the daemon's app).
"""

from __future__ import annotations

import email.message
import json
from typing import Annotated, Any, TypeVar, get_args

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aileron_cli.daemon.access.tokens import Principal
from aileron_cli.daemon.http.routes.actions import (
    SESSION_HEADER,
    Name,
    SessionHeader,
    answer,
    may_run,
    session_of,
)
from aileron_cli.daemon.http.routes.gateway import METHODS, GatewayParts, forward_request
from aileron_cli.daemon.http.routes.system import admin_caller, current_status
from aileron_cli.daemon.http.schemas import Health, RunBody, RunDone

__all__ = ["PATHS", "routes"]

PATHS = (
    "/v1/health",
    "/v1/status",
    "/v1/actions/{name}/run",
    "/v1/gateway/{provider}/{path:path}",
)
"""The paths answered here (the FastAPI declarations of the same paths stay behind them)."""


def _constraints_of(declared: Any) -> TypeAdapter[Any]:
    """A validator of a FastAPI parameter declaration's type with its constraints (the
    ``FieldInfo``'s metadata: lengths, bounds), without the parameter's name and place."""
    base, info = get_args(declared)
    constrained: Any = Annotated[base, *info.metadata]
    return TypeAdapter(constrained)


_NAME: TypeAdapter[str] = _constraints_of(Name)
_SESSION: TypeAdapter[str | None] = _constraints_of(SessionHeader)
_BODY = TypeAdapter(RunBody)
_MISSING = object()
T = TypeVar("T")


def routes() -> list[Route]:
    """The four routes, to be placed first in the app's router."""
    health_path, status_path, run_path, gateway_path = PATHS
    return [
        Route(health_path, health, methods=["GET"], include_in_schema=False),
        Route(status_path, status, methods=["GET"], include_in_schema=False),
        Route(run_path, run_action, methods=["POST"], include_in_schema=False),
        Route(gateway_path, gateway, methods=list(METHODS), include_in_schema=False),
    ]


def _json(model: BaseModel, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code, media_type="application/json")


async def health(request: Request) -> Response:
    """``routes.system.health``."""
    daemon = request.app.state.daemon
    return _json(Health(status="ok", service="aileron", version=daemon.process.version))


async def status(request: Request) -> Response:
    """``routes.system.status``."""
    await admin_caller(request)
    daemon = request.app.state.daemon
    found = current_status(
        daemon.process,
        daemon.vault,
        daemon.sessions,
        daemon.actions,
        daemon.connectors,
        daemon.bindings,
        daemon.notices,
    )
    return _json(found)


async def run_action(request: Request) -> Response:
    """``routes.actions.run_action``."""
    document = _json_body(request, await request.body())
    who: Principal = await may_run(request)
    name, session, body = _run_parameters(request, document)
    runner = request.app.state.daemon.runner
    plan = runner.plan_action(name, body.args)
    outcome = answer(await runner.start(plan, who.actor, session_of(who, session)))
    return _json(outcome) if isinstance(outcome, RunDone) else outcome


async def gateway(request: Request) -> Response:
    """``routes.gateway``: every provider name (an unknown one is answered in a provider's
    error shape by the gateway's own code, as FastAPI's ``other_provider``)."""
    daemon = request.app.state.daemon
    parts = GatewayParts(
        daemon.gateway, daemon.provider_keys, daemon.tokens, daemon.sessions, daemon.audit
    )
    return await forward_request(request, request.path_params["provider"], parts)


def _json_body(request: Request, raw: bytes) -> Any:
    """The body as FastAPI hands it to validation: absent (``_MISSING``), the decoded JSON of a
    JSON content type, or else the bytes; undecodable JSON is FastAPI's ``json_invalid``, a
    body that fails to decode otherwise FastAPI's 400."""
    if not raw:
        return _MISSING
    content_type = request.headers.get("content-type")
    if not content_type or not _is_json(content_type):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", error.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": error.msg},
                }
            ],
            body=error.doc,
        ) from error
    except Exception as error:  # not UTF-8, too deep: FastAPI's answer to any other failure
        raise HTTPException(400, "There was an error parsing the body") from error


def _is_json(content_type: str) -> bool:
    """FastAPI's rule: ``application/json`` or ``application/*+json``."""
    if content_type == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _run_parameters(request: Request, document: Any) -> tuple[str, str | None, RunBody]:
    """The run route's path parameter, session header and body, validated by their FastAPI
    declarations; every failure together, in FastAPI's order (path, header, body)."""
    errors: list[Any] = []
    name = _validated(_NAME, request.path_params["name"], ("path", "name"), errors)
    session = _validated(
        _SESSION, request.headers.get(SESSION_HEADER), ("header", SESSION_HEADER), errors
    )
    body: RunBody | None = None
    if document is _MISSING:
        errors.append({"type": "missing", "loc": ("body",), "msg": "Field required", "input": None})
    else:
        body = _validated(_BODY, document, ("body",), errors)
    if errors or name is None or body is None:
        raise RequestValidationError(errors, body=None if document is _MISSING else document)
    return name, session, body


def _validated(
    adapter: TypeAdapter[T], value: Any, loc: tuple[Any, ...], errors: list[Any]
) -> T | None:
    """``value`` validated by ``adapter``, or ``None`` with its failures added to ``errors``
    at ``loc``."""
    try:
        return adapter.validate_python(value, from_attributes=True)
    except ValidationError as error:
        for item in error.errors():
            errors.append({**item, "loc": loc + tuple(item["loc"])})
        return None
