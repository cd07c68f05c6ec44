"""Offline ``aileron audit verify`` of a long log: verify_files on --records records (#16).

Writes a log with ``seal_line`` (records shaped like the daemon's: an action with its
connector and arguments) and a signed head every 256 records, as the daemon signs them, then
times :func:`aileron_core.audit_verify.verify_files` over it, best of --runs (wall and CPU).

  budget  100k records verified in <= 2 s

Usage: python bench/audit_verify_bench.py [--records 100000] [--runs 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aileron_core.audit import GENESIS_PREV, Actor, AuditEvent, seal_line
from aileron_core.audit_heads import head_digest, sign_head
from aileron_core.audit_verify import verify_files

VAULT_ID = "ab" * 16
HEAD_EVERY = 256


def build(home: Path, records: int, key: Ed25519PrivateKey) -> None:
    """Write ``records`` records and their heads into ``home``."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    prev, head_prev, n = GENESIS_PREV, GENESIS_PREV, 0
    actor = Actor(type="agent", id="ses_01JBENCH")
    with open(home / "audit.jsonl", "wb") as log, open(home / "audit.heads.jsonl", "wb") as heads:
        for seq in range(1, records + 1):
            payload = {
                "connector": "github",
                "action": "issues.list",
                "args": {"repo": "octo/hello", "state": "open", "page": seq % 7},
                "ok": True,
                "duration_ms": seq % 900,
            }
            event = AuditEvent(
                type="action.executed", actor=actor, session_id="ses_01JBENCH", payload=payload
            )
            record, line = seal_line(event, seq=seq, prev=prev, ts=t0 + timedelta(milliseconds=seq))
            log.write(line)
            prev = record.hash
            if seq % HEAD_EVERY == 0:
                n += 1
                _, head = sign_head(
                    key,
                    n=n,
                    seq=seq,
                    hash=prev,
                    vault_id=VAULT_ID,
                    generation=1,
                    reason="periodic",
                    prev=head_prev,
                )
                heads.write(head)
                head_prev = head_digest(head)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with tempfile.TemporaryDirectory(prefix="aileron-verify-bench-") as tmp:
        home = Path(tmp)
        build(home, args.records, key)
        walls, cpus = [], []
        for _ in range(args.runs):
            wall, cpu = time.perf_counter(), time.process_time()
            report = verify_files(
                [home / "audit.jsonl"],
                home / "audit.heads.jsonl",
                public_key=public,
                vault_id=VAULT_ID,
            )
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            assert report.ok, report.summary()
    result = {
        "records": args.records,
        "wall_s": round(min(walls), 3),
        "cpu_s": round(min(cpus), 3),
        "budget_s": 2.0,
    }
    print(
        f"verify {args.records} records: best wall {result['wall_s']} s, "
        f"best cpu {result['cpu_s']} s (budget 2.0 s)"
    )
    if args.json:
        args.json.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
