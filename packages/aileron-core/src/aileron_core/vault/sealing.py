"""Where keys meet the document: sealing, opening and authenticating entries and the data key.

``keys.py`` knows the primitives and ``format.py`` the bytes; these functions apply the first
to the second, with the associated data that ADR 0002 fixes for each object.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from aileron_core.vault.encoding import json_string_map
from aileron_core.vault.format import (
    Document,
    Header,
    SealedEntry,
    WrappedKey,
    entry_associated_data,
)
from aileron_core.vault.keys import (
    AuthenticationFailed,
    DataKeys,
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
    "open_entry",
    "reseal_entries",
    "seal_entry",
    "unwrap",
    "wrap",
]
