"""``/v1/gateway/<provider>/…``: the LLM gateway (SPEC §10, ADR 0030).

A request is authenticated by the session token it presents as its API key
(:mod:`aileron_cli.daemon.gateway.auth`), given its credential — the real key from the
provider's binding, or with no binding the agent's own credential — and forwarded to the
provider's base URL with the rest of the path (:mod:`aileron_cli.daemon.gateway.leaks`: no dot
segments or separator tricks) and the query, both without any Aileron token
(:mod:`aileron_cli.daemon.gateway.proxy`). Before it goes, the model it names must pass the
provider's policy, and the session its rate limit and budgets
(:mod:`aileron_cli.daemon.gateway.governance`). Every refused request is audited as
``gateway.refused`` (with its ``reason``), every forwarded one as ``gateway.request`` once its
answer is complete or cancelled, with the agent, the model, the token usage the answer
reported and its cost from the price table. Every error the gateway itself answers is in the
provider's error shape (:mod:`aileron_cli.daemon.gateway.errors`), so that the agent's SDK
raises its own error with Aileron's message.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import attrs
import httpx
from fastapi import APIRouter, Request, Response

from aileron_cli.daemon.access.tokens import MASTER, TokenRegistry
from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.errors import ERROR_RESPONSES, DaemonError, ErrorEnvelope
from aileron_cli.daemon.gateway.auth import CREDENTIAL_HEADERS, Caller, GatewayRefused, identify
from aileron_cli.daemon.gateway.config import Provider
from aileron_cli.daemon.gateway.credentials import ProviderKeys
from aileron_cli.daemon.gateway.errors import provider_error, shape_for
from aileron_cli.daemon.gateway.governance import (
    POLICY_BODY_LIMIT,
    chargeable,
    check_endpoint,
    check_model,
    check_priced,
    reads_model,
)
from aileron_cli.daemon.gateway.leaks import audit_path, clean_query, upstream_tail
from aileron_cli.daemon.gateway.proxy import (
    Forward,
    Gateway,
    Outcome,
    RequestBody,
    request_headers,
)
from aileron_cli.daemon.http import deps
from aileron_cli.daemon.store.sessions import SessionStore
from aileron_core.audit import Actor
from aileron_core.errors import AileronError

PROVIDERS = ("openai", "anthropic")
"""The built-in providers, each declared for the OpenAPI document; others are configured."""
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
UNKNOWN_CALLER = Actor(type="agent", id="unknown")

RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    200: {
        "description": "The provider's answer, relayed as it arrives (any status, headers and"
        " body of the provider's; streamed answers stay streamed)",
        "content": {"application/json": {}, "text/event-stream": {}},
    },
    502: {"model": ErrorEnvelope, "description": "The provider could not be reached"},
    504: {"model": ErrorEnvelope, "description": "The provider did not answer in time"},
}

router = APIRouter(prefix="/gateway", tags=["gateway"])


def _raw_tail(request: Request) -> bytes:
    """The raw path after ``/v1/gateway/NAME``, as the client sent it (starts with ``/``)."""
    subpath: str = request.path_params["path"]
    decoded: str = request.scope["path"]
    prefix = decoded[: len(decoded) - len(subpath)].encode()
    raw_path: bytes = request.scope.get("raw_path") or b""
    if raw_path.startswith(prefix):
        return b"/" + raw_path[len(prefix) :]
    # A client that percent-encoded the prefix itself.
    return b"/" + quote(subpath, safe="/:@!$&'()*+,;=-._~").encode()


def _upstream_url(request: Request, provider: Provider) -> tuple[httpx.URL, str]:
    """The provider URL for this request, its query without Aileron tokens
    (:func:`~aileron_cli.daemon.gateway.leaks.clean_query`), and the path to audit (no query,
    tokens masked). A tail that :func:`_check_path` refuses is never forwarded."""
    tail = _raw_tail(request)
    try:
        path = upstream_tail(tail)
    except GatewayRefused:
        path = "/"  # refused by _check_path before anything is sent
    query = clean_query(request.scope.get("query_string") or b"")
    target = provider.base_url + path + ("?" + query.decode("latin-1") if query else "")
    return httpx.URL(target), audit_path(tail)


def _check_path(request: Request) -> None:
    """Refuse a path that could leave the base URL's path or carries an Aileron token
    (:func:`~aileron_cli.daemon.gateway.leaks.upstream_tail`: 422, reason ``bad_path``)."""
    upstream_tail(_raw_tail(request))


def _no_provider(name: str, known: Iterable[str]) -> DaemonError:
    return DaemonError(
        "not_found",
        f"the gateway has no provider {name[:40]!r}",
        hint=f"the providers are {', '.join(sorted(known))} ([gateway.providers.<name>] in"
        " config.toml adds one)",
    )


def _check_running(sessions: SessionStore, caller: Caller) -> str:
    """The calling session's agent, or ``GatewayRefused`` when the session is not running."""
    try:
        session = sessions.get(caller.session_id)
    except DaemonError:
        session = None
    if session is not None and session.state == "running":
        return session.agent
    else:
        raise GatewayRefused(
            "unauthorized",
            "this session has ended",
            reason="session_ended",
            hint="start the agent again with `aileron launch`",
        )


