"""Small helpers shared by tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from aileron_core.discovery import read_daemon_info
from aileron_core.paths import Layout

REPO = Path(__file__).resolve().parent.parent


def script(name: str) -> str:
    """Path of a console script installed in the running environment."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is not installed beside {sys.executable}"
    return os.fspath(path)


def aileron(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real `aileron` console script."""
    return subprocess.run(
        [script("aileron"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def kill_daemon(layout: Layout) -> None:
    """Make sure no daemon of this home survives the test."""
    info = None
    with contextlib.suppress(Exception):
        info = read_daemon_info(layout.daemon_json)
    aileron("daemon", "stop", timeout=30)
    if info is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGKILL)
