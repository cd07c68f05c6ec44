"""The providers' real keys, as the gateway reads them from the vault.

Reading a vault entry costs a worker-thread round trip (the vault is serialized behind a lock),
which is most of the gateway's own latency. So a key, once read, is kept for as long as nothing
that could change it has changed: the same binding (name and creation time) and the same
``vault.json`` (device, inode, size, modification time — every vault write replaces the file).
The cache never outlives an unlocked vault: each request first checks that the vault is
unlocked, and a locked vault empties the cache. The plaintext lives in memory no longer than
the vault's own data key does (until the vault is locked, then until the next gateway request
or the daemon's exit).
"""

from __future__ import annotations

import os

from aileron_cli.daemon.binding_store import Binding
from aileron_cli.daemon.vault_service import VaultService
from aileron_core.vault import VaultLocked

Stamp = tuple[object, ...]


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
        self._keys: dict[str, tuple[Stamp, str]] = {}

    async def key(self, vault: VaultService, binding: Binding) -> str:
        """The key of ``binding``. Raises ``VaultLocked``, ``EntryNotFound`` or ``InvalidKey``."""
        if vault.state() != "unlocked":
            self._keys.clear()
            raise VaultLocked("the vault is locked", hint="run `aileron vault unlock`")
        stamp = (binding.created_at, *_identity(vault))
        cached = self._keys.get(binding.name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        key = header_safe(await vault.get(binding.name))
        if key is None:
            self._keys.pop(binding.name, None)
            raise InvalidKey(binding.name)
        # Stamped before the read: a write in between only causes one more read next time.
        self._keys[binding.name] = (stamp, key)
        return key

    def clear(self) -> None:
        self._keys.clear()


def _identity(vault: VaultService) -> tuple[int, int, int, int]:
    try:
        info = os.stat(vault.path)
    except FileNotFoundError:
        return (0, 0, 0, 0)
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
