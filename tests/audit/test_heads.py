"""Signed heads and witness marks: signing, strict parsing, signature and key checks (pure)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from aileron_core.audit import GENESIS_PREV, AuditError
from aileron_core.audit_heads import (
    HEAD_REASONS,
    HeadError,
    head_digest,
    head_signature_ok,
    key_id,
    parse_head,
    parse_witness,
    sign_head,
    sign_witness,
    witness_signature_ok,
)
from aileron_core.canonical import canonical_json

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
VAULT_ID = "ab" * 16
HASH = "cd" * 32


def raw(key: Ed25519PrivateKey) -> bytes:
    """Raw public bytes of ``key``."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def a_head(**overrides: object) -> bytes:
    """One valid head line, fields overridable."""
    fields: dict[str, object] = {
        "n": 1,
        "seq": 5,
        "hash": HASH,
        "vault_id": VAULT_ID,
        "generation": 3,
        "reason": "unlock",
        "prev": GENESIS_PREV,
    }
    fields.update(overrides)
    return sign_head(KEY, **fields)[1]  # type: ignore[arg-type]


def test_signed_head_round_trips_and_verifies() -> None:
    """A signed head parses back to itself, names its key, and verifies under that key only."""
    head, line = sign_head(
        KEY,
        n=2,
        seq=9,
        hash=HASH,
        vault_id=VAULT_ID,
        generation=4,
        reason="periodic",
        prev="11" * 32,
    )
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse_head(line) == head
    assert parse_head(line.decode()) == head
    assert head.key == key_id(raw(KEY))
    assert head_signature_ok(head, raw(KEY))
    assert not head_signature_ok(head, raw(OTHER))
    assert head_digest(line) == head_digest(line[:-1])
    assert json.loads(line)["ts"].endswith("+00:00")


def test_head_error_code() -> None:
    """HeadError is an AuditError with the stable code audit_head_invalid."""
    assert issubclass(HeadError, AuditError)
    assert HeadError.code == "audit_head_invalid"


@pytest.mark.parametrize("reason", HEAD_REASONS)
def test_every_reason_signs(reason: str) -> None:
    """Every declared reason is accepted."""
    assert parse_head(a_head(reason=reason)).reason == reason


@pytest.mark.parametrize(
    "overrides",
    [
        {"n": 0},
        {"seq": -1},
        {"generation": -1},
        {"hash": "AB" * 32},
        {"prev": "0" * 63},
        {"vault_id": "ab" * 17},
        {"reason": "whim"},
    ],
)
def test_sign_head_refuses_bad_fields(overrides: dict[str, object]) -> None:
    """sign_head refuses fields a verifier would reject."""
    with pytest.raises(HeadError):
        a_head(**overrides)


def _edited(line: bytes, **changes: object) -> bytes:
    value = json.loads(line)
    value.update(changes)
    return canonical_json(value) + b"\n"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda v: v.update(n=True),
        lambda v: v.update(n=1.0),
        lambda v: v.update(seq="5"),
        lambda v: v.update(generation=None),
        lambda v: v.update(extra=1),
        lambda v: v.pop("ts"),
        lambda v: v.update(ts="2026-01-01T00:00:00Z"),
        lambda v: v.update(ts="2026-01-01T01:00:00+01:00"),
        lambda v: v.update(sig="!!"),
        lambda v: v.update(sig=base64.b64encode(b"x" * 63).decode()),
        lambda v: v.update(reason=["unlock"]),
        lambda v: v.update(key=1),
    ],
)
def test_parse_head_rejects_ill_typed_values(mutate: object) -> None:
    """parse_head rejects any value that is not exactly a well-typed head."""
    value = json.loads(a_head())
    mutate(value)  # type: ignore[operator]
    with pytest.raises(HeadError):
        parse_head(canonical_json(value))


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"\n",
        b"[]",
        b"not json",
        b"\xff\xfe",
    ],
)
def test_parse_head_rejects_non_objects(line: bytes) -> None:
    """parse_head rejects lines that are not a JSON object."""
    with pytest.raises(HeadError):
        parse_head(line)


def test_parse_head_rejects_non_canonical_encoding() -> None:
    """A head re-encoded with spaces or another key order is not accepted."""
    value = json.loads(a_head())
    with pytest.raises(HeadError):
        parse_head(json.dumps(value).encode())
    with pytest.raises(HeadError):
        parse_head(a_head().rstrip(b"\n") + b" ")


def test_edited_head_fails_signature() -> None:
    """Changing any signed field of a head makes its signature fail."""
    line = a_head()
    for change in ({"seq": 6}, {"hash": "ee" * 32}, {"generation": 2}, {"n": 2}):
        assert not head_signature_ok(parse_head(_edited(line, **change)), raw(KEY))


@settings(deadline=None, max_examples=60)
@given(line=st.binary(max_size=300))
def test_parse_head_raises_only_head_error(line: bytes) -> None:
    """Arbitrary bytes either parse as a head or raise HeadError, nothing else."""
    try:
        parse_head(line)
    except HeadError:
        pass


@settings(deadline=None, max_examples=60)
@given(
    n=st.integers(1, 10**9),
    seq=st.integers(0, 10**12),
    generation=st.integers(0, 10**6),
    reason=st.sampled_from(HEAD_REASONS),
    ts=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_head_round_trip_property(
    n: int, seq: int, generation: int, reason: str, ts: datetime
) -> None:
    """Any well-typed head signs, parses back equal, and verifies."""
    head, line = sign_head(
        KEY,
        n=n,
        seq=seq,
        hash=HASH,
        vault_id=VAULT_ID,
        generation=generation,
        reason=reason,
        prev=GENESIS_PREV,
        ts=ts,
    )
    assert parse_head(line) == head
    assert head_signature_ok(head, raw(KEY))


def test_witness_round_trip_and_signature() -> None:
    """A witness mark parses back, verifies under the witness key only, and binds n and digest."""
    digest = head_digest(a_head())
    mark, line = sign_witness(
        OTHER,
        vault_id=VAULT_ID,
        n=1,
        digest=digest,
        ts=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=1),
    )
    assert parse_witness(line) == mark
    assert mark.key == key_id(raw(OTHER))
    assert witness_signature_ok(mark, raw(OTHER))
    assert not witness_signature_ok(mark, raw(KEY))
    assert not witness_signature_ok(parse_witness(_edited(line, n=2)), raw(OTHER))
    assert not witness_signature_ok(parse_witness(_edited(line, digest="00" * 32)), raw(OTHER))
    with pytest.raises(HeadError):
        parse_witness(_edited(line, n=0))
    with pytest.raises(HeadError):
        parse_witness(json.dumps(json.loads(line)).encode())
