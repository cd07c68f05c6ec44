"""The session's private directory: where files that hold the session token live (ADR 0007).

An agent that cannot take the session token from its environment alone is pointed at a file
instead of being given the token as an argument (``/proc/PID/cmdline`` is readable by every
local user). The file is 0600 in a fresh 0700 directory, and the directory goes when the
session ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from aileron_core.paths import SECRET_FILE_MODE


@contextlib.contextmanager
def private_directory() -> Iterator[Path]:
    """A fresh directory only the user can enter (``mkdtemp`` makes it 0700), removed with
    everything in it on exit."""
    path = Path(tempfile.mkdtemp(prefix="aileron-session-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_private_files(files: Mapping[str, str]) -> None:
    """Create each file (0600, refusing one that already exists or a symlink) with its text."""
    for path, text in files.items():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, SECRET_FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
