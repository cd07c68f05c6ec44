"""Where keys meet the document: sealing, opening and authenticating entries and the data key.

``keys.py`` knows the primitives and ``format.py`` the bytes; these functions apply the first
to the second, with the associated data that ADR 0002 fixes for each object.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from aileron_core.vault.encoding import json_string_map
from aileron_core.vault.format import (
    AuditKey,
    Document,
    Header,
    SealedEntry,
    WrappedKey,
    audit_key_associated_data,
    entry_associated_data,
)
from aileron_core.vault.keys import (
    AuthenticationFailed,
    DataKeys,
    audit_public_key,
    new_audit_seed,
    unwrap_data_key,
    wrap_data_key,
)


def data_keys(data_key: bytes, header: Header) -> DataKeys:
    """The subkeys of ``data_key`` for the vault that ``header`` describes."""
    return DataKeys(data_key, bytes.fromhex(header.vault_id))


def wrap(kek: bytes, data_key: bytes, header: Header) -> WrappedKey:
    """Seal the data key under the key-encryption key, bound to ``header``."""
    return WrappedKey(*wrap_data_key(kek, data_key, header.wrap_associated_data()))


def unwrap(kek: bytes, document: Document) -> bytes:
    """The document's data key; raises ``AuthenticationFailed`` for a wrong key or any edit."""
    wrapped = document.wrapped_key
    return unwrap_data_key(
        kek, wrapped.nonce, wrapped.ciphertext, document.header.wrap_associated_data()
    )


def seal_audit_seed(keys: DataKeys, vault_id: str, seed: bytes) -> AuditKey:
    """The audit key of ``seed``: its public half, and the seed sealed under ``keys``."""
    public = audit_public_key(seed)
    nonce, ciphertext = keys.seal_audit_seed(seed, audit_key_associated_data(vault_id, public))
    return AuditKey(public=public, nonce=nonce, ciphertext=ciphertext)


def new_audit_key(keys: DataKeys, vault_id: str) -> AuditKey:
    """A fresh Ed25519 audit key, its seed sealed under ``keys``."""
    return seal_audit_seed(keys, vault_id, new_audit_seed())


def open_audit_seed(keys: DataKeys, vault_id: str, audit_key: AuditKey) -> bytes:
    """The audit key's private seed, checked against its public half.

    Raises ``AuthenticationFailed`` if the seal fails or the seed is not the public key's.
    """
    ad = audit_key_associated_data(vault_id, audit_key.public)
    seed = keys.open_audit_seed(audit_key.nonce, audit_key.ciphertext, ad)
    if audit_public_key(seed) != audit_key.public:  # only a writer holding the data key
        raise AuthenticationFailed
    return seed


def seal_entry(
    keys: DataKeys,
    vault_id: str,
    path: str,
    plaintext: bytes,
    metadata: dict[str, str],
    created_at: datetime,
    updated_at: datetime,
) -> SealedEntry:
    """A new entry holding ``plaintext`` sealed under the entry key with a fresh nonce."""
    ad = entry_associated_data(vault_id, path, json_string_map(metadata))
    nonce, ciphertext = keys.seal(plaintext, ad)
    return SealedEntry.build(path, nonce, ciphertext, metadata, created_at, updated_at)


def open_entry(keys: DataKeys, vault_id: str, entry: SealedEntry) -> bytes:
    """The entry's value; raises ``AuthenticationFailed`` if anything bound to it changed."""
    return keys.open(entry.nonce, entry.ciphertext, entry.associated_data(vault_id))


def failing_entries(
    document: Document, keys: DataKeys, *, known: Mapping[str, SealedEntry]
) -> list[str]:
    """Paths of the entries that fail to authenticate, sorted.

    Entries whose stored form is identical to one in ``known`` (already authenticated under
    the same keys) are skipped, so following another writer's change costs what it changed.
    """
    vault_id = document.header.vault_id
    bad = []
    for path, entry in document.entries.items():
        seen = known.get(path)
        if seen is not None and seen.member == entry.member:
            continue
        try:
            open_entry(keys, vault_id, entry)
        except AuthenticationFailed:
            bad.append(path)
    return sorted(bad)


def reseal_entries(
    document: Document, old: DataKeys, new: DataKeys
) -> tuple[dict[str, SealedEntry], list[str]]:
    """Every entry re-sealed from ``old`` to ``new`` keys, and the paths that failed to open."""
    vault_id = document.header.vault_id
    resealed: dict[str, SealedEntry] = {}
    bad = []
    for path, entry in document.entries.items():
        try:
            plaintext = open_entry(old, vault_id, entry)
        except AuthenticationFailed:
            bad.append(path)
            continue
        metadata = dict(entry.metadata)
        resealed[path] = seal_entry(
            new, vault_id, path, plaintext, metadata, entry.created_at, entry.updated_at
        )
    return resealed, sorted(bad)


__all__ = [
    "data_keys",
    "failing_entries",
    "new_audit_key",
    "open_audit_seed",
    "open_entry",
    "reseal_entries",
    "seal_audit_seed",
    "seal_entry",
    "unwrap",
    "wrap",
]
