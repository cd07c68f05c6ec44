"""``/v1/connectors``: install, list, show and remove connector specs; open or close them to
agents' direct runs (``PATCH``, ADR 0017)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.errors import ERROR_RESPONSES, DaemonError
from aileron_cli.daemon.http import deps
from aileron_cli.daemon.http.schemas import (
    AgentOperationOut,
    ConnectorOut,
    InstallConnector,
    PatchConnector,
)
from aileron_cli.daemon.run.agent_access import direct_access
from aileron_cli.daemon.store.actions import ActionStore
from aileron_cli.daemon.store.connectors import ConnectorStore, InstalledConnector
from aileron_core.canonical import canonical_json
from aileron_core.connectors import parse_connector_spec, spec_digest, spec_to_json

router = APIRouter(prefix="/connectors", tags=["connectors"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require(ADMIN))]
Fqn = Annotated[str, Path(min_length=1, max_length=256)]


def connector_out(
    connectors: ConnectorStore, actions: ActionStore, item: InstalledConnector
) -> ConnectorOut:
    document = spec_to_json(item.spec)
    fqn = item.spec.fqn
    verdicts = []
    for tool in item.spec.tools:
        for op in tool.operations:
            access = direct_access(connectors, actions, fqn, tool.name, op.name)
            verdicts.append(
                AgentOperationOut(
                    tool=tool.name,
                    operation=op.name,
                    allowed=access.allowed,
                    approval_required=access.approval_required,
                    reason=access.reason,
                    approved_by=list(access.approved_by),
                )
            )
    return ConnectorOut(
        fqn=fqn,
        version=item.spec.version,
        description=item.spec.connector.description,
        sha256=item.digest,
        credential=document["credential"],
        tools=document["tools"],
        agents=not connectors.closed_to_agents(fqn),
        agent_operations=verdicts,
    )


@router.get("", response_model=list[ConnectorOut])
async def list_connectors(
    connectors: deps.Connectors, actions: deps.Actions, _: Admin
) -> list[ConnectorOut]:
    """Installed connectors, by FQN."""
    return [connector_out(connectors, actions, item) for item in connectors.list()]


@router.post("", response_model=ConnectorOut, status_code=201)
async def install_connector(
    body: InstallConnector,
    connectors: deps.Connectors,
    actions: deps.Actions,
    audit: deps.Audit,
    who: Admin,
) -> ConnectorOut:
    """Validate and install a spec (content-addressed by the sha256 of its canonical JSON)."""
    try:
        document = canonical_json(body.spec)
    except UnicodeEncodeError as error:  # a lone surrogate: legal in JSON, not in UTF-8
        raise DaemonError(
            "invalid_connector_spec",
            f"the spec holds text that is not valid Unicode ({error.reason})",
        ) from None
    except ValueError as error:  # NaN or Infinity (Python's JSON parser accepts them)
        raise DaemonError("invalid_connector_spec", f"the spec is not JSON data: {error}") from None
    spec = parse_connector_spec(document, source="<request>")
    digest = spec_digest(spec)
    if body.sha256 is not None and body.sha256 != digest:
        raise DaemonError(
            "digest_mismatch",
            f"the spec's digest is {digest}, not the expected {body.sha256}",
            details={"expected": body.sha256, "actual": digest},
        )
    installed, replaced = connectors.install(spec)
    actions.load(connectors.specs())
    await audit.record(
        "connector.installed",
        who.actor,
        fqn=spec.fqn,
        version=spec.version,
        sha256=installed.digest,
        replaced=replaced,
    )
    return connector_out(connectors, actions, installed)


@router.get("/{fqn:path}", response_model=ConnectorOut)
async def show_connector(
    fqn: Fqn, connectors: deps.Connectors, actions: deps.Actions, _: Admin
) -> ConnectorOut:
    """One installed connector."""
    return connector_out(connectors, actions, connectors.get(fqn))


@router.patch("/{fqn:path}", response_model=ConnectorOut)
async def patch_connector(
    fqn: Fqn,
    body: PatchConnector,
    connectors: deps.Connectors,
    actions: deps.Actions,
    audit: deps.Audit,
    who: Admin,
) -> ConnectorOut:
    """Open or close a connector, or one operation of it (``tool`` and ``operation``), to
    agents' direct runs (``POST /v1/connector-operations/run`` with a session token). The
    user's own runs and the agent's enabled actions are not affected."""
    if (body.tool is None) != (body.operation is None):
        raise DaemonError("invalid_request", "name both the tool and the operation, or neither")
    operation = None if body.tool is None or body.operation is None else (body.tool, body.operation)
    connectors.set_agent_access(fqn, operation, body.agents)
    await audit.record(
        "connector.agents_enabled" if body.agents else "connector.agents_disabled",
        who.actor,
        fqn=fqn,
        tool=body.tool,
        operation=body.operation,
    )
    return connector_out(connectors, actions, connectors.get(fqn))


@router.delete("/{fqn:path}", status_code=204)
async def remove_connector(
    fqn: Fqn, connectors: deps.Connectors, actions: deps.Actions, audit: deps.Audit, who: Admin
) -> None:
    """Remove a connector; actions that need it become load errors."""
    removed = connectors.remove(fqn)
    actions.load(connectors.specs())
    await audit.record("connector.removed", who.actor, fqn=fqn, sha256=removed.digest)
