"""A credential sealed to the enclave: X25519 + HKDF-SHA256 + AES-256-GCM, bound to its scope.

The daemon seals a binding's secret to the enclave's X25519 public key (from a verified
attestation); only the holder of the matching private key can open it, and only together with
the exact scope it was sealed with. The sealed bytes are::

    b"AEC1" | ephemeral X25519 public key (32) | nonce (12) | AES-256-GCM ciphertext + tag (16)

with ``key = HKDF-SHA256(ikm=X25519(ephemeral, recipient), salt=ephemeral_pub || recipient_pub,
info=b"aileron-enclave-escrow-v1", length=32)`` and associated data ``b"AEC1" ||
canonical_json(scope)``. A fresh ephemeral key per seal means the nonce never repeats under a
key. Changing any byte, truncating, opening with another key or with another scope (another
binding, another host list, another credential kind) fails with ``SealError``.

A **scope** is ``{binding, hosts, kind, name}``: the binding the secret belongs to, the only
``host[:port]`` entries the enclave may send it to, and how it travels (SPEC §7 credential
kinds). Hosts are normalized (lowercase, sorted, distinct) so the associated data is stable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any, cast

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from aileron_core.actions import BINDING_PATTERN
from aileron_core.canonical import canonical_json
from aileron_core.connectors import CREDENTIAL_KINDS, NAME_PATTERN, CredentialKind, host_problem
from aileron_core.convert import converter
from aileron_core.credentials import HEADER_NAME_PATTERN
from aileron_core.enclave.encoding import EnclaveProtocolError

__all__ = [
    "MAGIC",
    "MAX_HOSTS",
    "MAX_SECRET_BYTES",
    "Scope",
    "ScopeError",
    "SealError",
    "open_credential",
    "raw_public_key",
    "seal_credential",
]

MAGIC = b"AEC1"
MAX_HOSTS = 64
MAX_SECRET_BYTES = 1 << 16
_INFO = b"aileron-enclave-escrow-v1"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEADER_BYTES = len(MAGIC) + _KEY_BYTES + _NONCE_BYTES
_BINDING = re.compile(BINDING_PATTERN)
_NAME = re.compile(NAME_PATTERN)
_HEADER_NAME = re.compile(HEADER_NAME_PATTERN)
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class SealError(EnclaveProtocolError):
    """A sealed credential is malformed, tampered with, or sealed to another key or scope."""

    code = "sealed_credential_invalid"


class ScopeError(EnclaveProtocolError):
    """A scope breaks a rule (binding name, hosts, credential kind and name)."""

    code = "invalid_scope"


def _hosts(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({str(host).lower() for host in value}))


@attrs.frozen(kw_only=True)
class Scope:
    """Where and how one escrowed secret may be used."""

    binding: str
    hosts: tuple[str, ...] = attrs.field(converter=_hosts)
    kind: CredentialKind
    name: str | None = None

    def __attrs_post_init__(self) -> None:
        problem = _scope_problem(self)
        if problem:
            raise ScopeError(f"invalid scope: {problem}", details={"problem": problem})

    def to_json(self) -> dict[str, Any]:
        """The scope as JSON data (hosts as a list)."""
        return {
            "binding": self.binding,
            "hosts": list(self.hosts),
            "kind": self.kind,
            "name": self.name,
        }

    @classmethod
    def from_json(cls, data: object) -> Scope:
        """Parse a scope; ``ScopeError`` for anything but a valid one."""
        if not isinstance(data, dict):
            raise ScopeError("invalid scope: expected a JSON object")
        unknown = set(data) - {"binding", "hosts", "kind", "name"}
        if unknown or not {"binding", "hosts", "kind"} <= set(data):
            raise ScopeError(
                "invalid scope: the keys are binding, hosts, kind and optionally name",
                details={"keys": sorted(map(str, data))},
            )
        hosts = data["hosts"]
        if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
            raise ScopeError("invalid scope: hosts must be a list of host[:port] strings")
        binding, kind, name = data["binding"], data["kind"], data.get("name")
        if not isinstance(binding, str) or not isinstance(kind, str):
            raise ScopeError("invalid scope: binding and kind must be strings")
        if kind not in CREDENTIAL_KINDS:
            raise ScopeError(f"invalid scope: kind must be one of {', '.join(CREDENTIAL_KINDS)}")
        if name is not None and not isinstance(name, str):
            raise ScopeError("invalid scope: name must be a string or null")
        return cls(binding=binding, hosts=hosts, kind=cast(CredentialKind, kind), name=name)

    def associated_data(self) -> bytes:
        """The AEAD associated data that binds a sealed secret to this scope."""
        return MAGIC + canonical_json(self.to_json())


def _scope_problem(scope: Scope) -> str | None:
    if not _BINDING.fullmatch(scope.binding):
        return f"binding {scope.binding!r} is not <kind>/<service>/<identity>"
    if not scope.hosts:
        return "hosts must name at least one host"
    if len(scope.hosts) > MAX_HOSTS:
        return f"at most {MAX_HOSTS} hosts"
    for host in scope.hosts:
        problem = host_problem(host)
        if problem:
            return f"host {host!r}: {problem}"
    if scope.kind not in CREDENTIAL_KINDS:
        return f"kind must be one of {', '.join(CREDENTIAL_KINDS)}"
    if scope.kind in ("bearer", "basic"):
        return None if scope.name is None else f"kind {scope.kind!r} takes no name"
    if scope.name is None:
        return f"kind {scope.kind!r} needs the name of its header or query parameter"
    if scope.kind == "header":
        if not _HEADER_NAME.fullmatch(scope.name) or scope.name.lower() in _RESERVED_HEADERS:
            return f"{scope.name!r} cannot carry a credential header"
    elif not _NAME.fullmatch(scope.name):
        return f"{scope.name!r} is not a query parameter name"
    return None


def raw_public_key(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    """The 32 raw bytes of an X25519 public key (of a private key's public half)."""
    public = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _derive(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_INFO)
    return hkdf.derive(shared)


def seal_credential(secret: bytes, scope: Scope, recipient: bytes) -> bytes:
    """Seal ``secret`` to the X25519 public key ``recipient`` (32 raw bytes) for ``scope``."""
    if not 0 < len(secret) <= MAX_SECRET_BYTES:
        raise SealError(f"a sealed secret holds 1 to {MAX_SECRET_BYTES} bytes")
    if len(recipient) != _KEY_BYTES:
        raise SealError("the recipient's X25519 public key must be 32 bytes")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = raw_public_key(ephemeral)
    try:
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    except ValueError:
        raise SealError("the recipient's X25519 public key is not usable") from None
    key = _derive(shared, ephemeral_public, recipient)
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, secret, scope.associated_data())
    return MAGIC + ephemeral_public + nonce + ciphertext


