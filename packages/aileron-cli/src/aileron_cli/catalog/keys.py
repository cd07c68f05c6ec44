"""The publisher keys a catalog entry may be signed with.

Two sources, read together: the key pinned here (Aileron's own publisher key; its private half
is not in the repository) and the user's file ``~/.aileron/catalog/keys.json`` (mode 0600)::

    {"trusted": {"KEY_ID": "<base64 of the raw 32-byte Ed25519 public key>"},
     "revoked": ["KEY_ID", ...]}

``aileron connector keys trust`` adds a key, ``keys revoke`` names a key id that is refused
from then on — the pinned one included. A revoked id stays refused even if it is also trusted.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from pathlib import Path

import attrs

from aileron_core.errors import AileronError
from aileron_core.fileio import atomic_write
from aileron_core.paths import ensure_private_dir

BUILTIN_KEYS: Mapping[str, str] = {
    "aileron-catalog-2026": "bUeOyF43D6CfIhMlh1p3b1mACB4VgK4Vw4un1OElpjY=",
}
"""Key id → base64 raw Ed25519 public key of the publishers every install trusts."""

KEYS_FILE = "keys.json"
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PUBLIC_KEY_BYTES = 32


class CatalogKeyError(AileronError):
    """A key file or a key given to ``keys trust`` is malformed."""

    code = "invalid_catalog_key"


@attrs.frozen
class TrustedKeys:
    """The keys in force: ``trusted`` (id → raw public key) minus ``revoked``."""

    trusted: Mapping[str, bytes]
    revoked: frozenset[str]
    builtin: frozenset[str]

    def public_key(self, key_id: str) -> bytes | None:
        """The raw public key of ``key_id``, or ``None`` when it is unknown or revoked."""
        return None if key_id in self.revoked else self.trusted.get(key_id)


def check_key_id(key_id: str) -> str:
    """``key_id`` if it is 1-64 letters, digits, ``.``, ``_`` or ``-``; else ``CatalogKeyError``."""
    if not _KEY_ID.fullmatch(key_id):
        raise CatalogKeyError(
            f"{key_id!r} is not a key id",
            hint="use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return key_id


def decode_public_key(text: str) -> bytes:
    """The raw 32-byte Ed25519 public key in ``text``: base64 of the raw key, or a PEM
    ``PUBLIC KEY`` block."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError as error:
            raise CatalogKeyError(f"the PEM block is not a public key: {error}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise CatalogKeyError("the PEM block is not an Ed25519 public key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CatalogKeyError("the key is neither base64 nor a PEM public key") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise CatalogKeyError(f"an Ed25519 public key is 32 bytes; this one is {len(raw)}")
    return raw


def _read_file(path: Path) -> tuple[dict[str, str], list[str]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, ValueError) as error:
        raise CatalogKeyError(
            f"cannot read {path}: {error}", hint=f"fix or remove {path}"
        ) from None
    trusted = document.get("trusted", {}) if isinstance(document, dict) else None
    revoked = document.get("revoked", []) if isinstance(document, dict) else None
    if not isinstance(trusted, dict) or not isinstance(revoked, list):
        raise CatalogKeyError(f"{path} is not a keys file", hint=f"fix or remove {path}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in trusted.items()) or not all(
        isinstance(k, str) for k in revoked
    ):
        raise CatalogKeyError(f"{path} holds a key id or key that is not text", hint=f"fix {path}")
    return trusted, revoked


def _write_file(path: Path, trusted: Mapping[str, str], revoked: list[str]) -> None:
    ensure_private_dir(path.parent)
    body = {"trusted": dict(sorted(trusted.items())), "revoked": sorted(set(revoked))}
    atomic_write(path, json.dumps(body, indent=2).encode() + b"\n")


def load_keys(directory: Path) -> TrustedKeys:
    """The built-in keys plus those in ``directory/keys.json``, minus the revoked ones."""
    user, revoked = _read_file(directory / KEYS_FILE)
    trusted = {key_id: base64.b64decode(key) for key_id, key in BUILTIN_KEYS.items()}
    for key_id, key in user.items():
        trusted[key_id] = decode_public_key(key)
    return TrustedKeys(trusted, frozenset(revoked), frozenset(BUILTIN_KEYS))


def trust_key(directory: Path, key_id: str, public_key: bytes) -> None:
    """Trust ``public_key`` under ``key_id`` (lifting a revocation of that id)."""
    check_key_id(key_id)
    user, revoked = _read_file(directory / KEYS_FILE)
    known = BUILTIN_KEYS.get(key_id)
    if known is not None and base64.b64decode(known) != public_key:
        raise CatalogKeyError(
            f"{key_id} is the built-in key's id", hint="trust it under another id"
        )
    user[key_id] = base64.b64encode(public_key).decode()
    _write_file(directory / KEYS_FILE, user, [k for k in revoked if k != key_id])


def revoke_key(directory: Path, key_id: str) -> None:
    """Refuse ``key_id`` from now on (built-in or not); entries it signed are refused."""
    check_key_id(key_id)
    user, revoked = _read_file(directory / KEYS_FILE)
    if key_id not in user and key_id not in BUILTIN_KEYS and key_id not in revoked:
        raise CatalogKeyError(
            f"no key {key_id} is trusted", hint="see `aileron connector keys list`"
        )
    user.pop(key_id, None)
    _write_file(directory / KEYS_FILE, user, [*revoked, key_id])
