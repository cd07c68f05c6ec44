"""The audit log's checkpoint: a clean close lets the next open walk only what came after it."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from audit.kill import run_and_kill
from hypothesis import given, settings
from hypothesis import strategies as st

from aileron_cli.daemon.audit import checkpoint as audit_checkpoint
from aileron_cli.daemon.audit import log as audit_log_module
from aileron_cli.daemon.audit.checkpoint import (
    CHECKPOINT_VERSION,
    MAGIC,
    CheckpointRejected,
    checkpoint_path,
)
from aileron_cli.daemon.audit.log import AuditLog, AuditWriteError
from aileron_cli.daemon.audit.recovery import RecoveryReport
from aileron_core import audit as core_audit
from aileron_core.audit import GENESIS_PREV, Actor, AuditEvent, AuditRecord, seal_line

AGENT = Actor(type="agent", id="sess-1")
HUMAN = Actor(type="human", id="user")
APPENDER = Path(__file__).with_name("appender.py")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "audit.jsonl"


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the lines the chain verifier checks (every record an open parses)."""
    calls: list[int] = []
    real = core_audit.check_line

    def counting(line: bytes | str) -> dict[str, Any]:
        calls.append(1)
        return real(line)

    monkeypatch.setattr(core_audit, "check_line", counting)
    yield calls


def fill(path: Path, count: int, start: int = 0) -> list[AuditRecord]:
    """Append ``count`` varied records to the log at ``path`` and close it cleanly."""
    log, _ = AuditLog.open(path)
    try:
        return [
            log.append_sync(
                ("action.invoked", "session.started", "vault.unlocked")[n % 3],
                (AGENT, HUMAN)[n % 2],
                (f"s{n % 4}", None)[n % 5 == 0],
                {"n": n},
            )
            for n in range(start, start + count)
        ]
    finally:
        log.close()


def reopen(path: Path) -> tuple[AuditLog, RecoveryReport]:
    return AuditLog.open(path)


def crash_after_appends(path: Path, count: int) -> list[AuditRecord]:
    """Append ``count`` records after the current checkpoint, then put the old checkpoint back:
    the state a kill -9 after those appends leaves (a checkpoint covering only a prefix)."""
    old = checkpoint_path(path).read_bytes()
    records = fill(path, count, start=1000)
    checkpoint_path(path).write_bytes(old)
    return records


def test_a_clean_close_writes_a_private_checkpoint_covering_the_whole_log(path: Path) -> None:
    """close() leaves a 0600 checkpoint whose size, last seq/hash and prefix sha256 match."""
    written = fill(path, 5)
    checkpoint = checkpoint_path(path)
    assert stat.S_IMODE(checkpoint.stat().st_mode) == 0o600
    data = path.read_bytes()
    log, _ = reopen(path)
    log.close()
    found = audit_checkpoint.decode(checkpoint.read_bytes())
    assert (found.log_size, found.last_seq, found.last_hash) == (len(data), 5, written[-1].hash)
    assert found.prefix_sha256 == hashlib.sha256(data).hexdigest()


def test_open_after_a_clean_close_parses_only_the_tail(path: Path, parsed: list[int]) -> None:
    """With a checkpoint, open checks only the lines after it (counted), and indexes them all."""
    fill(path, 40)
    covered = path.stat().st_size
    tail = crash_after_appends(path, 3)
    parsed.clear()
    log, report = reopen(path)
    try:
        assert len(parsed) == 3
        assert (report.checkpoint, report.scanned_from, report.scanned_lines) == (
            "used",
            covered,
            3,
        )
        assert not report.full_scan and report.chain_ok and report.records == 43
        assert "checkpoint used" in report.summary()
        assert log.list(limit=3) == tail and log.last_hash == tail[-1].hash
    finally:
        log.close()


