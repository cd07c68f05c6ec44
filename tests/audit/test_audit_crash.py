"""Kill -9 of a real process appending to the audit log loses no acknowledged event."""

from __future__ import annotations

from pathlib import Path

from audit.kill import run_and_kill

from aileron_cli.daemon.audit.log import AuditLog


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
