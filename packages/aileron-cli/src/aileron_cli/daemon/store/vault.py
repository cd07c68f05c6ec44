"""The vault as the daemon serves it: one ``Vault`` handle, serialized, with unlock back-off.

Only this process ever derives the vault key. Key derivation (Argon2id, ~100 ms) runs in a
worker thread so the event loop keeps answering. Wrong passphrases are rate-limited: after
``FREE_ATTEMPTS`` failures each further attempt must wait twice as long as the last (capped),
and an attempt that comes too early is refused with ``429 too_many_attempts`` without running
the KDF.

**The one secret cache.** Reading a vault entry costs a worker-thread round trip (the vault is
serialized behind a lock), a large share of a run's or a gateway request's own latency. So a
bound secret, once read through :meth:`VaultService.secret`, is kept for as long as nothing that
could change it has changed: the same binding (name and creation time) and the same
``vault.json`` (device, inode, size, modification time — every vault write replaces the file).
The cache never outlives an unlocked vault: each read first checks that the vault is unlocked,
and :meth:`VaultService.lock` and :meth:`VaultService.close` empty it, so the plaintext lives in
memory no longer than the vault's own data key does. The runner and the gateway both read
through it (``aileron_cli.daemon.run.credentials``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

from anyio import to_thread

from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.bindings import Binding
from aileron_core.models import VaultState
from aileron_core.vault import EntryInfo, KdfParams, Vault, VaultLocked, WrongPassphrase

T = TypeVar("T")

FREE_ATTEMPTS = 3
MAX_BACKOFF_S = 300.0

Stamp = tuple[object, ...]


class SecretCache:
    """Bound secrets by binding name, each with the stamp it was read under."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[Stamp, bytes]] = {}

    def get(self, name: str, stamp: Stamp) -> bytes | None:
        cached = self._values.get(name)
        return cached[1] if cached is not None and cached[0] == stamp else None

    def put(self, name: str, stamp: Stamp, value: bytes) -> None:
        self._values[name] = (stamp, value)

    def forget(self, name: str) -> None:
        self._values.pop(name, None)

    def clear(self) -> None:
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)


class VaultService:
    """Serialized access to the vault file, with the unlock rate limit."""

    def __init__(self, path: Path, kdf: KdfParams | None = None) -> None:
        self.path = path
        self._kdf = kdf
        self._vault: Vault | None = None
        self._lock = asyncio.Lock()
        self._failures = 0
        self._not_before = 0.0
        self.secrets = SecretCache()
        """The one cache of bound secrets read while unlocked (see the module docstring)."""

    def state(self) -> VaultState:
        if self._vault is not None and self._vault.is_unlocked:
            return "unlocked"
        return "locked" if self.path.exists() else "missing"

    async def _run(self, work: Callable[[], T]) -> T:
        async with self._lock:
            return await to_thread.run_sync(work)

    def _unlocked(self) -> Vault:
        if self._vault is None or not self._vault.is_unlocked:
            raise VaultLocked("the vault is locked", hint="run `aileron vault unlock`")
        return self._vault

    def unlocked(self) -> Vault:
        """The unlocked handle (for the audit key and generation); ``VaultLocked`` if not."""
        return self._unlocked()

    async def ensure_audit_key(self) -> bool:
        """Give a format-1 vault its audit key (one write); whether it wrote."""
        vault = self._unlocked()
        return await self._run(vault.ensure_audit_key)

    async def bump_generation(self, at_least: int) -> int:
        """Move the vault's generation to at least ``at_least`` (an accepted restore)."""
        vault = self._unlocked()
        return await self._run(lambda: vault.bump_generation(at_least))

    async def init(self, passphrase: str) -> None:
        def work() -> Vault:
            if self._kdf is None:
                return Vault.create(self.path, passphrase)
            return Vault.create(self.path, passphrase, kdf=self._kdf)

        self._vault = await self._run(work)

    async def unlock(self, passphrase: str) -> None:
        if self.state() == "unlocked":
            raise DaemonError("vault_already_unlocked", "the vault is already unlocked")
        wait = self._not_before - time.monotonic()
        if wait > 0:
            raise DaemonError(
                "too_many_attempts",
                f"too many wrong passphrases; try again in {wait:.0f} s",
                details={"retry_after": round(wait, 1)},
                retriable=True,
            )

        def work() -> Vault:
            vault = Vault.open(self.path)
            vault.unlock(passphrase)
            return vault

        try:
            self._vault = await self._run(work)
        except WrongPassphrase:
            self._failures += 1
            if self._failures >= FREE_ATTEMPTS:
                backoff = min(2.0 ** (self._failures - FREE_ATTEMPTS), MAX_BACKOFF_S)
                self._not_before = time.monotonic() + backoff
            raise
        self._failures = 0
        self._not_before = 0.0

    def lock(self) -> None:
        """Forget the key, and every secret cached while unlocked."""
        self.secrets.clear()
        if self._vault is not None:
            self._vault.lock()
        self._vault = None

    def close(self) -> None:
        """The daemon stops: the same as :meth:`lock`."""
        self.lock()

    async def change_passphrase(self, old: str, new: str) -> None:
        def work() -> None:
            vault = self._vault if self._vault is not None else Vault.open(self.path)
            vault.change_passphrase(old, new)

        await self._run(work)

    async def rotate(self) -> None:
        vault = self._unlocked()
        await self._run(vault.rotate)

    async def entries(self) -> list[EntryInfo]:
        vault = self._unlocked()
        return await self._run(vault.list)

    async def put(self, path: str, value: str, metadata: Mapping[str, str] | None) -> EntryInfo:
        vault = self._unlocked()
        return await self._run(lambda: vault.put(path, value, metadata))

    async def delete(self, path: str) -> None:
        vault = self._unlocked()
        await self._run(lambda: vault.delete(path))

    async def get(self, path: str) -> bytes:
        """A secret value, for the executor only: no route ever returns it."""
        vault = self._unlocked()
        return await self._run(lambda: vault.get(path))

    async def secret(self, binding: Binding, read: Callable[[], Awaitable[bytes]]) -> bytes:
        """The secret of ``binding``, from the cache or else from ``read()`` (the caller's
        ``vault.get``, kept at the call site so every vault read stays visible there).
        Raises ``VaultLocked``, or what ``read`` raises (``EntryNotFound``)."""
        if self.state() != "unlocked":
            self.secrets.clear()
            raise VaultLocked("the vault is locked", hint="run `aileron vault unlock`")
        stamp = (binding.created_at, *self._identity())
        cached = self.secrets.get(binding.name, stamp)
        if cached is not None:
            return cached
        value = await read()
        # Stamped before the read: a write in between only causes one more read next time.
        self.secrets.put(binding.name, stamp, value)
        return value

    def _identity(self) -> tuple[int, int, int, int]:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return (0, 0, 0, 0)
        return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
