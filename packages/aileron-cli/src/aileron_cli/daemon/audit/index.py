"""The audit log's in-memory index: where each record of ``audit.jsonl`` is, and its filters.

One entry per readable record, in compact arrays: the line's offset and length, the record's
seq, its time (``to_micros``: microseconds since the epoch), its type and its session, plus
its id. The id -> position map that ``get`` needs is built on first use: building it for a
million records costs more than the rest of loading a checkpoint, and a daemon's start should
not wait for it. Types and session ids are stored as small integers (``code``), so a filter
compares integers. ``AuditLog`` guards it with its own lock. ``arrays``/``codes_list`` and
``restore`` let ``aileron_cli.daemon.audit.checkpoint`` save and reload it without re-reading
the log.
"""

from __future__ import annotations

from array import array
from datetime import UTC, datetime, timedelta
from typing import cast

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
        self._id_list: list[str | None] = []  # by position; None: unknown (old checkpoints)
        self._ids: dict[str, int] | None = {}  # built from _id_list on first use
        self._codes: dict[str | None, int] = {None: 0}

    def __len__(self) -> int:
        return len(self.offsets)

    def arrays(self) -> tuple[tuple[str, array[int]], ...]:
        """The per-record arrays by name, in a fixed order (what a checkpoint stores)."""
        return (
            ("offsets", self.offsets),
            ("lengths", self.lengths),
            ("seqs", self.seqs),
            ("micros", self.micros),
            ("types", self.types),
            ("sessions", self.sessions),
        )

    def codes_list(self) -> list[str]:
        """Every type and session id seen, in code order from 1 (code 0 is ``None``)."""
        return [value for value in self._codes if value is not None]

    @property
    def ids(self) -> dict[str, int]:
        """id -> position (the newest record with that id), built on first use."""
        if self._ids is None:
            found: dict[str | None, int] = dict(zip(self._id_list, range(len(self)), strict=True))
            found.pop(None, None)
            self._ids = cast(dict[str, int], found)  # None was its only non-str key
        return self._ids

    def ids_by_position(self) -> list[str | None]:
        """The id of the record at each position (what a checkpoint stores)."""
        return self._id_list

    @classmethod
    def restore(
        cls, arrays: dict[str, array[int]], ids: list[str | None], codes: list[str]
    ) -> AuditIndex:
        """An index from what :meth:`arrays`, :meth:`ids_by_position` and :meth:`codes_list`
        gave; the caller has checked that the arrays have equal lengths and valid codes."""
        index = cls()
        for name, _ in index.arrays():
            setattr(index, name, arrays[name])
        index._id_list, index._ids = ids, None
        index._codes = {None: 0}
        index._codes.update(zip(codes, range(1, len(codes) + 1), strict=True))
        return index

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
        self._id_list.append(id)
        if self._ids is not None:
            self._ids[id] = len(self.offsets) - 1

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
