"""B15 of BENCHMARKS.md: daemon start with a long audit log, to its first answer.

Builds two AILERON_HOMEs whose audit logs are written directly (``seal_line``, segments of
64 MiB as the daemon would rotate them), one with --records (default 1M) records and one with
--small (default 1k), each with the checkpoint a clean close would leave (after the first
start and clean stop, the checkpoint is the daemon's own). Then starts a real
daemon (``aileron daemon start --foreground``) in each and times from the process start to its
first answer on ``/v1/health`` (the same probe the CLI uses), then stops it (a clean stop).

  B15   first answer with the long log minus the same with the short one, best of --runs,
        both checkpointed; budget <= 1 s more
  info  each start on its own; with --full-walk also the start of the long log without its
        checkpoint (a full walk of every segment: about a minute per million records)

Usage: python bench/audit_start_bench.py [--records N] [--small N] [--runs 3] [--full-walk]
                                         [--dir DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import as_installed

from aileron_cli.daemon.audit import checkpoint as audit_checkpoint
from aileron_cli.daemon.audit.index import AuditIndex
from aileron_cli.daemon.audit.log import DEFAULT_SEGMENT_BYTES
from aileron_cli.lifecycle import probe
from aileron_core.audit import GENESIS_PREV, Actor, AuditEvent, seal_line
from aileron_core.discovery import read_daemon_info
from aileron_core.paths import Layout

BUDGET_S = 1.0
START_LIMIT_S = 600.0
ACTOR = Actor(type="agent", id="01JBENCHSESSION000000000000")
PAYLOAD = {
    "action": "github.create_issue",
    "args_sha256": "9f2c" * 16,
    "status": "ok",
    "duration_ms": 12,
    "binding": "github-personal",
}


def build(home: Path, records: int) -> int:
    """Write a log of ``records`` records (rotated at 64 MiB) and its checkpoint; its bytes."""
    layout = Layout(home).ensure()
    index, hasher = AuditIndex(), hashlib.sha256()
    event = AuditEvent(type="action.invoked", actor=ACTOR, session_id=ACTOR.id, payload=PAYLOAD)
    prev, offset, number = GENESIS_PREV, 0, 0
    segment: list[bytes] = []
    segment_size = 0
    entries: list[audit_checkpoint.SegmentEntry] = []

    def flush(path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"".join(segment))
        finally:
            os.close(fd)

    for seq in range(1, records + 1):
        record, line = seal_line(event, seq=seq, prev=prev)
        index.add_record(record, offset, len(line))
        hasher.update(line)
        segment.append(line)
        segment_size += len(line)
        offset += len(line)
        prev = record.hash
        if segment_size >= DEFAULT_SEGMENT_BYTES:
            number += 1
            path = layout.audit_segment(number)
            flush(path)
            found = path.stat()
            identity = (found.st_ino, found.st_ctime_ns)
            entries.append(
                audit_checkpoint.SegmentEntry(path.name, segment_size, hasher.hexdigest(), identity)
            )
            hasher = hashlib.sha256()
            segment, segment_size = [], 0
    flush(layout.audit)
    audit_checkpoint.write(
        audit_checkpoint.checkpoint_path(layout.audit),
        index,
        log_size=offset,
        last_seq=records,
        last_hash=prev,
        prefix_sha256=hasher.hexdigest(),
        segments=tuple(entries),
    )
    return offset


def first_answer(home: Path) -> float:
    """Start a daemon in ``home``; seconds until it answers; then stop it cleanly."""
    env = dict(os.environ, AILERON_HOME=str(home))
    layout = Layout(home)
    layout.daemon_json.unlink(missing_ok=True)
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "aileron_cli", "daemon", "start", "--foreground"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while True:
            if child.poll() is not None:
                raise RuntimeError(f"the daemon exited with {child.returncode}; see daemon.log")
            info = read_daemon_info(layout.daemon_json)
            if info is not None and info.pid == child.pid and probe(info) is not None:
                elapsed = time.perf_counter() - start
                break
            if time.perf_counter() - start > START_LIMIT_S:
                raise RuntimeError("the daemon did not answer in time")
            time.sleep(0.01)
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            child.wait(120)
    return elapsed


def measure(
    directory: Path, records: int, small: int, runs: int, full_walk: bool
) -> dict[str, Any]:
    long_home, short_home = directory / "long", directory / "short"
    started = time.perf_counter()
    long_bytes = build(long_home, records)
    build_s = time.perf_counter() - started
    build(short_home, small)
    segments = len(Layout(long_home).audit_segments())
    first_answer(short_home)  # warm the interpreter's files in the page cache
    short = [first_answer(short_home) for _ in range(runs)]
    long = [first_answer(long_home) for _ in range(runs)]
    walked: float | None = None
    if full_walk:
        audit_checkpoint.checkpoint_path(Layout(long_home).audit).unlink()
        walked = first_answer(long_home)
    value = min(long) - min(short)
    return {
        "figure": "B15",
        "what": f"daemon first answer, {records:,}-record log minus {small:,}-record log",
        "value": round(value, 3),
        "reference": round(min(short), 3),
        "unit": "s",
        "ratio": round(min(long) / min(short), 2),
        "budget": f"<= {BUDGET_S:.0f} s more",
        "pass": value <= BUDGET_S,
        "details": {
            "long_records": records,
            "long_bytes": long_bytes,
            "long_segments": segments,
            "build_s": round(build_s, 1),
            "short_first_answer_s": [round(s, 3) for s in short],
            "long_first_answer_s": [round(s, 3) for s in long],
            "long_without_checkpoint_s": None if walked is None else round(walked, 2),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--full-walk", action="store_true", help="also start without checkpoint")
    parser.add_argument("--dir", type=Path, help="where to write (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    as_installed()
    with tempfile.TemporaryDirectory(prefix="aileron-audit-start-", dir=args.dir) as tmp:
        figure = measure(Path(tmp), args.records, args.small, args.runs, args.full_walk)
    details = figure["details"]
    print(
        f"{figure['figure']:<4} {figure['what']:<58} {figure['value']:>7} {figure['unit']}"
        f"  ref {figure['reference']} s  {'PASS' if figure['pass'] else 'FAIL'}"
        f"  ({figure['budget']})"
    )
    print(
        f"     long log: {details['long_bytes'] // (1 << 20)} MiB in {details['long_segments']}"
        f" files (built in {details['build_s']} s)"
    )
    print(f"     first answer, short log (s): {details['short_first_answer_s']}")
    print(f"     first answer, long log, checkpointed (s): {details['long_first_answer_s']}")
    walked = details["long_without_checkpoint_s"]
    if walked is not None:
        print(f"     first answer, long log, no checkpoint: {walked} s")
    if args.json:
        args.json.write_text(json.dumps([figure], indent=2) + "\n")
    return 0 if figure["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
