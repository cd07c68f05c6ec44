"""Kill -9 of a real process appending to the audit log loses no acknowledged event."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from aileron_cli.daemon.audit_log import AuditLog

APPENDER = Path(__file__).with_name("appender.py")


def run_and_kill(path: Path, acks_before_kill: int, workers: int, payload_bytes: int) -> set[int]:
    """Run the appender, SIGKILL it after ``acks_before_kill`` acks; return every acked seq."""
    child = subprocess.Popen(
        [sys.executable, str(APPENDER), str(path), str(workers), str(payload_bytes)],
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


def test_kill_9_while_appending_loses_no_acknowledged_event(tmp_path: Path) -> None:
    """After each SIGKILL mid-append, reopen keeps every acked seq and the chain verifies."""
    path = tmp_path / "audit.jsonl"
    acked: set[int] = set()
    rounds = [(150, 1, 100), (400, 16, 3000), (300, 8, 9000), (600, 32, 500)]
    for acks_before_kill, workers, payload_bytes in rounds:
        acked |= run_and_kill(path, acks_before_kill, workers, payload_bytes)
        log, report = AuditLog.open(path)
        try:
            assert report.chain_ok, report.summary()
            assert report.unreadable_lines == 0
            on_disk = {record.seq for record in log.list()}
            assert on_disk == set(range(1, log.last_seq + 1))
            assert acked <= on_disk, sorted(acked - on_disk)[:10]
            assert log.verify().ok
        finally:
            log.close()