def test_open_with_a_checkpoint_never_calls_the_full_walk(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpointed open with nothing after it feeds no line of the log to the chain walk."""
    fill(path, 10)

    def refuse(line: bytes | str) -> dict[str, Any]:
        raise AssertionError("a record line was parsed")

    monkeypatch.setattr(core_audit, "check_line", refuse)
    log, report = reopen(path)
    log.close()
    assert report.checkpoint == "used" and report.scanned_lines == 0 and report.records == 10


def test_appends_after_a_checkpointed_open_continue_the_chain_and_verify(path: Path) -> None:
    """Records appended after a checkpointed open link to the checkpoint's last record."""
    written = fill(path, 6)
    log, report = reopen(path)
    try:
        assert report.checkpoint == "used"
        record = log.append_sync("test.event", AGENT)
        later = asyncio.run(log.append("test.event", HUMAN, "s9"))
        assert (record.seq, record.prev) == (7, written[-1].hash)
        assert (later.seq, later.prev) == (8, record.hash)
        assert log.verify().ok and log.verify().records == 8
    finally:
        log.close()
    log, report = reopen(path)
    log.close()
    assert report.checkpoint == "used" and report.scanned_lines == 0 and report.last_seq == 8


def test_a_prefix_edit_after_close_rejects_the_checkpoint_and_verify_names_it(
    path: Path, parsed: list[int]
) -> None:
    """Editing a checkpointed record: the checkpoint is rejected, all is walked, seq is named."""
    fill(path, 8)
    path.write_bytes(path.read_bytes().replace(b'"n":3}', b'"n":7}'))
    parsed.clear()
    log, report = reopen(path)
    try:
        assert report.checkpoint == "rejected" and report.full_scan and len(parsed) == 8
        assert report.checkpoint_reason is not None and "changed" in report.checkpoint_reason
        assert "CHECKPOINT REJECTED" in report.summary()
        assert not report.chain_ok and report.verify.first_bad_seq == 4
        verdict = log.verify()
        assert (verdict.ok, verdict.first_bad_seq) == (False, 4)
    finally:
        log.close()
    assert report.checkpoint_kept_as is not None
    assert (path.parent / report.checkpoint_kept_as).exists()
    log, again = reopen(path)  # a broken chain is never checkpointed: none to use
    log.close()
    assert again.checkpoint == "absent" and not again.chain_ok and again.full_scan


def test_a_resealed_prefix_verifies_but_the_checkpoint_still_rejects_it(path: Path) -> None:
    """A prefix rewritten and re-sealed into a valid chain is caught only by the checkpoint."""
    fill(path, 4)
    lines, prev = [], GENESIS_PREV
    for n in range(4):
        event = AuditEvent(type="forged", actor=HUMAN, payload={"n": n})
        record, line = seal_line(event, seq=n + 1, prev=prev)
        lines.append(line)
        prev = record.hash
    path.write_bytes(b"".join(lines))
    log, report = reopen(path)
    log.close()
    assert report.chain_ok and report.checkpoint == "rejected"


def test_truncation_below_the_checkpoint_rejects_it(path: Path) -> None:
    """A log cut shorter than the checkpoint covers is walked in full, never trusted."""
    fill(path, 10)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:6]))
    log, report = reopen(path)
    try:
        assert report.checkpoint == "rejected" and report.full_scan
        assert report.checkpoint_reason is not None and "truncated" in report.checkpoint_reason
        assert report.records == 6 and log.last_seq == 6
    finally:
        log.close()


def test_a_deleted_log_with_a_leftover_checkpoint_starts_a_fresh_chain(path: Path) -> None:
    """A checkpoint outliving its log is rejected; the new log starts at seq 1."""
    fill(path, 3)
    path.unlink()
    log, report = reopen(path)
    try:
        assert report.created and report.checkpoint == "rejected" and report.records == 0
        assert log.append_sync("test.event", AGENT).seq == 1
    finally:
        log.close()


def _resigned(data: bytes, old: bytes, new: bytes) -> bytes:
    body = data[:-32].replace(old, new, 1)
    return body + hashlib.sha256(body).digest()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: b"garbage\x00\xff" * 10, "not an audit checkpoint"),
        (lambda data: b"", "not an audit checkpoint"),
        (lambda data: data.replace(MAGIC + b"2\n", MAGIC + b"3\n", 1), "version '3'"),
        (lambda data: data[:200] + bytes([data[200] ^ 1]) + data[201:], "checksum"),
        (lambda data: data[:-40], "checksum"),
        (lambda data: _resigned(data, b'"version":2', b'"version":9'), "version 9"),
        (lambda data: _resigned(data, b'"records":12', b'"records":11'), "gapless"),
        (lambda data: _resigned(data, b'"byteorder":"', b'"byteorder":"x'), "byte order"),
    ],
    ids=[
        "garbage",
        "empty",
        "wrong-version",
        "flipped-bit",
        "cut",
        "header-version",
        "count",
        "order",
    ],
)
def test_a_malformed_checkpoint_means_a_reported_full_walk(
    path: Path, parsed: list[int], damage: Any, reason: str
) -> None:
    """Garbage, a wrong version or a damaged checkpoint is rejected (why is reported), all walked;
    the clean close after it writes a good checkpoint again."""
    assert CHECKPOINT_VERSION == 2
    fill(path, 12)
    checkpoint = checkpoint_path(path)
    checkpoint.write_bytes(damage(checkpoint.read_bytes()))
    parsed.clear()
    log, report = reopen(path)
    log.close()
    assert report.checkpoint == "rejected" and report.full_scan and len(parsed) == 12
    assert report.checkpoint_reason is not None and reason in report.checkpoint_reason
    assert report.chain_ok and report.records == 12
    log, again = reopen(path)
    log.close()
    assert again.checkpoint == "used" and again.scanned_lines == 0


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_HEADER_KEYS = st.sampled_from(
    ["version", "byteorder", "log_size", "last_seq", "last_hash", "prefix_sha256", "records"]
    + ["arrays", "ids_bytes", "codes", "segments"]
)


