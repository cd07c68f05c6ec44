"""``/v1/actions``: the action store, and the core call ``POST /v1/actions/{name}/run``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path
from fastapi.responses import JSONResponse

from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.daemon import DaemonState
from aileron_cli.daemon.errors import ERROR_RESPONSES, DaemonError
from aileron_cli.daemon.http.routes import daemon_state
from aileron_cli.daemon.http.schemas import (
    ActionDetail,
    ActionInputOut,
    ActionList,
    ActionOut,
    InstallAction,
    LoadErrorOut,
    OperationRunBody,
    PatchAction,
    RunBody,
    RunDone,
    RunPending,
)
from aileron_cli.daemon.run import runner
from aileron_cli.daemon.store.actions import InstalledAction
from aileron_core.actions import ActionManifest

router = APIRouter(tags=["actions"], responses=ERROR_RESPONSES)
State = Annotated[DaemonState, Depends(daemon_state)]
Admin = Annotated[Principal, Depends(require(ADMIN))]
Lister = Annotated[Principal, Depends(require("actions:list"))]
Runner = Annotated[Principal, Depends(require("actions:run"))]
Name = Annotated[str, Path(min_length=1, max_length=64)]
SessionHeader = Annotated[
    str | None, Header(alias="X-Aileron-Session-Id", max_length=64, include_in_schema=True)
]
RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": RunPending, "description": "Waiting for a human's approval"},
    502: ERROR_RESPONSES[409] | {"description": "The upstream API failed"},
    504: ERROR_RESPONSES[409] | {"description": "The upstream API timed out"},
}

JSON_TYPES = {
    "string": "string",
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
}


def input_schema(manifest: ActionManifest) -> dict[str, Any]:
    """The JSON Schema of an action's arguments (used as the MCP tool's inputSchema)."""
    return {
        "type": "object",
        "properties": {
            i.name: {"type": JSON_TYPES[i.type], "description": i.description}
            for i in manifest.inputs
        },
        "required": [i.name for i in manifest.inputs if i.required],
        "additionalProperties": False,
    }


def action_out(item: InstalledAction) -> ActionOut:
    manifest = item.manifest
    return ActionOut(
        name=manifest.name,
        version=manifest.version,
        description=manifest.description,
        enabled=item.enabled,
        approval_required=manifest.approval_required,
        inputs=[
            ActionInputOut(name=i.name, type=i.type, required=i.required, description=i.description)
            for i in manifest.inputs
        ],
        input_schema=input_schema(manifest),
        connectors=[r.fqn for r in manifest.requires.connectors],
    )


def session_of(principal: Principal, header: str | None) -> str | None:
    """The session a run belongs to: a session token's own, or the header (host CLI)."""
    if principal.kind == "session":
        if header is not None and header != principal.session_id:
            raise DaemonError("forbidden", "X-Aileron-Session-Id does not match the token")
        return principal.session_id
    return header


def answer(outcome: runner.Done | runner.Pending) -> RunDone | JSONResponse:
    if isinstance(outcome, runner.Pending):
        pending = RunPending(
            status="pending_approval", approval_id=outcome.approval.id, message=outcome.message
        )
        return JSONResponse(pending.model_dump(), status_code=202)
    return RunDone(audit_id=outcome.audit_id, result=outcome.result)


@router.get("/actions", response_model=ActionList)
async def list_actions(state: State, _: Lister) -> ActionList:
    """Installed actions, and the manifests that failed to load."""
    return ActionList(
        actions=[action_out(a) for a in state.actions.list()],
        load_errors=[
            LoadErrorOut(file=e.file, code=e.code, message=e.message)
            for e in state.actions.load_errors
        ],
    )


@router.post("/actions", response_model=ActionDetail, status_code=201)
async def install_action(body: InstallAction, state: State, who: Admin) -> ActionDetail:
    """Validate a manifest against the installed connectors and install it."""
    installed = state.actions.install(body.manifest, state.connectors.specs())
    await state.record(
        "action.installed",
        who.actor,
        name=installed.manifest.name,
        version=installed.manifest.version,
    )
    return ActionDetail(**action_out(installed).model_dump(), manifest=installed.text)


@router.get("/actions/{name}", response_model=ActionDetail)
async def show_action(name: Name, state: State, _: Lister) -> ActionDetail:
    """One action, with its manifest."""
    installed = state.actions.get(name)
    return ActionDetail(**action_out(installed).model_dump(), manifest=installed.text)


@router.patch("/actions/{name}", response_model=ActionOut)
async def patch_action(name: Name, body: PatchAction, state: State, who: Admin) -> ActionOut:
    """Enable or disable an action."""
    installed = state.actions.set_enabled(name, body.enabled)
    await state.record(
        "action.enabled" if body.enabled else "action.disabled", who.actor, name=name
    )
    return action_out(installed)


@router.delete("/actions/{name}", status_code=204)
async def remove_action(name: Name, state: State, who: Admin) -> None:
    """Remove an action."""
    state.actions.remove(name)
    await state.record("action.removed", who.actor, name=name)


@router.post("/actions/{name}/run", response_model=RunDone, responses=RUN_RESPONSES)
async def run_action(
    name: Name, body: RunBody, state: State, who: Runner, session: SessionHeader = None
) -> RunDone | JSONResponse:
    """Run an action: 200 with its result, or 202 when it waits for approval."""
    plan = runner.plan_action(state, name, body.args)
    return answer(await runner.start(state, plan, who.actor, session_of(who, session)))


@router.post("/connector-operations/run", response_model=RunDone, responses=RUN_RESPONSES)
async def run_operation(
    body: OperationRunBody, state: State, who: Runner, session: SessionHeader = None
) -> RunDone | JSONResponse:
    """Run one connector operation directly (used by the in-container shims).

    A session token runs it only if the user exposed it, under the strictest approval that
    applies (``agent_access``; 403 ``operation_not_exposed`` otherwise)."""
    plan = runner.plan_operation(
        state,
        body.connector_fqn,
        body.tool,
        body.operation,
        body.args,
        agent=who.kind != "master",
    )
    return answer(await runner.start(state, plan, who.actor, session_of(who, session)))
