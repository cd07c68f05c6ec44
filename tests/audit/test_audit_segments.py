"""The audit log across segments: rotation, reads, reopen, crash recovery and its settings."""

from __future__ import annotations

import asyncio
import hashlib
import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from audit.kill import run_and_kill

from aileron_cli.daemon.audit.checkpoint import MAGIC, checkpoint_path, keep_rejected
from aileron_cli.daemon.audit.config import (
    AuditConfig,
    load_audit_config,
    parse_audit_config,
)
from aileron_cli.daemon.audit.log import DEFAULT_SEGMENT_BYTES, AuditLog
from aileron_core.audit import GENESIS_PREV, Actor, AuditRecord
from aileron_core.errors import ConfigError
from aileron_core.paths import Layout

AGENT = Actor(type="agent", id="sess-1")
SEGMENT = 4096
FILL = "x" * 200


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "home")


def fill(layout: Layout, count: int, start: int = 0) -> list[AuditRecord]:
    """Append ``count`` records (about 400 bytes each) with small segments; close cleanly."""
    log, _ = AuditLog.open(layout.audit, segment_bytes=SEGMENT)
    try:
        return [
            log.append_sync(
                ("action.invoked", "session.started")[n % 2],
                AGENT,
                f"s{n % 3}",
                {"n": n, "fill": FILL},
            )
            for n in range(start, start + count)
        ]
    finally:
        log.close()


def lines_of(segment: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in segment.read_bytes().splitlines()]


def test_rotation_makes_several_private_segments_whose_chain_verifies_across_them(
    layout: Layout,
) -> None:
    """Small segments: >= 3 rotated files, each 0600, the chain links across them and verifies."""
    log, _ = AuditLog.open(layout.audit, segment_bytes=SEGMENT)
    try:
        for n in range(60):
            log.append_sync("action.invoked", AGENT, None, {"n": n, "fill": FILL})
        assert log.verify().ok and log.verify().records == 60
        assert log.segment_count == len(layout.audit_segments())
    finally:
        log.close()
    segments = layout.audit_segments()
    assert len(segments) >= 4 and segments[-1] == layout.audit
    assert segments[0] == layout.audit_segment(1)
    prev, seq = GENESIS_PREV, 1
    for segment in segments:
        assert stat.S_IMODE(segment.stat().st_mode) == 0o600
        for value in lines_of(segment):
            assert (value["seq"], value["prev"]) == (seq, prev)
            prev, seq = value["hash"], seq + 1
    for segment in segments[:-1]:
        assert segment.stat().st_size >= SEGMENT
    assert seq == 61


def test_get_and_list_find_records_in_every_segment(layout: Layout) -> None:
    """get by id and list (with filters and paging) return records from rotated segments too."""
    written = fill(layout, 50)
    assert len(layout.audit_segments()) >= 3
    log, _ = AuditLog.open(layout.audit, segment_bytes=SEGMENT)
    try:
        asyncio.run(_append_more(log))  # the tail cache now holds only the newest 1024
        for record in written:
            assert log.get(record.id) == record
        assert log.list(limit=50, before_seq=51) == written
        assert log.list(session_id="s1", before_seq=51) == [
            r for r in written if r.session_id == "s1"
        ]
        assert log.list(after_seq=10, before_seq=14) == written[10:13]
    finally:
        log.close()


async def _append_more(log: AuditLog) -> None:
    await asyncio.gather(*(log.submit("action.more", AGENT, None, {}) for _ in range(1100)))


def test_reopen_with_the_checkpoint_walks_nothing_and_continues_the_chain(layout: Layout) -> None:
    """After a clean close the checkpoint covers every segment; appends then continue and verify."""
    written = fill(layout, 40)
    log, report = AuditLog.open(layout.audit, segment_bytes=SEGMENT)
    try:
        assert report.checkpoint == "used" and report.scanned_lines == 0
        assert report.segments == len(layout.audit_segments()) >= 3
        assert report.records == 40 and report.chain_ok
        assert [log.get(record.id) for record in written] == written
        log.append_sync("action.after", AGENT, None, {"fill": FILL})
        assert log.verify().ok and log.last_seq == 41
    finally:
        log.close()


def test_reopen_without_the_checkpoint_walks_every_segment(layout: Layout) -> None:
    """With no checkpoint the open walks all segments as one stream and finds every record."""
    written = fill(layout, 40)
    checkpoint_path(layout.audit).unlink()
    log, report = AuditLog.open(layout.audit, segment_bytes=SEGMENT)
    try:
        assert report.checkpoint == "absent" and report.scanned_lines == 40 and report.chain_ok
        assert log.list() == written and log.tip() == (40, written[-1].hash)
    finally:
        log.close()


