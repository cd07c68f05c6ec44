"""The daemon's audit file store: ``audit.jsonl``, append-only, hash-chained, fsynced.

Segments. Once a commit leaves ``audit.jsonl`` at ``segment_bytes`` or more, it is renamed to
the next ``audit.NNNNNN.jsonl`` (immutable from then on) and a fresh ``audit.jsonl`` continues
the chain (``aileron_cli.daemon.audit.segments``; ADR 0021). Offsets in the index and the
checkpoint are global: positions in the concatenation of every segment in order.

Write path. Every append is durable (written and fdatasynced) before it returns. Concurrent
``await log.append(...)`` calls are group-committed: they queue, and one writer task takes
everything queued, seals it onto the chain, writes it with one ``write`` and one ``fdatasync``
in a worker thread (the event loop keeps serving while the disk works), then wakes every caller.
A write or sync failure poisons the log: the chain on disk is then unknown, so every later
append fails with ``audit_write_failed`` until the daemon restarts and reopens (and repairs) it.

Read path. Opening the file walks it once (``aileron_cli.daemon.audit.recovery``): a torn last
line is truncated, the chain is verified, and a compact in-memory index
(``aileron_cli.daemon.audit.index``: offset, seq, time, type, session per record, plus
id -> position) is built. ``get``/``list`` read only the lines they return (with ``pread``), and
the most recent records are kept in memory, so tail reads do not touch the disk. Readers may
run in other threads; the index only ever shows fully committed records.

Checkpoint. A clean close of a log whose chain verified writes ``audit.jsonl.checkpoint``, so
the next open re-hashes the prefix it vouches for and walks only what came after it; see
``aileron_cli.daemon.audit.checkpoint``. ``verify`` ignores it and re-reads every segment.

Commit hook. ``on_commit`` (set by the daemon) hears ``(last_seq, last_hash, records)`` after
each commit; ``tip()`` gives the newest seq and hash together.

Errors (beside :mod:`aileron_core.audit`'s)::

    AuditError
    ├── AuditLogClosedError    audit_log_closed     the log was closed
    ├── AuditLogLockedError    audit_log_locked     another process has the file open for writing
    ├── AuditWriteError        audit_write_failed   a write or fsync failed; the log is poisoned
    └── AuditQueryError        invalid_audit_query  a list() argument is out of range
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from aileron_cli.daemon.audit import checkpoint as audit_checkpoint
from aileron_cli.daemon.audit.index import AuditIndex, to_micros
from aileron_cli.daemon.audit.recovery import RecoveryReport, read_lines
from aileron_cli.daemon.audit.segments import Segment, SegmentHashes, Segments, identity_of
from aileron_core.audit import (
    GENESIS_PREV,
    Actor,
    AuditCorruptError,
    AuditError,
    AuditEvent,
    AuditRecord,
    ChainVerifier,
    VerifyReport,
    parse_line,
    seal_line,
)
from aileron_core.fileio import fsync_dir
from aileron_core.paths import (
    HOME_MODE,
    SECRET_FILE_MODE,
    audit_segment_path,
    rotated_audit_segments,
)

log = logging.getLogger("aileron.daemon")

DEFAULT_SEGMENT_BYTES = 64 << 20
"""The active segment is rotated once a commit leaves it this large (``[audit] segment_size``)."""

RECENT_RECORDS = 1024
"""How many of the newest records stay in memory for cheap tail reads."""

MAX_BATCH = 1024
"""Most records one group commit writes."""


class AuditLogClosedError(AuditError):
    """The audit log was used after ``close()``."""

    code = "audit_log_closed"


class AuditLogLockedError(AuditError):
    """Another process holds the audit log open for writing."""

    code = "audit_log_locked"


class AuditWriteError(AuditError):
    """Writing or syncing the audit log failed; nothing more is accepted until a restart."""

    code = "audit_write_failed"


class AuditQueryError(AuditError):
    """An argument of :meth:`AuditLog.list` is out of range."""

    code = "invalid_audit_query"


class AuditLog:
    """The append-only, hash-chained audit file. Build it with :meth:`open`."""

    def __init__(self, path: Path, segments: Segments, segment_bytes: int) -> None:
        self._path = path
        self._segments = segments  # replaced (under both locks) by a rotation
        self._fd = segments.active.fd
        self._segment_bytes = segment_bytes
        self._size = segments.size()  # global: where the next append lands
        self.on_commit: Callable[[int, str, int], None] | None = None
        """Called after each successful commit with ``(last_seq, last_hash, records)``, from
        the committing thread, outside the locks (the daemon signs heads from it). Calls from
        ``append_sync`` and a concurrent async commit may arrive out of order; an exception is
        logged, never raised into the append (its records are already on disk)."""
        self._next_seq = 1
        self._last_hash = GENESIS_PREV
        self._index = AuditIndex()
        self._recent: collections.deque[AuditRecord] = collections.deque(maxlen=RECENT_RECORDS)
        self._commits = 0
        self._closed = False
        self._failure: BaseException | None = None
        # _write_lock serialises commits (and verify's snapshot); _index_lock guards the index
        # and the tail cache, which readers in any thread consult.
        self._write_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._no_readers = threading.Condition(self._index_lock)
        self._readers = 0  # threads reading record lines from the file right now
        self._pending: list[tuple[AuditEvent, asyncio.Future[AuditRecord]]] = []
        self._writer: asyncio.Task[None] | None = None
        # The sha256 of each segment's bytes as verified at open or written since; what the
        # checkpoint written at close vouches for. Guarded by _write_lock.
        self._hashes = SegmentHashes()
        self._checkpoint_ok = False  # whether the whole chain verified at open
        self._checkpointed_size: int | None = None  # what the checkpoint on disk covers

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: Path, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES
    ) -> tuple[AuditLog, RecoveryReport]:
        """Open (or create, 0600) the log whose active segment is ``path``, with its rotated
        segments (``audit.NNNNNN.jsonl``) before it; repair a torn tail, index and verify it.

        Once a commit leaves the active segment at ``segment_bytes`` or more, it is rotated.
        Raises :class:`AuditLogLockedError` if another process has it open.
        """
        if segment_bytes < 1:
            raise ValueError(f"segment_bytes must be positive, got {segment_bytes}")
        path.parent.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
        rotated: builtins.list[Segment] = []
        fd: int | None = None
        try:
            start = 0
            for _, segment_path in rotated_audit_segments(path):
                segment_fd = os.open(segment_path, os.O_RDONLY | os.O_CLOEXEC)
                identity = identity_of(segment_fd)
                rotated.append(Segment(segment_path, start, segment_fd, identity))
                start += os.fstat(segment_fd).st_size
            # No active file but rotated ones: a crash between a rotation's rename and the new
            # file; the fresh active segment continues the chain.
            created = not path.exists() and not rotated
            fd = _open_active(path)
            segments = Segments((*rotated, Segment(path=path, start=start, fd=fd)))
            log = cls(path, segments, segment_bytes)
            report = log._recover(created)
        except BaseException:
            for segment in rotated:
                os.close(segment.fd)
            if fd is not None:
                os.close(fd)
            raise
        return log, report

    def _recover(self, created: bool) -> RecoveryReport:
        opened = audit_checkpoint.open_walk(
            self._path, self._segments, created=created, keep=RECENT_RECORDS
        )
        self._index, self._hashes = opened.index, opened.hashes
        self._checkpointed_size = opened.covered
        found = opened.found
        self._size = found.size
        self._next_seq, self._last_hash = found.next_seq, found.last_hash
        self._recent.extend(found.newest)
        self._checkpoint_ok = found.report.chain_ok and len(self._index) == self._next_seq - 1
        return found.report

    # -- state --------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The file this log writes."""
        return self._path

    @property
    def last_seq(self) -> int:
        """The seq of the newest record (0 when empty)."""
        return self._next_seq - 1

    @property
    def last_hash(self) -> str:
        """The hash of the newest record (``GENESIS_PREV`` when empty)."""
        return self._last_hash

    def tip(self) -> tuple[int, str]:
        """``(last_seq, last_hash)`` of the newest committed record, read together."""
        with self._index_lock:
            return self._next_seq - 1, self._last_hash

    @property
    def segment_count(self) -> int:
        """How many files the log spans now (rotated segments plus the active one)."""
        return len(self._segments.items)

    @property
    def commit_count(self) -> int:
        """How many write+fsync rounds this log has made since it was opened."""
        return self._commits

    def __len__(self) -> int:
        return len(self._index)

    def _check_usable(self) -> None:
        if self._closed:
            raise AuditLogClosedError("the audit log is closed")
        if self._failure is not None:
            raise AuditWriteError(
                f"the audit log could not be written ({self._failure}); nothing more is "
                "recorded until the daemon restarts",
                hint="free disk space or fix the file system, then restart the daemon",
            )

    # -- writing ------------------------------------------------------------------------------

    async def append(
        self,
        type: str,
        actor: Actor,
        session_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Record one event; returns once it is on disk (group-committed with its neighbours).

        Raises ``AuditEventError`` (invalid event, before anything is queued),
        :class:`AuditWriteError` or :class:`AuditLogClosedError`. Cancelling the caller does
        not withdraw an event already queued.
        """
        return await self.submit(type, actor, session_id, payload)

    def submit(
        self,
        type: str,
        actor: Actor,
        session_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> asyncio.Future[AuditRecord]:
        """Queue one event now and return the future of its record.

        Events are committed in the order they were submitted, so awaiting a later event's
        future also guarantees every earlier one is on disk. Must be called from the loop.
        """
        event = AuditEvent(type=type, actor=actor, session_id=session_id, payload=payload or {})
        self._check_usable()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AuditRecord] = loop.create_future()
        self._pending.append((event, future))
        if self._writer is None:
            self._writer = loop.create_task(self._drain())
        return future

    async def record(
        self, type: str, actor: Actor, session_id: str | None = None, **payload: Any
    ) -> AuditRecord:
        """:meth:`append` with the payload as keywords: durable before this returns (and so
        is every earlier event)."""
        return await self.submit(type, actor, session_id, payload)

    def note(self, type: str, actor: Actor, session_id: str | None = None, **payload: Any) -> None:
        """Queue one event without waiting for it. The request that caused it must end with a
        :meth:`record`, whose durability covers this event (the chain is ordered)."""
        self.submit(type, actor, session_id, payload).add_done_callback(_consume)

    def append_sync(
        self,
        type: str,
        actor: Actor,
        session_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Record one event from synchronous code (start-up, shutdown); blocks for one fsync."""
        event = AuditEvent(type=type, actor=actor, session_id=session_id, payload=payload or {})
        self._check_usable()
        return self._commit([event])[0]

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                try:
                    records = await asyncio.to_thread(self._commit, [event for event, _ in batch])
                except asyncio.CancelledError:
                    for _, future in batch + self._pending:
                        future.cancel()
                    self._pending.clear()
                    raise
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), record in zip(batch, records, strict=True):
                    if not future.done():
                        future.set_result(record)
        finally:
            self._writer = None

    def _commit(self, events: builtins.list[AuditEvent]) -> builtins.list[AuditRecord]:
        """Seal ``events`` onto the chain, write them with one write and one fdatasync, then
        rotate the active segment if it is full and call :attr:`on_commit`."""
        records = self._write(events)
        hook = self.on_commit
        if hook is not None:
            try:
                hook(records[-1].seq, records[-1].hash, len(records))
            except Exception:
                log.exception("audit log: the commit hook failed")
        return records

    def _write(self, events: builtins.list[AuditEvent]) -> builtins.list[AuditRecord]:
        with self._write_lock:
            self._check_usable()
            records: builtins.list[AuditRecord] = []
            lines: builtins.list[bytes] = []
            seq, prev = self._next_seq, self._last_hash
            for event in events:
                record, line = seal_line(event, seq=seq, prev=prev)
                records.append(record)
                lines.append(line)
                seq, prev = seq + 1, record.hash
            data = b"".join(lines)
            start = self._size
            try:
                view = memoryview(data)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                os.fdatasync(self._fd)
            except OSError as exc:
                self._poison(exc, start)
                raise AuditWriteError(
                    f"could not write the audit log {self._path}: {exc.strerror or exc}",
                    hint="free disk space or fix the file system, then restart the daemon",
                ) from exc
            self._size = start + len(data)
            self._hashes.update(data)
            self._commits += 1
            with self._index_lock:
                self._next_seq, self._last_hash = seq, prev
                offset = start
                for record, line in zip(records, lines, strict=True):
                    self._index.add_record(record, offset, len(line))
                    self._recent.append(record)
                    offset += len(line)
            if self._size - self._segments.active.start >= self._segment_bytes:
                self._rotate()
            return records

    def _rotate(self) -> None:
        """Rename the full active segment to the next ``audit.NNNNNN.jsonl`` and start a fresh
        ``audit.jsonl``. Caller holds ``_write_lock``. The renamed file keeps its descriptor
        (reads of its records go on through it); it is never written again."""
        numbers = [number for number, _ in rotated_audit_segments(self._path)]
        target = audit_segment_path(self._path, max(numbers, default=0) + 1)
        if target.exists():  # never replace a segment (listing raced with a stray file)
            log.error("audit log: not rotating, %s already exists", target.name)
            return
        try:
            os.rename(self._path, target)
            fsync_dir(self._path.parent)
        except OSError as exc:
            log.warning("audit log: could not rotate %s (%s)", self._path.name, exc)
            return  # nothing moved (or the rename is not yet durable): keep appending here
        try:
            fd = _open_active(self._path)
        except (OSError, AuditLogLockedError) as exc:
            # The next open finds rotated segments and no audit.jsonl, and starts a new one.
            self._failure = exc
            log.error("audit log: rotated, but could not create a new %s (%s)", self._path, exc)
            return
        with self._index_lock:
            self._segments = self._segments.rotate(target, fd, self._size)
            self._fd = fd
        self._hashes.finish_until(len(self._segments.items) - 1)

    def _poison(self, exc: OSError, start: int) -> None:
        self._failure = exc
        # Best effort: take back a partial write so a restart finds a clean tail. If even this
        # fails, the next open's torn-tail repair does it.
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, start - self._segments.active.start)
            os.fsync(self._fd)

    # -- reading ------------------------------------------------------------------------------

    def _fetch(self, positions: Iterable[int]) -> builtins.list[AuditRecord]:
        """The records at ``positions`` of the index: from the tail cache, else from disk.

        Disk reads happen outside ``_index_lock`` (appends need it); ``close`` waits for them.
        """
        wanted: builtins.list[AuditRecord | tuple[int, int, int]] = []
        with self._index_lock:
            self._check_open()
            segments = self._segments
            index, cached_from = self._index, len(self._index) - len(self._recent)
            for position in positions:
                if position >= cached_from:
                    wanted.append(self._recent[position - cached_from])
                else:
                    wanted.append(
                        (index.offsets[position], index.lengths[position], index.seqs[position])
                    )
            self._readers += 1
        try:
            return [
                item if isinstance(item, AuditRecord) else _load(segments, *item) for item in wanted
            ]
        finally:
            with self._index_lock:
                self._readers -= 1
                self._no_readers.notify_all()

    def get(self, id: str) -> AuditRecord | None:  # the record field is called id
        """The record with ``id``, or ``None``; ``AuditCorruptError`` if its line was altered."""
        with self._index_lock:
            self._check_open()
            position = self._index.ids.get(id)
        if position is None:
            return None
        record = self._fetch([position])[0]
        if record.id != id:
            raise AuditCorruptError(f"the audit record with id {id} changed on disk")
        return record

    def list(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        type: str | None = None,
        session_id: str | None = None,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int | None = None,
    ) -> builtins.list[AuditRecord]:
        """The most recent ``limit`` records matching every filter, oldest first.

        ``since`` is inclusive and ``until`` exclusive (naive datetimes are taken as UTC);
        ``after_seq``/``before_seq`` are exclusive bounds for paging. ``limit=None`` means all.
        """
        if limit is not None and limit < 0:
            raise AuditQueryError(f"limit must be 0 or more, got {limit}")
        lo = to_micros(since) if since is not None else None
        hi = to_micros(until) if until is not None else None
        with self._index_lock:
            self._check_open()
            index = self._index
            type_code = index.code(type) if type is not None else None
            session_code = index.code(session_id) if session_id is not None else None
            if (type is not None and type_code is None) or (
                session_id is not None and session_code is None
            ):
                return []
            found: builtins.list[int] = []
            for position in range(len(index) - 1, -1, -1):
                if limit is not None and len(found) >= limit:
                    break
                if (
                    (lo is not None and index.micros[position] < lo)
                    or (hi is not None and index.micros[position] >= hi)
                    or (type_code is not None and index.types[position] != type_code)
                    or (session_code is not None and index.sessions[position] != session_code)
                    or (after_seq is not None and index.seqs[position] <= after_seq)
                    or (before_seq is not None and index.seqs[position] >= before_seq)
                ):
                    continue
                found.append(position)
        return self._fetch(reversed(found))

    def verify(self) -> VerifyReport:
        """Re-read every segment from disk, in order, and re-walk the whole chain.

        Also checks that the chain on disk ends at the newest record this process knows of,
        which catches records removed from the end. Reads the whole log: from async code, use
        :meth:`averify`.
        """
        with self._write_lock:
            self._check_open()
            expected_seq, expected_hash = self._next_seq - 1, self._last_hash
            handles: builtins.list[tuple[BinaryIO, int]] = []
            try:
                for segment in self._segments.items:  # closed below, outside the lock
                    opened: BinaryIO = open(segment.path, "rb")
                    handles.append((opened, os.fstat(opened.fileno()).st_size))
            except OSError as exc:
                for handle, _ in handles:
                    handle.close()
                return VerifyReport(
                    ok=False,
                    records=0,
                    last_hash=GENESIS_PREV,
                    first_bad_seq=1,
                    first_bad_line=1,
                    reason=f"a segment of the audit log cannot be read: {exc}",
                )
        verifier = ChainVerifier()
        lines = 0
        try:
            for reader, size in handles:
                for _, line in read_lines(reader, size):
                    lines += 1
                    verifier.feed(line)
                    if verifier.broken:
                        return verifier.report()
        finally:
            for reader, _ in handles:
                reader.close()
        report = verifier.report()
        if (report.records, report.last_hash) != (expected_seq, expected_hash):
            return attrs.evolve(
                report,
                ok=False,
                first_bad_seq=report.records + 1,
                first_bad_line=lines + 1,
                reason=(
                    f"the log on disk ends at seq {report.records} but seq {expected_seq} was "
                    "written: records were removed from the end or replaced"
                ),
            )
        return report

    async def averify(self) -> VerifyReport:
        """:meth:`verify` in a worker thread, so the event loop keeps serving meanwhile."""
        return await asyncio.to_thread(self.verify)

    def _check_open(self) -> None:
        if self._closed:
            raise AuditLogClosedError("the audit log is closed")

    # -- closing ------------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every queued append has landed (or failed)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    async def aclose(self) -> None:
        """:meth:`drain`, then :meth:`close`."""
        await self.drain()
        self.close()

    def close(self) -> None:
        """Close the file (idempotent); :meth:`drain` first if async appends may be queued."""
        if self._writer is not None:
            raise AuditError(
                "the audit log still has appends in flight",
                hint="await log.drain() (or log.aclose()) first",
            )
        with self._write_lock, self._index_lock:
            if not self._closed:
                self._closed = True
                self._no_readers.wait_for(lambda: self._readers == 0)
                try:
                    self._write_checkpoint()
                finally:
                    self._segments.close()

    def _write_checkpoint(self) -> None:
        """Vouch for the whole file as it now is, if its chain is known good and the checkpoint
        on disk does not already cover it (best effort: an older one still holds)."""
        if self._checkpoint_ok and self._failure is None and self._checkpointed_size != self._size:
            audit_checkpoint.save(
                self._path,
                self._index,
                segments=self._segments,
                log_size=self._size,
                last_seq=self._next_seq - 1,
                last_hash=self._last_hash,
                hashes=self._hashes,
            )


