"""Generated shims against a real daemon (`aileron daemon start`) and a real echo server.

The daemon's own JSON goes through ``from_api`` and ``generate``; the shims run with ``sh`` and
only the environment a sandboxed agent has (AILERON_API_URL/TOKEN/SESSION_ID of a session).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from actions.support import SECRET, echo_spec, manifest
from helpers import kill_daemon
from shims.support import SHIM_UTILITIES, closed_port, run_shim, toolbox, write_shims

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.client import DaemonClient
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout
from aileron_shims import from_api, generate

WEIRD = 'say "hi" \\ it\'s\n\ttabbed $HOME `id` é\n'


def set_up(info: DaemonInfo, echo: EchoServer, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Install echo (two FQNs), its actions and binding, open a session, write the shims.

    Returns the shim directory and the session environment of a sandboxed agent.
    """
    spec = echo_spec(echo.host)
    ops_spec: dict[str, Any] = json.loads(json.dumps(spec))
    ops_spec["connector"]["fqn"] = "local://echo-ops"
    with DaemonClient.for_daemon(info) as admin:
        admin.post("vault/init", {"passphrase": "shim test passphrase"})
        admin.post("connectors", {"spec": spec})
        admin.post("connectors", {"spec": ops_spec})
        for name in ("echo-say", "echo-careful"):
            admin.post("actions", {"manifest": manifest(name)})
        admin.post("bindings", {"name": "token/echo/default", "value": SECRET})
        session = admin.post("sessions", {"agent": "claude", "working_dir": str(tmp_path)})
        connectors = admin.get("connectors")
        actions = admin.get("actions")["actions"]
    shims = generate(*from_api(connectors, actions), agent_command="claude")
    assert shims.tools_txt == (
        "aileron-echo\tlocal://echo -- installed Aileron connector used by actions:"
        " echo-careful, echo-say\n"
        "echo-ops\tlocal://echo-ops -- Aileron connector operations: echo.say,"
        " echo.say-carefully (need a human's approval: echo.say-carefully)\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "AILERON_API_URL": info.api_url,
        "AILERON_TOKEN": session["token"],
        "AILERON_SESSION_ID": session["id"],
    }
    return write_shims(shims, tmp_path / "bin"), env


def audit_of(info: DaemonInfo, session_id: str) -> list[dict[str, Any]]:
    with DaemonClient.for_daemon(info) as admin:
        records: list[dict[str, Any]] = admin.get("audit", session=session_id)
    return records


def test_shims_run_actions_and_operations_through_the_real_daemon(
    real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path
) -> None:
    """Action and operation run (exit 0, audited in the session); 202 → 75; 422 → 1; 64s."""
    bin_dir, env = set_up(real_daemon, echo, tmp_path)
    session_id = env["AILERON_SESSION_ID"]

    said = run_shim(bin_dir / "aileron-echo", "echo-say", "--arg", f"message={WEIRD}", env=env)
    assert (said.returncode, said.stderr) == (0, "")
    answer = json.loads(said.stdout)
    assert answer["result"] == {"echo": WEIRD, "authorized": True}
    assert json.loads(echo.seen[-1].body) == {"message": WEIRD}
    succeeded = [r for r in audit_of(real_daemon, session_id) if r["id"] == answer["audit_id"]]
    assert [(r["type"], r["session_id"]) for r in succeeded] == [
        ("execution.succeeded", session_id)
    ]

    operation = run_shim(bin_dir / "echo-ops", "echo.say", "--args", '{"message": "op"}', env=env)
    assert (operation.returncode, operation.stderr) == (0, "")
    assert json.loads(operation.stdout)["result"] == {"echo": "op", "authorized": True}
    types = [r["type"] for r in audit_of(real_daemon, session_id)]
    assert types.count("execution.succeeded") == 2

    careful = run_shim(bin_dir / "aileron-echo", "echo-careful", "--arg", "message=wait", env=env)
    assert careful.returncode == 75
    approval_id = json.loads(careful.stdout)["approval_id"]
    assert careful.stderr == (
        f"aileron-echo: approval {approval_id} is pending — ask the user to run:"
        f" aileron approval approve {approval_id}\n"
    )
    with DaemonClient.for_daemon(real_daemon) as admin:
        approval = admin.get(f"approvals/{approval_id}")
    assert (approval["status"], approval["session_id"]) == ("pending", session_id)

    sent = len(echo.seen)
    invalid = run_shim(bin_dir / "aileron-echo", "echo-say", "--args", '{"message": 5}', env=env)
    assert invalid.returncode == 1
    assert invalid.stderr.startswith("aileron-echo: error (HTTP 422): {")
    for args in (["nope"], ["echo-say", "--arg", "message"], ["echo-say", "--colour"], []):
        usage = run_shim(bin_dir / "aileron-echo", *args, env=env)
        assert usage.returncode == 64, (args, usage.stderr)
        assert "usage: aileron-echo ACTION" in usage.stderr
    assert len(echo.seen) == sent


def test_wget_only_no_client_and_no_daemon(
    real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path, layout: Layout
) -> None:
    """wget alone runs the action; no client, no URL, a closed port, a stopped daemon → 69."""
    bin_dir, env = set_up(real_daemon, echo, tmp_path)
    wget_only = os.fspath(toolbox(tmp_path / "wget-path", (*SHIM_UTILITIES, "wget")))
    said = run_shim(
        bin_dir / "aileron-echo",
        "echo-say",
        "--arg",
        f"message={WEIRD}",
        env=env | {"PATH": wget_only},
    )
    assert (said.returncode, said.stderr) == (0, "")
    answer = json.loads(said.stdout)
    assert answer["result"] == {"echo": WEIRD, "authorized": True}
    audited = [
        r for r in audit_of(real_daemon, env["AILERON_SESSION_ID"]) if r["id"] == answer["audit_id"]
    ]
    assert len(audited) == 1

    no_client = os.fspath(toolbox(tmp_path / "bare-path", SHIM_UTILITIES))
    bare = run_shim(
        bin_dir / "aileron-echo", "echo-say", "--arg", "message=x", env=env | {"PATH": no_client}
    )
    assert bare.returncode == 69 and "neither curl nor wget" in bare.stderr

    unset = {k: v for k, v in env.items() if k != "AILERON_API_URL"}
    assert (
        run_shim(bin_dir / "aileron-echo", "echo-say", "--arg", "message=x", env=unset).returncode
        == 69
    )

    closed = f"http://127.0.0.1:{closed_port()}/v1"
    refused = run_shim(bin_dir / "aileron-echo", "echo-say", env=env | {"AILERON_API_URL": closed})
    assert (refused.returncode, refused.stderr) == (
        69,
        f"aileron-echo: Aileron daemon unreachable at {closed}\n",
    )

    kill_daemon(layout)
    stopped = run_shim(bin_dir / "aileron-echo", "echo-say", "--arg", "message=x", env=env)
    assert stopped.returncode == 69
    assert (
        stopped.stderr == f"aileron-echo: Aileron daemon unreachable at {env['AILERON_API_URL']}\n"
    )
