"""OAuth2 bindings (issue #22): start an authorization, follow it, and the browser's callback.

``POST /v1/bindings/oauth2`` (admin) opens a flow for a new binding
(:mod:`aileron_cli.daemon.run.sources.oauth2_flows`): the answer is the authorize URL to open
in a browser, or for ``device: true`` the user code and where to enter it.
``POST /v1/bindings/{name}/reauthorize`` (admin) opens one that replaces an OAuth2 binding's
tokens. ``GET /v1/bindings/oauth2/{flow_id}`` (admin) says ``pending``, ``done`` or ``failed``
(with the reason).

``GET /v1/oauth/callback`` is where the authorization server sends the browser back. It takes
no token (a browser has none): what it accepts is a ``state`` the daemon made for a live flow,
once. Its answer is a small page that says whether it worked; it never holds a token or code.
This router is included before the bindings router, whose ``/bindings/{name:path}`` routes
would otherwise match these paths.
"""

from __future__ import annotations

import html
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.errors import ERROR_RESPONSES, DaemonError
from aileron_cli.daemon.http.schemas import Strict
from aileron_cli.daemon.run.sources.oauth2_flows import Flow, OAuth2Flows

router = APIRouter(tags=["bindings"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require(ADMIN))]


async def _flows(request: Request) -> OAuth2Flows:
    found: OAuth2Flows = request.app.state.daemon.oauth2_flows
    return found


Flows = Annotated[OAuth2Flows, Depends(_flows)]


class NewOAuth2Binding(Strict):
    """Authorize a new OAuth2 binding with ``connector``'s endpoints."""

    name: str = Field(min_length=5, max_length=200)
    connector: str = Field(min_length=1, max_length=300)
    client_id: str = Field(min_length=1, max_length=1024)
    client_secret: str | None = Field(default=None, min_length=1, max_length=4096)
    scopes: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=100, description="default: the connector's scopes"
    )
    device: bool = Field(default=False, description="the device flow instead of a browser")


class Reauthorize(Strict):
    device: bool = False


class FlowOut(BaseModel):
    flow_id: str
    binding: str
    status: Literal["pending", "done", "failed"]
    reason: str | None = None
    authorize_url: str | None = Field(default=None, description="open it in a browser")
    user_code: str | None = Field(default=None, description="device flow: the code to enter")
    verification_uri: str | None = Field(default=None, description="device flow: where")
    interval: int | None = Field(default=None, description="device flow: seconds between polls")


def flow_out(flow: Flow) -> FlowOut:
    device = flow.user_code is not None
    return FlowOut(
        flow_id=flow.flow_id,
        binding=flow.binding,
        status=flow.status,
        reason=flow.reason,
        authorize_url=flow.authorize_url if flow.status == "pending" else None,
        user_code=flow.user_code if device and flow.status == "pending" else None,
        verification_uri=flow.verification_uri if device else None,
        interval=flow.interval if device else None,
    )


@router.post("/bindings/oauth2", response_model=FlowOut, status_code=201)
async def start_oauth2(body: NewOAuth2Binding, flows: Flows, who: Admin) -> FlowOut:
    """Start authorizing a new OAuth2 binding: open ``authorize_url`` (or, for the device
    flow, enter ``user_code`` at ``verification_uri``), then follow the flow's status."""
    flow = await flows.start(
        name=body.name,
        connector=body.connector,
        client_id=body.client_id,
        client_secret=body.client_secret,
        scopes=None if body.scopes is None else tuple(body.scopes),
        device=body.device,
        actor=who.actor,
    )
    return flow_out(flow)


@router.get("/bindings/oauth2/{flow_id}", response_model=FlowOut)
async def oauth2_flow(
    flow_id: Annotated[str, Path(min_length=1, max_length=64)], flows: Flows, _: Admin
) -> FlowOut:
    """Where an authorization is: pending, done (the binding is stored) or failed (why)."""
    return flow_out(await flows.status(flow_id))


@router.post("/bindings/{name:path}/reauthorize", response_model=FlowOut, status_code=201)
async def reauthorize(
    name: Annotated[str, Path(min_length=5, max_length=200)],
    body: Reauthorize,
    flows: Flows,
    who: Admin,
) -> FlowOut:
    """Authorize an OAuth2 binding again (its refresh token was refused), with the client the
    vault holds for it; its tokens are replaced when the flow is done."""
    return flow_out(await flows.reauthorize(name, device=body.device, actor=who.actor))


CALLBACK_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "The binding is authorized", "content": {"text/html": {}}},
    400: {
        "description": "No state, an unknown, used or expired state, or the authorization"
        " failed: a page that says why (never a token or code)",
        "content": {"text/html": {}},
    },
}


@router.get("/oauth/callback", response_class=HTMLResponse, responses=CALLBACK_RESPONSES)
async def oauth_callback(
    flows: Flows,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    """The authorization server's redirect back to the daemon (a browser, no token). Every
    answer is a page (a browser reads it): the lengths are checked here, not by FastAPI,
    whose refusal would be JSON."""
    if not state:
        return _page("Aileron: this address needs the state the authorization server sends.", 400)
    if len(state) > 200 or len(code or "") > 4096 or len(error or "") > 200:
        return _page("Aileron: this address was given values longer than any flow's.", 400)
    try:
        flow = await flows.callback(state=state, code=code, error=error)
    except DaemonError as refused:
        return _page(f"Aileron: {refused.message}. {refused.hint or ''}", 400)
    if flow.status == "done":
        return _page(f"Aileron: binding {flow.binding} is authorized. You can close this tab.")
    return _page(f"Aileron: authorizing {flow.binding} failed ({flow.reason}).", 400)


def _page(text: str, status: int = 200) -> HTMLResponse:
    body = f"<!doctype html><meta charset=utf-8><title>Aileron</title><p>{html.escape(text)}</p>"
    return HTMLResponse(
        body,
        status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
