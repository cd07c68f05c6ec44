"""The escrow store: registered clients and escrowed credentials, sealed at rest.

``escrow-store.json`` is one line of canonical JSON::

    {"format": "aileron-enclave-store", "version": 1, "nonce": "<b64>", "ciphertext": "<b64>"}

The ciphertext is AES-256-GCM, under the storage key of ``keys.json``, of the canonical JSON
``{"clients": {id: Client}, "escrows": {id: Escrow}, "witnesses": {"client/vault": Witnessed}}``
(a store written before the audit witness existed has no ``witnesses`` and opens as none),
with the canonical header ``{"format", "version"}`` as associated data. Every change rewrites
the whole file atomically under a fresh nonce. Loading checks that the file is exactly the
canonical encoding of what it parses to and that the ciphertext opens, so any changed, added or
removed byte is reported as ``StoreCorrupt`` and the enclave refuses to start on it.

Each escrow keeps the credential exactly as the client sealed it to the enclave's X25519 key,
with its scope as associated data: the storage key protects the metadata, and the scope cannot
be widened without the sealed credential failing to open. Escrows belong to the client that
made them; no other client can list, use or delete them.

For the audit witness (``adr/0022-audit-witness.md``) the store keeps, per client and vault id,
the latest audit head the enclave countersigned; it is written before the mark is answered, so
the enclave never signs a head and then forgets it did.
"""

from __future__ import annotations

import builtins
import json
import os
from datetime import datetime
from typing import Any

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aileron_core.canonical import canonical_json
from aileron_core.convert import converter
from aileron_core.enclave.encoding import b64decode, b64encode
from aileron_core.enclave.sealing import Scope
from aileron_core.fileio import atomic_write
from aileron_enclave.datadir import DataDir
from aileron_enclave.errors import EnclaveError

__all__ = ["Client", "Escrow", "EscrowStore", "StoreCorrupt", "Witnessed"]

FORMAT = "aileron-enclave-store"
VERSION = 1
_HEADER = {"format": FORMAT, "version": VERSION}


class StoreCorrupt(EnclaveError):
    """The escrow store was changed outside the enclave, or is damaged."""

    code = "escrow_store_corrupt"


@attrs.frozen(kw_only=True)
class Client:
    """A registered client: a daemon that attached, known by its Ed25519 public key."""

    id: str
    public_key: str
    label: str
    registered_at: datetime


@attrs.frozen(kw_only=True)
class Escrow:
    """One escrowed credential, sealed to the enclave, with its scope."""

    id: str
    client_id: str
    scope: Scope
    sealed: str = attrs.field(repr=False)
    created_at: datetime


@attrs.frozen(kw_only=True)
class Witnessed:
    """The latest audit head the enclave countersigned for one client and vault."""

    client_id: str
    vault_id: str
    n: int
    digest: str
    mark: str
    """The witness mark line as signed (canonical JSON, no newline)."""


def _witness_key(client_id: str, vault_id: str) -> str:
    return f"{client_id}/{vault_id}"


@attrs.frozen(kw_only=True)
class _Contents:
    clients: dict[str, Client] = attrs.field(factory=dict)
    escrows: dict[str, Escrow] = attrs.field(factory=dict)
    witnesses: dict[str, Witnessed] = attrs.field(factory=dict)


