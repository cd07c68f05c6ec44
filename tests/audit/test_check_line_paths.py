"""check_line's fast path accepts exactly the lines the straightforward reference accepts."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aileron_core import audit
from aileron_core.audit import (
    ACTOR_TYPES,
    GENESIS_PREV,
    Actor,
    AuditCorruptError,
    AuditEvent,
    check_line,
    seal_line,
)
from aileron_core.canonical import canonical_json


def reference_check_line(line: bytes | str) -> dict[str, Any]:
    """check_line as first written (json.loads + canonical_json), kept to pin the fast path."""
    raw = audit._line_bytes(line)
    if not raw:
        raise AuditCorruptError("empty line")
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise AuditCorruptError(f"line is not UTF-8 JSON: {exc}") from None
    if type(value) is not dict:
        raise AuditCorruptError("line is not a JSON object")
    problem = audit._shape_problem(value)
    if problem is not None:
        raise AuditCorruptError(f"line is not an audit record: {problem}")
    try:
        canonical = canonical_json(value)
    except (ValueError, RecursionError) as exc:
        raise AuditCorruptError(f"line holds a value JSON cannot carry: {exc}") from None
    if canonical != raw:
        raise AuditCorruptError("line is not the canonical encoding of its record")
    digest: str = value["hash"]
    body = raw.replace(b',"hash":"' + digest.encode("ascii") + b'"', b"", 1)
    if hashlib.sha256(body).hexdigest() != digest:
        raise AuditCorruptError("hash does not match")
    return value


def outcome(check: Any, line: bytes | str) -> tuple[bool, Any]:
    """``(accepted, value)`` of one check on ``line``."""
    try:
        return True, check(line)
    except AuditCorruptError:
        return False, None


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
events = st.builds(
    AuditEvent,
    type=st.text(min_size=1, max_size=10),
    actor=st.builds(Actor, type=st.sampled_from(ACTOR_TYPES), id=st.text(min_size=1, max_size=8)),
    session_id=st.none() | st.text(min_size=1, max_size=8),
    payload=st.dictionaries(st.text(max_size=6), json_values, max_size=3),
)
moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def _variants(line: bytes, data: st.DataObject) -> bytes | str:
    """``line`` itself or a small change to it that a parser might treat differently."""
    value = json.loads(line)
    how = data.draw(st.integers(0, 11))
    body = line[:-1]
    if how == 0:
        return line
    if how == 1:
        return line.decode()
    if how == 2:  # whitespace around or inside
        spot = data.draw(st.integers(0, len(body)))
        pad = data.draw(st.sampled_from([b" ", b"\t", b"\r", b"\n", b"\xef\xbb\xbf"]))
        return body[:spot] + pad + body[spot:]
    if how == 3:  # another valid JSON encoding of the same value
        return json.dumps(
            value, sort_keys=data.draw(st.booleans()), ensure_ascii=data.draw(st.booleans())
        ).encode()
    if how == 4:  # a byte flipped
        spot = data.draw(st.integers(0, len(body) - 1))
        return body[:spot] + bytes([data.draw(st.integers(0, 255))]) + body[spot + 1 :]
    if how == 5:  # trailing garbage or a second value
        return body + data.draw(st.sampled_from([b"x", b"{}", b",", b" ", b"\n\n"]))
    if how == 6:  # a field with another type or value
        key = data.draw(st.sampled_from(sorted(value)))
        value[key] = data.draw(json_values)
        return canonical_json(value)
    if how == 7:  # a lone surrogate escape in a payload string
        value["payload"]["s"] = "\ud800"
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    if how == 8:  # a timestamp written another way
        moment = datetime.fromisoformat(value["ts"])
        value["ts"] = data.draw(
            st.sampled_from(
                [
                    moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    moment.isoformat(timespec="microseconds"),
                    moment.astimezone(UTC).replace(tzinfo=None).isoformat(),
                    str(moment),
                ]
            )
        )
        return canonical_json(value)
    if how == 9:  # a prefix
        return body[: data.draw(st.integers(0, len(body)))]
    if how == 10:  # a number written as a float
        return body.replace(b'"seq":', b'"seq":1.0,"x":', 1)
    return data.draw(st.binary(max_size=80))


@settings(deadline=None, max_examples=400)
@given(event=events, seq=st.integers(1, 10**6), ts=moments, data=st.data())
def test_fast_and_reference_paths_agree(
    event: AuditEvent, seq: int, ts: datetime, data: st.DataObject
) -> None:
    """For sealed lines and every kind of variant, both paths accept the same lines and agree."""
    _, line = seal_line(event, seq=seq, prev=GENESIS_PREV, ts=ts + timedelta(microseconds=seq % 2))
    candidate = _variants(line, data)
    assert outcome(check_line, candidate) == outcome(reference_check_line, candidate)


@settings(deadline=None, max_examples=200)
@given(line=st.binary(max_size=200) | st.text(max_size=200))
def test_paths_agree_on_arbitrary_input(line: bytes | str) -> None:
    """On arbitrary bytes and text both paths reject alike (neither raises anything else)."""
    assert outcome(check_line, line) == outcome(reference_check_line, line)
