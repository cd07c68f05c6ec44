"""The audit record and its hash chain: pure logic shared by the daemon and the CLI.

One record is one line of ``audit.jsonl``: the canonical JSON (see :mod:`aileron_core.canonical`)
of ``{seq, id, ts, type, actor, session_id, payload, prev, hash}`` followed by ``"\\n"``.
``hash`` is the sha256 of the canonical JSON of the record without ``hash``; ``prev`` is the
``hash`` of the record before (64 zeros for the first); ``seq`` counts from 1 without gaps.

A line is only accepted when it is *exactly* the canonical encoding of a well-typed record whose
hash matches its content. Because the canonical encoding is a function of the value, any change
to any byte of a line is caught: it breaks the JSON, or it re-encodes differently, or it changes
the content under the hash. What a chain cannot catch on its own is the loss of its *last*
records; the daemon's store checks its own tip for that (see ``AuditLog.verify``).

Errors::

    AileronError
    └── AuditError              audit_error
        ├── AuditCorruptError   audit_corrupt        a line is not an intact audit record
        └── AuditEventError     invalid_audit_event  an event cannot be recorded as given
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

import attrs

from aileron_core.canonical import canonical_json, canonical_sha256
from aileron_core.convert import converter
from aileron_core.errors import AileronError
from aileron_core.ids import new_ulid

GENESIS_PREV = "0" * 64
"""The ``prev`` of the first record of a chain."""

MAX_PAYLOAD_BYTES = 1 << 20
"""Largest canonical payload one record may carry; every record is fsynced, so keep them small."""

ActorType = Literal["agent", "human", "service"]
ACTOR_TYPES: tuple[str, ...] = get_args(ActorType)

_HEX = frozenset("0123456789abcdef")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AuditError(AileronError):
    """Something about the audit log is wrong."""

    code = "audit_error"


class AuditCorruptError(AuditError):
    """A stored line is not an intact audit record (torn, edited, or not one at all)."""

    code = "audit_corrupt"


class AuditEventError(AuditError):
    """An event handed to the audit log cannot be recorded as given (a bug in the caller)."""

    code = "invalid_audit_event"


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise AuditEventError(f"audit {name} must be a non-empty string, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise AuditEventError(f"audit {name} is not encodable as UTF-8") from exc


def _validate_text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_text(attribute.name, value)


def _validate_optional_text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _check_text(attribute.name, value)


def _validate_actor_type(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if value not in ACTOR_TYPES:
        raise AuditEventError(f"actor type must be one of {', '.join(ACTOR_TYPES)}, got {value!r}")


def _validate_actor(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Actor):
        raise AuditEventError(f"audit actor must be an Actor, got {type(value).__name__}")


def _validate_hash(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or len(value) != 64 or not _HEX.issuperset(value):
        raise AuditEventError(f"audit {attribute.name} must be 64 lowercase hex digits")


def _validate_seq(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise AuditEventError(f"audit seq must be an integer >= 1, got {value!r}")


def _validate_ts(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, datetime) or value.utcoffset() != timedelta(0):
        raise AuditEventError(f"audit ts must be a UTC datetime, got {value!r}")


def _normalize_payload(value: object) -> dict[str, Any]:
    """Return a private, JSON-shaped copy of ``value`` (what a reader will get back)."""
    if not isinstance(value, Mapping):
        raise AuditEventError(f"audit payload must be a mapping, got {type(value).__name__}")
    try:
        encoded = canonical_json(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise AuditEventError(f"audit payload is not plain JSON: {exc}") from exc
    if len(encoded) > MAX_PAYLOAD_BYTES:
        raise AuditEventError(
            f"audit payload is {len(encoded)} bytes; the limit is {MAX_PAYLOAD_BYTES}",
            hint="record a digest or a reference instead of the content",
        )
    normalized: dict[str, Any] = json.loads(encoded)
    return normalized


@attrs.frozen
class Actor:
    """Who caused an event: an agent (by session), a human (the user) or a service."""

    type: ActorType = attrs.field(validator=_validate_actor_type)
    id: str = attrs.field(validator=_validate_text)


@attrs.frozen
class AuditEvent:
    """An event before it has a place in the chain; building one validates and copies it."""

    type: str = attrs.field(validator=_validate_text)
    actor: Actor = attrs.field(validator=_validate_actor)
    session_id: str | None = attrs.field(default=None, validator=_validate_optional_text)
    payload: dict[str, Any] = attrs.field(factory=dict, converter=_normalize_payload)


@attrs.frozen
class AuditRecord:
    """One sealed line of the audit log. Treat ``payload`` as read-only."""

    seq: int = attrs.field(validator=_validate_seq)
    id: str = attrs.field(validator=_validate_text)
    ts: datetime = attrs.field(validator=_validate_ts)
    type: str = attrs.field(validator=_validate_text)
    actor: Actor
    session_id: str | None = attrs.field(validator=_validate_optional_text)
    payload: dict[str, Any]
    prev: str = attrs.field(validator=_validate_hash)
    hash: str = attrs.field(validator=_validate_hash)


RECORD_FIELDS = frozenset(field.name for field in attrs.fields(AuditRecord))
"""The keys of every line of the log."""


@attrs.frozen
class VerifyReport:
    """The result of re-walking a chain.

    ``records`` counts the records that verified before the first bad one (all of them when
    ``ok``); ``last_hash`` is the hash of the last of those (``GENESIS_PREV`` if none).
    ``first_bad_seq`` names the first bad record: its own seq when the record is intact but out
    of place (a record missing before it, or reordered), otherwise the seq that belonged at that
    position. ``first_bad_line`` is its 1-based line number.
    """

    ok: bool
    records: int
    first_bad_seq: int | None
    first_bad_line: int | None
    reason: str | None
    last_hash: str


def new_audit_id(ts: datetime | None = None) -> str:
    """``aud_`` + a ULID whose time part is ``ts`` (default now): sortable by time."""
    moment = (ts or datetime.now(UTC)) - _EPOCH
    return "aud_" + new_ulid(moment // timedelta(milliseconds=1))


def record_hash(record: AuditRecord) -> str:
    """The sha256 hex of the canonical JSON of ``record`` without its ``hash`` field."""
    body = converter.unstructure(record)
    del body["hash"]
    return canonical_sha256(body)


def seal_line(
    event: AuditEvent,
    *,
    seq: int,
    prev: str,
    ts: datetime | None = None,
    id: str | None = None,  # the record field is called id
) -> tuple[AuditRecord, bytes]:
    """Place ``event`` in a chain at ``seq`` after ``prev``; return the record and its line."""
    moment = (ts or datetime.now(UTC)).astimezone(UTC)
    record = AuditRecord(
        seq=seq,
        id=id or new_audit_id(moment),
        ts=moment,
        type=event.type,
        actor=event.actor,
        session_id=event.session_id,
        payload=event.payload,
        prev=prev,
        hash=GENESIS_PREV,
    )
    body = converter.unstructure(record)
    del body["hash"]
    digest = hashlib.sha256(canonical_json(body)).hexdigest()
    body["hash"] = digest
    return attrs.evolve(record, hash=digest), canonical_json(body) + b"\n"


def seal(
    event: AuditEvent,
    *,
    seq: int,
    prev: str,
    ts: datetime | None = None,
    id: str | None = None,  # the record field is called id
) -> AuditRecord:
    """Place ``event`` in a chain at ``seq`` after the record whose hash is ``prev``."""
    return seal_line(event, seq=seq, prev=prev, ts=ts, id=id)[0]


def encode_line(record: AuditRecord) -> bytes:
    """The exact bytes of ``record``'s line in ``audit.jsonl``, newline included."""
    return canonical_json(converter.unstructure(record)) + b"\n"


