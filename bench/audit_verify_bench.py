"""B14 of BENCHMARKS.md: ``aileron audit verify`` of a 100k-record log (chain + signed heads).

Writes a log with ``seal_line`` (records shaped like the daemon's: an action with its
connector and arguments) and a signed head every 256 records, as the daemon signs them, then
times, best of --runs each, with the runs alternated so a busy machine weighs on all alike:

  B14       the whole process, ``aileron audit verify --key KEY --json`` offline   <= 2 s
  B14-core  :func:`aileron_core.audit_verify.verify_files` in this process           <= 2 s
            (reference: the same with ``fast=False``, every record checked in full)

Exits 1 when a budget is missed. Usage:
python bench/audit_verify_bench.py [--records 100000] [--runs 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import as_installed
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aileron_core.audit import GENESIS_PREV, Actor, AuditEvent, seal_line
from aileron_core.audit_heads import head_digest, sign_head
from aileron_core.audit_verify import verify_files

VAULT_ID = "ab" * 16
HEAD_EVERY = 256
BUDGET_S = 2.0


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


def timed_core(home: Path, public: bytes, *, fast: bool) -> tuple[float, float]:
    """Wall and CPU seconds of one in-process verify."""
    wall, cpu = time.perf_counter(), time.process_time()
    report = verify_files(
        [home / "audit.jsonl"],
        home / "audit.heads.jsonl",
        public_key=public,
        vault_id=VAULT_ID,
        fast=fast,
    )
    elapsed = time.perf_counter() - wall, time.process_time() - cpu
    assert report.ok, report.summary()
    return elapsed


def timed_process(home: Path, public: bytes) -> float:
    """Wall seconds of one ``aileron audit verify`` process (offline: the key is given)."""
    command = [
        str(Path(sys.executable).parent / "aileron"),
        "audit",
        "verify",
        "--key",
        base64.b64encode(public).decode("ascii"),
        "--json",
    ]
    env = dict(os.environ, AILERON_HOME=str(home))
    env.pop("AILERON_API_URL", None)
    wall = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - wall
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    as_installed()
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    fast: list[tuple[float, float]] = []
    full: list[tuple[float, float]] = []
    process: list[float] = []
    with tempfile.TemporaryDirectory(prefix="aileron-verify-bench-") as tmp:
        home = Path(tmp)
        home.chmod(0o700)
        build(home, args.records, key)
        for _ in range(args.runs):  # alternated: a busy machine slows every kind alike
            fast.append(timed_core(home, public, fast=True))
            full.append(timed_core(home, public, fast=False))
            process.append(timed_process(home, public))
    core = min(wall for wall, _ in fast)
    reference = min(wall for wall, _ in full)
    whole = min(process)
    figures: list[dict[str, Any]] = [
        {
            "figure": "B14",
            "what": f"aileron audit verify, {args.records} records, whole process (best)",
            "value": round(whole, 3),
            "reference": round(core, 3),
            "unit": "s",
            "ratio": round(whole / core, 2),
            "budget": "<= 2 s",
            "pass": whole <= BUDGET_S,
            "details": {"runs_s": [round(value, 3) for value in process]},
        },
        {
            "figure": "B14-core",
            "what": f"verify_files, {args.records} records, in process (best)",
            "value": round(core, 3),
            "reference": round(reference, 3),
            "unit": "s",
            "ratio": round(core / reference, 2),
            "budget": "<= 2 s",
            "pass": core <= BUDGET_S,
            "details": {
                "cpu_s": round(min(cpu for _, cpu in fast), 3),
                "full_check_cpu_s": round(min(cpu for _, cpu in full), 3),
                "runs_s": [round(wall, 3) for wall, _ in fast],
                "full_check_runs_s": [round(wall, 3) for wall, _ in full],
            },
        },
    ]
    for figure in figures:
        print(
            f"{figure['figure']:<9} {figure['what']:<62} {figure['value']:>7} s"
            f"  ref {figure['reference']:>6} s  x{figure['ratio']:<5}"
            f"  {'PASS' if figure['pass'] else 'FAIL'}  ({figure['budget']})"
        )
    print(
        "          ref of B14: verify_files in process; ref of B14-core: the same checking "
        "every record in full (fast=False)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if all(figure["pass"] for figure in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