@attrs.frozen
class GatewayParts:
    """What forwarding one request uses of the daemon."""

    gateway: Gateway
    keys: ProviderKeys
    tokens: TokenRegistry
    sessions: SessionStore
    audit: AuditLog


async def _credential(
    parts: GatewayParts, provider: Provider, caller: Caller
) -> tuple[list[tuple[str, str]], set[str], str | None, str | None]:
    """Headers to add and to drop for the provider's credential, the binding used and its key
    (to redact from the answer)."""
    drop = set(caller.token_headers)
    name = provider.binding
    binding = parts.keys.binding(provider)
    if binding is None:
        if not caller.own_credentials:
            raise GatewayRefused(
                "binding_required",
                f"there is no binding {name} and the agent sent no credential of its own",
                reason="no_credential",
                hint=f"add the key with `aileron binding add {name}`, or log the agent in"
                " with its own account",
                details={"binding": name},
            )
        return [], drop, None, None
    key = await parts.keys.key(binding)
    if parts.gateway.first_use(caller.session_id, binding):
        # Once per session and binding; every gateway.request names the binding it used.
        actor = caller.principal.actor
        parts.audit.note(
            "binding.used", actor, caller.session_id, binding=name, provider=provider.name
        )
    add = [(provider.key_header, provider.key_value(key))]
    return add, drop | set(CREDENTIAL_HEADERS), name, key


async def forward_request(request: Request, name: str, parts: GatewayParts) -> Response:
    """Forward one gateway request to provider ``name``, or answer why not in the provider's
    error shape (also for a name that is no provider's)."""
    provider = parts.gateway.config.providers.get(name)
    try:
        if provider is None:
            raise _no_provider(name, parts.gateway.config.providers)
        return await _forward(request, provider, parts)
    except AileronError as error:
        kind = provider.kind if provider is not None else None
        return provider_error(shape_for(kind, request.headers), error)


