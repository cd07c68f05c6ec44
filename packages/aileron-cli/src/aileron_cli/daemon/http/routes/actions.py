"""``/v1/actions``: the action store, and the core call ``POST /v1/actions/{name}/run``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path
from fastapi.responses import JSONResponse

from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.errors import ERROR_RESPONSES, DaemonError
from aileron_cli.daemon.http import deps
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
from aileron_cli.daemon.run.runner import Done, Pending
from aileron_cli.daemon.store.actions import InstalledAction
from aileron_core.actions import ActionManifest

router = APIRouter(tags=["actions"], responses=ERROR_RESPONSES)
may_run = require("actions:run")
"""Admits a caller that may run actions (also used by ``http.fast``'s run route)."""
Admin = Annotated[Principal, Depends(require(ADMIN))]
Lister = Annotated[Principal, Depends(require("actions:list"))]
MayRun = Annotated[Principal, Depends(may_run)]
# The run route's limits; ``http.fast`` validates with these same declarations.
NAME_MAX = 64
SESSION_ID_MAX = 64
SESSION_HEADER = "X-Aileron-Session-Id"
Name = Annotated[str, Path(min_length=1, max_length=NAME_MAX)]
SessionHeader = Annotated[
    str | None, Header(alias=SESSION_HEADER, max_length=SESSION_ID_MAX, include_in_schema=True)
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


def answer(outcome: Done | Pending) -> RunDone | JSONResponse:
    if isinstance(outcome, Pending):
        pending = RunPending(
            status="pending_approval",
            approval_id=outcome.approval.id,
            message=outcome.message,
            link=outcome.link,
        )
        return JSONResponse(pending.model_dump(), status_code=202)
    return RunDone(audit_id=outcome.audit_id, result=outcome.result)


@router.get("/actions", response_model=ActionList)
async def list_actions(actions: deps.Actions, _: Lister) -> ActionList:
    """Installed actions, and the manifests that failed to load."""
    return ActionList(
        actions=[action_out(a) for a in actions.list()],
        load_errors=[
            LoadErrorOut(file=e.file, code=e.code, message=e.message) for e in actions.load_errors
        ],
    )


@router.post("/actions", response_model=ActionDetail, status_code=201)
async def install_action(
    body: InstallAction,
    actions: deps.Actions,
    connectors: deps.Connectors,
    audit: deps.Audit,
    who: Admin,
) -> ActionDetail:
    """Validate a manifest against the installed connectors and install it."""
    installed = actions.install(body.manifest, connectors.specs(), enabled=body.enabled)
    await audit.record(
        "action.installed",
        who.actor,
        name=installed.manifest.name,
        version=installed.manifest.version,
    )
    return ActionDetail(**action_out(installed).model_dump(), manifest=installed.text)


@router.get("/actions/{name}", response_model=ActionDetail)
async def show_action(name: Name, actions: deps.Actions, _: Lister) -> ActionDetail:
    """One action, with its manifest."""
    installed = actions.get(name)
    return ActionDetail(**action_out(installed).model_dump(), manifest=installed.text)


@router.patch("/actions/{name}", response_model=ActionOut)
async def patch_action(
    name: Name, body: PatchAction, actions: deps.Actions, audit: deps.Audit, who: Admin
) -> ActionOut:
    """Enable or disable an action."""
    installed = actions.set_enabled(name, body.enabled)
    await audit.record(
        "action.enabled" if body.enabled else "action.disabled", who.actor, name=name
    )
    return action_out(installed)


@router.delete("/actions/{name}", status_code=204)
async def remove_action(name: Name, actions: deps.Actions, audit: deps.Audit, who: Admin) -> None:
    """Remove an action."""
    actions.remove(name)
    await audit.record("action.removed", who.actor, name=name)


@router.post("/actions/{name}/run", response_model=RunDone, responses=RUN_RESPONSES)
async def run_action(
    name: Name,
    body: RunBody,
    runner: deps.Runner,
    who: MayRun,
    session: SessionHeader = None,
) -> RunDone | JSONResponse:
    """Run an action: 200 with its result, or 202 when it waits for approval."""
    plan = runner.plan_action(name, body.args)
    return answer(await runner.start(plan, who.actor, session_of(who, session)))


@router.post("/connector-operations/run", response_model=RunDone, responses=RUN_RESPONSES)
async def run_operation(
    body: OperationRunBody, runner: deps.Runner, who: MayRun, session: SessionHeader = None
) -> RunDone | JSONResponse:
    """Run one connector operation directly (used by the in-container shims).

    A session token runs it only if the user exposed it, under the strictest approval that
    applies (``agent_access``; 403 ``operation_not_exposed`` otherwise)."""
    plan = runner.plan_operation(
        body.connector_fqn,
        body.tool,
        body.operation,
        body.args,
        agent=who.kind != "master",
    )
    return answer(await runner.start(plan, who.actor, session_of(who, session)))
