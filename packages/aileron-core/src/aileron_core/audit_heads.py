"""Signed heads and witness marks: what makes the audit log prove it is *complete*.

A hash chain catches any edit, but not the loss of its last records. So the daemon signs a
*head* — ``(n, seq, hash)`` of the newest record, plus the vault's id and generation — with the
vault's Ed25519 audit key, and appends it to ``audit.heads.jsonl``. Heads link to each other
(``prev`` is the digest of the head line before), so removing or editing one is caught as well.
A verifier then needs only the public key: every record up to the last head's ``seq`` must be
there with exactly the signed hash.

One head is one line: the canonical JSON (:mod:`aileron_core.canonical`) of
``{generation, hash, key, n, prev, reason, seq, sig, ts, vault_id}`` followed by ``"\\n"``;
``sig`` signs ``b"aileron-audit-head/v1\\n"`` + the canonical JSON of the head without ``sig``.

A *witness mark* is the enclave's countersignature of one head (``audit.witness.jsonl``):
``{digest, key, n, sig, ts, vault_id}``, ``sig`` over ``b"aileron-audit-witness/v1\\n"`` + the
canonical JSON of ``{digest, n, vault_id}``.

Parsing is strict, like :func:`aileron_core.audit.check_line`: a line is accepted only when it
is exactly the canonical encoding of a value with exactly the right fields and types.

Errors::

    AuditError              audit_error
    └── HeadError           audit_head_invalid   a head or witness line is not well formed
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aileron_core.audit import GENESIS_PREV, AuditError
from aileron_core.canonical import canonical_json
from aileron_core.convert import converter

HEAD_REASONS: tuple[str, ...] = ("unlock", "periodic", "decision", "lock", "stop", "restore")
"""Why the daemon signed a head."""

SIGNED_TYPES: tuple[str, ...] = (
    "vault.initialized",
    "vault.unlocked",
    "vault.locked",
    "vault.restore_accepted",
    "approval.approved",
    "approval.denied",
)
"""Record types the daemon always covers with a head before it answers."""

HEAD_CONTEXT = b"aileron-audit-head/v1\n"
WITNESS_CONTEXT = b"aileron-audit-witness/v1\n"

_HEX = frozenset("0123456789abcdef")
_SIG_BYTES = 64


class HeadError(AuditError):
    """A head or witness line is not exactly a well-formed, canonical one."""

    code = "audit_head_invalid"


def key_id(public_key: bytes) -> str:
    """The sha256 hex of a raw 32-byte Ed25519 public key: how heads name their key."""
    return hashlib.sha256(public_key).hexdigest()


def head_digest(line: bytes) -> str:
    """The sha256 hex of a head (or any) line without its trailing newline."""
    return hashlib.sha256(line[:-1] if line.endswith(b"\n") else line).hexdigest()


def _raw_public(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class Head:
    """One signed head of the audit log."""

    generation: int
    hash: str
    key: str
    n: int
    prev: str
    reason: str
    seq: int
    sig: str
    ts: datetime
    vault_id: str

    def unsigned(self) -> dict[str, Any]:
        """The JSON value the signature covers (the head without ``sig``)."""
        body: dict[str, Any] = converter.unstructure(self)
        del body["sig"]
        return body

    def line(self) -> bytes:
        """The exact bytes of this head's line, newline included."""
        return canonical_json(converter.unstructure(self)) + b"\n"


@attrs.frozen
class WitnessMark:
    """The enclave's countersignature of one head."""

    digest: str
    key: str
    n: int
    sig: str
    ts: datetime
    vault_id: str

    def line(self) -> bytes:
        """The exact bytes of this mark's line, newline included."""
        return canonical_json(converter.unstructure(self)) + b"\n"


def head_message(body: dict[str, Any]) -> bytes:
    """The bytes a head signature covers, given the head without ``sig``."""
    return HEAD_CONTEXT + canonical_json(body)


def witness_message(*, vault_id: str, n: int, digest: str) -> bytes:
    """The bytes a witness signature covers."""
    return WITNESS_CONTEXT + canonical_json({"digest": digest, "n": n, "vault_id": vault_id})


