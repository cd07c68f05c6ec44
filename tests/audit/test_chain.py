"""The audit record format and hash chain: sealing, parsing and verifying (pure, no files)."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aileron_core.audit import (
    ACTOR_TYPES,
    GENESIS_PREV,
    MAX_PAYLOAD_BYTES,
    Actor,
    AuditCorruptError,
    AuditEvent,
    AuditEventError,
    AuditRecord,
    ChainVerifier,
    check_line,
    encode_line,
    new_audit_id,
    parse_line,
    record_hash,
    seal,
    seal_line,
    verify,
)
from aileron_core.canonical import canonical_json
from aileron_core.convert import converter

PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
payloads = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
actors = st.builds(Actor, type=st.sampled_from(ACTOR_TYPES), id=st.text(min_size=1, max_size=12))
events = st.builds(
    AuditEvent,
    type=st.text(min_size=1, max_size=16),
    actor=actors,
    session_id=st.none() | st.text(min_size=1, max_size=10),
    payload=payloads,
)
event_lists = st.lists(events, min_size=1, max_size=6)


def build_chain(chain_events: list[AuditEvent]) -> list[AuditRecord]:
    """Seal ``chain_events`` into a chain, one microsecond apart."""
    records: list[AuditRecord] = []
    prev, start = GENESIS_PREV, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for number, event in enumerate(chain_events, start=1):
        record = seal(event, seq=number, prev=prev, ts=start + timedelta(microseconds=number))
        records.append(record)
        prev = record.hash
    return records


def lines_of(records: list[AuditRecord]) -> list[bytes]:
    return [encode_line(record) for record in records]


def service_event(**payload: Any) -> AuditEvent:
    return AuditEvent(type="test.event", actor=Actor(type="service", id="t"), payload=payload)


@PROPERTY
@given(event_lists)
def test_a_sealed_chain_verifies_and_every_line_round_trips(chain_events: list[AuditEvent]) -> None:
    """Any sequence of events seals into a chain that verifies, and each line parses back equal."""
    records = build_chain(chain_events)
    report = verify(lines_of(records))
    assert report.ok and report.first_bad_seq is None and report.reason is None
    assert report.records == len(records)
    assert report.last_hash == records[-1].hash
    for record in records:
        assert parse_line(encode_line(record)) == record


@PROPERTY
@given(events, st.integers(1, 2**40))
def test_seal_line_gives_the_records_exact_line(event: AuditEvent, seq: int) -> None:
    """seal_line's bytes are encode_line of its record; check_line gives back the record's JSON."""
    record, line = seal_line(event, seq=seq, prev="ab" * 32)
    assert line == encode_line(record)
    assert check_line(line) == converter.unstructure(record)
    assert record.hash == record_hash(record)


@PROPERTY
@given(event_lists, st.data())
def test_any_single_byte_edit_names_the_edited_record(
    chain_events: list[AuditEvent], data: st.DataObject
) -> None:
    """Changing any one byte of the file (JSON kept or broken) fails verify at that record's seq."""
    lines = lines_of(build_chain(chain_events))
    blob = b"".join(lines)
    position = data.draw(st.integers(0, len(blob) - 1), label="position")
    new_byte = data.draw(st.integers(0, 255).filter(lambda b: b != blob[position]), label="byte")
    edited = blob[:position] + bytes([new_byte]) + blob[position + 1 :]
    edited_seq = next(
        number
        for number in range(1, len(lines) + 1)
        if position < sum(len(line) for line in lines[:number])
    )
    report = verify(io.BytesIO(edited))
    assert not report.ok
    assert report.first_bad_seq == edited_seq
    assert report.records == edited_seq - 1


@PROPERTY
@given(st.lists(events, min_size=2, max_size=6), st.data())
def test_deleting_a_record_names_the_seq_after_the_gap(
    chain_events: list[AuditEvent], data: st.DataObject
) -> None:
    """Removing any record but the last fails verify naming the seq of the record after the gap."""
    lines = lines_of(build_chain(chain_events))
    gone = data.draw(st.integers(0, len(lines) - 2), label="deleted index")
    report = verify(lines[:gone] + lines[gone + 1 :])
    assert not report.ok
    assert report.first_bad_seq == gone + 2
    assert report.first_bad_line == gone + 1


