"""Opening the audit log: the one walk that repairs a torn tail, indexes and verifies it.

``recover`` reads the log's segments once, as one stream, line by line (``read_lines``, which
``AuditLog.verify`` also uses): every readable record goes into the ``AuditIndex`` and through
a ``ChainVerifier``, and a torn tail of the active segment is cut off (the file truncated and
fsynced). ``RecoveryReport`` says what it found and did; ``Recovered`` adds where the log's
appends continue.

When a checkpoint (``aileron_cli.daemon.audit.checkpoint``) vouches for a prefix of the file,
``recover`` is given a ``Resume``: the index already holds the prefix's records, and the walk
starts at the end of the prefix, continuing the chain from the checkpoint's last seq and hash.
Either way every byte ``recover`` keeps is fed to ``hashes`` (one sha256 per segment), so the
caller's hashes cover exactly the bytes that were verified (what the next checkpoint vouches
for).
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO, Literal

import attrs

from aileron_cli.daemon.audit.index import AuditIndex
from aileron_cli.daemon.audit.segments import SegmentHashes, Segments
from aileron_core.audit import GENESIS_PREV, AuditRecord, ChainVerifier, VerifyReport
from aileron_core.convert import converter

__all__ = ["CheckpointStatus", "Recovered", "RecoveryReport", "Resume", "read_lines", "recover"]

_READ_CHUNK = 1 << 20

CheckpointStatus = Literal["absent", "used", "rejected"]


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

    ``checkpoint`` says whether a checkpoint was ``absent``, ``used`` (the walk started at
    ``scanned_from``, the end of the prefix it vouches for) or ``rejected`` (why:
    ``checkpoint_reason``; the whole file was walked instead). ``scanned_lines`` counts the
    lines this open read and checked. A rejected checkpoint is kept, renamed to
    ``checkpoint_kept_as`` (a file name beside the log; ``None`` if it could not be moved).
    Offsets are global: positions in the concatenation of the log's ``segments`` files.
    """

    created: bool
    records: int
    last_seq: int
    dropped_bytes: int
    dropped_lines: int
    dropped_at: int | None
    unreadable_lines: int
    verify: VerifyReport
    checkpoint: CheckpointStatus = "absent"
    checkpoint_reason: str | None = None
    scanned_from: int = 0
    scanned_lines: int = 0
    checkpoint_kept_as: str | None = None
    segments: int = 1

    @property
    def full_scan(self) -> bool:
        """Whether the whole file was read and verified (no checkpoint was used)."""
        return self.checkpoint != "used"

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
        if self.segments > 1:
            parts.append(f"{self.segments} segments")
        if self.created:
            parts.append("created")
        if self.checkpoint == "used":
            parts.append(
                f"checkpoint used: {self.scanned_lines} line(s) after byte {self.scanned_from} "
                "scanned"
            )
        elif self.checkpoint == "rejected":
            kept = f", kept as {self.checkpoint_kept_as}" if self.checkpoint_kept_as else ""
            parts.append(f"CHECKPOINT REJECTED ({self.checkpoint_reason}{kept}); full scan")
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
    """The global size after any repair: where the next append lands."""
    next_seq: int
    """The seq the next record gets (1 when there is no readable record)."""
    last_hash: str
    """The hash of the last readable record (``GENESIS_PREV`` when there is none)."""
    newest: tuple[AuditRecord, ...]
    """The newest records (at most ``keep``), oldest first."""


@attrs.frozen(kw_only=True)
class Resume:
    """Where a walk starts when a checkpoint vouches for the file's first ``offset`` bytes: a
    verified chain of ``last_seq`` records (one per line), ending with ``last_hash``."""

    offset: int
    last_seq: int
    last_hash: str


class _ResumedVerifier(ChainVerifier):
    """A ``ChainVerifier`` that has already accepted ``resume.last_seq`` records."""

    def __init__(self, resume: Resume) -> None:
        super().__init__()
        # ChainVerifier keeps its position in these attributes; a checkpoint only ever covers
        # a chain that verified, one record per line, so this is the state it had there.
        self._line = resume.last_seq
        self._verified = resume.last_seq
        self._expected_seq = resume.last_seq + 1
        self._last_hash = resume.last_hash


def recover(
    segments: Segments,
    index: AuditIndex,
    *,
    created: bool,
    keep: int,
    hashes: SegmentHashes,
    resume: Resume | None = None,
    checkpoint: CheckpointStatus = "absent",
    checkpoint_reason: str | None = None,
    checkpoint_kept_as: str | None = None,
) -> Recovered:
    """Walk the log's ``segments`` once, as one stream: index, repair a torn tail, verify.

    Every readable record is added to ``index`` (at its global offset); the ``keep`` newest
    come back parsed. Only the active segment's end can be torn and cut: a rotated segment was
    complete when it was renamed, so whatever it holds is fed to the chain as it is.
    ``created`` (the file was just made) and the checkpoint's fate are passed on to the report.
    With ``resume``, only the bytes after ``resume.offset`` are read (``index`` and ``hashes``
    already cover the rest); every line kept is fed to ``hashes``.
    """
    verifier = ChainVerifier() if resume is None else _ResumedVerifier(resume)
    start = 0 if resume is None else resume.offset
    scanned = 0
    last: dict[str, Any] | None = None
    newest: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
    unreadable = 0
    held: tuple[int, bytes] | None = None  # the last complete line, fed once we know more
    torn_at: int | None = None
    torn_lines = 0

    def take(offset: int, line: bytes) -> None:
        nonlocal last, unreadable, scanned
        hashes.update(line)
        scanned += 1
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

    active = segments.active
    for position, segment in enumerate(segments.items):
        end = segments.end_of(position)
        if end <= start and segment is not active:
            continue
        local = max(0, start - segment.start)
        hashes.finish_until(position)
        with os.fdopen(os.dup(segment.fd), "rb") as handle:
            if segment is not active:
                for offset, line in read_lines(handle, end - segment.start - local, start=local):
                    take(segment.start + offset, line)
                continue
            for offset, line in read_lines(handle, start=local):
                if not line.endswith(b"\n"):
                    torn_at, torn_lines = segment.start + offset, 1
                    break
                if held is not None:
                    take(*held)
                held = (segment.start + offset, line)
    if held is not None:
        if _is_json(held[1]):
            take(*held)
        else:
            torn_at, torn_lines = held[0], torn_lines + 1
    size = segments.size()
    truncated = 0
    if torn_at is not None:
        truncated = size - torn_at
        os.ftruncate(active.fd, torn_at - active.start)
        os.fsync(active.fd)
        size = torn_at
    if last is not None:
        next_seq, last_hash = last["seq"] + 1, last["hash"]
    elif resume is not None:
        next_seq, last_hash = resume.last_seq + 1, resume.last_hash
    else:
        next_seq, last_hash = 1, GENESIS_PREV
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
        checkpoint=checkpoint,
        checkpoint_reason=checkpoint_reason,
        checkpoint_kept_as=checkpoint_kept_as,
        scanned_from=start,
        scanned_lines=scanned + torn_lines,
        segments=len(segments.items),
    )
    return Recovered(
        report=report, size=size, next_seq=next_seq, last_hash=last_hash, newest=records
    )


def read_lines(
    handle: BinaryIO, limit: int | None = None, *, start: int = 0
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, line)`` for each line of a binary file from byte ``start`` (up to
    ``limit`` bytes), the last maybe without its newline."""
    if start:
        handle.seek(start)
    offset = start
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
