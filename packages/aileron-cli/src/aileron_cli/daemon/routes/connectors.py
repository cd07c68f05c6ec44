"""``/v1/connectors``: install, list, show and remove connector specs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from aileron_cli.daemon.auth import ADMIN, Principal, require
from aileron_cli.daemon.connector_store import InstalledConnector
from aileron_cli.daemon.errors import ERROR_RESPONSES, DaemonError
from aileron_cli.daemon.routes import daemon_state
from aileron_cli.daemon.schemas import ConnectorOut, InstallConnector
from aileron_cli.daemon.state import DaemonState
from aileron_core.canonical import canonical_json
from aileron_core.connectors import parse_connector_spec, spec_digest, spec_to_json

router = APIRouter(prefix="/connectors", tags=["connectors"], responses=ERROR_RESPONSES)
State = Annotated[DaemonState, Depends(daemon_state)]
Admin = Annotated[Principal, Depends(require(ADMIN))]
Fqn = Annotated[str, Path(min_length=1, max_length=256)]


def connector_out(item: InstalledConnector) -> ConnectorOut:
    document = spec_to_json(item.spec)
    return ConnectorOut(
        fqn=item.spec.fqn,
        version=item.spec.version,
        description=item.spec.connector.description,
        sha256=item.digest,
        credential=document["credential"],
        tools=document["tools"],
    )


@router.get("", response_model=list[ConnectorOut])
async def list_connectors(state: State, _: Admin) -> list[ConnectorOut]:
    """Installed connectors, by FQN."""
    return [connector_out(item) for item in state.connectors.list()]


@router.post("", response_model=ConnectorOut, status_code=201)
async def install_connector(body: InstallConnector, state: State, who: Admin) -> ConnectorOut:
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
            "digest_mismatch", f"the spec's digest is {digest}, not the expected {body.sha256}"
        )
    installed, replaced = state.connectors.install(spec)
    state.actions.load(state.connectors.specs())
    await state.record(
        "connector.installed",
        who.actor,
        fqn=spec.fqn,
        version=spec.version,
        sha256=installed.digest,
        replaced=replaced,
    )
    return connector_out(installed)


@router.get("/{fqn:path}", response_model=ConnectorOut)
async def show_connector(fqn: Fqn, state: State, _: Admin) -> ConnectorOut:
    """One installed connector."""
    return connector_out(state.connectors.get(fqn))


@router.delete("/{fqn:path}", status_code=204)
async def remove_connector(fqn: Fqn, state: State, who: Admin) -> None:
    """Remove a connector; actions that need it become load errors."""
    removed = state.connectors.remove(fqn)
    state.actions.load(state.connectors.specs())
    await state.record("connector.removed", who.actor, fqn=fqn, sha256=removed.digest)