@PROPERTY
@given(st.lists(events, min_size=2, max_size=6), st.data())
def test_reordering_records_is_detected(
    chain_events: list[AuditEvent], data: st.DataObject
) -> None:
    """Swapping two records fails verify at the first one found out of place."""
    lines = lines_of(build_chain(chain_events))
    first = data.draw(st.integers(0, len(lines) - 2), label="first")
    second = data.draw(st.integers(first + 1, len(lines) - 1), label="second")
    lines[first], lines[second] = lines[second], lines[first]
    report = verify(lines)
    assert not report.ok
    assert report.first_bad_seq == second + 1
    assert report.first_bad_line == first + 1


@PROPERTY
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_parse_line_raises_only_audit_corrupt_on_arbitrary_input(line: bytes | str) -> None:
    """Arbitrary bytes or text never make parse_line raise anything but AuditCorruptError."""
    with pytest.raises(AuditCorruptError):
        parse_line(line)


record_keys = st.sampled_from(
    ["seq", "id", "ts", "type", "actor", "session_id", "payload", "prev", "hash", "extra"]
)


@PROPERTY
@given(
    st.dictionaries(record_keys | st.text(max_size=6), json_values, max_size=10),
    st.booleans(),
)
def test_parse_line_raises_only_audit_corrupt_on_arbitrary_json(
    value: dict[str, Any], canonical: bool
) -> None:
    """Arbitrary JSON objects, canonical or not, only ever raise AuditCorruptError."""
    line = canonical_json(value) if canonical else json.dumps(value, indent=1).encode()
    with pytest.raises(AuditCorruptError):
        parse_line(line)


RECORD_FIELDS = [field.name for field in attrs.fields(AuditRecord)]


@PROPERTY
@given(events, st.sampled_from(RECORD_FIELDS), json_values)
def test_a_field_replaced_by_any_other_value_is_rejected(
    event: AuditEvent, field: str, value: Any
) -> None:
    """Replacing one field of a valid record with a different JSON value is rejected."""
    body = converter.unstructure(build_chain([event])[0])
    if canonical_json(body[field]) == canonical_json(value):
        return
    body[field] = value
    with pytest.raises(AuditCorruptError):
        parse_line(canonical_json(body))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", "1"),
        ("seq", True),
        ("seq", 1.0),
        ("seq", 0),
        ("ts", "2026-01-02T03:04:05Z"),
        ("ts", "2026-01-02T03:04:05"),
        ("actor", {"type": "robot", "id": "x"}),
        ("actor", {"type": "service", "id": "x", "extra": 1}),
        ("session_id", 7),
        ("type", ""),
        ("payload", []),
        ("prev", "0" * 63),
        ("prev", "A" * 64),
    ],
)
def test_a_wrong_typed_field_is_rejected_even_with_a_matching_hash(field: str, value: Any) -> None:
    """A record whose hash was recomputed is still rejected when a field is of the wrong shape."""
    body = converter.unstructure(build_chain([service_event(a=1)])[0])
    body[field] = value
    del body["hash"]
    body["hash"] = hashlib.sha256(canonical_json(body)).hexdigest()
    with pytest.raises(AuditCorruptError):
        parse_line(canonical_json(body))


@PROPERTY
@given(st.lists(st.binary(max_size=120) | st.text(max_size=120), max_size=8))
def test_verify_never_raises_on_arbitrary_lines(lines: list[bytes | str]) -> None:
    """verify reports on any iterable of junk lines instead of raising."""
    report = verify(lines)
    assert report.ok is (len(lines) == 0)
    assert (report.first_bad_seq == 1) is (len(lines) > 0)


def test_record_hash_and_line_follow_the_spec() -> None:
    """hash is sha256 over canonical JSON without hash; the line is canonical JSON plus newline."""
    first, second = build_chain([service_event(n=1), service_event(n=2)])
    body = converter.unstructure(second)
    assert sorted(body) == sorted(RECORD_FIELDS)
    assert set(RECORD_FIELDS) == set("seq id ts type actor session_id payload prev hash".split())
    assert body["actor"] == {"type": "service", "id": "t"}
    del body["hash"]
    assert second.hash == hashlib.sha256(canonical_json(body)).hexdigest() == record_hash(second)
    assert first.prev == "0" * 64 and second.prev == first.hash
    assert encode_line(second) == canonical_json(converter.unstructure(second)) + b"\n"
    assert json.loads(encode_line(second))["ts"] == "2026-01-02T03:04:05.000002+00:00"


