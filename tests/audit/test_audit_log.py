"""The daemon's audit file store: durable appends, group commit, indexing, repair on open."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aileron_cli.daemon.audit import log as audit_log_module
from aileron_cli.daemon.audit.log import (
    AuditLog,
    AuditLogClosedError,
    AuditLogLockedError,
    AuditQueryError,
    AuditWriteError,
)
from aileron_core.audit import (
    GENESIS_PREV,
    Actor,
    AuditCorruptError,
    AuditError,
    AuditEventError,
    AuditRecord,
    verify,
)

AGENT = Actor(type="agent", id="sess-1")
HUMAN = Actor(type="human", id="user")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "audit.jsonl"


def fill(path: Path, count: int) -> list[AuditRecord]:
    """A closed log at ``path`` holding ``count`` records."""
    log, _ = AuditLog.open(path)
    records = [log.append_sync("test.event", AGENT, None, {"n": n}) for n in range(count)]
    log.close()
    return records


def file_verifies(path: Path) -> bool:
    with path.open("rb") as handle:
        return verify(handle).ok


def test_open_creates_a_private_empty_log(path: Path) -> None:
    """Opening a missing log creates it 0600 in a new 0700 dir and reports an empty valid chain."""
    log, report = AuditLog.open(path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert (report.created, report.records, report.last_seq) == (True, 0, 0)
        assert report.chain_ok and not report.repaired and report.reason is None
        assert (log.last_seq, log.last_hash, len(log)) == (0, GENESIS_PREV, 0)
    finally:
        log.close()


def test_open_makes_an_existing_log_private(path: Path) -> None:
    """A log file found with a looser mode is tightened to 0600."""
    fill(path, 1)
    path.chmod(0o644)
    log, report = AuditLog.open(path)
    log.close()
    assert not report.created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_append_writes_one_canonical_line_per_record(path: Path) -> None:
    """Each append is one line on disk, equal to the record returned, seqs 1..n chained."""
    log, _ = AuditLog.open(path)
    first = log.append_sync("session.started", AGENT, "s1", {"agent": "codex"})
    second = asyncio.run(log.append("vault.unlocked", HUMAN))
    log.close()
    lines = path.read_bytes().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [first.id, second.id]
    assert (first.seq, second.seq, second.prev, second.payload) == (1, 2, first.hash, {})
    assert file_verifies(path)


def test_every_append_is_fsynced_before_it_returns(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When an append returns, an fdatasync already covered its line (sync and async paths)."""
    synced: list[int] = []
    real_fdatasync = os.fdatasync

    def recording_fdatasync(fd: int) -> None:
        real_fdatasync(fd)
        synced.append(os.fstat(fd).st_size)

    def end_offset(record: AuditRecord) -> int:
        data = path.read_bytes()
        return (
            data.index(record.id.encode()) + data[data.index(record.id.encode()) :].index(b"\n") + 1
        )

    monkeypatch.setattr(os, "fdatasync", recording_fdatasync)
    log, _ = AuditLog.open(path)
    failures: list[int] = []

    async def one(n: int) -> None:
        record = await log.append("test.event", AGENT, None, {"n": n})
        if not synced or max(synced) < end_offset(record):
            failures.append(record.seq)

    async def main() -> None:
        await asyncio.gather(*(one(n) for n in range(50)))

    try:
        record = log.append_sync("test.event", AGENT)
        assert synced and max(synced) >= end_offset(record)
        asyncio.run(main())
    finally:
        log.close()
    assert failures == []
    assert len(synced) == log.commit_count


