"""Verify's fast path (records a signed head vouches for) gives exactly the full check's report."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from audit.signed_log import SignedLog, rechain, standard_log
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aileron_core import audit_verify
from aileron_core.audit import Actor, AuditEvent, hashed_fields, seal_line
from aileron_core.audit_heads import SIGNED_TYPES, head_digest, sign_head
from aileron_core.audit_verify import CompletenessReport, LogVerifier, verify_files
from aileron_core.canonical import canonical_json

TRICKY = (',"prev":"', ',"id":"', ',"type":"', ',"hash":"', ',"seq":', '"}', "\\", '"', "\n", "é")
texts = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12) | (
    st.lists(st.sampled_from(TRICKY), min_size=1, max_size=4).map("".join)
)


@settings(max_examples=300, deadline=None)
@given(
    kind=texts,
    actor_id=texts,
    session_id=st.none() | texts,
    payload=st.dictionaries(texts, texts | st.integers() | st.none(), max_size=4),
    seq=st.integers(1, 10**12),
)
def test_hashed_fields_reads_a_canonical_line(
    kind: str, actor_id: str, session_id: str | None, payload: dict[str, Any], seq: int
) -> None:
    """On any sealed line hashed_fields gives its seq, prev, hash and raw type (None only for a
    type the canonical encoding escapes), even with member-like text inside strings."""
    event = AuditEvent(
        type=kind, actor=Actor(type="agent", id=actor_id), session_id=session_id, payload=payload
    )
    record, line = seal_line(event, seq=seq, prev="ab" * 32, ts=datetime(2026, 1, 1, tzinfo=UTC))
    fields = hashed_fields(line)
    if "\\" in canonical_json(kind).decode()[1:-1]:
        assert fields is None
    else:
        assert fields == (seq, "ab" * 32, record.hash, kind.encode())


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_hashed_fields_never_raises(data: st.DataObject) -> None:
    """On any bytes (a real line with a random splice, or a seq of 5000 digits) hashed_fields
    gives fields or None, never an exception; fields only for the very line that was sealed."""
    line = data.draw(st.sampled_from(standard_log().records))
    at = data.draw(st.integers(0, len(line)))
    cut = data.draw(st.integers(at, len(line)))
    splice = data.draw(st.binary(max_size=8) | st.sampled_from((b"9" * 5000, b" ", b"\\")))
    edited = line[:at] + splice + line[cut:]
    fields = hashed_fields(edited)
    if fields is not None:
        assert edited.removesuffix(b"\n") == line.removesuffix(b"\n")
        value = json.loads(line)
        assert fields == (value["seq"], value["prev"], value["hash"], value["type"].encode())


def test_hashed_fields_refuses_a_moved_hash_member() -> None:
    """A hash member moved into the actor keeps a matching hash over the rest of the line, but
    hashed_fields refuses it: the member must sit where a canonical line has it."""
    line = standard_log().records[3]
    digest = json.loads(line)["hash"]
    member = b',"hash":"' + digest.encode() + b'"'
    body = line[:-1].replace(member, b"", 1)
    moved = body.replace(b'"type":"agent"}', b'"type":"agent"' + member + b"}", 1) + b"\n"
    assert moved != line
    # Removing the (first) hash member still leaves exactly the hashed bytes ...
    assert hashlib.sha256(moved[:-1].replace(member, b"", 1)).hexdigest() == digest
    assert hashed_fields(moved) is None  # ... so only the pinned position keeps it out


def both(home: Path, segments: list[Path], log: SignedLog) -> CompletenessReport:
    """Verify ``segments`` fast and in full; assert the reports are equal; return it."""
    reports = [
        verify_files(
            segments,
            home / "audit.heads.jsonl",
            public_key=log.public,
            vault_id=log.vault_id,
            fast=fast,
        )
        for fast in (True, False)
    ]
    assert reports[0] == reports[1]
    return reports[0]


def test_moved_hash_member_is_chain_broken_on_both_paths(tmp_path: Path) -> None:
    """A signed record whose hash member was moved (same hash, same chain, heads still match)
    is chain_broken at its seq, fast or full."""
    log = standard_log()
    line = log.records[3]
    member = b',"hash":"' + json.loads(line)["hash"].encode() + b'"'
    body = line[:-1].replace(member, b"", 1)
    log.records[3] = body.replace(b'"}', b'"' + member + b"}", 1) + b"\n"
    log.write(tmp_path)
    report = both(tmp_path, [tmp_path / "audit.jsonl"], log)
    assert not report.ok and (report.problems[0].code, report.problems[0].seq) == (
        "chain_broken",
        4,
    )


def fed(log: SignedLog, *, fast: bool) -> tuple[CompletenessReport, int]:
    """Feed ``log`` to a LogVerifier; return its report and how many records it vouched for."""
    verifier = LogVerifier(public_key=log.public, vault_id=log.vault_id, heads=log.heads, fast=fast)
    for line in log.records:
        verifier.feed(line)
    return verifier.finish(), verifier.vouched


def test_signed_records_are_vouched_for() -> None:
    """On an untouched log every plain record up to the last head is vouched for (signed-type and
    notice records are still parsed), none after it; the report is the full check's."""
    log = standard_log()
    log.add()
    fast, vouched = fed(log, fast=True)
    full, none = fed(log, fast=False)
    assert fast == full and fast.ok and none == 0
    signed = [json.loads(line) for line in log.records[: log.head_seqs[-1]]]
    assert vouched == sum(1 for value in signed if value["type"] not in SIGNED_TYPES)


