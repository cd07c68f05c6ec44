"""Kill -9 of the daemon in the middle of the load, then a restart: nothing acknowledged is
lost, nothing is corrupted, and the restart repairs and reports what the crash left."""

from __future__ import annotations

import json
import os
import re

import httpx
import pytest
from actions.support import SECRET
from helpers import admin_async_http, aileron
from reliability.support import (
    PASSPHRASE,
    StallServer,
    client,
    echo_server,
    kill9,
    missing_events,
    open_sessions,
    read_audit,
    run_load,
    set_up,
)

from aileron_core.connectors import parse_connector_spec
from aileron_core.discovery import DaemonInfo, read_daemon_info
from aileron_core.paths import Layout
from aileron_core.vault import Vault

CLIENTS = 32
KILL_AFTER = 200  # acknowledged runs before the kill
BOUND_S = 60.0  # the load never runs longer than this, kill or not


def _torn_copy_of_last_line(path: os.PathLike[str]) -> bytes:
    """Append the first half of the file's last line (no newline): a torn write."""
    with open(path, "rb") as handle:
        last = handle.read().splitlines(keepends=True)[-1]
    torn = last[: len(last) // 2]
    with open(path, "ab") as handle:
        handle.write(torn)
    return torn


@pytest.mark.slow
def test_kill_9_under_load_then_restart_recovers_everything(
    layout: Layout, real_daemon: DaemonInfo
) -> None:
    """SIGKILL mid-load (an approved action running, vault writes in flight), a torn audit and
    sessions tail, then `daemon start`: the tail is cut and reported, the chain verifies, every
    acknowledged run and vault write is there, sessions are orphaned, the running approval
    failed, and every file parses and the vault opens."""
    with echo_server() as echo, StallServer() as stall:
        set_up(real_daemon, echo.host, stall.host)
        sessions = open_sessions(real_daemon, CLIENTS)
        with client(real_daemon) as api:
            pending = api.post("actions/stall-careful/run", json={"args": {"message": "held"}})
        assert pending.status_code == 202, pending.text
        approval_id = pending.json()["approval_id"]

        async def approve() -> None:
            # Runs the approved action; its upstream holds the request, so at the kill the
            # approval is `running` on disk. The answer never comes: the daemon dies first.
            async with admin_async_http(real_daemon, timeout=5) as http:
                try:
                    await http.post(f"approvals/{approval_id}/decide", json={"approved": True})
                except httpx.TransportError:
                    pass

        result = run_load(
            real_daemon,
            sessions,
            BOUND_S,
            vault_writes=True,
            kill_after=KILL_AFTER,
            kill=lambda: os.kill(real_daemon.pid, 9),
            kill_when=stall.arrived.is_set,
            extra=approve,
        )
        kill9(layout, real_daemon.pid)
        seen = {json.loads(s.body)["message"] for s in echo.seen}

    assert result.problems == [], result.problems[:10]
    assert result.killed_after is not None and result.killed_after >= KILL_AFTER
    assert set(result.statuses) == {200}, result.statuses  # no error before the kill
    # A run in flight at the kill may have reached the upstream without being acknowledged;
    # every acknowledged one did.
    assert set(result.acked) <= seen

    torn_audit = _torn_copy_of_last_line(layout.audit)
    _torn_copy_of_last_line(layout.sessions)
    started = aileron("daemon", "start")
    assert started.returncode == 0, started.stderr
    info = read_daemon_info(layout.daemon_json)
    assert info is not None and info.pid != real_daemon.pid

    # The torn tail was cut off and reported, in the log and in the audit log itself.
    log = layout.daemon_log.read_text()
    assert re.search(rf"torn tail truncated \(1 line\(s\), {len(torn_audit)} bytes", log), log
    verify = aileron("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    records = read_audit(layout)
    recovered = [r for r in records if r.type == "audit.recovered"]
    assert [r.payload["dropped_bytes"] for r in recovered] == [len(torn_audit)]

    # Durability: every acknowledged run has its events.
    assert missing_events(records, result.acked) == []

    with client(info) as api:
        for session_id, _ in sessions:
            assert api.get(f"sessions/{session_id}").json()["state"] == "orphaned"
        approval = api.get(f"approvals/{approval_id}").json()
        actions = api.get("actions").json()
    assert approval["status"] == "failed", approval
    assert approval["error"]["message"] == "daemon stopped during execution"
    assert actions["load_errors"] == []
    orphaned = {r.session_id for r in records if r.type == "session.orphaned"}
    assert orphaned == {session_id for session_id, _ in sessions}
    failed = [r for r in records if r.type == "approval.failed"]
    assert [r.payload["approval_id"] for r in failed] == [approval_id]

    # No file is corrupted: each parses, and the vault opens with the passphrase and holds
    # the binding's secret and every vault write that was acknowledged.
    for state_log in (layout.sessions, layout.approvals):
        lines = state_log.read_bytes().splitlines()
        assert all(isinstance(json.loads(line)["id"], str) for line in lines)
    assert json.loads(layout.bindings.read_bytes())
    specs = list(layout.connector_store.rglob("aileron.connector.v1.json"))
    assert len(specs) == 2
    for spec in specs:
        parse_connector_spec(spec.read_bytes(), source=str(spec))
    vault = Vault.open(layout.vault)
    vault.unlock(PASSPHRASE)
    assert vault.get("token/echo/default") == SECRET.encode()
    stored = {entry.path for entry in vault.list()}
    assert set(result.vault_acked) <= stored
    assert result.vault_acked  # some vault write was acknowledged before the kill

    # And the restarted daemon works: a locked vault, unlocked by the CLI, runs the action.
    env = dict(os.environ, AILERON_VAULT_PASSPHRASE=PASSPHRASE)
    with echo_server(echo.port) as again:
        ran = aileron("action", "run", "echo-say", "--arg", "message=after", env=env)
    assert ran.returncode == 0, ran.stderr
    assert [json.loads(s.body)["message"] for s in again.seen] == ["after"]
