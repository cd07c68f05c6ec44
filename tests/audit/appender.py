"""Child process for the kill -9 test: append audit events until killed.

Usage: python appender.py AUDIT_PATH WORKERS PAYLOAD_BYTES [SEGMENT_BYTES]. Each worker task
appends in a loop and prints the seq of every append *after* it returned (that is, after it
was fsynced), so every seq the parent reads was acknowledged.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aileron_cli.daemon.audit.log import AuditLog
from aileron_core.audit import Actor


async def worker(log: AuditLog, number: int, filler: str) -> None:
    actor = Actor(type="service", id=f"worker-{number}")
    count = 0
    while True:
        record = await log.append("test.crash", actor, None, {"i": count, "fill": filler})
        sys.stdout.write(f"{record.seq}\n")
        sys.stdout.flush()
        count += 1


async def main(path: Path, workers: int, payload_bytes: int, segment_bytes: int) -> None:
    log, report = AuditLog.open(path, segment_bytes=segment_bytes)
    sys.stderr.write(report.summary() + "\n")
    await asyncio.gather(*(worker(log, n, "x" * payload_bytes) for n in range(workers)))


if __name__ == "__main__":
    segment_bytes = int(sys.argv[4]) if len(sys.argv) > 4 else 64 << 20
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), segment_bytes))
