"""The providers' real keys, as the gateway reads them from the vault.

Reading a vault entry costs a worker-thread round trip (the vault is serialized behind a lock),
which is most of the gateway's own latency. So a key, once read, is kept for as long as nothing
that could change it has changed (:mod:`aileron_cli.daemon.store.secret_cache`: the same binding and
the same ``vault.json``, and never beyond an unlocked vault).
"""

from __future__ import annotations

from aileron_cli.daemon.store.bindings import Binding
from aileron_cli.daemon.store.secret_cache import SecretCache
from aileron_cli.daemon.store.vault import VaultService


def header_safe(value: bytes) -> str | None:
    """``value`` as a header-ready key (printable ASCII, no spaces), else ``None``."""
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not text or any(not 0x21 <= ord(c) <= 0x7E for c in text):
        return None
    return text


class InvalidKey(Exception):
    """The bound secret cannot travel as an HTTP header value (it is never shown)."""


class KeyCache:
    """Real keys by binding name, re-read whenever the binding or the vault file changes."""

    def __init__(self) -> None:
        self._secrets = SecretCache()

    async def key(self, vault: VaultService, binding: Binding) -> str:
        """The key of ``binding``. Raises ``VaultLocked``, ``EntryNotFound`` or ``InvalidKey``."""
        secret = await self._secrets.value(vault, binding, lambda: vault.get(binding.name))
        key = header_safe(secret)
        if key is None:
            self._secrets.forget(binding.name)
            raise InvalidKey(binding.name)
        return key

    def clear(self) -> None:
        self._secrets.clear()