def test_verify_of_nothing_is_an_empty_valid_chain() -> None:
    """An empty log verifies with zero records and the genesis hash."""
    report = verify([])
    assert (report.ok, report.records, report.last_hash) == (True, 0, GENESIS_PREV)


def test_a_chain_not_starting_at_seq_one_is_reported() -> None:
    """A log whose first record is seq 2 is reported at seq 2 (record 1 is missing)."""
    record = seal(service_event(), seq=2, prev=GENESIS_PREV)
    report = verify([encode_line(record)])
    assert (report.ok, report.first_bad_seq) == (False, 2)


def test_a_wrong_prev_is_reported_at_that_record() -> None:
    """A record that is intact and in sequence but links to the wrong hash is named."""
    first = seal(service_event(), seq=1, prev=GENESIS_PREV)
    second = seal(service_event(), seq=2, prev="f" * 64)
    report = verify([encode_line(first), encode_line(second)])
    assert (report.ok, report.first_bad_seq, report.records) == (False, 2, 1)
    assert report.reason is not None and "link" in report.reason


def test_chain_verifier_keeps_parsing_after_a_break() -> None:
    """ChainVerifier.feed returns records after the first break but keeps the first verdict."""
    records = build_chain([service_event(n=n) for n in range(4)])
    lines = lines_of(records)
    verifier = ChainVerifier()
    fed = [verifier.feed(line) for line in [lines[0], b"garbage\n", lines[2], lines[3]]]
    assert fed == [converter.unstructure(records[n]) if n != 1 else None for n in range(4)]
    report = verifier.report()
    assert (report.ok, report.first_bad_seq, report.first_bad_line, report.records) == (
        False,
        2,
        2,
        1,
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"when": datetime.now(UTC)},
        {"x": float("nan")},
        {"x": {1, 2}},
        {"big": "x" * (MAX_PAYLOAD_BYTES + 1)},
        ["not", "a", "mapping"],
    ],
)
def test_an_event_with_a_non_json_payload_is_refused(payload: Any) -> None:
    """Building an event with a payload that is not plain, bounded JSON raises AuditEventError."""
    with pytest.raises(AuditEventError):
        AuditEvent(type="x", actor=Actor(type="human", id="u"), payload=payload)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Actor(type="robot", id="x"),  # type: ignore[arg-type]
        lambda: Actor(type="agent", id=""),
        lambda: AuditEvent(type="", actor=Actor(type="agent", id="a")),
        lambda: AuditEvent(type="x\ud800", actor=Actor(type="agent", id="a")),
        lambda: AuditEvent(type="x", actor=Actor(type="agent", id="a"), session_id=""),
        lambda: AuditEvent(type="x", actor={"type": "agent", "id": "a"}),  # type: ignore[arg-type]
    ],
)
def test_an_event_with_bad_fields_is_refused(make: Any) -> None:
    """Bad actor types, empty or unencodable strings raise AuditEventError."""
    with pytest.raises(AuditEventError):
        make()


def test_event_payload_is_a_private_json_copy() -> None:
    """The event keeps a normalised copy: tuples become lists, later caller edits do not leak in."""
    source: dict[str, Any] = {"items": (1, 2), "nested": {"k": "v"}}
    event = AuditEvent(type="x", actor=Actor(type="agent", id="a"), payload=source)
    source["nested"]["k"] = "changed"
    assert event.payload == {"items": [1, 2], "nested": {"k": "v"}}


def test_audit_ids_are_prefixed_unique_and_time_sortable() -> None:
    """new_audit_id gives aud_ + a 26-character ULID, ordered by its time part."""
    early = new_audit_id(datetime(2026, 1, 1, tzinfo=UTC))
    late = new_audit_id(datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert early.startswith("aud_") and len(early) == 30
    assert early < late
    assert len({new_audit_id() for _ in range(1000)}) == 1000
