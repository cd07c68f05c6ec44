"""vault.json, format version 2: the document model and its canonical encoder.

The layout, byte for byte (ADR 0002 is the normative description; ``parser.py`` reads it)::

    {"checksum":"<sha256 hex>","mac":"<base64>","vault":{
        "audit_key":{"public":"<base64>","sealed":{"ciphertext":"…","nonce":"…"}},
        "created_at":"…","entries":{"<path>":{"ciphertext":"…","created_at":"…",
            "metadata":{…},"nonce":"…","updated_at":"…"},…},
        "format":"aileron-vault","generation":<int>,
        "kdf":{"memory_kib":…,"name":"argon2id","parallelism":…,"salt":"…","time_cost":…},
        "updated_at":"…","vault_id":"<32 hex>","version":2,
        "wrapped_key":{"ciphertext":"…","nonce":"…"}}}

with no white space: the file is its own canonical JSON encoding. Version 1 is the same without
``audit_key`` and ``generation`` (read as generation 0, no audit key); every write produces
version 2. Each entry keeps its encoded JSON member, so a write re-encodes only the entries that
changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from aileron_core.canonical import canonical_json
from aileron_core.vault.encoding import (
    b64encode,
    format_timestamp,
    json_object,
    json_string,
    json_text,
    json_text_map,
)
from aileron_core.vault.entries import EntryInfo
from aileron_core.vault.kdf import KDF_NAME, KdfParams

FORMAT = "aileron-vault"
VERSION = 2  # what every write produces
SUPPORTED_VERSIONS = (1, 2)
MAX_GENERATION = 2**63 - 1
MAX_FILE_BYTES = 64 * 1024 * 1024
WRAP_CONTEXT = "aileron-vault/v1/wrapped-key"
ENTRY_CONTEXT = "aileron-vault/v1/entry"  # unchanged in version 2: entries are not re-sealed
AUDIT_KEY_CONTEXT = "aileron-vault/v2/audit-key"

# The checksum is always the file's first member, so its position is fixed (see ADR 0002).
CHECKSUM_OPEN = b'{"checksum":"'
CHECKSUM_HEX_DIGITS = 64
HEAD_BYTES = len(CHECKSUM_OPEN) + CHECKSUM_HEX_DIGITS + 2  # through the '",' after it
_ENTRY_AD_OPEN = b'{"context":' + json_string(ENTRY_CONTEXT) + b',"metadata":'


@attrs.frozen
class Header:
    """The part of the file that the wrapped key is bound to (its associated data)."""

    vault_id: str
    kdf: KdfParams
    salt: bytes
    created_at: datetime
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        """The header as a JSON value, exactly as it appears in the vault body."""
        return {
            "created_at": format_timestamp(self.created_at),
            "format": FORMAT,
            "kdf": {
                "memory_kib": self.kdf.memory_kib,
                "name": KDF_NAME,
                "parallelism": self.kdf.parallelism,
                "salt": b64encode(self.salt),
                "time_cost": self.kdf.time_cost,
            },
            "vault_id": self.vault_id,
            "version": self.version,
        }

    def wrap_associated_data(self) -> bytes:
        """AES-GCM associated data of the wrapped data key."""
        return canonical_json({"context": WRAP_CONTEXT, "header": self.to_json()})


@attrs.frozen
class WrappedKey:
    """The data key sealed under the passphrase-derived key."""

    nonce: bytes
    ciphertext: bytes


@attrs.frozen
class AuditKey:
    """The vault's Ed25519 audit key: the public half, and the private seed sealed."""

    public: bytes  # raw 32 bytes
    nonce: bytes
    ciphertext: bytes  # the 32-byte seed under the audit seal key, with its tag

    def to_json(self) -> dict[str, Any]:
        """The audit key as a JSON value, exactly as it appears in the vault body."""
        return {
            "public": b64encode(self.public),
            "sealed": {"ciphertext": b64encode(self.ciphertext), "nonce": b64encode(self.nonce)},
        }


def audit_key_associated_data(vault_id: str, public: bytes) -> bytes:
    """AES-GCM associated data of the sealed audit seed: binds the vault id and public key."""
    return canonical_json(
        {"context": AUDIT_KEY_CONTEXT, "public": b64encode(public), "vault_id": vault_id}
    )


@attrs.frozen(eq=False)
class SealedEntry:
    """One entry as stored: sealed value, metadata, times, and its canonical JSON member."""

    path: str
    nonce: bytes
    ciphertext: bytes
    metadata: Mapping[str, str]
    created_at: datetime
    updated_at: datetime
    metadata_json: bytes  # canonical JSON of ``metadata``
    member: bytes  # canonical '"<path>":{…}' as it appears inside "entries"

    @classmethod
    def build(
        cls,
        path: str,
        nonce: bytes,
        ciphertext: bytes,
        metadata: dict[str, str],
        created_at: datetime,
        updated_at: datetime,
    ) -> SealedEntry:
        """Assemble an entry (and its JSON) from already validated parts."""
        return assemble_entry(
            path,
            nonce,
            ciphertext,
            metadata,
            created_at,
            updated_at,
            b64encode(nonce),
            b64encode(ciphertext),
            format_timestamp(created_at),
            format_timestamp(updated_at),
        )

    def associated_data(self, vault_id: str) -> bytes:
        """AES-GCM associated data of this entry's value (ADR 0002, "Entries")."""
        return entry_associated_data(vault_id, self.path, self.metadata_json)

    def info(self) -> EntryInfo:
        """The public view of this entry (with its own copy of the metadata)."""
        return EntryInfo(self.path, dict(self.metadata), self.created_at, self.updated_at)