def _line_bytes(line: bytes | str) -> bytes:
    if isinstance(line, str):
        try:
            line = line.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise AuditCorruptError("line is not valid UTF-8") from exc
    return line[:-1] if line.endswith(b"\n") else line


def _is_text(value: object) -> bool:
    return type(value) is str and value != ""


_ACTOR_FIELDS = frozenset(("id", "type"))
_UTC_OFFSET = timedelta(0)


def _shape_problem(value: dict[str, Any]) -> str | None:
    """What is wrong with the fields of a decoded line, or ``None``: exactly the record's
    fields, each of exactly its JSON type (checked by hand: cattrs would coerce ``"1"`` to 1).
    Every record of a verify passes through here, so the checks are written out inline."""
    if value.keys() != RECORD_FIELDS:
        return "fields are not exactly " + ", ".join(sorted(RECORD_FIELDS))
    seq = value["seq"]
    if type(seq) is not int or seq < 1:
        return "seq is not an integer >= 1"
    record_id, record_type = value["id"], value["type"]
    if (
        type(record_id) is not str
        or not record_id
        or type(record_type) is not str
        or not record_type
    ):
        return "id or type is not a non-empty string"
    session_id = value["session_id"]
    if session_id is not None and (type(session_id) is not str or not session_id):
        return "session_id is neither null nor a non-empty string"
    actor = value["actor"]
    if (
        type(actor) is not dict
        or actor.keys() != _ACTOR_FIELDS
        or actor["type"] not in ACTOR_TYPES
        or not _is_text(actor["id"])
    ):
        return "actor is not {type: agent|human|service, id}"
    if type(value["payload"]) is not dict:
        return "payload is not an object"
    for name in ("prev", "hash"):
        digest = value[name]
        if type(digest) is not str or len(digest) != 64 or not _HEX.issuperset(digest):
            return f"{name} is not 64 lowercase hex digits"
    ts = value["ts"]
    try:
        moment = datetime.fromisoformat(ts) if type(ts) is str else None
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() != _UTC_OFFSET or moment.isoformat() != ts:
        return "ts is not an ISO 8601 UTC timestamp as the log writes it"
    return None


