"""The vault's keys and the primitives that use them (ADR 0002, "Keys").

- The *key-encryption key* (KEK) comes from the passphrase (``kdf.derive_key``) and only wraps
  the data key: AES-256-GCM, random 96-bit nonce, the canonical header as associated data.
- The *data key* is 256 random bits. It is never used directly; HKDF-SHA256 (salt = the 16 raw
  bytes of ``vault_id``) derives two subkeys from it: the *entry key* (``info`` =
  ``aileron-vault/v1/entry``) that seals every value with AES-256-GCM, and the *MAC key* (``info``
  = ``aileron-vault/v1/mac``) for the HMAC-SHA256 over the whole vault body. Format version 2
  adds a third, the *audit seal key* (``info`` = ``aileron-vault/v2/audit-key``), that seals the
  32-byte Ed25519 seed of the vault's audit key with AES-256-GCM.
- The *audit key* is an Ed25519 key pair: its public half is stored in the clear (inside the
  MAC'd body), its private seed only sealed, so signing needs the passphrase.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

DATA_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAC_BYTES = 32
ENTRY_KEY_INFO = b"aileron-vault/v1/entry"
MAC_KEY_INFO = b"aileron-vault/v1/mac"
AUDIT_KEY_INFO = b"aileron-vault/v2/audit-key"
AUDIT_SEED_BYTES = 32
AUDIT_PUBLIC_BYTES = 32


class AuthenticationFailed(Exception):
    """An AEAD tag did not verify (internal: callers translate it into a ``VaultError``)."""


def new_data_key() -> bytes:
    """A fresh random 256-bit data key."""
    return os.urandom(DATA_KEY_BYTES)


def new_nonce() -> bytes:
    """A fresh random 96-bit AES-GCM nonce."""
    return os.urandom(NONCE_BYTES)


def wrap_data_key(kek: bytes, data_key: bytes, associated_data: bytes) -> tuple[bytes, bytes]:
    """Seal the data key under the KEK; returns ``(nonce, ciphertext)``."""
    nonce = new_nonce()
    return nonce, AESGCM(kek).encrypt(nonce, data_key, associated_data)


def unwrap_data_key(kek: bytes, nonce: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
    """Open the wrapped data key; raises ``AuthenticationFailed`` when the tag does not verify."""
    try:
        data_key = AESGCM(kek).decrypt(nonce, ciphertext, associated_data)
    except InvalidTag:
        raise AuthenticationFailed from None
    if len(data_key) != DATA_KEY_BYTES:  # only a writer holding the KEK could cause this
        raise AuthenticationFailed
    return data_key


def new_audit_seed() -> bytes:
    """A fresh random Ed25519 private seed (32 bytes)."""
    return os.urandom(AUDIT_SEED_BYTES)


def audit_private_key(seed: bytes) -> Ed25519PrivateKey:
    """The Ed25519 private key of a 32-byte seed."""
    return Ed25519PrivateKey.from_private_bytes(seed)


def audit_public_key(seed: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key of a 32-byte seed."""
    return audit_private_key(seed).public_key().public_bytes_raw()


def _subkey(data_key: bytes, vault_id: bytes, info: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=vault_id, info=info)
    return hkdf.derive(data_key)


class DataKeys:
    """The data key of one vault and the subkeys derived from it."""

    __slots__ = ("_audit_aead", "_entry_aead", "_mac_key", "data_key")

    def __init__(self, data_key: bytes, vault_id: bytes) -> None:
        self.data_key = data_key
        self._entry_aead = AESGCM(_subkey(data_key, vault_id, ENTRY_KEY_INFO))
        self._mac_key = _subkey(data_key, vault_id, MAC_KEY_INFO)
        self._audit_aead = AESGCM(_subkey(data_key, vault_id, AUDIT_KEY_INFO))

    def seal(self, plaintext: bytes, associated_data: bytes) -> tuple[bytes, bytes]:
        """Encrypt one value under the entry key; returns ``(nonce, ciphertext)``."""
        nonce = new_nonce()
        return nonce, self._entry_aead.encrypt(nonce, plaintext, associated_data)

    def open(self, nonce: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
        """Decrypt one value; raises ``AuthenticationFailed`` when the tag does not verify."""
        try:
            return self._entry_aead.decrypt(nonce, ciphertext, associated_data)
        except InvalidTag:
            raise AuthenticationFailed from None

    def seal_audit_seed(self, seed: bytes, associated_data: bytes) -> tuple[bytes, bytes]:
        """Encrypt the audit key's seed under its seal key; returns ``(nonce, ciphertext)``."""
        nonce = new_nonce()
        return nonce, self._audit_aead.encrypt(nonce, seed, associated_data)

    def open_audit_seed(self, nonce: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
        """Decrypt the audit key's seed; raises ``AuthenticationFailed`` if anything changed."""
        try:
            seed = self._audit_aead.decrypt(nonce, ciphertext, associated_data)
        except InvalidTag:
            raise AuthenticationFailed from None
        if len(seed) != AUDIT_SEED_BYTES:  # only a writer holding the data key could cause this
            raise AuthenticationFailed
        return seed

    def mac(self, body: bytes) -> bytes:
        """HMAC-SHA256 of the canonical vault body under the MAC key."""
        return hmac.new(self._mac_key, body, hashlib.sha256).digest()

    def mac_matches(self, body: bytes, mac: bytes) -> bool:
        """Whether ``mac`` authenticates ``body`` (constant-time comparison)."""
        return hmac.compare_digest(self.mac(body), mac)


__all__ = [
    "AUDIT_PUBLIC_BYTES",
    "AUDIT_SEED_BYTES",
    "AuthenticationFailed",
    "DataKeys",
    "audit_private_key",
    "audit_public_key",
    "new_audit_seed",
    "new_data_key",
    "unwrap_data_key",
    "wrap_data_key",
]