async def _forward(request: Request, provider: Provider, parts: GatewayParts) -> Response:
    started = time.perf_counter()
    name = provider.name
    if request.method not in METHODS:
        raise DaemonError("method_not_allowed", f"the gateway does not forward {request.method}")
    url, path = _upstream_url(request, provider)
    caller: Caller | None = None
    length = request.headers.get("content-length")
    content_length = int(length) if length is not None and length.isdigit() else None
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    body = RequestBody(request, length=content_length, chunked=chunked)
    model: str | None = None
    try:
        caller = identify(request.headers, parts.tokens)
        agent = _check_running(parts.sessions, caller)
        _check_path(request)
        check_endpoint(provider, path)
        if reads_model(provider):
            data = await body.whole(POLICY_BODY_LIMIT)
            content_type = request.headers.get("content-type", "")
            model = check_model(provider, agent, content_type, data)
            check_priced(parts.gateway.config, provider, model)
        parts.gateway.ledger.admit(provider, caller.session_id)
        add, drop, binding, key = await _credential(parts, provider, caller)
    except GatewayRefused as refusal:
        refused_model = model if model is not None else refusal.details.get("model")
        if caller is not None:
            actor, session_id = caller.principal.actor, caller.session_id
        else:
            actor = MASTER.actor if refusal.reason == "master_token" else UNKNOWN_CALLER
            session_id = None
        await parts.audit.record(
            "gateway.refused",
            actor,
            session_id,
            provider=name,
            method=request.method,
            path=path,
            reason=refusal.reason,
            **({"model": refused_model} if refused_model is not None else {}),
        )
        raise

    headers = request_headers(request.headers.raw, drop, add)
    assert caller is not None
    session = caller

    async def audit(outcome: Outcome) -> None:
        named = model if model is not None else body.model()
        usage = outcome.usage
        estimated = False
        if provider.limits.budgets and (outcome.status is not None or outcome.cancelled):
            # Even an agent that hung up before the answer began has had its prompt read.
            whole = not outcome.cancelled and outcome.error is None
            charged = chargeable(usage, outcome.bytes_out, outcome.bytes_in, whole=whole)
            usage, estimated = charged, charged != usage
        priced = parts.gateway.config.price(name, named) if usage is not None else None
        cost = round(priced[1].cost(usage), 6) if priced is not None and usage else None
        if usage is not None:
            parts.gateway.ledger.charge(provider, session.session_id, usage, cost)
        payload: dict[str, Any] = {
            "provider": name,
            "agent": agent,
            "method": request.method,
            "path": path,
            "model": named,
            "usage": usage.as_record() if usage is not None else None,
            "cost": cost,
            "priced": priced[0] if priced is not None else None,
            "status": outcome.status,
            "bytes_out": outcome.bytes_out,
            "bytes_in": outcome.bytes_in,
            "duration_ms": outcome.duration_ms,
            "credential": "binding" if binding else "agent",
            "binding": binding,
        }
        if estimated:
            payload["usage_estimated"] = True
        if outcome.cancelled:
            payload["cancelled"] = True
        if outcome.error:
            payload["error"] = outcome.error
        await parts.audit.record(
            "gateway.request", session.principal.actor, session.session_id, **payload
        )

    transport = parts.gateway.transport
    return Forward(
        transport,
        request.method,
        url,
        headers,
        body,
        audit,
        provider=name,
        kind=provider.kind,
        started=started,
        key=key,
    )


def _endpoint(name: str) -> Any:
    async def forward(
        request: Request,
        path: str,
        gateway: deps.Gateway,
        keys: deps.ProviderKeysDep,
        tokens: deps.Tokens,
        sessions: deps.Sessions,
        audit: deps.Audit,
    ) -> Response:
        parts = GatewayParts(gateway, keys, tokens, sessions, audit)
        return await forward_request(request, name, parts)

    forward.__doc__ = (
        f"Forward to the {name} API with the session's credential (path and query as given)."
    )
    return forward


for _name in PROVIDERS:
    for _method in METHODS:
        router.add_api_route(
            f"/{_name}/{{path:path}}",
            _endpoint(_name),
            methods=[_method],
            name=f"gateway_{_name}_{_method.lower()}",
            response_class=Response,
            responses=RESPONSES,
        )


@router.api_route("/{name}/{path:path}", methods=list(METHODS), include_in_schema=False)
async def other_provider(
    request: Request,
    name: str,
    path: str,
    gateway: deps.Gateway,
    keys: deps.ProviderKeysDep,
    tokens: deps.Tokens,
    sessions: deps.Sessions,
    audit: deps.Audit,
) -> Response:
    """A provider configured in ``config.toml`` (``[gateway.providers.<name>]``), or for a
    name that is no provider's, 404 in the error shape the caller's SDK expects."""
    parts = GatewayParts(gateway, keys, tokens, sessions, audit)
    return await forward_request(request, name, parts)