def _sign(private_key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(private_key.sign(message)).decode("ascii")


def _signature_ok(sig: str, message: bytes, public_key: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(base64.b64decode(sig), message)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def sign_head(
    private_key: Ed25519PrivateKey,
    *,
    n: int,
    seq: int,
    hash: str,  # the head field is called hash
    vault_id: str,
    generation: int,
    reason: str,
    prev: str,
    ts: datetime | None = None,
) -> tuple[Head, bytes]:
    """Sign a head and return it with its line; the line always parses back to it."""
    head = Head(
        generation=generation,
        hash=hash,
        key=key_id(_raw_public(private_key)),
        n=n,
        prev=prev,
        reason=reason,
        seq=seq,
        sig="",
        ts=(ts or _now()).astimezone(UTC),
        vault_id=vault_id,
    )
    head = attrs.evolve(head, sig=_sign(private_key, head_message(head.unsigned())))
    line = head.line()
    parse_head(line)  # a caller passing a bad field learns it here, not at verify time
    return head, line


def head_signature_ok(head: Head, public_key: bytes) -> bool:
    """Whether ``head.sig`` is ``public_key``'s signature of the head (key id not checked)."""
    return _signature_ok(head.sig, head_message(head.unsigned()), public_key)


def sign_witness(
    private_key: Ed25519PrivateKey,
    *,
    vault_id: str,
    n: int,
    digest: str,
    ts: datetime | None = None,
) -> tuple[WitnessMark, bytes]:
    """Countersign the head ``n`` whose line digest is ``digest``; return the mark and its line."""
    mark = WitnessMark(
        digest=digest,
        key=key_id(_raw_public(private_key)),
        n=n,
        sig=_sign(private_key, witness_message(vault_id=vault_id, n=n, digest=digest)),
        ts=(ts or _now()).astimezone(UTC),
        vault_id=vault_id,
    )
    line = mark.line()
    parse_witness(line)
    return mark, line


def witness_signature_ok(mark: WitnessMark, public_key: bytes) -> bool:
    """Whether ``mark.sig`` is ``public_key``'s signature of the mark."""
    message = witness_message(vault_id=mark.vault_id, n=mark.n, digest=mark.digest)
    return _signature_ok(mark.sig, message, public_key)


# --- strict parsing ---------------------------------------------------------------------------


def _is_hex(value: object, length: int) -> bool:
    return type(value) is str and len(value) == length and _HEX.issuperset(value)


def _is_int(value: object, minimum: int) -> bool:
    return type(value) is int and value >= minimum


def _is_sig(value: object) -> bool:
    if type(value) is not str:
        return False
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == _SIG_BYTES and base64.b64encode(raw).decode("ascii") == value


def _ts_ok(value: object) -> bool:
    if type(value) is not str:
        return False
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return False
    return moment.utcoffset() == timedelta(0) and moment.isoformat() == value


def _decode(line: bytes | str, what: str) -> tuple[dict[str, Any], bytes]:
    if isinstance(line, str):
        try:
            line = line.encode("utf-8")
        except UnicodeEncodeError:
            raise HeadError(f"{what} line is not valid UTF-8") from None
    raw = line[:-1] if line.endswith(b"\n") else line
    if not raw:
        raise HeadError(f"empty {what} line")
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise HeadError(f"{what} line is not UTF-8 JSON: {exc}") from None
    if type(value) is not dict:
        raise HeadError(f"{what} line is not a JSON object")
    return value, raw


def _require_canonical(value: dict[str, Any], raw: bytes, what: str) -> None:
    if canonical_json(value) != raw:
        raise HeadError(f"{what} line is not the canonical encoding of its value")


_HEAD_FIELDS = frozenset(field.name for field in attrs.fields(Head))
_WITNESS_FIELDS = frozenset(field.name for field in attrs.fields(WitnessMark))


def _head_problem(value: dict[str, Any]) -> str | None:
    if value.keys() != _HEAD_FIELDS:
        return "fields are not exactly " + ", ".join(sorted(_HEAD_FIELDS))
    if not _is_int(value["n"], 1):
        return "n is not an integer >= 1"
    if not _is_int(value["seq"], 0):
        return "seq is not an integer >= 0"
    if not _is_int(value["generation"], 0):
        return "generation is not an integer >= 0"
    for name in ("hash", "key", "prev"):
        if not _is_hex(value[name], 64):
            return f"{name} is not 64 lowercase hex digits"
    if not _is_hex(value["vault_id"], 32):
        return "vault_id is not 32 lowercase hex digits"
    if value["reason"] not in HEAD_REASONS or type(value["reason"]) is not str:
        return "reason is not one of " + ", ".join(HEAD_REASONS)
    if not _is_sig(value["sig"]):
        return "sig is not a base64 Ed25519 signature"
    if not _ts_ok(value["ts"]):
        return "ts is not an ISO 8601 UTC timestamp as the log writes it"
    return None


def parse_head(line: bytes | str) -> Head:
    """Parse one head line (with or without its newline); raise :class:`HeadError` unless it is
    exactly the canonical encoding of a well-typed head. The signature is not checked here."""
    value, raw = _decode(line, "head")
    problem = _head_problem(value)
    if problem is not None:
        raise HeadError(f"head line is not a head: {problem}")
    _require_canonical(value, raw, "head")
    return converter.structure(value, Head)


def parse_witness(line: bytes | str) -> WitnessMark:
    """Parse one witness line strictly, like :func:`parse_head`; the signature is not checked."""
    value, raw = _decode(line, "witness")
    if value.keys() != _WITNESS_FIELDS:
        problem: str | None = "fields are not exactly " + ", ".join(sorted(_WITNESS_FIELDS))
    elif not _is_int(value["n"], 1):
        problem = "n is not an integer >= 1"
    elif not (_is_hex(value["digest"], 64) and _is_hex(value["key"], 64)):
        problem = "digest or key is not 64 lowercase hex digits"
    elif not _is_hex(value["vault_id"], 32):
        problem = "vault_id is not 32 lowercase hex digits"
    elif not _is_sig(value["sig"]):
        problem = "sig is not a base64 Ed25519 signature"
    elif not _ts_ok(value["ts"]):
        problem = "ts is not an ISO 8601 UTC timestamp as the log writes it"
    else:
        problem = None
    if problem is not None:
        raise HeadError(f"witness line is not a witness mark: {problem}")
    _require_canonical(value, raw, "witness")
    return converter.structure(value, WitnessMark)


__all__ = [
    "GENESIS_PREV",
    "HEAD_CONTEXT",
    "HEAD_REASONS",
    "SIGNED_TYPES",
    "WITNESS_CONTEXT",
    "Head",
    "HeadError",
    "WitnessMark",
    "head_digest",
    "head_message",
    "head_signature_ok",
    "key_id",
    "parse_head",
    "parse_witness",
    "sign_head",
    "sign_witness",
    "witness_message",
    "witness_signature_ok",
]
