"""The server lock the daemon and the enclave share (ADR 0026): one holder at a time, across
processes, released by the holder's death."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from aileron_core.fileio import take_lock

HOLD = """
import sys, time
from pathlib import Path
from aileron_core.fileio import take_lock
fd = take_lock(Path(sys.argv[1]))
print("held" if fd is not None else "refused", flush=True)
if fd is not None:
    sys.stdin.read()  # hold until told to stop
"""


def test_a_second_process_is_refused_while_the_first_holds_it(tmp_path: Path) -> None:
    """Another process holding the lock makes take_lock answer None; after it dies, it is free."""
    lock = tmp_path / "serve.lock"
    command = [sys.executable, "-c", HOLD, str(lock)]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None
        try:
            assert holder.stdout.readline().strip() == "held"
            assert take_lock(lock) is None
            second = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert second.stdout.strip() == "refused"
        finally:
            holder.kill()
    fd = take_lock(lock)
    assert fd is not None
    os.close(fd)


def test_the_lock_file_is_private_and_released_by_closing(tmp_path: Path) -> None:
    """The lock file is created 0600; closing the descriptor frees the lock for the next holder."""
    lock = tmp_path / "daemon.lock"
    fd = take_lock(lock)
    assert fd is not None
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    os.close(fd)
    again = take_lock(lock)
    assert again is not None
    os.close(again)
