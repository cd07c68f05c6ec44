"""The enclave as the audit log's outside witness, end to end: a real enclave, a real daemon, the
real CLI, and an attacker who holds the vault passphrase (issue #16, acceptance 4)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from audit.signed_log import rechain
from enclave.support import EnclaveProcess
from helpers import aileron

from aileron_core.audit import GENESIS_PREV
from aileron_core.audit_heads import head_digest, parse_head, parse_witness, sign_head
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout
from aileron_core.vault import Vault

PASSPHRASE = "witness passphrase"


def env() -> dict[str, str]:
    """The test's environment (read now: the isolation fixture set HOME and AILERON_HOME)."""
    return dict(os.environ, AILERON_VAULT_PASSPHRASE=PASSPHRASE)


def ok(*args: str, stdin: str | None = None) -> str:
    """Run `aileron ARGS`, assert it exits 0, return its stdout."""
    done = aileron(*args, stdin=stdin, env=env())
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def verify(*args: str) -> tuple[int, dict[str, Any]]:
    """`aileron audit verify ARGS --json`: its exit code and report."""
    done = aileron("audit", "verify", *args, "--json", env=env())
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def codes(report: dict[str, Any]) -> list[str]:
    return [problem["code"] for problem in report["problems"]]


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def attached_activity(enclave: EnclaveProcess) -> None:
    """Vault init, attach, then records and heads: entries stored, locks and unlocks."""
    ok("vault", "init")
    ok(
        "enclave", "attach", enclave.url, "--fingerprint", enclave.fingerprint,
        "--code-file", str(enclave.code_file),
    )  # fmt: skip
    for round in range(2):
        for index in range(2):
            ok("vault", "put", f"api_key/test/k{round}{index}", stdin=f"value-{round}-{index}\n")
        ok("vault", "lock")
        ok("vault", "unlock")


def wait_witnessed(layout: Layout, timeout_s: float = 30.0) -> list[bytes]:
    """Wait until every head in the heads file has its mark; return the heads."""
    deadline = time.monotonic() + timeout_s
    while True:
        heads = lines(layout.audit_heads)
        wanted = {(parse_head(line).n, head_digest(line)) for line in heads}
        marks = lines(layout.audit_witness) if layout.audit_witness.exists() else []
        found = {(mark.n, mark.digest) for mark in map(parse_witness, marks)}
        if wanted <= found:
            return heads
        assert time.monotonic() < deadline, f"unmarked heads: {sorted(wanted - found)}"
        time.sleep(0.1)


def resign(layout: Layout, removed: set[int]) -> None:
    """What a passphrase holder can do offline: drop the records ``removed``, re-hash the chain,
    and re-sign every head (same n, reason, generation, time) with the vault's own audit key."""
    vault = Vault.open(layout.vault)
    vault.unlock(PASSPHRASE)
    key = vault.audit_signing_key()
    records = [line for path in layout.audit_segments() for line in lines(path)]
    kept = [line for line in records if json.loads(line)["seq"] not in removed]
    chain = rechain(kept)
    old_seqs = [json.loads(line)["seq"] for line in kept]
    heads: list[bytes] = []
    for old in lines(layout.audit_heads):
        head = parse_head(old)
        seq = sum(1 for s in old_seqs if s <= head.seq)
        _, line = sign_head(
            key,
            n=head.n,
            seq=seq,
            hash=json.loads(chain[seq - 1])["hash"] if seq else GENESIS_PREV,
            vault_id=head.vault_id,
            generation=head.generation,
            reason=head.reason,
            prev=head_digest(heads[-1]) if heads else GENESIS_PREV,
            ts=head.ts,
        )
        heads.append(line)
    for path in layout.audit_segments()[:-1]:
        path.unlink()
    layout.audit.write_bytes(b"".join(chain))
    layout.audit_heads.write_bytes(b"".join(heads))


def test_every_head_is_witnessed_and_a_passphrase_holders_rewrite_is_caught(
    layout: Layout, enclave: EnclaveProcess, real_daemon: DaemonInfo
) -> None:
    """Every head is countersigned; a history re-signed with the vault's key fails --witness."""
    attached_activity(enclave)
    heads = wait_witnessed(layout)
    assert len(heads) >= 5  # init, then a lock and an unlock per round
    code, report = verify("--witness")
    assert code == 0, report
    assert report["witnessed"] == len(heads)

    ok("daemon", "stop")
    heads = wait_witnessed(layout, timeout_s=0)  # the stop head was sent before the exit
    assert parse_head(heads[-1]).reason == "stop"
    code, report = verify("--witness")
    assert code == 0, report
    assert report["witnessed"] == len(heads) and report["heads"] == len(heads)

    records = [json.loads(line) for line in lines(layout.audit)]
    stored = [r["seq"] for r in records if r["type"].startswith("vault.entry")]
    assert stored, sorted({r["type"] for r in records})
    removed = set(stored[-2:])  # the last entries stored: a history without them
    resign(layout, removed)

    code, report = verify()
    assert code == 0, report  # the passphrase holder's heads are good vault-key heads
    assert report["records"] == len(records) - len(removed)
    code, report = verify("--witness")
    assert code == 1
    assert set(codes(report)) <= {"witness_missing", "witness_invalid"}, report["problems"]
    rewritten = [parse_head(line).n for line in heads if parse_head(line).seq >= min(removed)]
    missing = [p["message"] for p in report["problems"] if p["code"] == "witness_missing"]
    assert [message.split(" (")[0] for message in missing] == [f"head n {n}" for n in rewritten]
    assert report["witnessed"] == len(heads) - len(rewritten) > 0  # the untouched heads
    done = aileron("audit", "verify", "--witness", env=env())
    assert done.returncode == 1
    assert "witness" in done.stdout


def test_a_consistent_rollback_is_caught_by_the_enclaves_memory(
    layout: Layout, enclave: EnclaveProcess, real_daemon: DaemonInfo
) -> None:
    """Log and heads cut back together to an earlier head pass plain verify, not --witness."""
    attached_activity(enclave)
    heads = wait_witnessed(layout)
    pinned = ok("audit", "key").split()[0]
    back = parse_head(heads[-4])
    records = [line for line in lines(layout.audit) if json.loads(line)["seq"] <= back.seq]
    marks = [line for line in lines(layout.audit_witness) if parse_witness(line).n <= back.n]
    layout.audit.write_bytes(b"".join(records))
    layout.audit_heads.write_bytes(b"".join(heads[: back.n]))
    layout.audit_witness.write_bytes(b"".join(marks))

    code, report = verify("--key", pinned)
    assert code == 0, report
    assert (report["heads"], report["last_seq"]) == (back.n, back.seq)
    code, report = verify("--witness")
    assert code == 1
    assert "witness_ahead" in codes(report), report["problems"]
    ahead = next(p for p in report["problems"] if p["code"] == "witness_ahead")
    assert f"head n {len(heads)}" in ahead["message"]
    assert f"ends at head n {back.n}" in ahead["message"]
