"""Writing the daemon's store files (connector specs, action manifests, bindings, the enclave
attachment): a write the file system refuses is a coded error, never a bare ``OSError``.

Every write is already atomic (``aileron_core.fileio.atomic_write``), so a refused one leaves
the old file in place; callers change their in-memory state only after the write succeeded::

    AileronError
    └── StoreWriteError   store_write_failed   a store file could not be written or removed
                                               (disk full, read-only, permissions)
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

from aileron_core.errors import AileronError


class StoreWriteError(AileronError):
    """A store file could not be written or removed; the store on disk is unchanged."""

    code = "store_write_failed"


_HINTS = {
    errno.ENOSPC: "free some disk space, then retry",
    errno.EDQUOT: "free some disk space, then retry",
    errno.EROFS: "the file system is read-only: make it writable, then retry",
}


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an ``OSError`` raised in the block (writing or removing ``path``) into a
    :class:`StoreWriteError` naming the file and the reason."""
    try:
        yield
    except OSError as error:
        raise StoreWriteError(
            f"could not write {path}: {error.strerror or error}",
            hint=_HINTS.get(error.errno or 0, "check that the daemon's home is writable"),
            details={"file": str(path)},
        ) from error
