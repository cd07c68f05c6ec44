"""``/v1/bindings``: credentials by name; the value goes to the vault, never comes back.

``POST /v1/bindings/{name}/escrow`` moves a binding's secret from the vault into the attached
enclave (SPEC §12, ``aileron_cli.daemon.enclave.service``); the binding's ``escrow`` field then
names the escrow.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.enclave.service import EnclaveService
from aileron_cli.daemon.errors import ERROR_RESPONSES
from aileron_cli.daemon.http import deps
from aileron_cli.daemon.http.routes.enclave import ENCLAVE_RESPONSES
from aileron_cli.daemon.http.schemas import BindingOut, EscrowBinding, EscrowOut, NewBinding
from aileron_cli.daemon.store.bindings import Binding, check_name
from aileron_core.convert import converter
from aileron_core.vault import EntryNotFound

router = APIRouter(prefix="/bindings", tags=["bindings"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require(ADMIN))]
Name = Annotated[str, Path(min_length=5, max_length=200)]


def binding_out(binding: Binding, enclave: EnclaveService) -> BindingOut:
    escrow = enclave.escrow_for(binding.name)
    return BindingOut.model_validate(
        {**converter.unstructure(binding), "escrow": converter.unstructure(escrow)}
    )


@router.get("", response_model=list[BindingOut])
async def list_bindings(
    bindings: deps.Bindings, enclave: deps.Enclave, _: Admin
) -> list[BindingOut]:
    """Every binding (metadata only)."""
    return [binding_out(b, enclave) for b in bindings.list()]


@router.post("", response_model=BindingOut, status_code=201)
async def add_binding(
    body: NewBinding,
    bindings: deps.Bindings,
    vault: deps.Vault,
    enclave: deps.Enclave,
    audit: deps.Audit,
    who: Admin,
) -> BindingOut:
    """Store the secret in the vault under the binding's name, then record the binding."""
    check_name(body.name)
    bindings.ensure_absent(body.name)
    await vault.put(body.name, body.value, {"binding": "true", **body.metadata})
    binding = bindings.add(body.name, body.metadata)
    await audit.record("binding.created", who.actor, binding=binding.name)
    return binding_out(binding, enclave)


@router.post("/{name:path}/escrow", response_model=EscrowOut, responses=ENCLAVE_RESPONSES)
async def escrow_binding(
    name: Name, body: EscrowBinding, bindings: deps.Bindings, enclave: deps.Enclave, who: Admin
) -> EscrowOut:
    """Seal the binding's secret to the attached enclave, then delete it from the vault."""
    record = await enclave.escrow_binding(
        bindings.get(name).name, hosts=body.hosts, actor=who.actor
    )
    return EscrowOut.model_validate(converter.unstructure(record))


@router.get("/{name:path}", response_model=BindingOut)
async def show_binding(
    name: Name, bindings: deps.Bindings, enclave: deps.Enclave, _: Admin
) -> BindingOut:
    """One binding (metadata only)."""
    return binding_out(bindings.get(name), enclave)


@router.delete("/{name:path}", status_code=204)
async def revoke_binding(
    name: Name,
    bindings: deps.Bindings,
    vault: deps.Vault,
    enclave: deps.Enclave,
    audit: deps.Audit,
    who: Admin,
) -> None:
    """Forget the binding and delete its secret from the vault (or its escrow)."""
    binding = bindings.get(name)
    with contextlib.suppress(EntryNotFound):  # the secret may already be gone (or escrowed)
        await vault.delete(binding.name)
    escrow = await enclave.forget_escrow(binding.name)
    bindings.remove(name)
    await audit.record("binding.revoked", who.actor, binding=name, **(escrow or {}))
