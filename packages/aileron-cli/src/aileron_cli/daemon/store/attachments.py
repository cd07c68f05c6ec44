"""``enclave.json``: the daemon's attachment to an ``aileron-enclave``, and what it escrowed.

The file (0600, rewritten atomically) holds no secret: the enclave's URL, its pinned
certificate (PEM) and fingerprint, the keys and measurement of the attestation verified at
attach time, this daemon's client id, and per escrowed binding the escrow id and scope. The
client's private key lives in the vault (``CLIENT_KEY_PATH``), so a locked vault also stops
the daemon from using the enclave::

    {"format": "aileron-enclave-attachment", "version": 1,
     "attachment": {"url", "fingerprint", "certificate", "client_id", "signing_key",
                    "sealing_key", "measurement", "provider", "debug", "enclave_version",
                    "attached_at",
                    "escrows": {"<binding>": {"binding", "escrow_id", "hosts", "kind", "name",
                                              "escrowed_at"}}}}

A binding listed under ``escrows`` has no secret in the daemon's vault: the daemon runs it
through the enclave.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import attrs

from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.files import writing
from aileron_core.connectors import CredentialKind
from aileron_core.convert import converter
from aileron_core.fileio import atomic_write

__all__ = ["CLIENT_KEY_PATH", "Attachment", "AttachmentStore", "EscrowRecord"]

FORMAT = "aileron-enclave-attachment"
CLIENT_KEY_PATH = "enclave/client-key"
"""The vault path of this daemon's Ed25519 client key (base64 of the raw private key)."""


@attrs.frozen(kw_only=True)
class EscrowRecord:
    """One binding whose secret the enclave holds."""

    binding: str
    escrow_id: str
    hosts: tuple[str, ...]
    kind: CredentialKind
    name: str | None
    escrowed_at: datetime


@attrs.frozen(kw_only=True)
class Attachment:
    """The enclave this daemon is attached to, as verified at attach time."""

    url: str
    fingerprint: str
    certificate: str
    client_id: str
    signing_key: str
    sealing_key: str
    measurement: str
    provider: str
    debug: bool
    enclave_version: str
    attached_at: datetime
    escrows: dict[str, EscrowRecord] = attrs.field(factory=dict)


class AttachmentStore:
    """Reads and writes ``enclave.json``; re-reads it only when it changed on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._cached: Attachment | None = None

    def load(self) -> Attachment | None:
        """The attachment, or ``None`` when this daemon is not attached."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._cached = None, None
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            self._cached = self._read()
            self._stamp = stamp
        return self._cached

    def _read(self) -> Attachment:
        try:
            data = json.loads(self.path.read_bytes())
            if data.get("format") != FORMAT or data.get("version") != 1:
                raise ValueError("not an enclave attachment of version 1")
            attachment: Attachment = converter.structure(data["attachment"], Attachment)
        except Exception as error:  # malformed JSON or data: one clear error
            raise DaemonError(
                "enclave_state_corrupt",
                f"{self.path} is not a valid enclave attachment: {error}"[:300],
                hint="move it aside and run `aileron enclave attach` again",
            ) from None
        return attachment

    def save(self, attachment: Attachment) -> None:
        body = {"format": FORMAT, "version": 1, "attachment": converter.unstructure(attachment)}
        with writing(self.path):
            atomic_write(self.path, json.dumps(body, indent=2, sort_keys=True).encode() + b"\n")
        self._stamp = None

    def remove(self) -> None:
        with writing(self.path):
            self.path.unlink(missing_ok=True)
        self._stamp, self._cached = None, None

    def with_escrow(self, record: EscrowRecord) -> Attachment:
        """Record ``record`` in the attachment (replacing any for the same binding)."""
        attachment = self._require()
        updated = attrs.evolve(attachment, escrows={**attachment.escrows, record.binding: record})
        self.save(updated)
        return updated

    def without_escrow(self, binding: str) -> Attachment:
        attachment = self._require()
        escrows = {k: v for k, v in attachment.escrows.items() if k != binding}
        updated = attrs.evolve(attachment, escrows=escrows)
        self.save(updated)
        return updated

    def _require(self) -> Attachment:
        attachment = self.load()
        if attachment is None:
            raise not_attached()
        return attachment


def not_attached() -> DaemonError:
    return DaemonError(
        "enclave_not_attached",
        "this daemon is not attached to an enclave",
        hint="run `aileron enclave attach URL --fingerprint HEX` first",
    )
