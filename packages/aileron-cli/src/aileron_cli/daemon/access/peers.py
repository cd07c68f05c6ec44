"""Who is on the other end of a connection, and whether it belongs to an agent (SPEC §16).

The daemon serves its admin API on a Unix socket (``daemon.sock``, 0600), where the kernel
names the connecting process (``SO_PEERCRED``); on its TCP port it cannot know the caller.
Every request carries its connection's :class:`ConnectionPeer` in the ASGI scope (put there by
:mod:`aileron_cli.daemon.http.uvicorn_glue`). :class:`SessionTrees` says whether a process descends
from the launcher of a live agent session: the launcher keeps the agent's orphans in its tree
(it is a child subreaper), so walking parent links from any of the agent's processes reaches
it. ADR 0014 records the design and what it leaves open.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Literal

import attrs

from aileron_core.processes import ProcessRef, ancestry, terminal_of

__all__ = [
    "PEER_SCOPE_KEY",
    "ConnectionPeer",
    "PeerProcess",
    "SessionTrees",
    "connection_peer",
    "tcp_peer_pid",
]

PEER_SCOPE_KEY = "aileron.peer"
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@attrs.frozen
class ConnectionPeer:
    """How a connection reached the daemon: over TCP (caller unknown) or its Unix socket."""

    transport: Literal["tcp", "unix"]
    pid: int = 0
    uid: int = -1


TCP_PEER = ConnectionPeer("tcp")


def connection_peer(sock: socket.socket | None) -> ConnectionPeer:
    """The peer of an accepted socket: its process for a Unix socket, else :data:`TCP_PEER`."""
    option = getattr(socket, "SO_PEERCRED", None)
    if sock is None or option is None or sock.family != socket.AF_UNIX:
        return TCP_PEER
    try:
        pid, uid, _gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, option, _UCRED.size))
    except OSError:
        return ConnectionPeer("unix")
    return ConnectionPeer("unix", pid, uid)


@attrs.frozen
class PeerProcess:
    """The process behind a Unix-socket request, as audit records describe it."""

    pid: int
    uid: int
    exe: str | None = None
    tty: str | None = None

    @classmethod
    def of(cls, peer: ConnectionPeer) -> PeerProcess:
        try:
            exe: str | None = os.readlink(f"/proc/{peer.pid}/exe")
        except OSError:
            exe = None
        return cls(pid=peer.pid, uid=peer.uid, exe=exe, tty=terminal_of(peer.pid))

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "uid": self.uid, "exe": self.exe, "tty": self.tty}


class SessionTrees:
    """The launchers of live agent sessions, and the test of whether a process is theirs.

    A process is inside a session's tree when the session's launcher is a strict ancestor: the
    launcher itself is the human's own ``aileron launch`` and may end its session.
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

    def session_of(self, pid: int) -> str | None:
        """The live session whose tree holds ``pid`` (not as its launcher), or ``None``."""
        if not self._roots:
            return None
        for ref in ancestry(pid)[1:]:
            session_id = self._roots.get(ref)
            if session_id is not None:
                return session_id
        return None


def _proc_address(host: str, port: int) -> str | None:
    """``host:port`` as ``/proc/net/tcp`` spells it (the IPv4 address as the kernel's 32-bit
    word in native byte order, both in upper-case hex), or ``None`` for anything but IPv4."""
    try:
        packed = socket.inet_aton(host)
    except OSError:
        return None
    (word,) = struct.unpack("=I", packed)
    return f"{word:08X}:{port:04X}"


def tcp_peer_pid(client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The process that holds the client end of a loopback TCP connection to this daemon
    (``client`` → ``server``), found through ``/proc/net/tcp`` and the processes' open
    descriptors; ``None`` when it cannot be told (another user's process, a process that
    already closed it, IPv6). Costs a walk of ``/proc``: for rare requests only."""
    local, remote = _proc_address(*client), _proc_address(*server)
    if local is None or remote is None:
        return None
    inode = None
    try:
        with open("/proc/net/tcp", encoding="ascii") as table:
            for line in table:
                fields = line.split()
                if len(fields) > 9 and fields[1] == local and fields[2] == remote:
                    inode = fields[9]
                    break
    except OSError:
        return None
    if inode is None or inode == "0":
        return None
    target = f"socket:[{inode}]"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            descriptors = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in descriptors:
            try:
                if os.readlink(f"/proc/{entry}/fd/{fd}") == target:
                    return int(entry)
            except OSError:
                continue
    return None