def test_a_long_unsigned_stretch_is_checked_in_bounded_memory() -> None:
    """More records between two heads than the fast path holds: the first are checked in full,
    the rest vouched for, with the same report."""
    log = SignedLog()
    log.add("vault.unlocked", None)
    log.sign("unlock")
    extra = 300
    for _ in range(audit_verify._PENDING_MAX + extra):
        log.add()
    log.sign()
    fast, vouched = fed(log, fast=True)
    assert fast == fed(log, fast=False)[0] and fast.ok
    assert vouched == extra


# --- random logs, random tamperings ---------------------------------------------------------

Edit = Callable[[bytes], bytes]


def _reorder_payload(body: bytes) -> bytes:
    value = json.loads(body)
    value["payload"] = dict(reversed(list(value["payload"].items())))
    out = json.dumps(
        {key: value[key] for key in sorted(value)}, separators=(",", ":"), ensure_ascii=False
    )
    return out.encode()


EDITS: dict[str, Edit] = {
    "space after a colon": lambda b: b.replace(b'":', b'": ', 1),
    "space before the end": lambda b: b[:-1] + b" }",
    "payload keys out of order": _reorder_payload,
    "escaped key": lambda b: b.replace(b'"n":', b'"\\u006e":', 1),
    "escaped dot": lambda b: b.replace(b".", b"\\u002e", 1),
    "exponent number": lambda b: re.sub(rb'"n":(\d+)', rb'"n":\1e0', b, count=1),
    "float number": lambda b: re.sub(rb'"n":(\d+)', rb'"n":\1.0', b, count=1),
    "float seq": lambda b: re.sub(rb'"seq":(\d+)', rb'"seq":\1.0', b, count=1),
    "another value": lambda b: b.replace(b'"n":', b'"m":', 1),
}


def byte_edit(log: SignedLog, index: int, how: str, reseal: bool, relink: bool) -> None:
    """Edit record ``index`` byte-wise; with ``reseal`` recompute its hash over the edited bytes
    (member where a canonical line has it), with ``relink`` re-chain every record after it."""
    line = log.records[index]
    digest = json.loads(line)["hash"]
    member = b',"hash":"' + digest.encode() + b'"'
    body = line[:-1].replace(member, b"", 1)
    edited = EDITS[how](body)
    if reseal:
        digest = hashlib.sha256(edited).hexdigest()
        member = b',"hash":"' + digest.encode() + b'"'
    at = edited.find(b',"id":"')
    log.records[index] = edited[:at] + member + edited[at:] + b"\n"
    if relink:
        log.records[index + 1 :] = rechain(
            log.records[index + 1 :], first_seq=index + 2, prev=digest
        )


TAMPERINGS = (
    "byte_edit",
    "move_hash",
    "delete_last",
    "cut_mid_line",
    "reorder",
    "forge_signed",
    "remove_rechain",
    "edit_head",
    "delete_heads",
    "head_at_wrong_hash",
)


def _build(data: st.DataObject) -> SignedLog:
    log = SignedLog()
    log.add("vault.unlocked", None)
    log.sign("unlock")
    for _ in range(data.draw(st.integers(2, 30))):
        kind = data.draw(
            st.sampled_from(
                ("action.executed", "session.started", "audit.recovered", *SIGNED_TYPES)
            )
        )
        log.add(kind, data.draw(st.sampled_from(("github", "slack", None))))
        if kind in SIGNED_TYPES or data.draw(st.integers(0, 3)) == 0:
            log.sign("decision" if kind in SIGNED_TYPES else "periodic")
    for _ in range(data.draw(st.integers(0, 3))):
        log.add()
    return log


