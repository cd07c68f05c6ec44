"""Append-only JSONL state logs: ``sessions.jsonl`` and ``approvals.jsonl``.

Each line is the canonical JSON of one record, a JSON object with a string ``"id"``. A change
to a session or approval appends its whole new state; replaying the file keeps the last record
per id (:meth:`StateLog.replay`). :meth:`StateLog.append` is durable (fdatasync) before it
returns. On a clean stop the daemon calls :meth:`StateLog.compact`, which atomically rewrites
the file with one line per id.

Opening repairs what a crash can leave: a last line without its newline, or a last complete
line that does not parse, is truncated (it was never acknowledged). Bad lines before the tail
are skipped and reported, never deleted, until the next compaction drops them.

The daemon's lifetime lock (``daemon.lock``) is what keeps a second writer away; this module
takes no lock of its own because compaction replaces the file.

Errors::

    AileronError
    └── StateLogError         state_log_error        the log was used after close()
        ├── StateRecordError  invalid_state_record   a record to append or compact is not valid
        └── StateWriteError   state_write_failed     a write or fsync failed (disk full,
                                                     read-only); nothing was recorded
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from aileron_core.canonical import canonical_json
from aileron_core.errors import AileronError
from aileron_core.fileio import atomic_write, fsync_dir
from aileron_core.paths import HOME_MODE, SECRET_FILE_MODE

Record = dict[str, Any]


class StateLogError(AileronError):
    """A state log cannot do what was asked."""

    code = "state_log_error"


class StateRecordError(StateLogError):
    """A record handed to a state log is not a JSON object with a non-empty string ``id``."""

    code = "invalid_state_record"


class StateWriteError(StateLogError):
    """Appending to a state log failed; the partial line, if any, was taken back."""

    code = "state_write_failed"


@attrs.frozen
class StateRecovery:
    """What opening a state log found and repaired.

    ``lines`` counts the complete lines kept. ``skipped_lines`` are the 1-based numbers of kept
    lines that are not a valid record (left on disk until the next compaction). ``dropped_bytes``
    > 0 means a torn tail of ``dropped_lines`` line(s) was cut off.
    """

    lines: int
    skipped_lines: tuple[int, ...]
    dropped_bytes: int
    dropped_lines: int

    @property
    def repaired(self) -> bool:
        """Whether a torn tail was cut off."""
        return self.dropped_bytes > 0


def _encode(record: Mapping[str, Any]) -> tuple[str, bytes]:
    if not isinstance(record, Mapping):
        raise StateRecordError(f"a state record must be a mapping, got {type(record).__name__}")
    record_id = record.get("id")
    if not isinstance(record_id, str) or not record_id:
        raise StateRecordError(f"a state record needs a non-empty string id, got {record_id!r}")
    try:
        line = canonical_json(record)
    except (TypeError, ValueError, RecursionError) as exc:
        raise StateRecordError(f"state record {record_id} is not plain JSON: {exc}") from exc
    return record_id, line + b"\n"


def _decode(line: bytes) -> Record | None:
    """The record on ``line``, or ``None`` if it is not a JSON object with a string id."""
    try:
        value = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        return None
    return value


class StateLog:
    """One append-only state file; safe to share between threads.

    ``StateLog(path)`` opens (or creates, 0600) the file, cuts off a torn tail and reads it;
    :attr:`recovery` says what it found. :meth:`replay` is the last record per id.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
        created = not path.exists()
        fd = _open_append(path)
        try:
            if created:
                fsync_dir(path.parent)
            records, recovery = _load(fd)
        except BaseException:
            os.close(fd)
            raise
        self._path = path
        self._fd = fd
        self._records = records
        self._lock = threading.Lock()
        self._closed = False
        self.recovery: StateRecovery = recovery

    @property
    def path(self) -> Path:
        """The file this log writes."""
        return self._path

    def replay(self) -> dict[str, Record]:
        """The last record per id (first-seen order): what the file holds, as opened plus
        every append and compaction since."""
        with self._lock:
            return dict(self._records)

    def append(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` (a JSON object with a string ``id``); durable when this returns."""
        record_id, line = _encode(record)
        with self._lock:
            self._check_open()
            start = os.fstat(self._fd).st_size
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view) :]
                os.fdatasync(self._fd)
            except OSError as exc:
                # A short write (a full disk) leaves part of the line; the next append would
                # glue its record onto it, and replay would drop that acknowledged record.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, start)
                raise StateWriteError(
                    f"could not write {self._path}: {exc.strerror or exc}",
                    hint="free disk space or make the file system writable, then retry",
                ) from exc
            self._records[record_id] = json.loads(line)

    async def aappend(self, record: Mapping[str, Any]) -> None:
        """:meth:`append` from async code, without blocking the event loop during the fsync."""
        await asyncio.to_thread(self.append, record)

    def compact(self, current: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Atomically rewrite the file with one line per id: ``current`` or, by default, the
        log's own last-record-per-id. Each ``current[key]["id"]`` must equal ``key``."""
        with self._lock:
            self._check_open()
            source = self._records if current is None else current
            records: dict[str, Record] = {}
            lines: list[bytes] = []
            for key, record in source.items():
                record_id, line = _encode(record)
                if record_id != key:
                    raise StateRecordError(f"state record under {key!r} has id {record_id!r}")
                records[record_id] = json.loads(line)
                lines.append(line)
            atomic_write(self._path, b"".join(lines), mode=SECRET_FILE_MODE)
            # The file is a new inode now: append to it from here on.
            fd = _open_append(self._path)
            os.close(self._fd)
            self._fd = fd
            self._records = records

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)

    def _check_open(self) -> None:
        if self._closed:
            raise StateLogError(f"the state log {self._path.name} is closed")


def _open_append(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, SECRET_FILE_MODE)
    if os.fstat(fd).st_mode & 0o777 != SECRET_FILE_MODE:
        os.fchmod(fd, SECRET_FILE_MODE)
    return fd


def _load(fd: int) -> tuple[dict[str, Record], StateRecovery]:
    """Read every line of ``fd``; truncate a torn tail; keep the last record per id."""
    with os.fdopen(os.dup(fd), "rb") as handle:
        data = handle.read()
    complete = data.rfind(b"\n") + 1  # bytes up to and including the last newline
    lines = [piece + b"\n" for piece in data[: complete - 1].split(b"\n")] if complete else []
    cut = complete
    dropped_lines = 1 if complete < len(data) else 0
    decoded = [_decode(line) for line in lines]
    if decoded and decoded[-1] is None:
        cut -= len(lines[-1])
        dropped_lines += 1
        decoded.pop()
    if cut < len(data):
        os.ftruncate(fd, cut)
        os.fsync(fd)
    records: dict[str, Record] = {}
    skipped: list[int] = []
    for number, record in enumerate(decoded, start=1):
        if record is None:
            skipped.append(number)
        else:
            records[record["id"]] = record
    recovery = StateRecovery(
        lines=len(decoded),
        skipped_lines=tuple(skipped),
        dropped_bytes=len(data) - cut,
        dropped_lines=dropped_lines,
    )
    return records, recovery


__all__ = ["StateLog", "StateLogError", "StateRecordError", "StateRecovery", "StateWriteError"]
