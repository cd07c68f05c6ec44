"""Opening ``audit.jsonl``: the one walk that repairs a torn tail, indexes and verifies it.

``recover`` reads the file once, line by line (``read_lines``, which ``AuditLog.verify`` also
uses): every readable record goes into the ``AuditIndex`` and through a ``ChainVerifier``, and a
torn tail is cut off (the file truncated and fsynced). ``RecoveryReport`` says what it found and
did; ``Recovered`` adds where the log's appends continue.
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO

import attrs

from aileron_cli.daemon.audit_index import AuditIndex
from aileron_core.audit import GENESIS_PREV, AuditRecord, ChainVerifier, VerifyReport
from aileron_core.convert import converter

__all__ = ["Recovered", "RecoveryReport", "read_lines", "recover"]

_READ_CHUNK = 1 << 20


@attrs.frozen
class RecoveryReport:
    """What :meth:`AuditLog.open` found and did.

    ``dropped_bytes`` > 0 means a torn tail (``dropped_lines`` lines: a last line without its
    newline, and/or a last complete line that is not even JSON) was cut off at offset
    ``dropped_at``; a write is acknowledged only after its newline is on disk, so no caller was
    ever told these lines were recorded. A last line that is JSON but not an intact record looks
    like an edit, not a torn write: it is kept, like every unreadable line before the tail
    (``unreadable_lines``), and the chain reports it. ``verify`` is the
    chain's verdict after any repair; appends continue after the last readable record either way.
    """

    created: bool
    records: int
    last_seq: int
    dropped_bytes: int
    dropped_lines: int
    dropped_at: int | None
    unreadable_lines: int
    verify: VerifyReport

    @property
    def repaired(self) -> bool:
        """Whether a torn tail was cut off."""
        return self.dropped_bytes > 0

    @property
    def chain_ok(self) -> bool:
        """Whether the chain verified (``verify.ok``)."""
        return self.verify.ok

    @property
    def reason(self) -> str | None:
        """Why the chain did not verify (``verify.reason``), or ``None``."""
        return self.verify.reason

    def summary(self) -> str:
        """One line for the daemon's log (never any payload)."""
        parts = [f"audit log: {self.records} records, last seq {self.last_seq}"]
        if self.created:
            parts.append("created")
        if self.repaired:
            parts.append(
                f"torn tail truncated ({self.dropped_lines} line(s), "
                f"{self.dropped_bytes} bytes at offset {self.dropped_at})"
            )
        if self.unreadable_lines:
            parts.append(f"{self.unreadable_lines} unreadable line(s) kept")
        if self.verify.ok:
            parts.append("chain verified")
        else:
            parts.append(
                f"CHAIN BROKEN at seq {self.verify.first_bad_seq} "
                f"(line {self.verify.first_bad_line}): {self.verify.reason}"
            )
        return "; ".join(parts)


@attrs.frozen(kw_only=True)
class Recovered:
    """What ``recover`` found, and where the log continues from."""

    report: RecoveryReport
    size: int
    """The file's size after any repair: where the next append lands."""
    next_seq: int
    """The seq the next record gets (1 when there is no readable record)."""
    last_hash: str
    """The hash of the last readable record (``GENESIS_PREV`` when there is none)."""
    newest: tuple[AuditRecord, ...]
    """The newest records (at most ``keep``), oldest first."""


def recover(fd: int, size: int, index: AuditIndex, *, created: bool, keep: int) -> Recovered:
    """Walk the log open at ``fd`` (``size`` bytes) once: index, repair a torn tail, verify.

    Every readable record is added to ``index``; the ``keep`` newest come back parsed.
    ``created`` (the file was just made) is passed on to the report.
    """
    verifier = ChainVerifier()
    last: dict[str, Any] | None = None
    newest: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
    unreadable = 0
    held: tuple[int, bytes] | None = None  # the last complete line, fed once we know more
    torn_at: int | None = None
    torn_lines = 0

    def take(offset: int, line: bytes) -> None:
        nonlocal last, unreadable
        value = verifier.feed(line)
        if value is None:
            unreadable += 1
            return
        last = value
        index.add(
            offset,
            len(line),
            seq=value["seq"],
            id=value["id"],
            ts=datetime.fromisoformat(value["ts"]),
            type=value["type"],
            session_id=value["session_id"],
        )
        newest.append(value)

    with os.fdopen(os.dup(fd), "rb") as handle:
        for offset, line in read_lines(handle):
            if not line.endswith(b"\n"):
                torn_at, torn_lines = offset, 1
                break
            if held is not None:
                take(*held)
            held = (offset, line)
    if held is not None:
        if _is_json(held[1]):
            take(*held)
        else:
            torn_at, torn_lines = held[0], torn_lines + 1
    truncated = 0
    if torn_at is not None:
        truncated = size - torn_at
        os.ftruncate(fd, torn_at)
        os.fsync(fd)
        size = torn_at
    next_seq, last_hash = (last["seq"] + 1, last["hash"]) if last is not None else (1, GENESIS_PREV)
    records = tuple(converter.structure(value, AuditRecord) for value in newest)
    report = RecoveryReport(
        created=created,
        records=len(index),
        last_seq=next_seq - 1,
        dropped_bytes=truncated,
        dropped_lines=torn_lines,
        dropped_at=torn_at,
        unreadable_lines=unreadable,
        verify=verifier.report(),
    )
    return Recovered(
        report=report, size=size, next_seq=next_seq, last_hash=last_hash, newest=records
    )


def read_lines(handle: BinaryIO, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, line)`` for each line of a binary file, the last maybe without newline."""
    offset = 0
    pending = b""
    remaining = limit
    while True:
        size = _READ_CHUNK if remaining is None else min(_READ_CHUNK, remaining)
        chunk = handle.read(size) if size else b""
        if not chunk:
            break
        if remaining is not None:
            remaining -= len(chunk)
        data = pending + chunk
        start = 0
        while (end := data.find(b"\n", start)) != -1:
            yield offset, data[start : end + 1]
            offset += end + 1 - start
            start = end + 1
        pending = data[start:]
    if pending:
        yield offset, pending


def _is_json(line: bytes) -> bool:
    """Whether ``line`` is JSON at all: a torn write is not; an edited record still is."""
    try:
        json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):
        return False
    return True