def test_a_crash_between_rename_and_new_file_recovers_with_a_fresh_active_segment(
    layout: Layout,
) -> None:
    """Rotated segments but no audit.jsonl: open creates it and the chain continues, intact."""
    written = fill(layout, 30)
    rotated = len(layout.audit_segments()) - 1
    layout.audit.rename(layout.audit_segment(rotated + 1))  # the rename landed; nothing after
    log, report = AuditLog.open(layout.audit, segment_bytes=SEGMENT)
    try:
        assert not report.created and report.chain_ok and report.records == 30
        assert report.checkpoint == "used"
        assert stat.S_IMODE(layout.audit.stat().st_mode) == 0o600
        record = log.append_sync("action.after", AGENT, None, {})
        assert (record.seq, record.prev) == (31, written[-1].hash)
        assert log.verify().ok
    finally:
        log.close()
    assert lines_of(layout.audit)[0]["seq"] == 31


def test_an_edited_rotated_segment_rejects_the_checkpoint_which_is_kept_not_overwritten(
    layout: Layout,
) -> None:
    """The rejected checkpoint is renamed (reported by name) byte for byte; the edit is named."""
    fill(layout, 40)
    original = checkpoint_path(layout.audit).read_bytes()
    first = layout.audit_segment(1)
    first.write_bytes(first.read_bytes().replace(b'"n":2}', b'"n":9}'))
    log, report = AuditLog.open(layout.audit, segment_bytes=SEGMENT)
    log.close()
    assert report.checkpoint == "rejected" and not report.chain_ok
    assert report.verify.first_bad_seq == 3
    kept = report.checkpoint_kept_as
    assert kept is not None and kept.startswith("audit.jsonl.checkpoint.rejected-")
    assert (layout.home / kept).read_bytes() == original
    assert kept in report.summary()
    assert not checkpoint_path(layout.audit).exists()  # a broken chain writes none


def test_a_rotated_segment_copied_back_is_rehashed_and_the_checkpoint_still_used(
    layout: Layout,
) -> None:
    """A segment with a new inode but the same bytes (a restore) costs a re-hash, not a walk."""
    written = fill(layout, 40)
    second = layout.audit_segment(2)
    copy = layout.home / "copy"
    copy.write_bytes(second.read_bytes())
    copy.chmod(0o600)
    copy.replace(second)
    log, report = AuditLog.open(layout.audit, segment_bytes=SEGMENT)
    try:
        assert report.checkpoint == "used" and report.scanned_lines == 0 and report.chain_ok
        assert log.list() == written
    finally:
        log.close()


def test_a_version_1_checkpoint_from_before_segments_is_still_used(layout: Layout) -> None:
    """A checkpoint written before segments existed (version 1, one file) still holds."""
    log, _ = AuditLog.open(layout.audit)
    for n in range(10):
        log.append_sync("action.invoked", AGENT, None, {"n": n})
    log.close()
    checkpoint = checkpoint_path(layout.audit)
    data = checkpoint.read_bytes()[:-32]
    assert data.startswith(MAGIC + b"2\n") and b',"segments":[]' in data
    old = MAGIC + b"1\n" + data[len(MAGIC) + 2 :].replace(b',"segments":[]', b"", 1)
    old = old.replace(b'"version":2', b'"version":1', 1)
    checkpoint.write_bytes(old + hashlib.sha256(old).digest())
    log, report = AuditLog.open(layout.audit, segment_bytes=SEGMENT)
    log.close()
    assert report.checkpoint == "used" and report.scanned_lines == 0 and report.records == 10


def test_a_second_rejection_in_the_same_second_gets_a_counter(tmp_path: Path) -> None:
    """Two checkpoints rejected at one timestamp are both kept, under distinct names."""
    path = tmp_path / "audit.jsonl.checkpoint"
    now = datetime(2026, 12, 5, 6, 7, 8, tzinfo=UTC)
    path.write_bytes(b"one")
    assert keep_rejected(path, now) == "audit.jsonl.checkpoint.rejected-20261205T060708Z"
    path.write_bytes(b"two")
    assert keep_rejected(path, now) == "audit.jsonl.checkpoint.rejected-20261205T060708Z-2"
    assert (tmp_path / "audit.jsonl.checkpoint.rejected-20261205T060708Z").read_bytes() == b"one"
    assert (tmp_path / "audit.jsonl.checkpoint.rejected-20261205T060708Z-2").read_bytes() == b"two"


def test_a_torn_looking_rotated_segment_is_never_cut_only_reported(layout: Layout) -> None:
    """Torn-tail repair applies to the active segment only: a rotated file is left as it is."""
    fill(layout, 40)
    first = layout.audit_segment(1)
    first.write_bytes(first.read_bytes() + b'{"seq":')
    size = first.stat().st_size
    log, report = AuditLog.open(layout.audit, segment_bytes=SEGMENT)
    log.close()
    assert first.stat().st_size == size and not report.repaired
    assert not report.chain_ok and report.unreadable_lines == 1


