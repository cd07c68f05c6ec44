"""The daemon's HeadSigner on a real AuditLog and real files: when it signs, what it writes,
and how it repairs and archives its heads file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.audit.signer import EVERY_RECORDS, HeadSigner
from aileron_core.audit import GENESIS_PREV, Actor
from aileron_core.audit_heads import head_digest, head_signature_ok, parse_head
from aileron_core.audit_verify import verify_files

ACTOR = Actor(type="service", id="test")
VAULT_ID = "ab" * 16
OTHER_VAULT = "cd" * 16


def public(key: Ed25519PrivateKey) -> bytes:
    """Raw public bytes of ``key``."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    """A real audit log in ``tmp_path``."""
    log, _ = AuditLog.open(tmp_path / "audit.jsonl")
    try:
        yield log
    finally:
        log.close()


def heads_of(path: Path) -> list[dict[str, object]]:
    """The head objects in ``path``."""
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def append(audit: AuditLog, n: int) -> None:
    for i in range(n):
        audit.append_sync("test.event", ACTOR, None, {"i": i})


def test_signs_every_256_records_through_the_commit_hook(audit: AuditLog, tmp_path: Path) -> None:
    """Armed, the signer signs a `periodic` head each time 256 records were committed."""
    key = Ed25519PrivateKey.generate()
    signer = HeadSigner(audit, tmp_path / "audit.heads.jsonl")
    signer.arm(key, VAULT_ID, lambda: 3)
    append(audit, EVERY_RECORDS - 1)
    assert not signer.path.exists()
    append(audit, 1)
    assert [(h["n"], h["seq"], h["reason"]) for h in heads_of(signer.path)] == [
        (1, EVERY_RECORDS, "periodic")
    ]
    append(audit, EVERY_RECORDS)
    heads = heads_of(signer.path)
    assert [(h["n"], h["seq"]) for h in heads] == [(1, EVERY_RECORDS), (2, 2 * EVERY_RECORDS)]
    assert heads[-1]["hash"] == audit.tip()[1] and heads[-1]["generation"] == 3


def test_disarmed_signer_signs_nothing(audit: AuditLog, tmp_path: Path) -> None:
    """After disarm (the vault locked) neither sign() nor the commit hook writes a head."""
    signer = HeadSigner(audit, tmp_path / "audit.heads.jsonl")
    signer.arm(Ed25519PrivateKey.generate(), VAULT_ID, lambda: 1)
    signer.disarm()
    append(audit, EVERY_RECORDS)
    assert signer.sign("lock") is None
    assert not signer.path.exists() and not signer.armed


def test_sign_without_force_skips_when_nothing_is_new(audit: AuditLog, tmp_path: Path) -> None:
    """sign(force=False) writes nothing when the tip is the last head's; force=True does."""
    signer = HeadSigner(audit, tmp_path / "audit.heads.jsonl")
    signer.arm(Ed25519PrivateKey.generate(), VAULT_ID, lambda: 1)
    append(audit, 2)
    first = signer.sign("unlock")
    assert first is not None and first.seq == 2
    assert signer.sign("periodic", force=False) is None
    append(audit, 1)
    later = signer.sign("periodic", force=False)
    assert later is not None and (later.n, later.seq) == (2, 3)
    forced = signer.sign("stop")
    assert forced is not None and (forced.n, forced.seq) == (3, 3)
    assert len(heads_of(signer.path)) == 3


def test_heads_chain_and_verify_files_passes(audit: AuditLog, tmp_path: Path) -> None:
    """Each head names the digest of the one before; verify_files accepts what was written,
    and a reopened signer continues the chain from the file."""
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "audit.heads.jsonl"
    signer = HeadSigner(audit, path)
    signer.arm(key, VAULT_ID, lambda: 1)
    for reason in ("unlock", "decision", "lock"):
        append(audit, 3)
        signer.sign(reason)
    reopened = HeadSigner(audit, path)
    reopened.arm(key, VAULT_ID, lambda: 2)
    append(audit, 1)
    reopened.sign("stop")
    lines = path.read_bytes().splitlines()
    heads = [parse_head(line) for line in lines]
    assert [h.n for h in heads] == [1, 2, 3, 4]
    assert heads[0].prev == GENESIS_PREV
    assert [h.prev for h in heads[1:]] == [head_digest(line) for line in lines[:-1]]
    assert all(head_signature_ok(h, public(key)) for h in heads)
    report = verify_files([audit.path], path, public_key=public(key), vault_id=VAULT_ID)
    assert report.ok, report.summary()
    assert (report.heads, report.signed_seq, report.unsigned_tail) == (4, 10, 0)


def test_torn_last_heads_line_is_cut_at_open(audit: AuditLog, tmp_path: Path) -> None:
    """A heads file ending in a torn line is cut back to its last whole head at open, the
    bytes cut are reported, and the next head chains on the last whole one."""
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "audit.heads.jsonl"
    signer = HeadSigner(audit, path)
    signer.arm(key, VAULT_ID, lambda: 1)
    append(audit, 1)
    signer.sign("unlock")
    whole = path.read_bytes()
    torn = b'{"generation":1,"hash":"00'
    path.write_bytes(whole + torn)
    reopened = HeadSigner(audit, path)
    assert reopened.repaired_bytes == len(torn)
    assert path.read_bytes() == whole
    assert reopened.last is not None and reopened.last.n == 1
    assert reopened.last_trusted(public(key)) == reopened.last
    assert reopened.last_trusted(public(Ed25519PrivateKey.generate())) is None
    reopened.arm(key, VAULT_ID, lambda: 1)
    append(audit, 1)
    head = reopened.sign("stop")
    assert head is not None and head.prev == head_digest(whole.rstrip(b"\n"))
    assert HeadSigner(audit, path).repaired_bytes == 0


def test_archive_moves_another_vaults_heads_aside(audit: AuditLog, tmp_path: Path) -> None:
    """archive() renames a heads file of another vault to audit.heads.<its id>.jsonl and the
    next head starts again at n 1; the current vault's file, or none, is left alone."""
    path = tmp_path / "audit.heads.jsonl"
    signer = HeadSigner(audit, path)
    assert signer.archive(VAULT_ID) is None
    signer.arm(Ed25519PrivateKey.generate(), OTHER_VAULT, lambda: 5)
    append(audit, 1)
    signer.sign("unlock")
    old = path.read_bytes()
    assert signer.archive(OTHER_VAULT) is None and path.read_bytes() == old
    moved = signer.archive(VAULT_ID)
    assert moved == tmp_path / f"audit.heads.{OTHER_VAULT}.jsonl"
    assert moved.read_bytes() == old and not path.exists()
    signer.arm(Ed25519PrivateKey.generate(), VAULT_ID, lambda: 1)
    head = signer.sign("unlock")
    assert head is not None and (head.n, head.prev, head.vault_id) == (1, GENESIS_PREV, VAULT_ID)
