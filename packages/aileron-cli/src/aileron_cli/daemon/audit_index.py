"""The audit log's in-memory index: where each record of ``audit.jsonl`` is, and its filters.

One entry per readable record, in compact arrays: the line's offset and length, the record's
seq, its time (``to_micros``: microseconds since the epoch), its type and its session, plus
id -> position. Types and session ids are stored as small integers (``code``), so a filter
compares integers. ``AuditLog`` guards it with its own lock.
"""

from __future__ import annotations

from array import array
from datetime import UTC, datetime, timedelta

from aileron_core.audit import AuditRecord

__all__ = ["AuditIndex", "to_micros"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch; a naive ``moment`` is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


class AuditIndex:
    """Where each readable record is, and what ``AuditLog.list`` filters on, in compact arrays."""

    def __init__(self) -> None:
        self.offsets = array("q")
        self.lengths = array("q")
        self.seqs = array("q")
        self.micros = array("q")
        self.types = array("l")
        self.sessions = array("l")
        self.ids: dict[str, int] = {}
        self._codes: dict[str | None, int] = {None: 0}

    def __len__(self) -> int:
        return len(self.offsets)

    def code(self, value: str | None) -> int | None:
        """The small integer a type or session id is stored as, if it was ever seen."""
        return self._codes.get(value)

    def add(
        self,
        offset: int,
        length: int,
        *,
        seq: int,
        id: str,  # the record field is called id
        ts: datetime,
        type: str,
        session_id: str | None,
    ) -> None:
        """Index the record whose line is ``length`` bytes at ``offset``."""
        self.offsets.append(offset)
        self.lengths.append(length)
        self.seqs.append(seq)
        self.micros.append(to_micros(ts))
        self.types.append(self._codes.setdefault(type, len(self._codes)))
        self.sessions.append(self._codes.setdefault(session_id, len(self._codes)))
        self.ids[id] = len(self.offsets) - 1

    def add_record(self, record: AuditRecord, offset: int, length: int) -> None:
        """Index ``record``, whose line is ``length`` bytes at ``offset``."""
        self.add(
            offset,
            length,
            seq=record.seq,
            id=record.id,
            ts=record.ts,
            type=record.type,
            session_id=record.session_id,
        )
