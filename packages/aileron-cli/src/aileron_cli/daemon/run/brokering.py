"""Which bindings a sandboxed session's egress proxy brokers, and their secrets per request
(issue #19, ADR 0028).

A session exposes the bindings ``[sandbox] expose`` of config.toml and its launch name
(:func:`brokered_for`). Each must exist, carry an exposure (``aileron binding expose``), and
have a secret the daemon holds now: not escrowed in the enclave (the daemon never has that
secret, so it cannot broker it), and the vault unlocked. Each gets a fresh sentinel.

The broker asks for a binding's secret on every request it brokers (:func:`secret_source`),
through the same :class:`~aileron_cli.daemon.run.credentials.CredentialResolver` path as the
runner and the gateway: locking the vault, revoking or escrowing the binding, or changing or
removing its exposure takes effect at the session's next request.
"""

from __future__ import annotations

from collections.abc import Iterable

from aileron_cli.daemon.egress.broker import Brokered, SecretSource, new_sentinel
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.run.credentials import CredentialResolver, CredentialUnavailable
from aileron_cli.daemon.store.bindings import Binding, BindingStore, Exposure
from aileron_core.redaction import Secret

__all__ = ["brokered_for", "secret_source"]


async def brokered_for(
    names: Iterable[str], bindings: BindingStore, credentials: CredentialResolver
) -> list[Brokered]:
    """A :class:`Brokered` with a new sentinel per binding of ``names`` (duplicates once),
    after checking that its secret can be had now; the first binding that cannot be brokered
    raises (``binding_not_found``, ``binding_not_exposed``, ``binding_escrowed``,
    ``binding_required`` for a locked vault or a missing secret, ``invalid_exposure`` for two
    bindings sharing a variable)."""
    brokered: list[Brokered] = []
    variables: dict[str, str] = {}
    for name in dict.fromkeys(names):
        binding = bindings.get(name)
        exposure = _exposure(binding)
        await _secret(binding, exposure, credentials)
        other = variables.setdefault(exposure.variable.upper(), binding.name)
        if other != binding.name:
            raise DaemonError(
                "invalid_exposure",
                f"bindings {other} and {binding.name} are both exposed as {exposure.variable}",
                hint=f"expose one of them under another variable (`aileron binding expose"
                f" {binding.name} ... --as OTHER`), or expose only one to this session",
                details={"bindings": [other, binding.name], "variable": exposure.variable},
            )
        brokered.append(Brokered(binding.name, exposure, new_sentinel()))
    return brokered


def secret_source(
    brokered: Iterable[Brokered], bindings: BindingStore, credentials: CredentialResolver
) -> SecretSource:
    """The broker's ``secrets``: a brokered binding's current secret, while it still exists,
    is not escrowed and carries the exposure the session started with."""
    exposures = {item.binding: item.exposure for item in brokered}

    async def secret(name: str) -> Secret:
        binding = bindings.get(name)
        exposure = _exposure(binding)
        if exposures.get(name) != exposure:
            raise CredentialUnavailable(
                "binding_not_exposed",
                f"the exposure of binding {name} changed after this session started",
                reason="exposure_changed",
                hint="start a new session to use the binding's new exposure",
                details={"binding": name},
            )
        return await _secret(binding, exposure, credentials)

    return secret


def _exposure(binding: Binding) -> Exposure:
    if binding.exposure is None:
        raise CredentialUnavailable(
            "binding_not_exposed",
            f"binding {binding.name} is not exposed to sandboxed sessions",
            reason="binding_not_exposed",
            hint=f"expose it first: `aileron binding expose {binding.name} --host HOST --as VAR`",
            details={"binding": binding.name},
        )
    return binding.exposure


async def _secret(binding: Binding, exposure: Exposure, credentials: CredentialResolver) -> Secret:
    name = binding.name
    if credentials.escrow_id(name) is not None:
        raise CredentialUnavailable(
            "binding_escrowed",
            f"binding {name} is escrowed in the enclave: the daemon does not hold its secret,"
            " so the egress proxy cannot broker it",
            reason="binding_escrowed",
            hint=f"use the enclave through a connector, or revoke {name} and add it again",
            details={"binding": name},
        )
    value = await credentials.secret(binding)  # binding_required: vault locked, no secret
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if not text or any(c in text for c in "\r\n\0"):
        raise CredentialUnavailable(
            "invalid_credential",
            f"the secret of binding {name} cannot be sent in an HTTP header",
            reason="invalid_credential",
            hint=f"store it as text on one line: revoke and add {name} again",
            details={"binding": name, "variable": exposure.variable},
        )
    return Secret(text)