# ``json.dumps`` with the options of :func:`aileron_core.canonical.canonical_json` builds exactly
# this encoder on every call; building it once gives the same text for less. Verifying a long
# log is mostly this check, so it avoids every per-call wrapper it can (see check_line).
_CANONICAL_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_DECODER = json.JSONDecoder()


def check_line(line: bytes | str) -> dict[str, Any]:
    """Check that ``line`` (with or without its newline) is an intact record; return its JSON.

    Intact means: UTF-8 JSON; exactly the record's fields with their types; exactly the
    canonical encoding of that value; and ``hash`` matching the content. Raises
    :class:`AuditCorruptError`, and nothing else, for any other input.
    """
    raw = _line_bytes(line)
    if not raw:
        raise AuditCorruptError("empty line")
    try:
        text = raw.decode("utf-8")
        # ``raw_decode`` is ``json.loads`` without the white space it allows around the value;
        # white space is never canonical, so the comparison below rejects it either way.
        value, end = _DECODER.raw_decode(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise AuditCorruptError(f"line is not UTF-8 JSON: {exc}") from None
    if type(value) is not dict:
        raise AuditCorruptError("line is not a JSON object")
    problem = _shape_problem(value)
    if problem is not None:
        raise AuditCorruptError(f"line is not an audit record: {problem}")
    try:
        canonical = _CANONICAL_ENCODER.encode(value)
    except (ValueError, RecursionError) as exc:  # NaN, very deep nesting
        raise AuditCorruptError(f"line holds a value JSON cannot carry: {exc}") from None
    # Compared as text: ``text`` is valid UTF-8, so a value holding a lone surrogate (which
    # UTF-8 cannot carry) never equals it.
    if end != len(text) or canonical != text:
        raise AuditCorruptError("line is not the canonical encoding of its record")
    # ``raw`` is canonical, so the record without ``hash`` encodes to ``raw`` minus the bytes
    # ``,"hash":"<hex>"``. Those bytes occur exactly once: keys are sorted, so ``hash`` follows
    # ``actor`` (whose only keys are ``id`` and ``type``), and quotes inside strings are escaped.
    digest: str = value["hash"]
    body = raw.replace(b',"hash":"' + digest.encode("ascii") + b'"', b"", 1)
    if hashlib.sha256(body).hexdigest() != digest:
        raise AuditCorruptError(f"hash of record seq {value['seq']} does not match its content")
    return value


_HASH_MEMBER = b',"hash":"'
_ID_MEMBER = b',"id":"'
_PREV_MEMBER = b',"prev":"'
_SEQ_AFTER_PREV = b'","seq":'
_SESSION_MEMBER = b',"session_id":'
_TYPE_MEMBER = b',"type":"'


def hashed_fields(line: bytes) -> tuple[int, str, str, bytes] | None:
    """``(seq, prev, hash, type)`` of a line whose ``hash`` is the sha256 of the line without
    it, read from the bytes without a JSON parse; ``None`` if the line is not laid out so.

    This is NOT a check that the line is an intact record: it proves nothing on its own. What
    it gives is this: the hash member is taken to sit right before the line's first
    ``,"id":"`` (where a canonical line has it), so the line is a function of the bytes the
    hash covers plus the hash. A line that passes, and whose hash is proven right by other
    means (a signed head over a chain of such lines, as in :mod:`aileron_core.audit_verify`),
    is therefore byte for byte the line that was hashed (anything else is a sha256 collision).

    On a canonical line the fields read are exactly the record's: keys are sorted (actor, hash,
    id, payload, prev, seq, session_id, ts, type), and ``,"`` never occurs inside a JSON
    string (its quote would be escaped), so the top-level ``prev`` and ``type`` members are
    the last ``,"prev":"`` and ``,"type":"`` of the line. ``type`` is its raw UTF-8 bytes;
    a type holding an escape gives ``None`` (let :func:`check_line` read it).
    """
    raw = line[:-1] if line[-1:] == b"\n" else line
    at = raw.find(_ID_MEMBER)
    if at < 74 or raw[at - 74 : at - 65] != _HASH_MEMBER or raw[at - 1 : at] != b'"':
        return None
    digest = hashlib.sha256(raw[: at - 74] + raw[at:]).hexdigest()
    if raw[at - 65 : at - 1] != digest.encode("ascii"):
        return None
    prev_at = raw.rfind(_PREV_MEMBER)
    if prev_at < 0 or raw[prev_at + 73 : prev_at + 81] != _SEQ_AFTER_PREV:
        return None
    seq_end = raw.find(_SESSION_MEMBER, prev_at + 81)
    seq_text = raw[prev_at + 81 : seq_end]
    if seq_end < 0 or len(seq_text) > 18 or not seq_text.isdigit():  # int() caps long text
        return None
    type_at = raw.rfind(_TYPE_MEMBER)
    if type_at < 0 or raw[-2:] != b'"}':
        return None
    kind = raw[type_at + 9 : -2]
    if b"\\" in kind or b'"' in kind:
        return None
    prev = raw[prev_at + 9 : prev_at + 73].decode("latin-1")
    return int(seq_text), prev, digest, kind


def parse_line(line: bytes | str) -> AuditRecord:
    """Parse one line (with or without its newline) into an intact record.

    Raises :class:`AuditCorruptError`, and nothing else, for anything :func:`check_line`
    rejects.
    """
    value = check_line(line)
    try:
        return converter.structure(value, AuditRecord)
    except Exception as exc:  # unreachable after check_line; kept so the contract holds
        raise AuditCorruptError(f"line is not a well-formed audit record: {exc}") from None


class ChainVerifier:
    """Walk a chain one line at a time, remembering where it first breaks.

    :meth:`feed` keeps parsing after a break, so a store can index every readable record in
    the same pass that verifies the chain.
    """

    def __init__(self, *, seq: int = 1, prev: str = GENESIS_PREV) -> None:
        """Expect the record ``seq`` after the record whose hash is ``prev`` (the start of a
        chain by default; a later point when checking a range cut out of a chain)."""
        self._line = 0
        self._verified = 0
        self._expected_seq = seq
        self._last_hash = prev
        self._bad_seq: int | None = None
        self._bad_line: int | None = None
        self._reason: str | None = None

    @property
    def broken(self) -> bool:
        """Whether a bad record has been seen."""
        return self._reason is not None

    def feed(self, line: bytes | str) -> dict[str, Any] | None:
        """Check the next line; return its record's JSON (see :func:`check_line`) if the line
        is an intact record, even after a break; ``None`` if it is not."""
        self._line += 1
        try:
            value = check_line(line)
        except AuditCorruptError as exc:
            self._fail(self._expected_seq, exc.message)
            return None
        if self.broken:
            return value
        seq: int = value["seq"]
        if seq != self._expected_seq:
            self._fail(
                seq,
                f"record seq {seq} found where seq {self._expected_seq} belongs "
                "(a record is missing or out of order)",
            )
        elif value["prev"] != self._last_hash:
            self._fail(seq, f"record seq {seq} does not link to the record before")
        else:
            self._verified += 1
            self._expected_seq += 1
            self._last_hash = value["hash"]
        return value

    def vouch(self, count: int, last_hash: str) -> None:
        """Count the next ``count`` lines as verified, the last one's hash being ``last_hash``,
        without reading them: for a caller that has proven them intact by other means (a signed
        head over them, see :func:`hashed_fields`). Nothing to vouch for after a break."""
        if self.broken:
            raise AuditError("cannot vouch for records after a broken chain")
        self._line += count
        self._verified += count
        self._expected_seq += count
        self._last_hash = last_hash

    def _fail(self, seq: int, reason: str) -> None:
        if not self.broken:
            self._bad_seq, self._bad_line, self._reason = seq, self._line, reason

    def report(self) -> VerifyReport:
        """The verdict on everything fed so far."""
        return VerifyReport(
            ok=not self.broken,
            records=self._verified,
            first_bad_seq=self._bad_seq,
            first_bad_line=self._bad_line,
            reason=self._reason,
            last_hash=self._last_hash,
        )


def verify(lines: Iterable[bytes | str]) -> VerifyReport:
    """Re-walk a chain given as lines (a file opened ``"rb"`` will do); stop at the first break."""
    verifier = ChainVerifier()
    for line in lines:
        verifier.feed(line)
        if verifier.broken:
            break
    return verifier.report()


__all__ = [
    "ACTOR_TYPES",
    "GENESIS_PREV",
    "MAX_PAYLOAD_BYTES",
    "Actor",
    "ActorType",
    "AuditCorruptError",
    "AuditError",
    "AuditEvent",
    "AuditEventError",
    "AuditRecord",
    "ChainVerifier",
    "RECORD_FIELDS",
    "VerifyReport",
    "check_line",
    "encode_line",
    "hashed_fields",
    "new_audit_id",
    "parse_line",
    "record_hash",
    "seal",
    "seal_line",
    "verify",
]
