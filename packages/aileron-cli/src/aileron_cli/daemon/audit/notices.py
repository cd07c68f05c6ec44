"""What the audit log recovered from or rejected, for ``aileron status`` until acknowledged."""

from __future__ import annotations

from aileron_cli.daemon.audit.log import AuditLog
from aileron_core.audit import Actor, AuditRecord

__all__ = ["AuditNotices"]


class AuditNotices:
    """The recoveries and rejected checkpoints since the last ``audit.acknowledged``.

    Such records are written only while the daemon opens its stores, so the answer is found
    once (a type that never occurred costs nothing to look up) and kept until
    :meth:`acknowledge`."""

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit
        self._notices: list[str] | None = None

    def current(self) -> list[str]:
        """One line per notice, oldest first."""
        if self._notices is None:
            audit = self._audit
            acknowledged = audit.list(type="audit.acknowledged", limit=1)
            after = acknowledged[0].seq if acknowledged else None
            found = [
                *audit.list(type="audit.recovered", after_seq=after),
                *audit.list(type="audit.checkpoint_rejected", after_seq=after),
            ]
            self._notices = [_notice(record) for record in sorted(found, key=lambda r: r.seq)]
        return self._notices

    async def acknowledge(self, actor: Actor) -> int:
        """Record that the human saw the notices; returns the seq they are acknowledged to."""
        through = self._audit.last_seq
        await self._audit.record("audit.acknowledged", actor, through_seq=through)
        self._notices = []
        return through


def _notice(record: AuditRecord) -> str:
    """One line for ``aileron status`` about a recovery or a rejected checkpoint."""
    payload = record.payload
    if record.type == "audit.recovered":
        return (
            f"seq {record.seq}: {payload.get('file', 'audit.jsonl')}: a torn tail of "
            f"{payload.get('dropped_bytes')} bytes was cut off at start-up "
            f"({record.ts:%Y-%m-%d %H:%M}Z)"
        )
    return (
        f"seq {record.seq}: the audit checkpoint was rejected ({payload.get('reason')}); "
        f"kept as {payload.get('kept_as')}"
    )