def entry_associated_data(vault_id: str, path: str, metadata_json: bytes) -> bytes:
    """``canonical_json({"context", "metadata", "path", "vault_id", "version"})``, built fast."""
    return b"".join(
        (
            _ENTRY_AD_OPEN,
            metadata_json,
            b',"path":',
            json_string(path),
            b',"vault_id":"',
            vault_id.encode("ascii"),
            b'","version":1}',
        )
    )


def assemble_entry(
    path: str,
    nonce: bytes,
    ciphertext: bytes,
    metadata: dict[str, str],
    created_at: datetime,
    updated_at: datetime,
    nonce_b64: str,
    ciphertext_b64: str,
    created_text: str,
    updated_text: str,
) -> SealedEntry:
    """Build an entry from validated parts and their (already canonical) text forms."""
    metadata_text = json_text_map(metadata)
    # Keys in canonical (sorted) order; base64 and timestamps never need escaping.
    member = (
        f'{json_text(path)}:{{"ciphertext":"{ciphertext_b64}","created_at":"{created_text}",'
        f'"metadata":{metadata_text},"nonce":"{nonce_b64}","updated_at":"{updated_text}"}}'
    ).encode()
    metadata_json = metadata_text.encode("utf-8")
    return SealedEntry(
        path, nonce, ciphertext, metadata, created_at, updated_at, metadata_json, member
    )


@attrs.frozen
class Document:
    """A whole vault, immutable: edits return a new document sharing the unchanged entries.

    ``generation`` is 0 and ``audit_key`` ``None`` only in a version-1 document.
    """

    header: Header
    wrapped_key: WrappedKey
    updated_at: datetime
    entries: Mapping[str, SealedEntry]
    generation: int
    audit_key: AuditKey | None

    def replace(
        self,
        *,
        updated_at: datetime,
        header: Header | None = None,
        wrapped_key: WrappedKey | None = None,
        entries: Mapping[str, SealedEntry] | None = None,
        audit_key: AuditKey | None = None,
    ) -> Document:
        """A copy with the given parts replaced and a new ``updated_at``."""
        return Document(
            header=header or self.header,
            wrapped_key=wrapped_key or self.wrapped_key,
            updated_at=updated_at,
            entries=self.entries if entries is None else entries,
            generation=self.generation,
            audit_key=audit_key or self.audit_key,
        )

    def body(self) -> bytes:
        """The canonical JSON of the ``vault`` member: the MAC input."""
        header = self.header.to_json()
        entries = b"{" + b",".join(self.entries[p].member for p in sorted(self.entries)) + b"}"
        wrapped = {
            "ciphertext": b64encode(self.wrapped_key.ciphertext),
            "nonce": b64encode(self.wrapped_key.nonce),
        }
        members = [
            ("created_at", json_string(header["created_at"])),
            ("entries", entries),
            ("format", json_string(FORMAT)),
            ("kdf", canonical_json(header["kdf"])),
            ("updated_at", json_string(format_timestamp(self.updated_at))),
            ("vault_id", json_string(self.header.vault_id)),
            ("version", b"%d" % self.header.version),
            ("wrapped_key", canonical_json(wrapped)),
        ]
        if self.header.version >= 2:
            assert self.audit_key is not None, "a version-2 document always has an audit key"
            members.append(("audit_key", canonical_json(self.audit_key.to_json())))
            members.append(("generation", b"%d" % self.generation))
        return json_object(members)


def encode_file(body: bytes, mac: bytes) -> bytes:
    """The complete file: checksum, MAC and body, as canonical JSON."""
    rest = b'{"mac":' + json_string(b64encode(mac)) + b',"vault":' + body + b"}"
    checksum = hashlib.sha256(rest).hexdigest().encode("ascii")
    return CHECKSUM_OPEN + checksum + b'",' + rest[1:]


__all__ = [
    "AUDIT_KEY_CONTEXT",
    "CHECKSUM_OPEN",
    "ENTRY_CONTEXT",
    "FORMAT",
    "HEAD_BYTES",
    "MAX_FILE_BYTES",
    "MAX_GENERATION",
    "SUPPORTED_VERSIONS",
    "VERSION",
    "WRAP_CONTEXT",
    "AuditKey",
    "Document",
    "Header",
    "SealedEntry",
    "WrappedKey",
    "assemble_entry",
    "audit_key_associated_data",
    "encode_file",
    "entry_associated_data",
]
