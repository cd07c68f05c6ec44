"""Crash-safe file primitives: atomic replace, directory fsync, exclusive advisory locks (held
for a block, or for a server's life).

Every rewrite of a state file goes through :func:`atomic_write`: the new content is written to
a temporary file in the same directory, fsynced, renamed over the old one, and the directory is
fsynced, so a crash at any moment leaves either the old or the new file, never a mix.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aileron_core.paths import SECRET_FILE_MODE


def fsync_dir(directory: Path) -> None:
    """Make a rename or creation inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = SECRET_FILE_MODE) -> None:
    """Replace ``path`` with ``data`` atomically and durably; the file gets ``mode``."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def exclusive_lock(lock_path: Path, *, blocking: bool = True) -> Iterator[int]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created 0600) for the ``with`` block.

    With ``blocking=False`` raises ``BlockingIOError`` at once when another holder has it.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, SECRET_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        yield fd
    finally:
        os.close(fd)


def take_lock(lock_path: Path) -> int | None:
    """Take an exclusive ``flock`` on ``lock_path`` (created 0600) without waiting.

    Returns the descriptor that holds it — until it is closed, or the process ends however it
    ends (a ``kill -9`` leaves nothing behind) — or ``None`` when another holder has it. The
    daemon's ``daemon.lock`` and the enclave's ``serve.lock`` are taken this way: a second
    server on the same data refuses to start (ADR 0026).
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, SECRET_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd
