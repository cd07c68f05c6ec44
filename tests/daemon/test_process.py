"""The daemon as a real process: auto-spawn, races, crashes, version lock, token hygiene."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

from helpers import aileron, kill_daemon, script

from aileron_core.discovery import DaemonInfo, pid_alive, read_daemon_info
from aileron_core.paths import Layout


def test_vault_status_auto_spawns_and_stop_cleans_up(layout: Layout) -> None:
    """`vault status` spawns the daemon, `daemon status` shows it, `stop` removes daemon.json."""
    try:
        done = aileron("vault", "status")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "vault: missing"
        assert stat.S_IMODE(layout.daemon_json.stat().st_mode) == 0o600
        assert stat.S_IMODE(layout.home.stat().st_mode) == 0o700
        status = json.loads(aileron("daemon", "status", "--json").stdout)
        info = read_daemon_info(layout.daemon_json)
        assert info is not None
        assert status["running"] is True
        assert (status["url"], status["pid"], status["version"]) == (
            info.url,
            info.pid,
            info.version,
        )
        stopped = aileron("daemon", "stop")
        assert stopped.returncode == 0 and f"pid {info.pid}" in stopped.stdout
        assert not layout.daemon_json.exists()
        assert not pid_alive(info.pid) or _is_zombie(info.pid)
        after = aileron("daemon", "status")
        assert after.returncode == 0 and "not running" in after.stdout
        assert aileron("daemon", "stop").returncode == 0
    finally:
        kill_daemon(layout)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def test_second_daemon_refuses_to_start(real_daemon: DaemonInfo) -> None:
    """A second `daemon start --foreground` on the same home refuses with a clear message."""
    done = aileron("daemon", "start", "--foreground", timeout=30)
    assert done.returncode == 1
    assert "another Aileron daemon is already running" in done.stderr
    assert str(real_daemon.pid) in done.stderr


def test_ten_concurrent_clients_share_one_daemon(layout: Layout) -> None:
    """Ten CLIs started at once with no daemon end with exactly one daemon, all succeeding."""
    try:
        procs = [
            subprocess.Popen(
                [script("aileron"), "status", "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(10)
        ]
        outputs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0] * 10, [err for _, err in outputs]
        pids = {json.loads(out)["pid"] for out, _ in outputs}
        assert len(pids) == 1
        started = [r for r in _audit(layout) if r["type"] == "daemon.started"]
        assert len(started) == 1
    finally:
        kill_daemon(layout)


def _audit(layout: Layout) -> list[dict[str, object]]:
    return [json.loads(line) for line in layout.audit.read_text().splitlines()]


def _start_session(info: DaemonInfo, agent: str) -> dict[str, object]:
    from aileron_core.client import DaemonClient

    with DaemonClient.for_daemon(info) as client:
        session: dict[str, object] = client.post(
            "sessions", {"agent": agent, "working_dir": "/tmp"}
        )
    return session


def test_kill_9_then_next_command_recovers(layout: Layout, real_daemon: DaemonInfo) -> None:
    """After kill -9 the next command spawns a daemon; sessions are orphaned; audit verifies."""
    session = _start_session(real_daemon, "codex")
    os.kill(real_daemon.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (
        pid_alive(real_daemon.pid)
        and not _is_zombie(real_daemon.pid)
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    shown = aileron("sessions", "show", str(session["id"]), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "orphaned"
    fresh = read_daemon_info(layout.daemon_json)
    assert fresh is not None and fresh.pid != real_daemon.pid
    verify = aileron("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("audit log complete")


def test_audit_verify_names_the_first_edited_record(
    layout: Layout, real_daemon: DaemonInfo
) -> None:
    """Editing a byte of a record, or deleting one, makes `audit verify` name its seq."""
    for agent in ("a", "b", "c"):
        _start_session(real_daemon, agent)
    lines = layout.audit.read_bytes().splitlines(keepends=True)
    target = json.loads(lines[2])
    edited = lines[2].replace(b'"agent":"b"', b'"agent":"B"')
    assert edited != lines[2]
    layout.audit.write_bytes(b"".join([*lines[:2], edited, *lines[3:]]))
    done = aileron("audit", "verify")
    assert done.returncode == 1
    assert f"at seq {target['seq']}" in done.stdout and "chain_broken" in done.stdout
    layout.audit.write_bytes(b"".join([*lines[:1], *lines[2:]]))
    done = aileron("audit", "verify", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["problems"][0]["seq"] == json.loads(lines[2])["seq"]


def test_master_token_leaks_nowhere(layout: Layout, real_daemon: DaemonInfo) -> None:
    """The master token is in daemon.json only: not in any response, the log or the audit log."""
    passphrase_file = layout.home / "pass"
    passphrase_file.write_text("pw\n")
    outputs = [
        aileron("vault", "init", "--passphrase-file", str(passphrase_file)),
        aileron("vault", "put", "api_key/openai/default", stdin="sk-live-123\n"),
        aileron("vault", "list", "--json"),
        aileron("status", "--json"),
        aileron("daemon", "status", "--json"),
        aileron("audit", "list", "--json"),
    ]
    assert [o.returncode for o in outputs] == [0] * len(outputs), [o.stderr for o in outputs]
    aileron("daemon", "stop")
    token = real_daemon.token
    for output in outputs:
        assert token not in output.stdout + output.stderr
        assert "sk-live-123" not in output.stdout + output.stderr
    holders = [
        p.name for p in layout.home.rglob("*") if p.is_file() and token.encode() in p.read_bytes()
    ]
    assert holders == []  # daemon.json was removed on stop
    assert "sk-live-123" not in layout.audit.read_text()


def test_version_mismatch_recovery(layout: Layout) -> None:
    """A spawned daemon of another version is replaced; a hand-started one gets the fix."""
    env = dict(os.environ, AILERON_TEST_DAEMON_VERSION="0.0.0.dev1")
    daemons: list[subprocess.Popen[bytes]] = []
    try:
        daemons.append(_foreground_daemon(env, "--auto-spawned"))
        assert _wait_for_daemon(layout).version == "0.0.0.dev1"
        done = aileron("status", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["version"] != "0.0.0.dev1"
        assert daemons[0].wait(timeout=10) is not None  # the old daemon was stopped
        kill_daemon(layout)

        daemons.append(_foreground_daemon(env))
        info = _wait_for_daemon(layout)
        refused = aileron("status")
        assert refused.returncode == 1
        assert "0.0.0.dev1" in refused.stderr and "aileron daemon stop" in refused.stderr
        override = dict(os.environ, AILERON_API_URL=info.api_url, AILERON_TOKEN=info.token)
        through_override = aileron("status", env=override)
        assert through_override.returncode == 1
        assert "0.0.0.dev1" in through_override.stderr
        assert "aileron daemon stop" in through_override.stderr
    finally:
        kill_daemon(layout)
        for daemon in daemons:
            daemon.kill()
            daemon.wait(timeout=10)


def _foreground_daemon(env: dict[str, str], *flags: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [script("aileron"), "daemon", "start", "--foreground", *flags],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_daemon(layout: Layout) -> DaemonInfo:
    from aileron_core.discovery import probe

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = read_daemon_info(layout.daemon_json)
        if info is not None and probe(info) is not None:
            return info
        time.sleep(0.05)
    raise AssertionError("the daemon did not come up")


def test_bad_config_is_reported_by_the_command_that_spawned(layout: Layout) -> None:
    """A malformed config.toml makes auto-spawn fail with the config error, not a vague exit."""
    layout.ensure()
    layout.config.write_text('[gateway.openai]\nbase_url = "ftp://nowhere"\n')
    try:
        done = aileron("status")
        assert done.returncode == 1
        assert done.stderr.startswith(
            "aileron: error: the daemon exited with code 1 while starting"
        )
        assert "config.toml" in done.stderr and "base_url" in done.stderr
        assert not layout.daemon_json.exists()
    finally:
        kill_daemon(layout)
