"""The kill -9 harness shared by the audit crash tests (imported as ``audit.kill``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

APPENDER = Path(__file__).with_name("appender.py")


def run_and_kill(
    path: Path,
    acks_before_kill: int,
    workers: int,
    payload_bytes: int,
    segment_bytes: int = 64 << 20,
) -> set[int]:
    """Run the appender, SIGKILL it after ``acks_before_kill`` acks; return every acked seq."""
    command = [sys.executable, str(APPENDER), str(path), str(workers), str(payload_bytes)]
    child = subprocess.Popen(
        [*command, str(segment_bytes)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    acked: set[int] = set()
    try:
        while len(acked) < acks_before_kill:
            line = child.stdout.readline()
            if not line:
                raise AssertionError(f"appender exited early: {child.stderr.read().decode()}")
            acked.add(int(line))
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        rest, _ = child.communicate()
    # Acks already in the pipe when the kill landed count too; a half-printed last one does not.
    acked.update(int(line) for line in rest.splitlines(keepends=True) if line.endswith(b"\n"))
    assert child.returncode == -signal.SIGKILL
    return acked
