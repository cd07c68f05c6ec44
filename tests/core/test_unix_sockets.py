"""The one way the daemon binds and removes its Unix sockets (``aileron_core.unix_sockets``)."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from aileron_core.unix_sockets import MAX_SOCKET_PATH, SocketBindError, bind_unix, remove_socket


def reachable(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        try:
            client.connect(str(path))
        except OSError:
            return False
        return True


def test_a_socket_is_0600_and_its_folders_0700(tmp_path: Path) -> None:
    """The socket is mode 0600; the folders it was asked to keep private are created 0700."""
    path = tmp_path / "run" / "s1" / "api.sock"
    with bind_unix(path, private_folders=2):
        assert stat.S_ISSOCK(path.lstat().st_mode)
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
        assert reachable(path)


def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    """A socket file left by a dead process is replaced by a listening one."""
    path = tmp_path / "daemon.sock"
    bind_unix(path).close()  # closed without unlinking: what a crash leaves
    assert path.exists() and not reachable(path)
    with bind_unix(path):
        assert reachable(path)


def test_a_path_too_deep_for_a_socket_address_is_bound_through_its_folder(
    tmp_path: Path,
) -> None:
    """A path longer than a socket address holds is still bound, at that path."""
    folder = tmp_path / ("d" * 60) / ("e" * 60)
    path = folder / "api.sock"
    assert len(str(path)) > MAX_SOCKET_PATH + 8
    with bind_unix(path, private_folders=2):
        assert stat.S_ISSOCK(path.lstat().st_mode)
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600


def test_a_failed_bind_names_the_socket_and_the_reason(tmp_path: Path) -> None:
    """Binding where no socket can be made is a ``listener_bind_failed`` naming the path."""
    path = tmp_path / "missing" / "api.sock"  # its folder does not exist and is not made
    with pytest.raises(SocketBindError) as caught:
        bind_unix(path)
    assert caught.value.code == "listener_bind_failed"
    assert caught.value.details["socket"] == str(path)
    assert caught.value.details["reason"]


def test_removing_prunes_the_folder_only_when_asked_and_empty(tmp_path: Path) -> None:
    """``remove_socket`` unlinks the socket; with ``prune_folder`` it removes the folder once
    nothing else is in it; removing twice is harmless."""
    first, second = tmp_path / "run" / "a.sock", tmp_path / "run" / "b.sock"
    bind_unix(first, private_folders=1).close()
    bind_unix(second).close()
    remove_socket(first, prune_folder=True)
    assert not first.exists() and second.exists()  # the folder still holds b.sock
    remove_socket(second)
    assert not second.exists() and second.parent.is_dir()
    remove_socket(second, prune_folder=True)
    assert not second.parent.exists()
