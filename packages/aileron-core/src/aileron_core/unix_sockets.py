"""Listening Unix sockets that only their owner can reach, bound and removed in one way.

The daemon binds three kinds: its own ``daemon.sock``, a sandboxed session's ``api.sock`` (the
session listener) and its ``egress.sock`` (the egress proxy). Each is mode 0600 from its
creation (bound under a ``0177`` umask, so there is no moment at which another user could
connect), replaces a stale socket file left by a dead process, and may sit deeper than a socket
address holds (``sun_path`` is 108 bytes on Linux, the terminating NUL included): such a path is
bound through its folder's ``/proc/self/fd`` entry.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from aileron_core.errors import AileronError
from aileron_core.paths import SECRET_FILE_MODE, ensure_private_dir

__all__ = ["BACKLOG", "MAX_SOCKET_PATH", "SocketBindError", "bind_unix", "remove_socket"]

BACKLOG = 128
MAX_SOCKET_PATH = 100
"""The longest socket path bound directly (with room to spare under ``sun_path``'s 108 bytes)."""


class SocketBindError(AileronError):
    """A Unix socket could not be bound (its folder is not writable, the file system holds no
    sockets, ...)."""

    code = "listener_bind_failed"


def bind_unix(path: Path, *, backlog: int = BACKLOG, private_folders: int = 0) -> socket.socket:
    """A socket listening at ``path``, mode 0600 from its creation; a stale socket file there
    is replaced. The ``private_folders`` folders that enclose ``path`` (1: its own folder, 2:
    that folder's parent too) are created if missing and made 0700, outermost first.

    Raises :class:`SocketBindError` naming the path and the reason.
    """
    for level in range(private_folders, 0, -1):
        ensure_private_dir(path.parents[level - 1])
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    folder = -1
    old = os.umask(0o177)
    try:
        if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
            sock.bind(str(path))
        else:  # too deep for sun_path: bind through the folder's descriptor
            folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            sock.bind(f"/proc/self/fd/{folder}/{path.name}")
        os.chmod(path, SECRET_FILE_MODE)
        sock.listen(backlog)
    except OSError as error:
        sock.close()
        reason = error.strerror or str(error)
        raise SocketBindError(
            f"cannot listen on {path}: {reason}",
            hint="check that AILERON_HOME is on a local file system that holds Unix sockets",
            details={"socket": str(path), "errno": error.errno, "reason": reason},
        ) from None
    finally:
        os.umask(old)
        if folder >= 0:
            os.close(folder)
    return sock


def remove_socket(path: Path, *, prune_folder: bool = False) -> None:
    """Unlink the socket at ``path`` if it can (best effort: gone already, or a home turned
    read-only, is fine); with ``prune_folder``, remove its folder too if nothing else is left
    in it."""
    with contextlib.suppress(OSError):
        path.unlink()
    if prune_folder:
        with contextlib.suppress(OSError):  # not empty (the other session socket, say), or gone
            path.parent.rmdir()
