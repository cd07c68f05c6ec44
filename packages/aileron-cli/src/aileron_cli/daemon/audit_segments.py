"""The audit log's files seen as one stream: rotated segments, then the active ``audit.jsonl``.

``AuditLog`` rotates ``audit.jsonl`` to ``audit.NNNNNN.jsonl`` (``aileron_core.paths``) once it
reaches the configured size; the chain simply continues in the next file. Everything above the
files (the index, the checkpoint, recovery) works on *global* offsets: positions in the virtual
concatenation of every segment in order. :class:`Segments` maps them back to a file: it is an
immutable snapshot (a rotation builds a new one), so readers can use the one they took without
a lock. Rotated segments are never written again; only the last (active) one grows.
"""

from __future__ import annotations

import bisect
import os
from pathlib import Path

import attrs

__all__ = ["Segment", "Segments"]


@attrs.frozen
class Segment:
    """One file of the log, open at ``fd``, whose first byte is global offset ``start``."""

    path: Path
    start: int
    fd: int


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

    def rotate(self, path: Path, fd: int, start: int) -> Segments:
        """This view with the active segment now at ``path`` (renamed) and a new active one
        open at ``fd`` starting at global offset ``start``."""
        old = self.active
        new_old = Segment(path=path, start=old.start, fd=old.fd)
        return Segments(self.items[:-1] + (new_old, Segment(path=old.path, start=start, fd=fd)))

    def pread(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes at global ``offset`` (a read may span segments)."""
        starts = [segment.start for segment in self.items]
        position = bisect.bisect_right(starts, offset) - 1
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