def test_get_returns_records_by_id_from_memory_and_disk(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """get finds any record by id, in the tail cache or only on disk; unknown ids give None."""
    monkeypatch.setattr(audit_log_module, "RECENT_RECORDS", 2)
    written = fill(path, 5)
    log, _ = AuditLog.open(path)
    try:
        assert [log.get(record.id) for record in written] == written
        assert log.get("aud_nope") is None
    finally:
        log.close()


def test_list_filters_and_keeps_the_most_recent(path: Path) -> None:
    """list filters by type, session, time and seq, oldest first, limit keeping the newest."""
    log, _ = AuditLog.open(path)
    try:
        records = [
            log.append_sync("action.invoked", AGENT, "s1", {"n": 1}),
            log.append_sync("session.started", AGENT, "s2", {"n": 2}),
            log.append_sync("action.invoked", AGENT, "s2", {"n": 3}),
            log.append_sync("action.invoked", HUMAN, None, {"n": 4}),
        ]
        assert log.list() == records
        assert log.list(type="action.invoked") == [records[0], records[2], records[3]]
        assert log.list(session_id="s2") == records[1:3]
        assert log.list(type="action.invoked", session_id="s2") == [records[2]]
        assert log.list(limit=2) == records[2:]
        assert log.list(type="action.invoked", limit=1) == [records[3]]
        assert log.list(limit=0) == []
        assert log.list(type="never.seen") == [] and log.list(session_id="s9") == []
        assert log.list(after_seq=2) == records[2:] and log.list(before_seq=2) == records[:1]
        assert log.list(since=records[2].ts) == records[2:]
        assert log.list(until=records[2].ts) == records[:2]
        assert log.list(since=records[-1].ts + timedelta(seconds=1)) == []
        naive = records[2].ts.replace(tzinfo=None)
        assert log.list(since=naive) == records[2:]
        with pytest.raises(AuditQueryError):
            log.list(limit=-1)
    finally:
        log.close()


def test_reopen_continues_the_chain(path: Path) -> None:
    """After a restart the next record continues seq and prev from the last one on disk."""
    written = fill(path, 3)
    log, report = AuditLog.open(path)
    try:
        assert (report.created, report.records, report.last_seq) == (False, 3, 3)
        assert report.chain_ok and log.last_hash == written[-1].hash
        record = log.append_sync("test.event", AGENT)
        assert (record.seq, record.prev) == (4, written[-1].hash)
        assert log.list(limit=1) == [record]
        assert log.verify().ok and log.verify().records == 4
    finally:
        log.close()


def test_concurrent_async_appends_all_land_in_one_gapless_chain(path: Path) -> None:
    """500 concurrent appends all return, get seqs 1..500, are group-committed, and verify."""
    log, _ = AuditLog.open(path)

    async def main() -> list[AuditRecord]:
        return await asyncio.gather(
            *(log.append("test.event", AGENT, f"s{n % 7}", {"n": n}) for n in range(500))
        )

    try:
        records = asyncio.run(main())
        assert sorted(record.seq for record in records) == list(range(1, 501))
        assert len({record.id for record in records}) == 500
        assert log.commit_count < 500  # group commit: fewer fsyncs than events
        assert log.verify().ok and log.verify().records == 500
        assert [log.get(record.id) for record in records] == records
    finally:
        log.close()
    assert file_verifies(path)
    assert len(path.read_bytes().splitlines()) == 500


def test_readers_in_other_threads_only_see_committed_records(path: Path) -> None:
    """A thread listing while appends land always sees a gapless, intact prefix of the chain."""
    log, _ = AuditLog.open(path)
    stop = threading.Event()
    problems: list[str] = []
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            seqs = [record.seq for record in log.list(limit=20)]
            if seqs and seqs != list(range(seqs[0], seqs[0] + len(seqs))):
                problems.append(f"non-consecutive seqs {seqs}")
            if seqs and seqs[-1] > log.last_seq:
                problems.append(f"saw seq {seqs[-1]} before it was committed")
            reads += 1

    async def main() -> None:
        for _ in range(10):
            await asyncio.gather(*(log.append("test.event", AGENT) for _ in range(30)))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        asyncio.run(main())
    finally:
        stop.set()
        thread.join()
        log.close()
    assert problems == []
    assert reads > 0


def test_torn_tail_is_truncated_reported_and_the_chain_continues(path: Path) -> None:
    """Half a line without a newline is cut off on open, reported, and appends continue cleanly."""
    fill(path, 3)
    intact = path.read_bytes()
    fragment = intact.splitlines(keepends=True)[-1][:57]
    path.write_bytes(intact + fragment)
    log, report = AuditLog.open(path)
    try:
        assert (report.dropped_bytes, report.dropped_lines, report.dropped_at) == (
            len(fragment),
            1,
            len(intact),
        )
        assert report.repaired and report.chain_ok and report.last_seq == 3
        assert path.read_bytes() == intact
        assert log.append_sync("test.event", AGENT).seq == 4
    finally:
        log.close()
    assert file_verifies(path)


@pytest.mark.parametrize(
    ("tail", "lines"),
    [(b"\x00\x00\x00\x00\n", 1), (b'{"seq":4,"id\x00\x00\n', 1), (b'garbage\n{"se', 2)],
)
def test_a_last_line_that_is_not_json_is_truncated(path: Path, tail: bytes, lines: int) -> None:
    """A complete last line that is not JSON (a torn write) is cut off, with any fragment."""
    fill(path, 2)
    intact = path.read_bytes()
    path.write_bytes(intact + tail)
    log, report = AuditLog.open(path)
    log.close()
    assert (report.dropped_bytes, report.dropped_lines) == (len(tail), lines)
    assert report.chain_ok
    assert path.read_bytes() == intact


def test_an_edited_last_record_is_kept_and_reported_not_truncated(path: Path) -> None:
    """A last line that is JSON but fails its hash looks like tampering: kept, and reported."""
    fill(path, 3)
    tampered = path.read_bytes().replace(b'"n":2', b'"n":9')
    path.write_bytes(tampered)
    log, report = AuditLog.open(path)
    try:
        assert not report.repaired and not report.chain_ok
        assert report.verify.first_bad_seq == 3 and report.unreadable_lines == 1
        assert path.read_bytes() == tampered
        # Appends continue after the last intact record.
        assert log.append_sync("test.event", AGENT).seq == 3
        assert log.verify().first_bad_seq == 3
    finally:
        log.close()


def test_a_broken_chain_in_the_middle_still_opens_without_losing_data(path: Path) -> None:
    """Open works on a chain edited in the middle: nothing is removed, the break is named."""
    written = fill(path, 4)
    tampered = path.read_bytes().replace(b'"n":1', b'"n":7')
    path.write_bytes(tampered)
    log, report = AuditLog.open(path)
    try:
        assert not report.chain_ok and report.verify.first_bad_seq == 2
        assert report.reason is not None and "hash" in report.reason
        assert (report.records, report.unreadable_lines, report.dropped_bytes) == (3, 1, 0)
        assert path.read_bytes() == tampered
        record = log.append_sync("test.event", AGENT)
        assert (record.seq, record.prev) == (5, written[-1].hash)
        assert log.get(written[1].id) is None and log.get(written[2].id) == written[2]
        assert "CHAIN BROKEN at seq 2" in report.summary()
    finally:
        log.close()


def test_verify_rereads_the_disk_and_names_an_edited_record(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tampering with the file while the log is open is found by verify() and by reads."""
    monkeypatch.setattr(audit_log_module, "RECENT_RECORDS", 0)  # every read goes to disk
    log, _ = AuditLog.open(path)
    try:
        for n in range(4):
            log.append_sync("test.event", AGENT, None, {"n": n})
        assert log.verify().ok
        with path.open("r+b") as handle:
            data = handle.read()
            handle.seek(data.index(b'"n":2'))
            handle.write(b'"n":5')
        report = log.verify()
        assert (report.ok, report.first_bad_seq, report.records) == (False, 3, 2)
        with pytest.raises(AuditCorruptError):
            log.list(limit=4, before_seq=4)  # the edited record is read from disk
    finally:
        log.close()


def test_averify_runs_verify_off_the_event_loop(path: Path) -> None:
    """averify gives the same verdict as verify, from async code."""
    log, _ = AuditLog.open(path)

    async def main() -> None:
        await log.append("test.event", AGENT)
        assert await log.averify() == log.verify()
        assert (await log.averify()).records == 1

    try:
        asyncio.run(main())
    finally:
        log.close()


def test_verify_detects_records_removed_from_the_end(path: Path) -> None:
    """Cutting the newest records off the file is caught: the chain must end where written."""
    log, _ = AuditLog.open(path)
    try:
        for n in range(3):
            log.append_sync("test.event", AGENT, None, {"n": n})
        lines = path.read_bytes().splitlines(keepends=True)
        with path.open("r+b") as handle:
            handle.truncate(len(lines[0]) + len(lines[1]))
        report = log.verify()
        assert (report.ok, report.first_bad_seq, report.records) == (False, 3, 2)
        assert report.reason is not None and "removed" in report.reason
    finally:
        log.close()


def test_a_second_open_is_refused_while_the_first_holds_the_log(path: Path) -> None:
    """Only one AuditLog may write a file at a time; closing releases it."""
    log, _ = AuditLog.open(path)
    with pytest.raises(AuditLogLockedError):
        AuditLog.open(path)
    log.close()
    again, _ = AuditLog.open(path)
    again.close()


def test_a_closed_log_refuses_everything(path: Path) -> None:
    """After close, appends, reads and verify raise AuditLogClosedError; close is idempotent."""
    log, _ = AuditLog.open(path)
    log.close()
    log.close()
    with pytest.raises(AuditLogClosedError):
        log.append_sync("test.event", AGENT)
    with pytest.raises(AuditLogClosedError):
        asyncio.run(log.append("test.event", AGENT))
    with pytest.raises(AuditLogClosedError):
        log.get("aud_x")
    with pytest.raises(AuditLogClosedError):
        log.list()
    with pytest.raises(AuditLogClosedError):
        log.verify()


def test_an_invalid_event_is_refused_before_anything_is_written(path: Path) -> None:
    """A payload that is not JSON raises AuditEventError and leaves the file untouched."""
    log, _ = AuditLog.open(path)
    try:
        with pytest.raises(AuditEventError):
            log.append_sync("test.event", AGENT, None, {"bad": object()})
        with pytest.raises(AuditEventError):
            asyncio.run(log.append("test.event", AGENT, None, {"bad": float("inf")}))
        assert path.read_bytes() == b"" and log.last_seq == 0
    finally:
        log.close()


def test_a_failed_fsync_poisons_the_log_and_a_restart_recovers(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When fsync fails the append raises, later appends are refused, and reopen is clean."""
    fill(path, 2)
    log, _ = AuditLog.open(path)

    def broken_fdatasync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fdatasync", broken_fdatasync)
        with pytest.raises(AuditWriteError):
            log.append_sync("test.event", AGENT)

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(log.append("test.event", AGENT) for _ in range(5)), return_exceptions=True
        )

    outcomes = asyncio.run(main())
    assert all(isinstance(outcome, AuditWriteError) for outcome in outcomes)
    log.close()
    again, report = AuditLog.open(path)
    again.close()
    assert report.chain_ok and report.last_seq == 2


def test_an_async_write_failure_reaches_every_waiting_caller(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every append in a failed group commit raises AuditWriteError; none is reported as written."""
    log, _ = AuditLog.open(path)

    def broken_write(fd: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", broken_write)

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(log.append("test.event", AGENT) for _ in range(20)), return_exceptions=True
        )

    try:
        outcomes = asyncio.run(main())
    finally:
        monkeypatch.undo()
        log.close()
    assert len(outcomes) == 20
    assert all(isinstance(outcome, AuditWriteError) for outcome in outcomes)
    assert path.read_bytes() == b""


def test_drain_waits_for_queued_appends_before_close(path: Path) -> None:
    """close() refuses while appends are queued; drain() lands them, then close works."""
    log, _ = AuditLog.open(path)

    async def main() -> None:
        tasks = [asyncio.create_task(log.append("test.event", AGENT)) for _ in range(10)]
        await asyncio.sleep(0)  # let the appends queue
        with pytest.raises(AuditError, match="in flight"):
            log.close()
        await log.drain()
        assert all(task.done() for task in tasks)
        await log.aclose()

    asyncio.run(main())
    assert len(path.read_bytes().splitlines()) == 10 and file_verifies(path)


def test_recovery_summary_and_logs_never_carry_payloads(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing the store reports about a damaged log repeats payload content."""
    log, _ = AuditLog.open(path)
    log.append_sync("test.event", AGENT, None, {"token": "s3cr3t-value"})
    log.append_sync("test.event", AGENT, None, {"token": "s3cr3t-other"})
    log.close()
    data = path.read_bytes().replace(b"s3cr3t-value", b"s3cr3t-VALUE")
    path.write_bytes(data + b'{"token":"s3cr3t-torn"')
    with caplog.at_level("DEBUG"):
        log, report = AuditLog.open(path)
        log.close()
    assert report.repaired and not report.chain_ok
    text = report.summary() + repr(report) + caplog.text
    assert "s3cr3t" not in text


def test_timestamps_are_utc_and_ids_unique_across_reopen(path: Path) -> None:
    """Records carry UTC timestamps close to now and fresh ids after a restart."""
    before = datetime.now(UTC)
    first = fill(path, 2)
    second = fill(path, 2)
    assert all(record.ts.utcoffset() == timedelta(0) for record in first + second)
    assert all(before <= record.ts <= datetime.now(UTC) for record in first + second)
    assert len({record.id for record in first + second}) == 4
    assert [record.seq for record in second] == [3, 4]
