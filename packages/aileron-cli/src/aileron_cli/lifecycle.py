"""Finding, spawning and stopping the daemon from a client process (no FastAPI imported here).

Auto-spawn (SPEC §5): read ``daemon.json`` and probe ``/v1/health``; if nothing healthy answers,
take the spawn lock, look again (another client may have won the race), spawn ``aileron daemon
start --foreground`` detached (new session, stdin closed, output to ``daemon.log``) and wait
until its ``daemon.json`` answers. A daemon of another version that this machinery spawned is
replaced once; one the user started is reported with the fix.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from aileron_cli.__about__ import __version__
from aileron_cli.environment import daemon_environment
from aileron_core.discovery import (
    DaemonInfo,
    DaemonInfoInvalid,
    pid_alive,
    probe,
    read_daemon_info,
)
from aileron_core.errors import AileronError
from aileron_core.fileio import exclusive_lock
from aileron_core.paths import SECRET_FILE_MODE, Layout

SPAWN_BUDGET_S = 5.0
SPAWN_POLL_S = 0.005
"""How often a spawning client looks for the new daemon's ``daemon.json`` (a missing file
costs a failed ``open``; the wait is the first ``aileron status``'s, B3)."""
STOP_BUDGET_S = 10.0
LOG_KEEP = 3
LOG_ROTATE_BYTES = 1 << 20


class DaemonStartFailed(AileronError):
    code = "daemon_start_failed"


class DaemonVersionMismatch(AileronError):
    code = "version_mismatch"


def daemon_running(layout: Layout) -> bool:
    """Whether some process holds the daemon's life-long lock (works on a read-only home:
    ``flock`` needs no write access)."""
    try:
        fd = os.open(layout.daemon_lock, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def read_record(layout: Layout) -> DaemonInfo | None:
    """``daemon.json``'s record, or ``None``. An unreadable one that no daemon holds (no process
    has ``daemon.lock``) is stale and removed, so it never blocks a command or the next start."""
    try:
        return read_daemon_info(layout.daemon_json)
    except DaemonInfoInvalid as error:
        if daemon_running(layout):
            raise DaemonInfoInvalid(
                error.message,
                hint=f"a daemon runs but its record is unreadable: stop the process holding"
                f" {layout.daemon_lock} (`fuser {layout.daemon_lock}` names it), then retry",
            ) from error
    _forget_record(layout)
    return None


def _forget_record(layout: Layout) -> None:
    """Remove a ``daemon.json`` that no running daemon owns (best effort: on a read-only home
    it stays, and the next start replaces it)."""
    with contextlib.suppress(OSError):
        layout.daemon_json.unlink(missing_ok=True)


@contextlib.contextmanager
def spawn_lock(layout: Layout) -> Iterator[None]:
    """Hold the spawn lock, creating the home if needed; a home where it cannot be taken
    (read-only, full, not ours) is a ``DaemonStartFailed`` naming the home and the reason."""
    with contextlib.ExitStack() as stack:
        try:
            layout.ensure()
            stack.enter_context(exclusive_lock(layout.spawn_lock))
        except OSError as error:
            raise _home_unusable(layout, error) from error
        yield


def _home_unusable(layout: Layout, error: OSError) -> DaemonStartFailed:
    return DaemonStartFailed(
        f"cannot start the daemon in {layout.home}: {error.strerror or error}",
        hint="the daemon keeps its state there: make it writable (or free disk space), then retry",
    )


def healthy(layout: Layout) -> tuple[DaemonInfo, dict[str, object]] | None:
    """The running daemon's record and health answer, or ``None``."""
    info = read_record(layout)
    if info is None:
        return None
    health = probe(info)
    return (info, health) if health is not None else None


def _rotate_log(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size < LOG_ROTATE_BYTES:
            return
        for index in range(LOG_KEEP - 1, 0, -1):
            older = path.with_name(f"{path.name}.{index}")
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{index + 1}"))
        path.replace(path.with_name(f"{path.name}.1"))


def _last_log_line(path: Path) -> str | None:
    """The last non-empty line of the daemon's log (its dying words), shortened."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 4096))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    last = next((line.strip() for line in reversed(lines) if line.strip()), None)
    return last[:300] if last else None


def spawn(layout: Layout, *, auto_spawned: bool) -> DaemonInfo:
    """Start a detached daemon and wait until it answers.

    The daemon gets the CLI's environment without the passphrase, tokens and every other Aileron
    variable it does not read (ADR 0018): it lives on, and a process's environment is readable
    through ``/proc`` for its whole life. The CLI hands the passphrase over the API to unlock.
    """
    command = [sys.executable, "-m", "aileron_cli", "daemon", "start", "--foreground"]
    if auto_spawned:
        command.append("--auto-spawned")
    try:
        layout.ensure()
        _rotate_log(layout.daemon_log)
        log_fd = os.open(
            layout.daemon_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, SECRET_FILE_MODE
        )
    except OSError as error:
        raise _home_unusable(layout, error) from error
    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,
            close_fds=True,
            env=daemon_environment(os.environ),
        )
    finally:
        os.close(log_fd)
    # The caller talks to the daemon through the httpx client next; importing it (~150 ms)
    # while the child starts up uses the second core instead of adding to the wait.
    import aileron_core.client  # noqa: F401

    deadline = time.monotonic() + SPAWN_BUDGET_S
    while time.monotonic() < deadline:
        if child.poll() is not None:
            last = _last_log_line(layout.daemon_log)
            raise DaemonStartFailed(
                f"the daemon exited with code {child.returncode} while starting"
                + (f": {last}" if last else ""),
                hint=f"see {layout.daemon_log}",
            )
        info = read_daemon_info(layout.daemon_json)
        if info is not None and info.pid == child.pid and probe(info) is not None:
            return info
        time.sleep(SPAWN_POLL_S)
    raise DaemonStartFailed(
        f"the daemon did not answer within {SPAWN_BUDGET_S:.0f} s", hint=f"see {layout.daemon_log}"
    )


def ensure_daemon(layout: Layout) -> DaemonInfo:
    """The running daemon of this version, spawning (or replacing) it if needed."""
    found = healthy(layout)
    if found is not None and found[1].get("version") == __version__:
        return found[0]
    with spawn_lock(layout):
        found = healthy(layout)
        if found is None:
            return spawn(layout, auto_spawned=True)
        info, health = found
        if health.get("version") == __version__:
            return info
        if not info.auto_spawned:
            raise DaemonVersionMismatch(
                f"the running daemon is Aileron {health.get('version')}, this CLI is {__version__}",
                hint="run `aileron daemon stop`; the next command starts the matching daemon",
            )
        stop(layout)
        return spawn(layout, auto_spawned=True)


def stop(layout: Layout, *, budget_s: float = STOP_BUDGET_S) -> DaemonInfo | None:
    """Stop the running daemon gracefully (SIGTERM, then wait); ``None`` if none ran."""
    info = read_record(layout)
    if info is None or not daemon_running(layout) or not pid_alive(info.pid):
        if info is not None and not daemon_running(layout):
            _forget_record(layout)  # left behind by a killed daemon
        return None
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        if not daemon_running(layout):
            return info
        time.sleep(0.02)
    raise AileronError(
        f"the daemon (pid {info.pid}) did not stop within {budget_s:.0f} s",
        hint=f"see {layout.daemon_log}; `kill -9 {info.pid}` forces it",
    )