def open_credential(sealed: bytes, scope: Scope, key: X25519PrivateKey) -> bytes:
    """Open what :func:`seal_credential` sealed to ``key`` for ``scope``; ``SealError`` if not."""
    if len(sealed) <= _HEADER_BYTES + _TAG_BYTES or not sealed.startswith(MAGIC):
        raise SealError("not a sealed credential (wrong magic or too short)")
    ephemeral_public = sealed[len(MAGIC) : len(MAGIC) + _KEY_BYTES]
    nonce = sealed[len(MAGIC) + _KEY_BYTES : _HEADER_BYTES]
    try:
        shared = key.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    except ValueError:  # a low-order point gives an all-zero shared secret
        raise SealError("the sealed credential's ephemeral key is not usable") from None
    derived = _derive(shared, ephemeral_public, raw_public_key(key))
    try:
        return AESGCM(derived).decrypt(nonce, sealed[_HEADER_BYTES:], scope.associated_data())
    except InvalidTag:
        raise SealError(
            "the sealed credential does not open: it was changed, or sealed to another key or"
            " for another scope",
            hint="escrow the binding again",
        ) from None


# Scopes travel as their JSON form (hosts as a list) wherever the shared converter is used.
converter.register_unstructure_hook(Scope, Scope.to_json)
converter.register_structure_hook(Scope, lambda data, _: Scope.from_json(data))
