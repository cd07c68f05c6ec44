"""Bound secrets as the daemon's request paths read them from the vault, kept while unchanged.

Reading a vault entry costs a worker-thread round trip (the vault is serialized behind a lock),
a large share of a run's or a gateway request's own latency. So a value, once read, is kept
for as long as nothing that could change it has changed: the same binding (name and creation
time) and the same ``vault.json`` (device, inode, size, modification time — every vault write
replaces the file). The cache never outlives an unlocked vault: each read first checks that
the vault is unlocked, and ``POST /v1/vault/lock`` empties every cache at once: the plaintext
lives in memory no longer than the vault's own data key does.

Used by the gateway (:class:`aileron_cli.daemon.gateway.credentials.KeyCache`) and the runner
(:func:`for_vault`: one cache per vault service).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Awaitable, Callable

from aileron_cli.daemon.store.bindings import Binding
from aileron_cli.daemon.store.vault import VaultService
from aileron_core.vault import VaultLocked

__all__ = ["SecretCache", "for_vault"]

Stamp = tuple[object, ...]

_CACHES: weakref.WeakKeyDictionary[VaultService, SecretCache] = weakref.WeakKeyDictionary()


class SecretCache:
    """Vault values by binding name, re-read whenever the binding or the vault file changes."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[Stamp, bytes]] = {}

    async def value(
        self, vault: VaultService, binding: Binding, read: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """The secret of ``binding``, from the cache or else from ``read()`` (the caller's
        ``vault.get``, kept at the call site so every vault read stays visible there).
        Raises ``VaultLocked``, or what ``read`` raises (``EntryNotFound``)."""
        if vault.state() != "unlocked":
            self._values.clear()
            raise VaultLocked("the vault is locked", hint="run `aileron vault unlock`")
        stamp = (binding.created_at, *_identity(vault))
        cached = self._values.get(binding.name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        value = await read()
        # Stamped before the read: a write in between only causes one more read next time.
        self._values[binding.name] = (stamp, value)
        return value

    def forget(self, name: str) -> None:
        self._values.pop(name, None)

    def clear(self) -> None:
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)


def for_vault(vault: VaultService) -> SecretCache:
    """The runner's cache for ``vault`` (one per vault service, gone with it)."""
    cache = _CACHES.get(vault)
    if cache is None:
        cache = _CACHES[vault] = SecretCache()
    return cache


def _identity(vault: VaultService) -> tuple[int, int, int, int]:
    try:
        info = os.stat(vault.path)
    except FileNotFoundError:
        return (0, 0, 0, 0)
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