@settings(max_examples=100, deadline=None)
@given(
    header=st.dictionaries(_HEADER_KEYS, _JSON, min_size=10)
    | st.fixed_dictionaries({}, optional={"version": _JSON}),
    body=st.binary(max_size=64),
    version=st.sampled_from([b"1", b"2"]),
)
def test_decoding_any_signed_garbage_only_ever_rejects(
    header: Any, body: bytes, version: bytes
) -> None:
    """A checkpoint with a valid checksum but arbitrary header and body is rejected cleanly."""
    data = MAGIC + version + b"\n" + json.dumps(header).encode() + b"\n" + body
    with pytest.raises(CheckpointRejected):
        audit_checkpoint.decode(data + hashlib.sha256(data).digest())


def test_kill_9_after_appends_reopens_from_the_old_checkpoint_and_the_tail(path: Path) -> None:
    """After a SIGKILL (no clean close), open trusts the old checkpoint, walks the tail, keeps
    every acknowledged record, and the chain verifies end to end."""
    fill(path, 20)
    covered = path.stat().st_size
    before = checkpoint_path(path).read_bytes()
    acked = run_and_kill(path, 200, workers=8, payload_bytes=300)
    assert checkpoint_path(path).read_bytes() == before  # the killed process never wrote one
    log, report = reopen(path)
    try:
        assert report.checkpoint == "used" and report.scanned_from == covered
        assert report.chain_ok and report.unreadable_lines == 0
        assert report.scanned_lines >= len(acked)
        on_disk = {record.seq for record in log.list()}
        assert on_disk == set(range(1, log.last_seq + 1)) and acked <= on_disk
        assert log.verify().ok
    finally:
        log.close()


def test_a_torn_tail_after_the_checkpoint_is_cut_and_the_prefix_kept(path: Path) -> None:
    """A torn write after the checkpointed prefix is truncated; the prefix is trusted."""
    fill(path, 5)
    intact = path.read_bytes()
    path.write_bytes(intact + b'{"actor":{"id":"x"')
    log, report = reopen(path)
    log.close()
    assert report.checkpoint == "used" and report.repaired and report.dropped_at == len(intact)
    assert report.chain_ok and path.read_bytes() == intact


def test_get_and_list_are_identical_with_and_without_the_checkpoint(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every get(id) and a spread of list() queries answer the same after a checkpointed open
    as after a full walk."""
    monkeypatch.setattr(audit_log_module, "RECENT_RECORDS", 4)  # most reads go to disk
    written = fill(path, 30) + crash_after_appends(path, 5)
    middle = written[17].ts

    def answers() -> tuple[RecoveryReport, list[Any]]:
        log, report = reopen(path)
        try:
            return report, [
                [log.get(record.id) for record in written],
                log.get("aud_nope"),
                log.list(),
                log.list(type="session.started"),
                log.list(session_id="s2"),
                log.list(type="action.invoked", session_id="s1", limit=2),
                log.list(since=middle),
                log.list(until=middle + timedelta(microseconds=1), limit=3),
                log.list(after_seq=10, before_seq=33),
                log.list(type="never.seen"),
            ]
        finally:
            log.close()

    with_checkpoint, first = answers()
    checkpoint_path(path).unlink()
    without, second = answers()
    assert (with_checkpoint.checkpoint, without.checkpoint) == ("used", "absent")
    assert first == second
    assert first[0] == written and first[2] == written


def test_an_edit_while_open_is_not_blessed_by_the_next_checkpoint(path: Path) -> None:
    """A prefix edited on disk while the log is open: verify names it, and the checkpoint
    written at close (from what was verified, not the disk) is rejected at the next open."""
    fill(path, 6)
    log, report = reopen(path)
    assert report.checkpoint == "used"
    with path.open("r+b") as handle:
        data = handle.read()
        handle.seek(data.index(b'"n":2}'))
        handle.write(b'"n":8}')
    try:
        assert log.verify().first_bad_seq == 3
        log.append_sync("test.event", AGENT)
    finally:
        log.close()
    log, again = reopen(path)
    log.close()
    assert again.checkpoint == "rejected" and again.verify.first_bad_seq == 3


def test_a_poisoned_log_writes_no_checkpoint(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a failed fsync, close leaves the old checkpoint (for the old prefix) in place."""
    fill(path, 3)
    before = checkpoint_path(path).read_bytes()
    log, _ = reopen(path)

    def broken_fdatasync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fdatasync", broken_fdatasync)
        with pytest.raises(AuditWriteError):
            log.append_sync("test.event", AGENT)
    log.close()
    assert checkpoint_path(path).read_bytes() == before


def test_a_close_with_nothing_new_keeps_the_checkpoint_file(path: Path) -> None:
    """Open and close with no append in between does not rewrite the checkpoint."""
    fill(path, 3)
    inode = checkpoint_path(path).stat().st_ino
    log, _ = reopen(path)
    log.close()
    assert checkpoint_path(path).stat().st_ino == inode
