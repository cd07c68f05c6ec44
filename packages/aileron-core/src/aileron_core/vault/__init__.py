"""The encrypted vault: one file of secrets, sealed with keys derived from a passphrase.

The format is version 2 of ``vault.json`` (version 1 still opens), described normatively in ADR
0002; ADR 0020 explains the generation counter and the audit key. Typical use::

    vault = Vault.create(path, passphrase)      # new file, returned unlocked
    vault.put("api_key/openai/default", secret, {"type": "api_key"})
    vault = Vault.open(path)                    # parsed and validated, locked
    vault.unlock(passphrase)                    # every entry authenticated here
    vault.get("api_key/openai/default")

Errors are all ``VaultError`` subclasses; ``aileron_core.vault.errors`` draws the tree.
"""

from __future__ import annotations

from aileron_core.vault.entries import EntryInfo
from aileron_core.vault.errors import (
    EntryNotFound,
    InvalidEntry,
    InvalidEntryPath,
    InvalidPassphrase,
    UnsupportedVersion,
    VaultCorrupt,
    VaultError,
    VaultExists,
    VaultLocked,
    VaultMissing,
    VaultRolledBack,
    WrongPassphrase,
)
from aileron_core.vault.kdf import DEFAULT_KDF, KdfParams
from aileron_core.vault.vault import Vault

__all__ = [
    "DEFAULT_KDF",
    "EntryInfo",
    "EntryNotFound",
    "InvalidEntry",
    "InvalidEntryPath",
    "InvalidPassphrase",
    "KdfParams",
    "UnsupportedVersion",
    "Vault",
    "VaultCorrupt",
    "VaultError",
    "VaultExists",
    "VaultLocked",
    "VaultMissing",
    "VaultRolledBack",
    "WrongPassphrase",
]
