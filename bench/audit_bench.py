"""B12 of BENCHMARKS.md: audit appends per second, durable as shipped, one writer process.

Printed with its reference, measured in the same run on the same disk:
  B12   events/s appended by one asyncio writer keeping 64 appends in flight (group commit),
        for --seconds, with head signing as shipped (the daemon's HeadSigner armed, as while
        the vault is unlocked: a signed, fdatasynced head every 256 records); budget >= 2,000
        events/s
  ref   raw write+fdatasync of one audit-sized line, per second: what one-fsync-per-event
        durability could reach at best on this disk
  info  strictly sequential appends (one await at a time), append_sync, re-open (with the
        checkpoint a clean close leaves, and without it: a full walk) and verify

Usage: python bench/audit_bench.py [--seconds 3] [--in-flight 64] [--reopen-records N]
                                   [--dir DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aileron_cli.daemon.audit.checkpoint import checkpoint_path
from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.audit.signer import HeadSigner
from aileron_core.audit import Actor
from aileron_core.audit_verify import verify_files

BUDGET = 2000.0
ACTOR = Actor(type="agent", id="01JBENCHSESSION000000000000")
PAYLOAD = {
    "action": "github.create_issue",
    "args_sha256": "9f2c" * 16,
    "status": "ok",
    "duration_ms": 12,
    "binding": "github-personal",
}


def fsync_probe(directory: Path, count: int = 500) -> dict[str, float]:
    """Time write + fdatasync of one ~400-byte line, ``count`` times, on ``directory``'s disk."""
    path = directory / "fsync-probe"
    line = b"x" * 400 + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    times = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            os.write(fd, line)
            os.fdatasync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
    times.sort()
    return {
        "median_ms": statistics.median(times) * 1000,
        "p99_ms": times[int(len(times) * 0.99) - 1] * 1000,
        "per_s": 1 / statistics.median(times),
    }


async def concurrent(log: AuditLog, seconds: float, in_flight: int) -> tuple[int, float]:
    """``in_flight`` tasks append back to back until ``seconds`` pass; return (events, elapsed)."""
    deadline = time.perf_counter() + seconds
    counts = [0] * in_flight

    async def worker(slot: int) -> None:
        while time.perf_counter() < deadline:
            await log.append("action.invoked", ACTOR, ACTOR.id, PAYLOAD)
            counts[slot] += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(slot) for slot in range(in_flight)))
    return sum(counts), time.perf_counter() - start


async def sequential(log: AuditLog, seconds: float) -> tuple[int, float]:
    """One append at a time for ``seconds``."""
    start = time.perf_counter()
    count = 0
    while time.perf_counter() - start < seconds:
        await log.append("action.invoked", ACTOR, ACTOR.id, PAYLOAD)
        count += 1
    return count, time.perf_counter() - start


def sequential_sync(log: AuditLog, seconds: float) -> tuple[int, float]:
    start = time.perf_counter()
    count = 0
    while time.perf_counter() - start < seconds:
        log.append_sync("action.invoked", ACTOR, ACTOR.id, PAYLOAD)
        count += 1
    return count, time.perf_counter() - start


async def grow(log: AuditLog, records: int) -> None:
    """Append until the log holds ``records`` records, 1024 per group commit."""
    while len(log) < records:
        batch = [
            log.submit("action.invoked", ACTOR, ACTOR.id, PAYLOAD)
            for _ in range(min(1024, records - len(log)))
        ]
        await asyncio.gather(*batch)


def timed_open(path: Path) -> tuple[float, int]:
    """Open and close the log at ``path``; return (seconds to open, lines the open walked)."""
    start = time.perf_counter()
    log, report = AuditLog.open(path)
    elapsed = time.perf_counter() - start
    log.close()
    assert report.chain_ok, report.summary()
    return elapsed, report.scanned_lines