def _tamper(log: SignedLog, how: str, data: st.DataObject) -> bool:
    """Apply ``how``; return whether it is a byte edit that must make the verify fail."""
    last_head = log.head_seqs[-1]
    if how == "byte_edit":
        index = data.draw(st.integers(0, len(log.records) - 1))
        edit = data.draw(st.sampled_from(sorted(EDITS)))
        reseal, relink = data.draw(st.booleans()), data.draw(st.booleans())
        before = list(log.records)
        byte_edit(log, index, edit, reseal, relink)
        return index < last_head and log.records != before
    if how == "move_hash":
        index = data.draw(st.integers(0, len(log.records) - 1))
        line = log.records[index]
        member = b',"hash":"' + json.loads(line)["hash"].encode() + b'"'
        body = line[:-1].replace(member, b"", 1)
        spot = data.draw(st.sampled_from((b'"}', b',"type":"', b',"payload":')))
        at = body.find(spot)
        log.records[index] = body[:at] + member + body[at:] + b"\n"
        return index < last_head
    if how == "delete_last":
        del log.records[data.draw(st.integers(0, last_head - 1)) :]
    elif how == "reorder":
        index = data.draw(st.integers(0, len(log.records) - 2))
        log.records[index], log.records[index + 1] = log.records[index + 1], log.records[index]
    elif how == "forge_signed":
        log.add(data.draw(st.sampled_from(SIGNED_TYPES)), None)
    elif how == "remove_rechain":
        del log.records[data.draw(st.integers(0, last_head - 1))]
        log.records = rechain(log.records)
    elif how == "edit_head":
        index = data.draw(st.integers(0, len(log.heads) - 1))
        value = json.loads(log.heads[index])
        value["seq"] += 1
        log.heads[index] = canonical_json(value) + b"\n"
    elif how == "delete_heads":
        log.heads.clear()
    elif how == "head_at_wrong_hash":  # a validly signed head over a record that is not there
        seq = data.draw(st.integers(1, len(log.records)))
        _, line = sign_head(
            log.key,
            n=len(log.heads) + 1,
            seq=seq,
            hash=hashlib.sha256(b"another record").hexdigest(),
            vault_id=log.vault_id,
            generation=log.generation,
            reason="periodic",
            prev=head_digest(log.heads[-1]),
            ts=datetime(2026, 1, 2, tzinfo=UTC),
        )
        log.heads.append(line)
    return False


@settings(
    deadline=None, max_examples=250, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fast_and_full_paths_agree(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Random signed logs, untouched or with one random tampering (byte edits inside signed
    records included), split over one or two segments: the fast and the full verify give the
    same report, and every tampering of a signed record fails it."""
    home = tmp_path_factory.mktemp("home")
    log = _build(data)
    how = data.draw(st.none() | st.sampled_from(TAMPERINGS))
    must_fail = False if how is None else _tamper(log, how, data)
    data_bytes = b"".join(log.records)
    if how == "cut_mid_line":
        data_bytes = data_bytes[: data.draw(st.integers(0, max(0, len(data_bytes) - 1)))]
    lines = data_bytes.splitlines(keepends=True)
    split = data.draw(st.integers(0, len(lines)))
    first, active = home / "audit.000001.jsonl", home / "audit.jsonl"
    first.write_bytes(b"".join(lines[:split]))
    active.write_bytes(b"".join(lines[split:]))
    (home / "audit.heads.jsonl").write_bytes(b"".join(log.heads))
    report = both(home, [first, active], log)
    if how is None:
        assert report.ok, report.problems
    elif must_fail and how in ("byte_edit", "move_hash"):
        assert not report.ok, (how, report)


def test_edit_reports_are_equal_with_another_key(tmp_path: Path) -> None:
    """Heads of another key are head_invalid and vouch for nothing: the report is the full one."""
    log = standard_log()
    log.write(tmp_path)
    other = SignedLog(key=Ed25519PrivateKey.generate())
    other.records = log.records
    report = both(tmp_path, [tmp_path / "audit.jsonl"], other)
    assert not report.ok and report.problems[0].code == "head_invalid"