def test_verify_fails_when_a_rotated_segment_is_removed(layout: Layout) -> None:
    """verify() re-reads every segment: a deleted middle segment is reported, not skipped."""
    fill(layout, 40)
    log, _ = AuditLog.open(layout.audit, segment_bytes=SEGMENT)
    try:
        layout.audit_segment(2).unlink()
        verdict = log.verify()
        assert not verdict.ok and verdict.reason is not None and "segment" in verdict.reason
    finally:
        log.close()


def test_on_commit_hears_each_commit_and_tip_matches(layout: Layout) -> None:
    """The hook gets (last seq, last hash, records in the commit); a failing hook loses nothing."""
    heard: list[tuple[int, str, int]] = []
    log, _ = AuditLog.open(layout.audit, segment_bytes=SEGMENT)
    try:
        log.on_commit = lambda seq, hash, count: heard.append((seq, hash, count))
        first = log.append_sync("action.invoked", AGENT, None, {})
        records = asyncio.run(_three(log))
        assert heard[0] == (1, first.hash, 1)
        assert heard[-1][:2] == (4, records[-1].hash) and sum(c for _, _, c in heard) == 4
        assert log.tip() == (4, records[-1].hash)

        def broken(seq: int, hash: str, count: int) -> None:
            raise RuntimeError("signer down")

        log.on_commit = broken
        assert log.append_sync("action.invoked", AGENT, None, {}).seq == 5
        assert log.tip()[0] == 5 and log.verify().ok
    finally:
        log.close()


async def _three(log: AuditLog) -> list[AuditRecord]:
    return list(await asyncio.gather(*(log.submit("action.x", AGENT, None, {}) for _ in range(3))))


def test_kill_9_while_appending_with_rotation_loses_no_acknowledged_event(layout: Layout) -> None:
    """SIGKILL mid-appends with frequent rotation: reopen keeps every acked seq, chain verifies."""
    acked: set[int] = set()
    for round, (acks_before_kill, workers) in enumerate([(300, 8), (500, 32)]):
        acked |= run_and_kill(layout.audit, acks_before_kill, workers, 3000, 64 << 10)
        log, report = AuditLog.open(layout.audit, segment_bytes=64 << 10)
        try:
            assert report.chain_ok and report.unreadable_lines == 0, report.summary()
            # Round 2: the checkpoint of round 1's clean close predates the new rotations.
            assert report.checkpoint == ("absent", "used")[round]
            on_disk = {record.seq for record in log.list()}
            assert on_disk == set(range(1, log.last_seq + 1))
            assert acked <= on_disk, sorted(acked - on_disk)[:10]
            assert log.verify().ok
        finally:
            log.close()
    assert len(layout.audit_segments()) >= 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1 << 20, 1 << 20),
        ('"64 MiB"', 64 << 20),
        ('"512 KiB"', 512 << 10),
        ('"2GiB"', 2 << 30),
        ('"100 kb"', 100 << 10),
        ('"70000"', 70000),
    ],
)
def test_segment_size_accepts_bytes_and_sizes_with_units(
    tmp_path: Path, value: object, expected: int
) -> None:
    """[audit] segment_size takes an integer of bytes or "<n> <unit>" (KiB/MiB/GiB, any case)."""
    config = tmp_path / "config.toml"
    config.write_text(f"[audit]\nsegment_size = {value}\n")
    assert load_audit_config(config) == AuditConfig(segment_bytes=expected)


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"segment_size": "64 parsecs"}, "not a size"),
        ({"segment_size": "-1 MiB"}, "not a size"),
        ({"segment_size": 1.5}, "integer or a string"),
        ({"segment_size": True}, "integer or a string"),
        ({"segment_size": 100}, "between 64 KiB and 1 TiB"),
        ({"segment_size": "2 TiB"}, "not a size"),
        ({"segment_sise": 1 << 20}, "unknown setting 'segment_sise'"),
    ],
)
def test_bad_segment_sizes_are_config_errors_naming_the_setting(
    table: dict[str, object], named: str
) -> None:
    """A wrong unit, type, range or key is a ConfigError that says what and where."""
    with pytest.raises(ConfigError) as caught:
        parse_audit_config({"audit": table}, "/h/config.toml")
    assert named in caught.value.message and "/h/config.toml" in caught.value.message


def test_no_config_file_or_no_audit_table_means_the_default(tmp_path: Path) -> None:
    """Without config.toml or [audit], segments rotate at 64 MiB; bad TOML is a ConfigError."""
    config = tmp_path / "config.toml"
    assert load_audit_config(config).segment_bytes == DEFAULT_SEGMENT_BYTES == 64 << 20
    config.write_text('[gateway.openai]\nbase_url = "http://127.0.0.1:1"\n')
    assert load_audit_config(config) == AuditConfig()
    config.write_text("[audit\n")
    with pytest.raises(ConfigError):
        load_audit_config(config)
