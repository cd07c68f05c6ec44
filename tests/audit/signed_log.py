"""Builds real audit logs with real signed heads (and witness marks) for the verify tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aileron_core.audit import GENESIS_PREV, Actor, AuditEvent, seal_line
from aileron_core.audit_heads import head_digest, sign_head, sign_witness
from aileron_core.audit_verify import CompletenessReport, verify_files

T0 = datetime(2026, 1, 1, tzinfo=UTC)
VAULT_ID = "0123456789abcdef" * 2


def raw_public(key: Ed25519PrivateKey) -> bytes:
    """The raw 32 bytes of ``key``'s public key."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def event(kind: str, connector: str | None = None, **payload: object) -> AuditEvent:
    """An event of type ``kind``, naming ``connector`` in its payload when given."""
    if connector is not None:
        payload["connector"] = connector
    actor = (
        Actor(type="human", id="user")
        if "." in kind and kind.startswith(("vault", "approval"))
        else Actor(type="agent", id="ses_1")
    )
    return AuditEvent(type=kind, actor=actor, payload=payload)


def rechain(lines: Iterable[bytes], *, first_seq: int = 1, prev: str = GENESIS_PREV) -> list[bytes]:
    """Re-seal ``lines`` as a fresh, valid chain (what someone rewriting the log would do)."""
    out: list[bytes] = []
    seq = first_seq
    for line in lines:
        value = json.loads(line)
        record, sealed = seal_line(
            AuditEvent(
                type=value["type"],
                actor=Actor(**value["actor"]),
                session_id=value["session_id"],
                payload=value["payload"],
            ),
            seq=seq,
            prev=prev,
            ts=datetime.fromisoformat(value["ts"]),
            id=value["id"],
        )
        out.append(sealed)
        prev, seq = record.hash, seq + 1
    return out


@attrs.define
class SignedLog:
    """A log, its heads and witness marks, kept in memory and written on demand."""

    key: Ed25519PrivateKey = attrs.field(factory=Ed25519PrivateKey.generate)
    witness_key: Ed25519PrivateKey = attrs.field(factory=Ed25519PrivateKey.generate)
    vault_id: str = VAULT_ID
    records: list[bytes] = attrs.field(factory=list)
    heads: list[bytes] = attrs.field(factory=list)
    head_seqs: list[int] = attrs.field(factory=list)
    marks: list[bytes] = attrs.field(factory=list)
    generation: int = 1

    @property
    def public(self) -> bytes:
        """The raw public audit key."""
        return raw_public(self.key)

    @property
    def tip(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last record (``(0, GENESIS_PREV)`` when empty)."""
        if not self.records:
            return 0, GENESIS_PREV
        value = json.loads(self.records[-1])
        return value["seq"], value["hash"]

    def add(self, kind: str = "action.executed", connector: str | None = "github") -> int:
        """Append one record; return its seq."""
        seq, prev = self.tip
        _, line = seal_line(
            event(kind, connector, n=seq + 1),
            seq=seq + 1,
            prev=prev,
            ts=T0 + timedelta(seconds=seq + 1),
        )
        self.records.append(line)
        return seq + 1

    def sign(
        self,
        reason: str = "periodic",
        *,
        key: Ed25519PrivateKey | None = None,
        generation: int | None = None,
        witness: bool = True,
    ) -> bytes:
        """Sign a head at the current tip (and countersign it); return the head line."""
        seq, digest = self.tip
        _, line = sign_head(
            key or self.key,
            n=len(self.heads) + 1,
            seq=seq,
            hash=digest,
            vault_id=self.vault_id,
            generation=self.generation if generation is None else generation,
            reason=reason,
            prev=head_digest(self.heads[-1]) if self.heads else GENESIS_PREV,
            ts=T0 + timedelta(seconds=seq, milliseconds=len(self.heads)),
        )
        self.heads.append(line)
        self.head_seqs.append(seq)
        if witness:
            _, mark = sign_witness(
                self.witness_key,
                vault_id=self.vault_id,
                n=len(self.heads),
                digest=head_digest(line),
                ts=T0,
            )
            self.marks.append(mark)
        return line

    def write(self, home: Path) -> tuple[Path, Path, Path]:
        """Write the log, heads and witness files into ``home``."""
        log, heads, witness = (
            home / "audit.jsonl",
            home / "audit.heads.jsonl",
            home / "audit.witness.jsonl",
        )
        log.write_bytes(b"".join(self.records))
        heads.write_bytes(b"".join(self.heads))
        witness.write_bytes(b"".join(self.marks))
        return log, heads, witness

    def verify(self, home: Path, *, write: bool = True, **options: object) -> CompletenessReport:
        """Write (unless told not to) and verify the files in ``home`` with the vault's key."""
        if write:
            self.write(home)
        log = home / "audit.jsonl"
        settings: dict[str, object] = {"public_key": self.public, "vault_id": self.vault_id}
        settings.update(options)
        return verify_files([log], home / "audit.heads.jsonl", **settings)  # type: ignore[arg-type]


def standard_log() -> SignedLog:
    """An unlock, some actions of two connectors, a decision, periodic heads, a lock."""
    log = SignedLog()
    log.add("vault.unlocked", None)
    log.sign("unlock")
    for index in range(12):
        log.add(connector="github" if index % 3 else "slack")
        if index == 5:
            log.sign("periodic")
    log.add("approval.approved", None)
    log.sign("decision")
    for _ in range(4):
        log.add(connector="github")
    log.add("vault.locked", None)
    log.sign("lock")
    return log
