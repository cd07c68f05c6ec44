"""Reading and writing vault.json on disk: identity, change detection, locked atomic writes.

- Every write is a whole-file atomic replace (``fileio.atomic_write``: temp file, fsync, rename,
  directory fsync), mode 0600, in a 0700 directory, while holding an exclusive ``flock`` on
  ``<vault>.lock`` beside the file. Readers take no lock: a rename is atomic, so they see the old
  file or the new one, never a mix.
- A :class:`FileIdentity` is what a handle remembers about the file it last loaded: device,
  inode, size and mtime, plus the file's first bytes, which hold its checksum. Timestamps can be
  coarser than two quick writes and inode numbers are reused, but every write changes the
  checksum (new nonces, new ``updated_at``), so comparing identities is a cheap and reliable
  "did another process write since?" test.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

import attrs

from aileron_core.fileio import atomic_write, exclusive_lock
from aileron_core.paths import ensure_private_dir
from aileron_core.vault.errors import VaultCorrupt, VaultError, VaultMissing
from aileron_core.vault.format import HEAD_BYTES, MAX_FILE_BYTES


@attrs.frozen
class FileIdentity:
    """Enough about a file to tell that it was replaced or rewritten."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    head: bytes


def lock_path(path: Path) -> Path:
    """The lock file that serialises writers of ``path``: ``<name>.lock`` beside it."""
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def write_lock(path: Path, *, create_dir: bool = False) -> Iterator[None]:
    """Hold the exclusive writer lock of the vault at ``path``.

    With ``create_dir``, first create the vault's directory (mode 0700) if it is missing.
    """
    with contextlib.ExitStack() as stack:
        with _os_errors(path):
            if create_dir:
                ensure_private_dir(path.parent)
            stack.enter_context(exclusive_lock(lock_path(path)))
        yield


def probe(path: Path) -> FileIdentity:
    """The identity of the file now at ``path`` (reads only its first bytes)."""
    with _os_errors(path), path.open("rb") as handle:
        stat = os.fstat(handle.fileno())
        head = handle.read(HEAD_BYTES)
    return FileIdentity(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, head)


def read(path: Path) -> tuple[bytes, FileIdentity]:
    """The whole file and its identity, both from the same open file."""
    with _os_errors(path), path.open("rb") as handle:
        stat = os.fstat(handle.fileno())
        if stat.st_size > MAX_FILE_BYTES:
            raise VaultCorrupt(
                f"{path} is damaged or was tampered with (file): it is larger than "
                f"{MAX_FILE_BYTES} bytes",
                details={"file": str(path), "region": "file"},
            )
        data = handle.read(MAX_FILE_BYTES + 1)
    identity = FileIdentity(
        stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, data[:HEAD_BYTES]
    )
    return data, identity


def write(path: Path, data: bytes) -> FileIdentity:
    """Atomically replace ``path`` with ``data``; call only while holding :func:`write_lock`."""
    with _os_errors(path):
        remove_stale_temp_files(path)
        atomic_write(path, data)
        stat = path.stat()
    return FileIdentity(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, data[:HEAD_BYTES])


def remove_stale_temp_files(path: Path) -> None:
    """Delete temp files that an interrupted write of ``path`` left behind.

    Only ever called under the writer lock, when no cooperating writer can be mid-write. The
    names are those ``fileio.atomic_write`` uses: ``.<name>.<random>.tmp``. A stale copy may
    hold a data key that was rotated away, wrapped under an old passphrase.
    """
    prefix, suffix = f".{path.name}.", ".tmp"
    with os.scandir(path.parent) as listing:
        for item in listing:
            if item.name.startswith(prefix) and item.name.endswith(suffix):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(item.path)


@contextlib.contextmanager
def _os_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise VaultMissing(f"there is no vault at {path}", details={"file": str(path)}) from None
    except OSError as exc:
        raise VaultError(
            f"cannot access the vault at {path}: {exc.strerror or exc}",
            hint=_HINTS.get(
                exc.errno or 0,
                "check that the file and its directory belong to you and are readable",
            ),
            details={"file": str(path)},
        ) from exc


# What to do when the file system, not the file, is the problem (a write that fails leaves
# the old file in place: see ``write``).
_HINTS = {
    errno.ENOSPC: "free some disk space, then retry; the vault file is unchanged",
    errno.EDQUOT: "free some disk space, then retry; the vault file is unchanged",
    errno.EROFS: "the file system is read-only: make it writable, then retry",
}


__all__ = [
    "FileIdentity",
    "lock_path",
    "probe",
    "read",
    "remove_stale_temp_files",
    "write",
    "write_lock",
]
