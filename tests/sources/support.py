"""A vault and an audit log on disk for the sources' unit tests, and a clock to move."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import attrs

from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.store.bindings import Binding
from aileron_cli.daemon.store.vault import VaultService
from aileron_core.vault import KdfParams

CHEAP_KDF = KdfParams(time_cost=1, memory_kib=64, parallelism=1)


@attrs.define
class Clock:
    """A clock that moves only when told."""

    now: float

    def __call__(self) -> float:
        return self.now


async def vault_with(
    tmp_path: Path, name: str, value: str, source: str
) -> tuple[VaultService, Binding]:
    """An unlocked vault holding ``value`` for binding ``name`` (whose source is ``source``)."""
    vault = VaultService(tmp_path / "vault.enc", CHEAP_KDF)
    await vault.init("pw")
    await vault.put(name, value, {"binding": "true"})
    kind, service, identity = name.split("/")
    binding = Binding(
        name=name,
        kind=kind,
        service=service,
        identity=identity,
        created_at=datetime.now(UTC),
        metadata={"source": source},
    )
    return vault, binding


def audit_log(tmp_path: Path) -> AuditLog:
    """A fresh audit log."""
    log, _ = AuditLog.open(tmp_path / "audit.jsonl")
    return log


def disk_text(root: Path) -> str:
    """Every file under ``root``, as text (bytes that are not UTF-8 replaced)."""
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in sorted(root.rglob("*")) if p.is_file()
    )