__all__ = [
    "AuditLog",
    "AuditLogClosedError",
    "AuditLogLockedError",
    "AuditQueryError",
    "AuditWriteError",
    "DEFAULT_SEGMENT_BYTES",
]


def _open_active(path: Path) -> int:
    """Open (creating, 0600, durably) and flock the active segment; its descriptor."""
    created = not path.exists()
    flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
    fd = os.open(path, flags, SECRET_FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AuditLogLockedError(
                f"the audit log {path} is in use by another process",
                hint="is another aileron daemon running? `aileron daemon status`",
            ) from None
        if os.fstat(fd).st_mode & 0o777 != SECRET_FILE_MODE:
            os.fchmod(fd, SECRET_FILE_MODE)
        if created:
            fsync_dir(path.parent)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _load(segments: Segments, offset: int, length: int, seq: int) -> AuditRecord:
    """The record whose line is ``length`` bytes at global ``offset``, checked to be ``seq``."""
    try:
        line = segments.pread(length, offset)
    except OSError as exc:
        raise AuditCorruptError(f"could not read the audit log: {exc}") from exc
    record = parse_line(line)
    if record.seq != seq:
        raise AuditCorruptError(f"the audit record at offset {offset} changed on disk")
    return record


def _consume(future: asyncio.Future[AuditRecord]) -> None:
    """A noted event's failure is reported by the record awaited after it; mark it seen."""
    if not future.cancelled() and future.exception() is not None:
        log.error("audit append failed: %s", future.exception())