def measure(
    directory: Path, seconds: float, in_flight: int, reopen_records: int = 0
) -> dict[str, Any]:
    probe = fsync_probe(directory)
    path = directory / "audit.jsonl"
    heads_path = directory / "audit.heads.jsonl"
    key = Ed25519PrivateKey.generate()
    vault_id = "0" * 32
    log, _ = AuditLog.open(path)
    signer = HeadSigner(log, heads_path)
    signer.arm(key, vault_id, lambda: 1)
    try:
        commits_before = log.commit_count
        events, elapsed = asyncio.run(concurrent(log, seconds, in_flight))
        commits = log.commit_count - commits_before
        heads_during_b12 = signer.last.n if signer.last is not None else 0
        seq_events, seq_elapsed = asyncio.run(sequential(log, max(1.0, seconds / 2)))
        sync_events, sync_elapsed = sequential_sync(log, max(1.0, seconds / 2))
        asyncio.run(grow(log, reopen_records))
        total = len(log)
        signer.sign("stop")
    finally:
        signer.disarm()
        log.close()  # a clean close: writes the checkpoint
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    start = time.perf_counter()
    complete = verify_files([path], heads_path, public_key=public, vault_id=vault_id)
    complete_s = time.perf_counter() - start
    start = time.perf_counter()
    log, report = AuditLog.open(path)
    open_s = time.perf_counter() - start
    try:
        start = time.perf_counter()
        verified = log.verify()
        verify_s = time.perf_counter() - start
    finally:
        log.close()
    checkpointed = min(timed_open(path) for _ in range(3))
    full = []
    for _ in range(3):
        checkpoint_path(path).unlink()
        full.append(timed_open(path))  # its close writes the checkpoint back
    walked = min(full)
    value = events / elapsed
    return {
        "figure": "B12",
        "what": f"audit appends/s, 1 writer, {in_flight} in flight, fdatasync'd",
        "value": round(value),
        "reference": round(probe["per_s"]),
        "unit": "events/s",
        "ratio": round(value / probe["per_s"], 2),
        "budget": f">= {BUDGET:,.0f} events/s",
        "pass": value >= BUDGET and verified.ok and report.chain_ok and complete.ok,
        "details": {
            "fsync_median_ms": round(probe["median_ms"], 3),
            "fsync_p99_ms": round(probe["p99_ms"], 3),
            "events": events,
            "seconds": round(elapsed, 2),
            "commits": commits,
            "events_per_commit": round(events / max(commits, 1), 1),
            "heads_signed_during_b12": heads_during_b12,
            "complete_verify_ms": round(complete_s * 1000, 1),
            "complete_verify_ok": complete.ok,
            "sequential_async_events_per_s": round(seq_events / seq_elapsed),
            "sequential_sync_events_per_s": round(sync_events / sync_elapsed),
            "records_in_log": total,
            "file_bytes": path.stat().st_size,
            "reopen_ms": round(open_s * 1000, 1),
            "reopen_checkpoint_ms": round(checkpointed[0] * 1000, 1),
            "reopen_checkpoint_lines_walked": checkpointed[1],
            "reopen_full_walk_ms": round(walked[0] * 1000, 1),
            "reopen_full_walk_lines_walked": walked[1],
            "checkpoint_bytes": checkpoint_path(path).stat().st_size,
            "verify_ms": round(verify_s * 1000, 1),
            "chain_verified": verified.ok and verified.records == total,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the B12 run")
    parser.add_argument("--in-flight", type=int, default=64, help="concurrent appends")
    parser.add_argument(
        "--reopen-records",
        type=int,
        default=0,
        help="grow the log to this many records before the re-open figures",
    )
    parser.add_argument("--dir", type=Path, help="where to write (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aileron-audit-bench-", dir=args.dir) as tmp:
        figure = measure(Path(tmp), args.seconds, args.in_flight, args.reopen_records)
    details = figure["details"]
    print(
        f"{figure['figure']:<4} {figure['what']:<52} {figure['value']:>8} {figure['unit']}"
        f"  ref {figure['reference']:>6}  x{figure['ratio']:<5}"
        f"  {'PASS' if figure['pass'] else 'FAIL'}  ({figure['budget']})"
    )
    rows = [
        (
            "fsync (write+fdatasync, 400 B) median / p99",
            f"{details['fsync_median_ms']} / {details['fsync_p99_ms']} ms",
        ),
        (
            "group commit",
            f"{details['events']} events in {details['commits']} commits "
            f"({details['events_per_commit']} per fsync)",
        ),
        (
            "sequential async appends (1 in flight)",
            f"{details['sequential_async_events_per_s']} events/s",
        ),
        ("sequential append_sync", f"{details['sequential_sync_events_per_s']} events/s"),
        (
            "first re-open after the clean close",
            f"{details['records_in_log']} records, "
            f"{details['file_bytes'] // 1024} KiB: {details['reopen_ms']} ms",
        ),
        (
            "re-open with / without checkpoint (best of 3)",
            f"{details['reopen_checkpoint_ms']} ms "
            f"({details['reopen_checkpoint_lines_walked']} lines walked) / "
            f"{details['reopen_full_walk_ms']} ms "
            f"({details['reopen_full_walk_lines_walked']} lines walked); "
            f"checkpoint {details['checkpoint_bytes'] // 1024} KiB",
        ),
        (
            "heads signed during B12 / completeness verify of the whole log",
            f"{details['heads_signed_during_b12']} / {details['complete_verify_ms']} ms, "
            f"ok={details['complete_verify_ok']}",
        ),
        (
            "verify() re-read of the log",
            f"{details['verify_ms']} ms, ok={details['chain_verified']}",
        ),
    ]
    for label, value in rows:
        print(f"     {label:<52} {value}")
    if args.json:
        args.json.write_text(json.dumps([figure], indent=2) + "\n")
    return 0 if figure["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
