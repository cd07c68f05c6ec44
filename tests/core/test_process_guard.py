"""aileron_core.process_guard, tried the way a same-user agent would: another process of the
same (unprivileged) user reading the guarded process's environment and memory."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import aileron_core.process_guard

NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"  # the test's own interpreter may sit in root's 0700 home

# A process of user nobody that loads process_guard on its own (standard library only),
# optionally calls forbid_inspection(), says it is ready, and waits with a marker in its env.
GUARDED = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("process_guard", sys.argv[1])
guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard)
if sys.argv[2] == "guard":
    assert guard.forbid_inspection()
print("ready", flush=True)
time.sleep(60)
"""
READ = """
import sys
for name in ("environ", "mem"):
    try:
        with open(f"/proc/{sys.argv[1]}/{name}", "rb") as f:
            f.read(1) if name == "environ" else None
        print(name, "open")
    except PermissionError:
        print(name, "refused")
"""


def _as_nobody(*args: str) -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *args]


@pytest.fixture
def shared_guard() -> Iterator[Path]:
    """process_guard.py copied where user nobody can read it."""
    if os.geteuid() != 0 or not shutil.which("setpriv") or not Path(SYSTEM_PYTHON).exists():
        if os.environ.get("AILERON_REQUIRE_ROOT_TESTS") == "1":
            pytest.fail("needs root, setpriv and /usr/bin/python3")
        pytest.skip("needs root (to run processes as nobody), setpriv and /usr/bin/python3")
    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o755)
    copy = folder / "process_guard.py"
    shutil.copyfile(aileron_core.process_guard.__file__, copy)
    copy.chmod(0o644)
    try:
        yield copy
    finally:
        shutil.rmtree(folder)


def _reads_of_a_peer(guard: Path, mode: str) -> str:
    target = subprocess.Popen(
        _as_nobody(SYSTEM_PYTHON, "-c", GUARDED, str(guard), mode),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert target.stdout is not None and target.stdout.readline().strip() == "ready"
        done = subprocess.run(
            _as_nobody(SYSTEM_PYTHON, "-c", READ, str(target.pid)),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout
    finally:
        target.kill()
        target.communicate()


def test_a_guarded_process_is_closed_to_its_own_user(shared_guard: Path) -> None:
    """After forbid_inspection(), another process of the same user can open neither
    /proc/PID/environ nor /proc/PID/mem of it."""
    assert _reads_of_a_peer(shared_guard, "guard").split() == [
        "environ",
        "refused",
        "mem",
        "refused",
    ]


def test_an_unguarded_process_is_open_to_its_own_user(shared_guard: Path) -> None:
    """The control: without the guard, the same reader opens the same process's environ (so
    the refusal above is the guard's doing, not the reader's set-up)."""
    assert "environ open" in _reads_of_a_peer(shared_guard, "none")
