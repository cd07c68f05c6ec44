"""``/v1/bindings``: credentials by name; the value goes to the vault, never comes back.

``POST /v1/bindings/{name}/escrow`` moves a binding's secret from the vault into the attached
enclave (SPEC §12, ``aileron_cli.daemon.enclave.service``); the binding's ``escrow`` field then
names the escrow.

``PUT /v1/bindings/{name}/exposure`` exposes a binding to sandboxed sessions (issue #19, ADR
0028): the hosts their egress proxy brokers it for, the variable that holds a per-session
sentinel in the container, and how the secret goes into a request; ``DELETE`` removes it.
An escrowed binding cannot be exposed: the daemon does not hold its secret.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.enclave.service import EnclaveService
from aileron_cli.daemon.errors import ERROR_RESPONSES, DaemonError
from aileron_cli.daemon.http import deps
from aileron_cli.daemon.http.routes.enclave import ENCLAVE_RESPONSES
from aileron_cli.daemon.http.schemas import (
    BindingOut,
    EscrowBinding,
    EscrowOut,
    NewBinding,
    NewExposure,
)
from aileron_cli.daemon.run.sources import SOURCE_KEY
from aileron_cli.daemon.store.bindings import Binding, check_name, parse_exposure
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
    binding = bindings.get(name)
    source = binding.metadata.get(SOURCE_KEY)
    if source is not None:
        # Its vault value is what makes the secret (an App's private key, a refresh token, a
        # command), which must not be injected as the secret itself.
        raise DaemonError(
            "escrow_scope_unknown",
            f"binding {binding.name!r} gets its secret from {source!r} at use time",
            hint="escrow of such bindings is not supported; keep it in the vault",
            details={"binding": binding.name},
        )
    record = await enclave.escrow_binding(binding.name, hosts=body.hosts, actor=who.actor)
    return EscrowOut.model_validate(converter.unstructure(record))


@router.put("/{name:path}/exposure", response_model=BindingOut)
async def expose_binding(
    name: Name,
    body: NewExposure,
    bindings: deps.Bindings,
    enclave: deps.Enclave,
    audit: deps.Audit,
    who: Admin,
) -> BindingOut:
    """Expose the binding to sandboxed sessions for ``hosts`` as ``variable`` (replacing an
    earlier exposure). 404 for an unknown binding, 422 ``invalid_exposure`` for a bad host,
    variable or template, 409 ``binding_escrowed`` when the enclave holds its secret."""
    binding = bindings.get(name)
    exposure = parse_exposure(body.hosts, body.variable, header=body.header, basic=body.basic)
    if enclave.escrow_for(binding.name) is not None:
        raise DaemonError(
            "binding_escrowed",
            f"binding {binding.name} is escrowed in the enclave: the daemon does not hold its"
            " secret, so its egress proxy cannot broker it",
            hint="expose a binding whose secret is in the vault",
            details={"binding": binding.name},
        )
    binding = bindings.set_exposure(binding.name, exposure)
    await audit.record(
        "binding.exposed",
        who.actor,
        binding=binding.name,
        hosts=list(exposure.hosts),
        variable=exposure.variable,
        form=exposure.form,
    )
    return binding_out(binding, enclave)


@router.delete("/{name:path}/exposure", response_model=BindingOut)
async def unexpose_binding(
    name: Name, bindings: deps.Bindings, enclave: deps.Enclave, audit: deps.Audit, who: Admin
) -> BindingOut:
    """Stop exposing the binding: sessions brokering it get no secret from their next request
    on. A binding without an exposure is answered as it is."""
    binding = bindings.get(name)
    if binding.exposure is not None:
        binding = bindings.set_exposure(binding.name, None)
        await audit.record("binding.unexposed", who.actor, binding=binding.name)
    return binding_out(binding, enclave)


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