class EscrowStore:
    """The clients and escrows of one data directory; every change is written at once."""

    def __init__(self, data_dir: DataDir, storage_key: bytes) -> None:
        self.path = data_dir.store
        self._aead = AESGCM(storage_key)
        self._contents = _Contents()

    @classmethod
    def open(cls, data_dir: DataDir, storage_key: bytes) -> EscrowStore:
        """The store of ``data_dir`` (empty if it has none); ``StoreCorrupt`` if tampered."""
        store = cls(data_dir, storage_key)
        try:
            data = data_dir.read_private(store.path)
        except EnclaveError:
            if store.path.exists():
                raise
            return store
        store._contents = store._decode(data)
        return store

    def _corrupt(self, problem: str) -> StoreCorrupt:
        return StoreCorrupt(
            f"the escrow store {self.path} failed its integrity check: {problem}",
            hint="it was changed outside the enclave or is damaged; restore it from a backup,"
            " or move it aside to start with no clients and no escrows",
            details={"path": str(self.path), "problem": problem},
        )

    def _decode(self, data: bytes) -> _Contents:
        try:
            outer = json.loads(data)
            if not isinstance(outer, dict):
                raise ValueError("not a JSON object")
        except (ValueError, RecursionError):
            raise self._corrupt("it is not JSON") from None
        if canonical_json(outer) + b"\n" != data:
            raise self._corrupt("it is not in its canonical form")
        if {k: outer.get(k) for k in _HEADER} != _HEADER or set(outer) != {
            *_HEADER,
            "nonce",
            "ciphertext",
        }:
            raise self._corrupt("the header is not that of an aileron-enclave-store version 1")
        try:
            nonce = b64decode(outer["nonce"], what="nonce", size=12)
            ciphertext = b64decode(outer["ciphertext"], what="ciphertext")
            plain = self._aead.decrypt(nonce, ciphertext, canonical_json(_HEADER))
        except ValueError as error:
            raise self._corrupt(str(error)) from None
        except InvalidTag:
            raise self._corrupt("the ciphertext does not authenticate") from None
        try:
            contents = converter.structure(json.loads(plain), _Contents)
        except Exception:  # cattrs reports malformed data as a tree of its own errors
            raise self._corrupt("the sealed contents are malformed") from None
        return contents

    def _save(self, contents: _Contents) -> None:
        nonce = os.urandom(12)
        plain = canonical_json(converter.unstructure(contents))
        document = {
            **_HEADER,
            "nonce": b64encode(nonce),
            "ciphertext": b64encode(self._aead.encrypt(nonce, plain, canonical_json(_HEADER))),
        }
        atomic_write(self.path, canonical_json(document) + b"\n")
        self._contents = contents

    # --- clients ---------------------------------------------------------------------------

    def client(self, client_id: str) -> Client | None:
        return self._contents.clients.get(client_id)

    def clients(self) -> builtins.list[Client]:
        return sorted(self._contents.clients.values(), key=lambda c: c.registered_at)

    def add_client(self, client: Client) -> None:
        clients = {**self._contents.clients, client.id: client}
        self._save(attrs.evolve(self._contents, clients=clients))

    def remove_client(self, client_id: str) -> builtins.list[Escrow]:
        """Forget a client and every escrow it made; the escrows removed."""
        gone = [e for e in self._contents.escrows.values() if e.client_id == client_id]
        clients = {k: v for k, v in self._contents.clients.items() if k != client_id}
        escrows = {k: v for k, v in self._contents.escrows.items() if v.client_id != client_id}
        witnesses = {k: v for k, v in self._contents.witnesses.items() if v.client_id != client_id}
        self._save(_Contents(clients=clients, escrows=escrows, witnesses=witnesses))
        return gone

    # --- escrows ---------------------------------------------------------------------------

    def add_escrow(self, escrow: Escrow) -> None:
        escrows = {**self._contents.escrows, escrow.id: escrow}
        self._save(attrs.evolve(self._contents, escrows=escrows))

    def escrow(self, escrow_id: str, client_id: str) -> Escrow:
        """The escrow ``escrow_id`` of ``client_id``; ``escrow_not_found`` otherwise."""
        escrow = self._contents.escrows.get(escrow_id)
        if escrow is None or escrow.client_id != client_id:
            raise EnclaveError(
                f"no escrow {escrow_id!r} for this client",
                code="escrow_not_found",
                hint="list the escrows with GET /v1/escrow; escrow the binding again if needed",
                details={"escrow_id": escrow_id},
            )
        return escrow

    def escrows_of(self, client_id: str) -> builtins.list[Escrow]:
        return sorted(
            (e for e in self._contents.escrows.values() if e.client_id == client_id),
            key=lambda e: (e.created_at, e.id),
        )

    def delete_escrow(self, escrow_id: str, client_id: str) -> Escrow:
        escrow = self.escrow(escrow_id, client_id)
        escrows = {k: v for k, v in self._contents.escrows.items() if k != escrow_id}
        self._save(attrs.evolve(self._contents, escrows=escrows))
        return escrow

    # --- audit witness -----------------------------------------------------------------------

    def witnessed(self, client_id: str, vault_id: str) -> Witnessed | None:
        """The latest head countersigned for ``client_id`` and ``vault_id``, if any."""
        return self._contents.witnesses.get(_witness_key(client_id, vault_id))

    def set_witnessed(self, record: Witnessed) -> None:
        """Remember ``record`` as the latest (written before the mark is answered)."""
        witnesses = {
            **self._contents.witnesses,
            _witness_key(record.client_id, record.vault_id): record,
        }
        self._save(attrs.evolve(self._contents, witnesses=witnesses))

    def summary(self) -> dict[str, Any]:
        return {"clients": len(self._contents.clients), "escrows": len(self._contents.escrows)}
