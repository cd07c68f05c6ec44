"""Acceptance 2 of #14 with a real daemon, the real CLI and a local upstream that records calls."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
from actions.support import SECRET, echo_spec, manifest
from helpers import admin_http, aileron

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.discovery import DaemonInfo

FQN = "local://echo"
GATED = (
    manifest("echo-careful")
    .replace('op = "say-carefully"', 'op = "say"')
    .replace('name = "echo-careful"', 'name = "echo-gated"')
)


def test_direct_run_of_a_gated_operation_neither_runs_nor_reaches_the_upstream(
    real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path
) -> None:
    """A session's direct run of an operation an approval-gated action wraps waits; closed, 403."""
    env = dict(os.environ, AILERON_VAULT_PASSPHRASE="demo passphrase")
    spec_file = tmp_path / "echo.json"
    spec_file.write_text(json.dumps(echo_spec(echo.host)))
    action_file = tmp_path / "echo-gated.md"
    action_file.write_text(GATED)
    steps = [
        aileron("vault", "init", env=env),
        aileron("connector", "install", str(spec_file), env=env),
        aileron("action", "install", str(action_file), env=env),
        aileron("binding", "add", "token/echo/default", stdin=SECRET + "\n", env=env),
    ]
    assert [s.returncode for s in steps] == [0] * len(steps), [s.stderr for s in steps]
    with admin_http(real_daemon) as admin:
        session = admin.post("sessions", json={"agent": "codex", "working_dir": "/"}).json()
    with httpx.Client(base_url=f"{real_daemon.url}/v1/", timeout=10) as http:
        agent = {"Authorization": f"Bearer {session['token']}"}
        body = {"connector_fqn": FQN, "tool": "echo", "operation": "say", "args": {"message": "x"}}
        pending = http.post("connector-operations/run", json=body, headers=agent)
        assert pending.status_code == 202, pending.text
        assert pending.json()["status"] == "pending_approval"
        shown = aileron("connector", "show", FQN, env=env)
        assert shown.returncode == 0, shown.stderr
        row = next(line.split() for line in shown.stdout.splitlines() if " say " in line)
        # TOOL OPERATION METHOD (NEEDS: empty, say's own flag is none) AGENTS INPUTS…
        assert row[:5] == ["echo", "say", "POST", "approval", "message"], shown.stdout
        closed = aileron("connector", "disable", FQN, "--operation", "echo.say", env=env)
        assert closed.returncode == 0, closed.stderr
        refused = http.post("connector-operations/run", json=body, headers=agent)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "operation_not_exposed"
    assert echo.seen == []
    listed = aileron("connector", "list", env=env)
    assert "1/2 operations" in listed.stdout, listed.stdout
