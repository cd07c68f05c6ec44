"""The audit log's files seen as one stream: rotated segments, then the active ``audit.jsonl``.

``AuditLog`` rotates ``audit.jsonl`` to ``audit.NNNNNN.jsonl`` (``aileron_core.paths``) once it
reaches the configured size; the chain simply continues in the next file. Everything above the
files (the index, the checkpoint, recovery) works on *global* offsets: positions in the virtual
concatenation of every segment in order. :class:`Segments` maps them back to a file: it is an
immutable snapshot (a rotation builds a new one), so readers can use the one they took without
a lock. Rotated segments are never written again; only the last (active) one grows.

:class:`SegmentHashes` is the sha256 of each segment's bytes as this process verified or wrote
them (final for rotated segments, running for the active one): what a checkpoint vouches for.
A rotated segment's ``identity`` (inode and ctime, taken when it was opened or renamed; no
write, rename or chmod can leave the ctime as it was) lets the next open trust its recorded
hash without re-reading it.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from hashlib import _Hash

__all__ = ["Identity", "Segment", "SegmentHashes", "Segments", "identity_of"]

Identity = tuple[int, int]
"""``(st_ino, st_ctime_ns)`` of a rotated segment."""


def identity_of(fd: int) -> Identity:
    """The identity of the file open at ``fd`` now."""
    found = os.fstat(fd)
    return found.st_ino, found.st_ctime_ns


@attrs.define
class SegmentHashes:
    """sha256 of each segment's bytes: ``done`` (hex) for segments 0..len(done)-1, then the
    running ``current`` one of the next segment."""

    done: list[str] = attrs.Factory(list)
    current: _Hash = attrs.Factory(hashlib.sha256)

    def update(self, data: bytes) -> None:
        """Feed bytes of the current segment."""
        self.current.update(data)

    def finish_until(self, position: int) -> None:
        """Close the running hash of every segment before ``position`` (it moved on)."""
        while len(self.done) < position:
            self.done.append(self.current.hexdigest())
            self.current = hashlib.sha256()


@attrs.frozen
class Segment:
    """One file of the log, open at ``fd``, whose first byte is global offset ``start``."""

    path: Path
    start: int
    fd: int
    identity: Identity | None = None
    """For a rotated segment: its identity when opened or renamed."""


@attrs.frozen
class Segments:
    """The log's files in chain order; the last one is the active segment (it may grow)."""

    items: tuple[Segment, ...]

    @property
    def active(self) -> Segment:
        """The segment appends go to."""
        return self.items[-1]

    @property
    def rotated(self) -> tuple[Segment, ...]:
        """The immutable segments before the active one."""
        return self.items[:-1]

    def size(self) -> int:
        """The global size now: where the next append lands."""
        active = self.active
        return active.start + os.fstat(active.fd).st_size

    def end_of(self, position: int) -> int:
        """Where segment ``position`` ends (the next one's start; the active one's size)."""
        if position + 1 < len(self.items):
            return self.items[position + 1].start
        return self.size()

    def position_of(self, offset: int) -> int:
        """The position of the segment holding global ``offset``."""
        return bisect.bisect_right([segment.start for segment in self.items], offset) - 1

    def rotate(self, path: Path, fd: int, start: int) -> Segments:
        """This view with the active segment now at ``path`` (renamed) and a new active one
        open at ``fd`` starting at global offset ``start``."""
        old = self.active
        new_old = Segment(path=path, start=old.start, fd=old.fd, identity=identity_of(old.fd))
        return Segments(self.items[:-1] + (new_old, Segment(path=old.path, start=start, fd=fd)))

    def pread(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes at global ``offset`` (a read may span segments)."""
        position = self.position_of(offset)
        parts: list[bytes] = []
        while length > 0 and position < len(self.items):
            segment = self.items[position]
            local = offset - segment.start
            if position + 1 < len(self.items):
                want = min(length, self.items[position + 1].start - offset)
            else:
                want = length
            chunk = os.pread(segment.fd, want, local) if want > 0 else b""
            parts.append(chunk)
            length -= len(chunk)
            offset += len(chunk)
            if len(chunk) < want or position + 1 == len(self.items):
                break
            position += 1
        return b"".join(parts)

    def close(self) -> None:
        """Close every file descriptor (best effort)."""
        for segment in self.items:
            try:
                os.close(segment.fd)
            except OSError:
                pass
