"""Processes as Linux shows them in ``/proc``: start times, parents, trees.

The daemon uses this to tell whether a caller descends from an agent's launcher, and the
launcher to end whatever its agent left running. A process is named by its pid *and* its start
time (:class:`ProcessRef`), so a pid reused after its process exited is never mistaken for it.
Where there is no ``/proc`` every look-up answers "no such process".
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import attrs

__all__ = [
    "ProcessRef",
    "ancestry",
    "descendants",
    "parent_of",
    "process_start",
    "terminal_of",
    "end_processes",
]

# /proc/PID/stat: "pid (comm) state ppid pgrp session tty_nr tpgid flags … starttime(22) …".
# comm may hold spaces and parentheses, so fields are counted after the *last* ')'.
_PPID = 1
_TTY = 4
_START = 19
MAX_DEPTH = 4096  # no real process tree is deeper; a longer walk is a loop


@attrs.frozen
class ProcessRef:
    """One process, told apart from any later holder of its pid by its start time."""

    pid: int
    start: int
    """Start time in clock ticks since boot (``/proc/PID/stat`` field 22)."""

    @classmethod
    def of(cls, pid: int) -> ProcessRef | None:
        start = process_start(pid)
        return None if start is None else cls(pid, start)

    def alive(self) -> bool:
        return process_start(self.pid) == self.start


def _stat(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    fields = raw.rpartition(b")")[2].split()
    return fields if len(fields) > _START else None


def process_start(pid: int) -> int | None:
    """The start time of ``pid``, or ``None`` if there is no such process."""
    fields = _stat(pid)
    return None if fields is None else int(fields[_START])


def parent_of(pid: int) -> int | None:
    """The parent pid of ``pid``, or ``None``."""
    fields = _stat(pid)
    return None if fields is None else int(fields[_PPID])


def terminal_of(pid: int) -> str | None:
    """The controlling terminal of ``pid`` (``/dev/pts/3``), or ``None``."""
    fields = _stat(pid)
    tty_nr = 0 if fields is None else int(fields[_TTY])
    if tty_nr == 0:
        return None
    major, minor = os.major(tty_nr), os.minor(tty_nr)
    if 136 <= major <= 143:  # Unix98 pseudo-terminals
        return f"/dev/pts/{(major - 136) * 256 + minor}"
    if major == 4 and minor < 64:
        return f"/dev/tty{minor}"
    return f"tty({major}:{minor})"


def ancestry(pid: int) -> list[ProcessRef]:
    """``pid`` and its ancestors, nearest first, stopping before pid 1."""
    chain: list[ProcessRef] = []
    current = pid
    while current > 1 and len(chain) < MAX_DEPTH:
        fields = _stat(current)
        if fields is None:
            break
        chain.append(ProcessRef(current, int(fields[_START])))
        current = int(fields[_PPID])
    return chain


def descendants(root: ProcessRef, *, skip: frozenset[ProcessRef] = frozenset()) -> list[ProcessRef]:
    """Every live process below ``root`` (nearest first, zombies left out), from one scan of
    ``/proc``; the processes in ``skip`` and everything below them are left out."""
    children: dict[int, list[ProcessRef]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        fields = _stat(int(name))
        if fields is not None and fields[0] != b"Z":  # a zombie has exited: nothing to end
            ref = ProcessRef(int(name), int(fields[_START]))
            children.setdefault(int(fields[_PPID]), []).append(ref)
    if not root.alive():
        return []
    found: list[ProcessRef] = []
    queue = [root.pid]
    while queue and len(found) < 1 << 16:
        for child in children.get(queue.pop(0), []):
            # A child cannot have started before its parent: that would be a reused pid.
            if child.start >= root.start and child not in skip:
                found.append(child)
                queue.append(child.pid)
    return found


def end_processes(refs: list[ProcessRef], *, grace_s: float = 1.0) -> list[ProcessRef]:
    """SIGTERM each process that is still itself, then SIGKILL what is left after
    ``grace_s``; returns the processes signalled."""
    signalled = [ref for ref in refs if _signal(ref, signal.SIGTERM)]
    deadline = time.monotonic() + grace_s
    while signalled and time.monotonic() < deadline:
        if not any(ref.alive() and not _zombie(ref.pid) for ref in signalled):
            break
        time.sleep(0.02)
    for ref in signalled:
        _signal(ref, signal.SIGKILL)
    return signalled


def _signal(ref: ProcessRef, signum: int) -> bool:
    if not ref.alive():
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(ref.pid, signum)
        return True
    return False


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rpartition(b")")[2].split()[:1] == [b"Z"]
    except OSError:
        return True
