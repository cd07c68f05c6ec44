"""Who is on the other end of a connection, and whether it belongs to an agent (SPEC §16).

The daemon serves its admin API on a Unix socket (``daemon.sock``, 0600), where the kernel
tells it the connecting process (``SO_PEERCRED``). Each request made there carries that
:class:`PeerProcess`; :class:`SessionTrees` says whether the process descends from the launcher
of a live agent session (the launcher keeps the agent's orphans in its tree as a child
subreaper, so walking parent links from any of the agent's processes reaches the launcher).
Every process is identified by its pid *and* its start time, so a pid reused after a process
exited is not mistaken for it.

Reading ``/proc`` is Linux-only; elsewhere :func:`process_start` answers ``None`` and the
ancestry walk finds nothing (ADR 0014 records what that leaves open).
"""

from __future__ import annotations

import os
import socket
import struct

import attrs

__all__ = [
    "PeerProcess",
    "ProcessRef",
    "SessionTrees",
    "ancestry",
    "describe_process",
    "parent_of",
    "peer_pid",
    "process_start",
]

_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
# /proc/PID/stat: "pid (comm) state ppid pgrp session tty_nr tpgid flags ... starttime(22)".
# comm may hold spaces and parentheses, so fields are counted after the *last* ')'.
_PPID_FIELD = 1  # after "state"
_TTY_FIELD = 4
_START_FIELD = 19
MAX_DEPTH = 4096  # a walk longer than any real process tree means a loop; stop there


@attrs.frozen
class ProcessRef:
    """One process, told apart from any later holder of its pid by its start time."""

    pid: int
    start: int
    """Start time in clock ticks since boot (``/proc/PID/stat`` field 22)."""

    def alive(self) -> bool:
        return process_start(self.pid) == self.start


@attrs.frozen
class PeerProcess:
    """The process that opened a connection to the daemon's Unix socket."""

    pid: int
    uid: int
    exe: str | None = None
    tty: str | None = None

    def to_json(self) -> dict[str, object]:
        """What audit records say about the process (``auth.refused``, decisions)."""
        return {"pid": self.pid, "uid": self.uid, "exe": self.exe, "tty": self.tty}


def peer_pid(sock: socket.socket) -> tuple[int, int] | None:
    """``(pid, uid)`` of the process at the other end of a Unix stream socket, or ``None``."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None or sock.family != socket.AF_UNIX:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, option, _PEERCRED.size)
    except OSError:
        return None
    pid, uid, _gid = _PEERCRED.unpack(raw)
    return (pid, uid) if pid > 0 else None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    _, _, rest = raw.rpartition(b")")
    return rest.decode("ascii", "replace").split()


def process_start(pid: int) -> int | None:
    """The start time of ``pid``, or ``None`` if there is no such process (or no ``/proc``)."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) <= _START_FIELD:
        return None
    return int(fields[_START_FIELD])


def parent_of(pid: int) -> int | None:
    """The parent pid of ``pid``, or ``None``."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) <= _PPID_FIELD:
        return None
    return int(fields[_PPID_FIELD])


def ancestry(pid: int) -> list[ProcessRef]:
    """``pid`` and its ancestors, nearest first, up to (not including) pid 1 or pid 0."""
    chain: list[ProcessRef] = []
    current = pid
    while current > 1 and len(chain) < MAX_DEPTH:
        fields = _stat_fields(current)
        if fields is None or len(fields) <= _START_FIELD:
            break
        chain.append(ProcessRef(current, int(fields[_START_FIELD])))
        current = int(fields[_PPID_FIELD])
    return chain


def _tty_name(tty_nr: int) -> str | None:
    """The terminal device of a ``tty_nr`` (``/dev/pts/3``), or ``None`` for no terminal."""
    if tty_nr == 0:
        return None
    major, minor = os.major(tty_nr), os.minor(tty_nr)
    if 136 <= major <= 143:  # Unix98 pseudo-terminals
        return f"/dev/pts/{(major - 136) * 256 + minor}"
    if major == 4 and minor < 64:
        return f"/dev/tty{minor}"
    return f"tty({major}:{minor})"


def describe_process(pid: int, uid: int) -> PeerProcess:
    """A :class:`PeerProcess` for ``pid`` with its executable and terminal where readable."""
    try:
        exe: str | None = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = None
    fields = _stat_fields(pid)
    tty = _tty_name(int(fields[_TTY_FIELD])) if fields and len(fields) > _TTY_FIELD else None
    return PeerProcess(pid=pid, uid=uid, exe=exe, tty=tty)


class SessionTrees:
    """The launchers of live agent sessions, and the test of whether a process is theirs.

    A process is inside a session's tree when the session's launcher is a strict ancestor of
    it: the launcher itself is the human's own ``aileron launch`` and may end its session.
    """

    def __init__(self) -> None:
        self._roots: dict[ProcessRef, str] = {}

    def __bool__(self) -> bool:
        return bool(self._roots)

    def add(self, root: ProcessRef, session_id: str) -> None:
        self._roots[root] = session_id

    def remove(self, session_id: str) -> None:
        for root, owner in list(self._roots.items()):
            if owner == session_id:
                del self._roots[root]

    def roots(self) -> dict[ProcessRef, str]:
        return dict(self._roots)

    def session_of(self, pid: int) -> str | None:
        """The live session whose tree holds ``pid`` (not as its launcher), or ``None``."""
        if not self._roots:
            return None
        for ref in ancestry(pid)[1:]:
            session_id = self._roots.get(ref)
            if session_id is not None:
                return session_id
        return None
