"""The whole action flow through the real CLI and a real daemon, against a real HTTP server."""

from __future__ import annotations

import json
import os
from pathlib import Path

from actions.support import SECRET, echo_spec
from helpers import aileron

from aileron_cli.examples import ACTIONS
from aileron_cli.examples.echo_server import EchoServer
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout


def test_action_flow_end_to_end_never_leaks_the_secret(
    layout: Layout, real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path
) -> None:
    """install → bind → run → approve: the server saw the secret; no output or file holds it."""
    env = dict(os.environ, AILERON_VAULT_PASSPHRASE="demo passphrase")
    spec_file = tmp_path / "echo.json"
    spec_file.write_text(json.dumps(echo_spec(echo.host)))
    steps = [
        aileron("vault", "init", env=env),
        aileron("connector", "install", str(spec_file), env=env),
        aileron("action", "install", str(ACTIONS / "echo-say.md"), env=env),
        aileron("action", "install", str(ACTIONS / "echo-careful.md"), env=env),
        aileron("binding", "add", "token/echo/default", stdin=SECRET + "\n", env=env),
        aileron("vault", "lock", env=env),
        # locked vault + a passphrase source: the CLI unlocks and retries by itself
        aileron("action", "run", "echo-say", "--arg", "message=hello", env=env),
    ]
    assert [s.returncode for s in steps] == [0] * len(steps), [s.stderr for s in steps]
    assert '"echo": "hello"' in steps[-1].stdout
    pending = aileron(
        "action", "run", "echo-careful", "--arg", "message=careful", "--json", env=env
    )
    assert pending.returncode == 75, pending.stderr
    approval_id = json.loads(pending.stdout)["approval_id"]
    listed = aileron("approval", "list", "--json", env=env)
    assert [a["id"] for a in json.loads(listed.stdout)] == [approval_id]
    approved = aileron("approval", "approve", approval_id, "--yes", env=env)
    assert approved.returncode == 0, approved.stderr
    assert '"echo": "careful"' in approved.stdout
    steps += [pending, listed, approved, aileron("audit", "list", "--json", env=env)]
    assert [json.loads(s.body)["message"] for s in echo.seen] == ["hello", "careful"]
    assert all(s.headers["Authorization"] == f"Bearer {SECRET}" for s in echo.seen)
    aileron("daemon", "stop")
    for step in steps:
        assert SECRET not in step.stdout + step.stderr
    holders = [
        p for p in layout.home.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()
    ]
    assert holders == []
    assert layout.daemon_log.exists()


def test_cli_errors_for_bad_arguments_are_one_line(real_daemon: DaemonInfo) -> None:
    """Unknown actions and malformed --arg/--args are clear one-line errors, exit 1."""
    for args in (
        ["action", "run", "nope"],
        ["action", "run", "nope", "--args", "[1]"],
        ["action", "run", "nope", "--arg", "novalue"],
        ["connector", "install", "/does/not/exist.json"],
        ["binding", "show", "../../etc/passwd"],
    ):
        done = aileron(*args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert done.stderr.startswith("aileron: error: ") and done.stderr.count("\n") == 1
