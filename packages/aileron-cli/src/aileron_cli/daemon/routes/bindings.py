"""``/v1/bindings``: credentials by name; the value goes to the vault, never comes back."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from aileron_cli.daemon.auth import ADMIN, Principal, require
from aileron_cli.daemon.binding_store import Binding, check_name
from aileron_cli.daemon.errors import ERROR_RESPONSES
from aileron_cli.daemon.routes import daemon_state
from aileron_cli.daemon.schemas import BindingOut, NewBinding
from aileron_cli.daemon.state import DaemonState
from aileron_core.convert import converter
from aileron_core.vault import EntryNotFound

router = APIRouter(prefix="/bindings", tags=["bindings"], responses=ERROR_RESPONSES)
State = Annotated[DaemonState, Depends(daemon_state)]
Admin = Annotated[Principal, Depends(require(ADMIN))]
Name = Annotated[str, Path(min_length=5, max_length=200)]


def binding_out(binding: Binding) -> BindingOut:
    return BindingOut.model_validate(converter.unstructure(binding))


@router.get("", response_model=list[BindingOut])
async def list_bindings(state: State, _: Admin) -> list[BindingOut]:
    """Every binding (metadata only)."""
    return [binding_out(b) for b in state.bindings.list()]


@router.post("", response_model=BindingOut, status_code=201)
async def add_binding(body: NewBinding, state: State, who: Admin) -> BindingOut:
    """Store the secret in the vault under the binding's name, then record the binding."""
    check_name(body.name)
    state.bindings.ensure_absent(body.name)
    await state.vault.put(body.name, body.value, {"binding": "true", **body.metadata})
    binding = state.bindings.add(body.name, body.metadata)
    await state.record("binding.created", who.actor, binding=binding.name)
    return binding_out(binding)


@router.get("/{name:path}", response_model=BindingOut)
async def show_binding(name: Name, state: State, _: Admin) -> BindingOut:
    """One binding (metadata only)."""
    return binding_out(state.bindings.get(name))


@router.delete("/{name:path}", status_code=204)
async def revoke_binding(name: Name, state: State, who: Admin) -> None:
    """Forget the binding and delete its secret from the vault."""
    binding = state.bindings.get(name)
    with contextlib.suppress(EntryNotFound):  # the secret may already be gone
        await state.vault.delete(binding.name)
    state.bindings.remove(name)
    await state.record("binding.revoked", who.actor, binding=name)
