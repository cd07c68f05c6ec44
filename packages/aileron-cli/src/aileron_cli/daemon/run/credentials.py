"""Binding → credential, for the runner and the gateway alike (one set of errors).

A connector operation's credential comes from a binding: the one its action names, else the
only ``*/<service>/default`` (:meth:`CredentialResolver.choose`). A binding escrowed in the
enclave (SPEC §12) resolves to an ``Escrowed`` reference, before the vault is consulted: its
requests go through the enclave, which injects the credential; the daemon neither has it nor
reads it. A binding whose metadata names a *source* (``oauth2``, ``github_app``, ``command``:
:mod:`aileron_cli.daemon.run.sources`, ADR 0031) gets its secret from that source, which
:meth:`CredentialResolver.invalidate` tells to forget it after an upstream 401. Any other
binding resolves to its secret from the vault, through the vault service's one cache
(:meth:`aileron_cli.daemon.store.vault.VaultService.secret`).

A secret that cannot be had is :class:`CredentialUnavailable` (``412 binding_required``, or
``invalid_credential`` for a gateway key that cannot travel as a header), whose ``reason``
the gateway audits and renders in its provider's error shape.
"""

from __future__ import annotations

from collections.abc import Mapping

from aileron_cli.daemon.enclave.service import EnclaveService, Escrowed
from aileron_cli.daemon.errors import DaemonError, Refusal
from aileron_cli.daemon.run.sources import SOURCE_KEY, CredentialSource
from aileron_cli.daemon.store.bindings import Binding, BindingStore
from aileron_cli.daemon.store.vault import VaultService
from aileron_core.connectors import ConnectorSpec
from aileron_core.redaction import Secret
from aileron_core.vault import EntryNotFound, VaultLocked

__all__ = ["CredentialResolver", "CredentialUnavailable", "header_safe"]


class CredentialUnavailable(Refusal):
    """A binding's secret cannot be used now; ``reason`` says why, for the audit."""


def header_safe(value: bytes) -> str | None:
    """``value`` as a header-ready key (printable ASCII, no spaces), else ``None``."""
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not text or any(not 0x21 <= ord(c) <= 0x7E for c in text):
        return None
    return text


class CredentialResolver:
    """Which binding supplies a credential, and its secret (or its escrow)."""

    def __init__(
        self,
        bindings: BindingStore,
        vault: VaultService,
        enclave: EnclaveService,
        sources: Mapping[str, CredentialSource] | None = None,
    ) -> None:
        self._bindings = bindings
        self.vault = vault
        self._enclave = enclave
        self._sources = dict(sources or {})

    def source(self, binding: Binding) -> CredentialSource | None:
        """The source of ``binding``'s secret (``None``: the vault holds it as it is);
        ``binding_required`` for a source this daemon does not know."""
        name = binding.metadata.get(SOURCE_KEY)
        if name is None:
            return None
        source = self._sources.get(name)
        if source is None:
            raise CredentialUnavailable(
                "binding_required",
                f"binding {binding.name} gets its secret from {name!r}, which this daemon"
                " does not know",
                reason="unknown_source",
                hint=f"revoke it and add it again: `aileron binding revoke {binding.name}`",
                details={"binding": binding.name},
            )
        return source

    def invalidate(self, binding: Binding) -> bool:
        """The upstream refused ``binding``'s secret: whether a fresh one may be had (its
        source forgot the old one)."""
        source = self.source(binding)
        if source is None:
            return False
        source.invalidate(binding)
        return True

    def choose(self, spec: ConnectorSpec, override: str | None) -> Binding:
        """The binding that supplies ``spec``'s credential: ``override`` if the action names
        one, else the only ``*/<service>/default``. ``binding_required`` when there is none
        or several."""
        if override is not None:
            return self._bindings.get(override)
        service = spec.credential.service
        candidates = self._bindings.find_default(service)
        if not candidates:
            raise DaemonError(
                "binding_required",
                f"{spec.fqn} needs a credential for {service!r}"
                f" and no binding */{service}/default exists",
                hint=f"add one with `aileron binding add token/{service}/default`",
                details={"service": service},
            )
        if len(candidates) > 1:
            names = ", ".join(b.name for b in candidates)
            raise DaemonError(
                "binding_required",
                f"several bindings could serve {service!r} ({names})",
                hint="name one in the action's [[requires.connectors]] binding",
                details={"service": service},
            )
        return candidates[0]

    def escrow_id(self, binding: str) -> str | None:
        """The id of ``binding``'s escrow, ``None`` when the vault holds its secret."""
        escrow = self._enclave.escrow_for(binding)
        return escrow.escrow_id if escrow is not None else None

    async def resolve(self, binding: Binding) -> Secret | Escrowed:
        """The credential of ``binding``: its escrow (never read back) or its secret."""
        escrow = self._enclave.escrow_for(binding.name)
        if escrow is not None:
            # Escrowed: the secret is in the enclave only; fetch the key that signs for it.
            try:
                key = await self._enclave.client_key()
            except VaultLocked:
                raise _locked(binding.name) from None
            return Escrowed(escrow, key)
        return Secret((await self.secret(binding)).decode("utf-8"))

    async def secret(self, binding: Binding) -> bytes:
        """``binding``'s secret from the vault (cached while the binding and the vault file
        are unchanged, and only while the vault is unlocked)."""
        name = binding.name
        source = self.source(binding)
        if source is not None:
            try:
                return await source.secret(binding)
            except VaultLocked:
                raise _locked(name) from None
        try:
            return await self.vault.secret(binding, lambda: self.vault.get(name))
        except VaultLocked:
            raise _locked(name) from None
        except EntryNotFound:
            raise CredentialUnavailable(
                "binding_required",
                f"binding {name} has no secret in the vault",
                reason="binding_missing_secret",
                hint=f"add it again with `aileron binding add {name}`",
                details={"binding": name},
            ) from None

    async def header_key(self, binding: Binding) -> str:
        """``binding``'s secret as an HTTP header value (a gateway's provider key); one that
        cannot be is ``invalid_credential`` (its value never shown)."""
        key = header_safe(await self.secret(binding))
        if key is None:
            self.vault.secrets.forget(binding.name)
            name = binding.name
            raise CredentialUnavailable(
                "invalid_credential",
                f"the secret of binding {name} cannot be sent as an HTTP header",
                reason="invalid_credential",
                hint=f"store the bare key (printable ASCII, no spaces): revoke and add {name}"
                " again",
                details={"binding": name},
            )
        return key


def _locked(name: str) -> CredentialUnavailable:
    return CredentialUnavailable(
        "binding_required",
        f"the vault is locked, so binding {name} cannot be used",
        reason="vault_locked",
        hint="run `aileron vault unlock`",
        details={"binding": name, "vault": "locked"},
    )
