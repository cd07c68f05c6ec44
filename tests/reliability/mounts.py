"""File systems for the storage faults (imported as ``reliability.mounts``; root only).

A small tmpfs and a filler that fills it; a read-only view of a directory (a read-only bind
mount over it); and ext4 on a loop device that can be made to fail the way a dying disk does
(``errors=remount-ro``). Tests call :func:`require_mounts` first: without root (or where
``mount`` is refused) they are skipped, unless AILERON_REQUIRE_ROOT_TESTS=1 makes that a
failure.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT_VAR = "AILERON_REQUIRE_ROOT_TESTS"
"""Set to 1 (scripts/test does, as root) to make the mount tests fail instead of skipping."""


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def mounts_unavailable(probe_dir: Path) -> str | None:
    """Why this process cannot mount a tmpfs (``None`` when it can)."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    probe_dir.mkdir(parents=True, exist_ok=True)
    done = _run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe_dir))
    if done.returncode != 0:
        return f"mount -t tmpfs is not permitted here: {done.stderr.strip()}"
    _run("umount", "-l", str(probe_dir))
    return None


def require_mounts(probe_dir: Path, *, with_ext4: bool = False) -> None:
    """Skip (or, with AILERON_REQUIRE_ROOT_TESTS=1, fail) when tmpfs (and, ``with_ext4``, a
    loop-mounted ext4) cannot be mounted."""
    reason = mounts_unavailable(probe_dir) or (ext4_unavailable() if with_ext4 else None)
    if reason is None:
        return
    if os.environ.get(ROOT_VAR) == "1":
        pytest.fail(f"{ROOT_VAR}=1 but {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A fresh tmpfs of ``size`` (mode 0700) mounted at ``path``; lazily unmounted after."""
    path.mkdir(parents=True, exist_ok=True)
    done = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    assert done.returncode == 0, done.stderr
    try:
        yield path
    finally:
        # Twice: a read-only bind mount may sit on top of the tmpfs.
        _run("umount", "-l", str(path))
        _run("umount", "-l", str(path))


@contextlib.contextmanager
def read_only_view(path: Path) -> Iterator[None]:
    """Make ``path`` read-only for every path lookup while the block runs.

    A live ``mount -o remount,ro`` is refused (EBUSY) while the daemon has files open for
    writing, so this binds ``path`` onto itself and remounts that bind read-only: opening,
    creating or renaming anything under ``path`` now fails with EROFS, as on a file system that
    went read-only. Files the daemon already holds open (audit and state logs) stay writable:
    their open descriptors belong to the mount underneath.
    """
    done = _run("mount", "--bind", str(path), str(path))
    assert done.returncode == 0, done.stderr
    try:
        done = _run("mount", "-o", "remount,bind,ro", str(path))
        assert done.returncode == 0, done.stderr
        yield
    finally:
        _run("umount", "-l", str(path))


@dataclass
class Ext4:
    """An ext4 image on a loop device, mounted with ``errors=remount-ro``."""

    image: Path
    mount: Path

    def attach(self) -> None:
        """Mount the image (read-write) at :attr:`mount`, mode 0700."""
        done = _run("mount", "-o", "loop,errors=remount-ro", str(self.image), str(self.mount))
        assert done.returncode == 0, done.stderr
        self.mount.chmod(0o700)

    def go_read_only(self) -> None:
        """Report a file system error, as a failing disk would: the kernel turns the whole file
        system read-only at once, for open files too (writes fail with EROFS)."""
        source = _run("findmnt", "-n", "-o", "SOURCE", str(self.mount)).stdout.strip()
        Path(f"/sys/fs/ext4/{Path(source).name}/trigger_fs_error").write_text("reliability test")
        try:
            (self.mount / ".probe").touch()
        except OSError as error:
            assert error.errno == errno.EROFS, error
        else:
            raise AssertionError("the file system is still writable after the error")

    def repair(self) -> None:
        """What an administrator does next: unmount, fsck, mount again (read-write)."""
        done = _run("umount", str(self.mount))
        assert done.returncode == 0, done.stderr
        fsck = _run("e2fsck", "-f", "-y", str(self.image))
        assert fsck.returncode in (0, 1), fsck.stdout + fsck.stderr  # 1: errors corrected
        self.attach()


def ext4_unavailable() -> str | None:
    """Why an ext4 loop mount that can be made to fail cannot be used here, or ``None``."""
    for tool in ("mkfs.ext4", "e2fsck", "findmnt", "losetup"):
        if _run("sh", "-c", f"command -v {tool}").returncode != 0:
            return f"{tool} is not installed"
    if not Path("/dev/loop-control").exists():
        return "no loop devices (/dev/loop-control is missing)"
    return None


@contextlib.contextmanager
def ext4(image: Path, mount: Path, size_mib: int = 32) -> Iterator[Ext4]:
    """A fresh ext4 file system of ``size_mib`` in ``image``, mounted at ``mount``."""
    with image.open("wb") as handle:
        handle.truncate(size_mib << 20)
    done = _run("mkfs.ext4", "-q", "-F", str(image))
    assert done.returncode == 0, done.stderr
    mount.mkdir(parents=True, exist_ok=True)
    fs = Ext4(image, mount)
    fs.attach()
    try:
        yield fs
    finally:
        _run("umount", "-l", str(mount))


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` with a filler file until not one byte fits."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        chunk = 1 << 16
        while chunk:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError:
                chunk //= 2
    finally:
        os.close(fd)
    return filler
