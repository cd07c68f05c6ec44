"""A source binding's settings, read from the vault (what every source does first).

The vault value is read through the vault service's one cache (keyed by the binding and the
vault file), so a source re-reads it only after it changed, and gets ``VaultLocked`` while the
vault is locked: a cached secret is never handed out from a locked vault.
"""

from __future__ import annotations

from aileron_cli.daemon.run.credentials import CredentialUnavailable
from aileron_cli.daemon.store.bindings import Binding
from aileron_cli.daemon.store.vault import VaultService
from aileron_core.vault import EntryNotFound

__all__ = ["settings", "unavailable"]


async def settings(vault: VaultService, binding: Binding) -> bytes:
    """The vault value of ``binding`` (raises ``VaultLocked``; ``binding_required`` when the
    vault has none)."""
    try:
        return await vault.secret(binding, lambda: vault.get(binding.name))
    except EntryNotFound:
        raise unavailable(
            binding, "binding_missing_secret", f"binding {binding.name} has no settings"
        ) from None


def unavailable(
    binding: Binding, reason: str, message: str, hint: str | None = None, **details: object
) -> CredentialUnavailable:
    """``binding_required`` for ``binding``; by default the hint is to add it again."""
    name = binding.name
    return CredentialUnavailable(
        "binding_required",
        message,
        reason=reason,
        hint=hint or f"revoke it and add it again: `aileron binding revoke {name}`",
        details={"binding": name, **details},
    )
