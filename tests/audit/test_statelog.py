"""The append-only JSONL state logs behind sessions.jsonl and approvals.jsonl."""

from __future__ import annotations

import asyncio
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aileron_cli.daemon.store.statelog import StateLog, StateLogError, StateRecordError
from aileron_core.canonical import canonical_json


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "sessions.jsonl"


def reopen(path: Path) -> StateLog:
    log = StateLog(path)
    log.close()
    return log


def test_a_new_log_is_private_and_empty(path: Path) -> None:
    """Opening a missing state log creates it 0600 in a 0700 directory, with nothing to replay."""
    log = StateLog(path)
    log.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert log.replay() == {} and not log.recovery.repaired


def test_replay_keeps_the_last_record_per_id(path: Path) -> None:
    """After a restart the last record appended for each id wins, in first-seen id order."""
    log = StateLog(path)
    log.append({"id": "a", "state": "running"})
    log.append({"id": "b", "state": "running"})
    log.append({"id": "a", "state": "ended", "exit_code": 0})
    assert log.replay() == {
        "a": {"id": "a", "state": "ended", "exit_code": 0},
        "b": {"id": "b", "state": "running"},
    }
    log.close()
    replayed = reopen(path).replay()
    assert list(replayed) == ["a", "b"]
    assert replayed["a"]["state"] == "ended" and replayed["b"]["state"] == "running"
    assert path.read_bytes().count(b"\n") == 3


def test_each_append_is_one_canonical_line(path: Path) -> None:
    """append writes the record as one canonical JSON line."""
    log = StateLog(path)
    log.append({"state": "x", "id": "a", "n": [1, 2]})
    log.close()
    assert path.read_bytes() == canonical_json({"id": "a", "n": [1, 2], "state": "x"}) + b"\n"


def test_a_torn_last_line_is_truncated_and_reported(path: Path) -> None:
    """A last line without newline is cut off on open and reported; the next append is clean."""
    log = StateLog(path)
    log.append({"id": "a", "v": 1})
    log.close()
    intact = path.read_bytes()
    path.write_bytes(intact + b'{"id":"a","v":')
    log = StateLog(path)
    assert (log.recovery.dropped_bytes, log.recovery.dropped_lines) == (14, 1)
    assert path.read_bytes() == intact
    log.append({"id": "a", "v": 2})
    log.close()
    again = reopen(path)
    assert again.replay() == {"a": {"id": "a", "v": 2}} and not again.recovery.repaired


def test_an_unparsable_last_line_is_truncated(path: Path) -> None:
    """A complete last line that is not a record is a torn write: it is cut off."""
    log = StateLog(path)
    log.append({"id": "a"})
    log.close()
    intact = path.read_bytes()
    path.write_bytes(intact + b"\x00\x00garbage\n")
    log = reopen(path)
    assert (log.recovery.dropped_lines, log.recovery.dropped_bytes) == (1, 10)
    assert path.read_bytes() == intact and log.replay() == {"a": {"id": "a"}}


def test_bad_lines_before_the_tail_are_skipped_and_kept(path: Path) -> None:
    """Lines in the middle that are not records are reported by number and left on disk."""
    content = b'{"id":"a"}\nnot json\n{"no_id":1}\n{"id":"b"}\n'
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    log = reopen(path)
    assert log.recovery.skipped_lines == (2, 3) and log.recovery.lines == 4
    assert set(log.replay()) == {"a", "b"}
    assert path.read_bytes() == content


def test_compaction_keeps_exactly_the_current_records(path: Path) -> None:
    """compact(current) atomically rewrites one line per id; appends afterwards still land."""
    log = StateLog(path)
    for version in range(5):
        for key in ("a", "b", "c"):
            log.append({"id": key, "v": version})
    current = {"c": {"id": "c", "v": 9}, "a": {"id": "a", "v": 4}}
    log.compact(current)
    assert path.read_bytes().splitlines() == [canonical_json(v) for v in current.values()]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["sessions.jsonl"]
    assert log.replay() == current
    log.append({"id": "d", "v": 0})
    log.close()
    assert reopen(path).replay() == {**current, "d": {"id": "d", "v": 0}}


def test_compaction_defaults_to_the_logs_own_state(path: Path) -> None:
    """compact() with no argument keeps the last record per id the log has seen."""
    log = StateLog(path)
    for version in range(3):
        log.append({"id": "a", "v": version})
    log.append({"id": "b", "v": 0})
    log.compact()
    log.close()
    assert path.read_bytes() == b'{"id":"a","v":2}\n{"id":"b","v":0}\n'


@pytest.mark.parametrize(
    "record",
    [{"v": 1}, {"id": ""}, {"id": 3}, {"id": "a", "x": object()}, {"id": "a", "x": float("nan")}],
)
def test_an_invalid_record_is_refused_and_nothing_written(path: Path, record: Any) -> None:
    """A record without a string id, or not plain JSON, raises StateRecordError; file intact."""
    log = StateLog(path)
    try:
        with pytest.raises(StateRecordError):
            log.append(record)
        with pytest.raises(StateRecordError):
            log.compact({"a": record})
    finally:
        log.close()
    assert path.read_bytes() == b""


def test_compaction_refuses_a_record_filed_under_another_id(path: Path) -> None:
    """compact rejects current[key] whose id is not key, leaving the file as it was."""
    log = StateLog(path)
    log.append({"id": "a"})
    with pytest.raises(StateRecordError):
        log.compact({"a": {"id": "b"}})
    log.close()
    assert path.read_bytes() == b'{"id":"a"}\n'


def test_an_existing_loose_file_is_made_private(path: Path) -> None:
    """A state file found with mode 0644 is tightened to 0600 on open."""
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"id":"a"}\n')
    path.chmod(0o644)
    reopen(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_async_append_and_closed_log(path: Path) -> None:
    """aappend is durable like append; a closed log refuses appends with StateLogError."""
    log = StateLog(path)
    asyncio.run(log.aappend({"id": "a", "v": 1}))
    log.close()
    with pytest.raises(StateLogError):
        log.append({"id": "b"})
    assert reopen(path).replay() == {"a": {"id": "a", "v": 1}}


records = st.fixed_dictionaries(
    {"id": st.sampled_from(["a", "b", "c", "d"]), "v": st.integers() | st.text(max_size=5)}
)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(records, max_size=12), st.binary(max_size=30).filter(lambda b: b"\n" not in b))
def test_replay_matches_a_last_wins_model_despite_a_torn_tail(
    appended: list[dict[str, Any]], torn: bytes
) -> None:
    """Any append sequence replays to last-wins per id, even with a torn fragment at the end."""
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "approvals.jsonl"
        log = StateLog(target)
        for record in appended:
            log.append(record)
        log.close()
        with target.open("ab") as handle:
            handle.write(torn)
        model = {record["id"]: record for record in appended}
        replayed = reopen(target).replay()
        assert replayed == model
        assert list(replayed) == list(dict.fromkeys(record["id"] for record in appended))
