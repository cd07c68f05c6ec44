"""A full or read-only AILERON_HOME (a real tmpfs / ext4 on a loop device, as root): clear
errors, nothing half-written, and everything works again once the disk is fixed.

These tests mount file systems, so they need root; without it they are skipped, unless
AILERON_REQUIRE_ROOT_TESTS=1 (scripts/test sets it as root), which makes that a failure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from actions.support import manifest
from helpers import aileron, kill_daemon
from reliability.mounts import Ext4, ext4, fill, read_only_view, require_mounts, tmpfs
from reliability.support import (
    PASSPHRASE,
    assert_one_line_error,
    client,
    echo_server,
    kill9,
    read_audit,
    set_up,
)

from aileron_cli.daemon.store.statelog import StateLog, StateWriteError
from aileron_core.discovery import DaemonInfo, read_daemon_info
from aileron_core.paths import Layout
from aileron_core.vault import Vault

pytestmark = pytest.mark.slow

ENOSPC = "No space left on device"
EROFS = "Read-only file system"


@pytest.fixture
def small_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Layout]:
    """AILERON_HOME on a fresh 16 MiB tmpfs; any daemon is killed before it is unmounted."""
    require_mounts(tmp_path / "probe")
    with tmpfs(tmp_path / "home", "16m") as home:
        monkeypatch.setenv("AILERON_HOME", str(home))
        layout = Layout(home)
        try:
            yield layout
        finally:
            kill_daemon(layout)


@pytest.fixture
def ext4_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ext4]:
    """AILERON_HOME on a fresh ext4 (loop device, errors=remount-ro)."""
    require_mounts(tmp_path / "probe", with_ext4=True)
    with ext4(tmp_path / "ext4.img", tmp_path / "home") as fs:
        monkeypatch.setenv("AILERON_HOME", str(fs.mount))
        try:
            yield fs
        finally:
            kill_daemon(Layout(fs.mount))


def _start(layout: Layout) -> DaemonInfo:
    done = aileron("daemon", "start")
    assert done.returncode == 0, done.stderr
    info = read_daemon_info(layout.daemon_json)
    assert info is not None
    return info


def _env() -> dict[str, str]:
    return dict(os.environ, AILERON_VAULT_PASSPHRASE=PASSPHRASE)


def _put(path: str, value: str = "v") -> None:
    done = aileron("vault", "put", path, stdin=value, env=_env())
    assert done.returncode == 0, done.stderr


def _run_until_refused(info: DaemonInfo, attempts: int = 200) -> httpx.Response:
    """Run echo-say until an answer is not 200 (an audit append failed); that answer."""
    with client(info) as api:
        for n in range(attempts):
            answer = api.post("actions/echo-say/run", json={"args": {"message": f"m{n}"}})
            if answer.status_code != 200:
                return answer
    raise AssertionError(f"{attempts} audited runs all succeeded on a full disk")


def _stored(layout: Layout) -> set[str]:
    vault = Vault.open(layout.vault)
    vault.unlock(PASSPHRASE)
    return {entry.path for entry in vault.list()}


def test_a_full_disk_fails_vault_writes_and_audit_appends_cleanly(small_home: Layout) -> None:
    """On a full home a vault write and an audited run fail with clear errors, nothing is
    half-written, and after freeing space and the restart the error asks for, all works."""
    layout = small_home
    info = _start(layout)
    with echo_server() as echo:
        set_up(info, echo.host)
        _put("reliability/before")
        vault_before = layout.vault.read_bytes()
        filler = fill(layout.home)

        put = aileron("vault", "put", "reliability/during", stdin="x" * 16384, env=_env())
        assert_one_line_error(put, ENOSPC, "free some disk space")
        assert layout.vault.read_bytes() == vault_before
        assert [p.name for p in layout.home.iterdir() if p.name.endswith(".tmp")] == []

        # The first append that needs a new block fails (a tmpfs fills page by page).
        refused = _run_until_refused(info)
        error = refused.json()["error"]
        assert error["code"] == "audit_write_failed", refused.text
        assert ENOSPC in error["message"]
        assert read_audit(layout)  # every line on disk is an intact record: none half-written
        # Until a restart the log stays closed to writes, and the CLI says so in one line.
        run = aileron("action", "run", "echo-say", "--arg", "message=later", env=_env())
        assert_one_line_error(run, "audit log", "restart the daemon")

        filler.unlink()
        assert aileron("daemon", "stop").returncode == 0
        info = _start(layout)
        verify = aileron("audit", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        _put("reliability/after")
        ran = aileron("action", "run", "echo-say", "--arg", "message=after", env=_env())
        assert ran.returncode == 0, ran.stderr
    assert json.loads(echo.seen[-1].body) == {"message": "after"}
    assert _stored(layout) >= {"reliability/before", "reliability/after"}
    assert "reliability/during" not in _stored(layout)


def test_a_state_log_append_on_a_full_disk_takes_back_its_partial_line(tmp_path: Path) -> None:
    """A sessions/approvals log append that hits ENOSPC fails with StateWriteError and leaves
    no partial line, so the next acknowledged record survives a reopen."""
    require_mounts(tmp_path / "probe")
    with tmpfs(tmp_path / "fs", "64k") as fs:
        path = fs / "sessions.jsonl"
        log = StateLog(path)
        log.append({"id": "first"})
        filler = fill(fs)
        with pytest.raises(StateWriteError, match=ENOSPC):
            for n in range(64):  # 333-byte lines: one of them crosses a page boundary
                log.append({"id": f"r{n}", "pad": "z" * 300})
        assert path.read_bytes().endswith(b"\n")
        filler.unlink()
        log.append({"id": "after"})
        log.close()
        reopened = StateLog(path)
        assert "after" in reopened.replay()
        assert (reopened.recovery.dropped_bytes, reopened.recovery.skipped_lines) == (0, ())
        reopened.close()


def test_a_home_that_turns_read_only_fails_writes_cleanly(ext4_home: Ext4) -> None:
    """When the home's file system turns read-only under a running daemon (an ext4 error with
    errors=remount-ro), a vault write and an audited run fail with clear errors, nothing is
    half-written, and after fsck and a restart the chain verifies and everything works."""
    layout = Layout(ext4_home.mount)
    info = _start(layout)
    with echo_server() as echo:
        set_up(info, echo.host)
        _put("reliability/before")
        vault_before = layout.vault.read_bytes()
        audit_before = layout.audit.read_bytes()
        ext4_home.go_read_only()

        put = aileron("vault", "put", "reliability/during", stdin="x", env=_env())
        assert_one_line_error(put, EROFS, "make it writable")
        assert layout.vault.read_bytes() == vault_before

        with client(info) as api:
            refused = api.post("actions/echo-say/run", json={"args": {"message": "ro"}})
        assert refused.json()["error"]["code"] == "audit_write_failed", refused.text
        assert EROFS in refused.json()["error"]["message"]
        assert layout.audit.read_bytes() == audit_before
        run = aileron("action", "run", "echo-say", "--arg", "message=ro2", env=_env())
        assert_one_line_error(run, "audit log")

        # Nothing can be written, so not even a clean stop: kill it, fsck, mount, start.
        kill9(layout, info.pid)
        ext4_home.repair()
        assert layout.vault.read_bytes() == vault_before
        assert layout.audit.read_bytes() == audit_before
        _start(layout)
        verify = aileron("audit", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        _put("reliability/after")
        ran = aileron("action", "run", "echo-say", "--arg", "message=after", env=_env())
        assert ran.returncode == 0, ran.stderr
    assert _stored(layout) >= {"reliability/before", "reliability/after"}
    assert "reliability/during" not in _stored(layout)


# -- product bugs this suite found (fixed; see README.md) --------------------------------------


def test_stopping_a_daemon_whose_audit_log_failed_is_clean(small_home: Layout) -> None:
    """After an audit write failure and freed space, `daemon stop` logs no traceback and
    removes daemon.json."""
    layout = small_home
    info = _start(layout)
    with echo_server() as echo:
        set_up(info, echo.host)
        filler = fill(layout.home)
        _run_until_refused(info)
        filler.unlink()
        assert aileron("daemon", "stop").returncode == 0
    log = layout.daemon_log.read_text()
    assert "Traceback" not in log and "shutdown failed" not in log, log[-3000:]
    assert not layout.daemon_json.exists()


def test_commands_on_a_read_only_home_fail_in_one_line(small_home: Layout) -> None:
    """With no daemon and a read-only home, commands fail with one line, not a traceback."""
    aileron("vault", "status")  # creates the home's files, then stop: no writer left
    assert aileron("daemon", "stop").returncode == 0
    with read_only_view(small_home.home):
        for args in (("vault", "list"), ("daemon", "start"), ("status",)):
            assert_one_line_error(aileron(*args), EROFS)
        stopped = aileron("daemon", "stop")
    assert stopped.returncode == 0, stopped.stderr


def test_daemon_stop_works_on_a_read_only_home(small_home: Layout) -> None:
    """A running daemon can be stopped after its home turned read-only."""
    info = _start(small_home)
    with read_only_view(small_home.home):
        stopped = aileron("daemon", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"pid {info.pid}" in stopped.stdout


def test_installs_on_a_read_only_home_answer_a_clear_error(small_home: Layout) -> None:
    """Connector and action installs on a read-only home answer a coded error naming EROFS."""
    info = _start(small_home)
    with echo_server() as echo:
        set_up(info, echo.host)
    with read_only_view(small_home.home):
        # One client each: after a 500 the server closes the connection.
        with client(info) as api:
            install = api.post("actions", json={"manifest": manifest("echo-careful")})
        with client(info) as api:
            remove = api.delete("connectors/local:%2F%2Fecho")
    answers = [install, remove]
    for answer in answers:
        error = answer.json()["error"]
        assert answer.status_code != 500 and error["code"] != "internal_error", answer.text
        assert EROFS in error["message"]
