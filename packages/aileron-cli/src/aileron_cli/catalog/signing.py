"""Signing and verifying catalog entries (Ed25519).

An entry is a JSON object; its signature covers the canonical JSON (``aileron_core.canonical``:
sorted keys, no spaces, UTF-8) of the entry without its ``signature`` member — ``key_id``
included, so an entry cannot be re-attributed to another key. ``signature`` is the base64 of
the 64-byte Ed25519 signature. An entry is refused, naming why, when it is unsigned, names a
key that is unknown or revoked, or does not match its signature (it was changed after signing).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aileron_cli.catalog.keys import TrustedKeys
from aileron_core.canonical import canonical_json
from aileron_core.errors import AileronError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SIGNATURE = "signature"
KEY_ID = "key_id"


class EntryRefused(AileronError):
    """A catalog entry that is not signed by a key in force. ``reason`` is one of
    ``unsigned``, ``unknown_key``, ``revoked_key``, ``bad_signature``, ``malformed`` and
    ``name_taken`` (another key's entry of a name Aileron's own key publishes)."""

    code = "catalog_entry_refused"

    def __init__(self, label: str, reason: str, why: str, *, hint: str | None = None) -> None:
        super().__init__(f"catalog entry {label} is refused: {why}", hint=hint)
        self.entry = label
        self.reason = reason


def signed_bytes(entry: Mapping[str, Any]) -> bytes:
    """The bytes an entry's signature covers."""
    return canonical_json({k: v for k, v in entry.items() if k != SIGNATURE})


def sign_entry(
    entry: Mapping[str, Any], private_key: Ed25519PrivateKey, key_id: str
) -> dict[str, Any]:
    """``entry`` with ``key_id`` set and a fresh ``signature``."""
    unsigned = {k: v for k, v in entry.items() if k != SIGNATURE} | {KEY_ID: key_id}
    signature = private_key.sign(signed_bytes(unsigned))
    return unsigned | {SIGNATURE: base64.b64encode(signature).decode()}


def label(entry: Mapping[str, Any]) -> str:
    """``name@version`` of an entry, for messages (whatever its fields hold)."""
    return f"{entry.get('name', '?')}@{entry.get('version', '?')}"


def verify_entry(entry: Mapping[str, Any], keys: TrustedKeys) -> None:
    """Return when ``entry`` is signed by a key in force; else ``EntryRefused`` naming why."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    what = label(entry)
    key_id, signature = entry.get(KEY_ID), entry.get(SIGNATURE)
    if not isinstance(key_id, str) or not isinstance(signature, str) or not signature:
        raise EntryRefused(what, "unsigned", "it is unsigned")
    if key_id in keys.revoked:
        raise EntryRefused(
            what,
            "revoked_key",
            f"it is signed by key {key_id}, which you revoked",
            hint=f"`aileron connector keys trust KEY --id {key_id}` trusts it again",
        )
    public = keys.public_key(key_id)
    if public is None:
        raise EntryRefused(
            what,
            "unknown_key",
            f"it is signed by key {key_id}, which is not trusted",
            hint=f"trust the publisher's key with `aileron connector keys trust KEY --id {key_id}`"
            " if you trust the publisher",
        )
    try:
        raw = base64.b64decode(signature, validate=True)
        Ed25519PublicKey.from_public_bytes(public).verify(raw, signed_bytes(entry))
    except (binascii.Error, ValueError, InvalidSignature):
        raise EntryRefused(
            what,
            "bad_signature",
            f"its signature by key {key_id} does not match its content (it was changed after"
            " signing)",
        ) from None
