"""`aileron approval` against a real daemon: the human sees the whole request, escaped, and
confirms it on a terminal; a request whose connector changed is refused as stale (ADR 0016)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

from actions.support import SECRET, echo_spec, install_echo_careful, show_approval
from helpers import aileron, script

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.discovery import DaemonInfo

# 200 characters of padding, then a tail that would rewrite the terminal line and reverse text.
PADDED = "A" * 200 + "\x1b[2K\rHIDDEN\u202eevil\u200b"
PADDED_SHOWN = '"' + "A" * 200 + '\\u001b[2K\\rHIDDEN\\u202eevil\\u200b"'


def env() -> dict[str, str]:
    """The test's (isolated) environment with a passphrase source; read at call time."""
    return dict(os.environ, AILERON_VAULT_PASSPHRASE="demo passphrase")


def install(tmp_path: Path, echo: EchoServer) -> None:
    """The vault, the echo connector, its binding and `echo-careful`, through the CLI."""
    install_echo_careful(tmp_path, echo.host, env())


def request(message: str) -> str:
    pending = aileron(
        "action", "run", "echo-careful", "--arg", f"message={message}", "--json", env=env()
    )
    assert pending.returncode == 75, pending.stderr
    return str(json.loads(pending.stdout)["approval_id"])


def show(approval_id: str) -> dict[str, Any]:
    return show_approval(approval_id, env())


def audit() -> list[dict[str, Any]]:
    listed = aileron("audit", "list", "--json", env=env())
    assert listed.returncode == 0, listed.stderr
    records: list[dict[str, Any]] = json.loads(listed.stdout)
    return records


def on_terminal(*args: str, answer: str) -> tuple[int, str]:
    """Run `aileron ARGS` under `script`, on a new pseudo-terminal that is its controlling
    terminal (stdin, stdout and stderr), typing ``answer``."""
    command = shlex.join([script("aileron"), *args])
    done = subprocess.run(
        ["script", "--quiet", "--return", "--flush", "--command", command, "/dev/null"],
        input=answer,
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
    )
    return done.returncode, done.stdout


def test_connector_replaced_before_approval_is_stale_and_the_new_host_gets_nothing(
    real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path
) -> None:
    """Acceptance 3: a connector reinstalled for a new host between the request and
    `approve --yes`: the approval fails as stale, the CLI says so, neither host receives
    anything, and the audit log records the stale failure and who decided."""
    install(tmp_path, echo)
    approval_id = request("to the old host")
    with EchoServer(SECRET) as other:
        moved = tmp_path / "moved.json"
        moved.write_text(json.dumps(echo_spec(other.host)))
        replaced = aileron("connector", "install", str(moved), env=env())
        assert replaced.returncode == 0, replaced.stderr
        approved = aileron("approval", "approve", approval_id, "--yes", env=env())
        assert approved.returncode == 1
        assert "stale" in approved.stderr and "nothing was sent" in approved.stderr
        assert other.seen == []
    assert echo.seen == []
    # What the human was shown is the request as made: the old host.
    assert f"http://{echo.host}" in approved.stdout
    shown = show(approval_id)
    assert shown["status"] == "failed"
    assert shown["error"]["code"] == "approval_stale"
    assert shown["error"]["details"]["changed"] == ["connectors", "origins"]
    records = audit()
    failed = [r for r in records if r["type"] == "approval.failed"]
    assert [r["payload"]["reason"] for r in failed] == ["approval_stale"]
    assert "execution.started" not in {r["type"] for r in records}
    decision = next(r for r in records if r["type"] == "approval.approved")
    process = decision["payload"]["process"]
    assert process is not None and process["pid"] > 0 and process["uid"] == os.getuid()


def test_approve_shows_every_argument_in_full_escaped(
    real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path
) -> None:
    """`approve --yes` prints action, connector, operation, target, binding and the padded
    argument in full with its control and format characters escaped, then runs it."""
    install(tmp_path, echo)
    approval_id = request(PADDED)
    approved = aileron("approval", "approve", approval_id, "--yes", env=env())
    assert approved.returncode == 0, approved.stderr
    out = approved.stdout
    for shown in (
        "echo-careful",
        "connector local://echo, operation echo say-carefully",
        f"http://{echo.host}",
        "token/echo/default",
        f"message: {PADDED_SHOWN}",
    ):
        assert shown in out, (shown, out)
    assert not {"\x1b", "\r", "\u202e", "\u200b"} & set(out)
    assert [json.loads(s.body)["message"] for s in echo.seen] == [PADDED]


def test_list_marks_cut_arguments_and_escapes_them(
    real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path
) -> None:
    """`approval list` marks the arguments it cuts with how much it cut, never raw controls."""
    install(tmp_path, echo)
    request(PADDED)
    listed = aileron("approval", "list", env=env())
    assert listed.returncode == 0, listed.stderr
    full = json.dumps({"message": "A" * 200}, ensure_ascii=False)[:-2] + PADDED_SHOWN[201:] + "}"
    assert f"…(+{len(full) - 60} chars)" in listed.stdout, listed.stdout
    assert not {"\x1b", "\r", "\u202e", "\u200b"} & set(listed.stdout)


def test_approve_without_a_terminal_or_yes_is_refused(
    real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path
) -> None:
    """No terminal to confirm on and no --yes: refused (exit 1), still pending, nothing sent."""
    install(tmp_path, echo)
    approval_id = request("hello")
    refused = aileron("approval", "approve", approval_id, env=env())
    assert refused.returncode == 1
    assert "no terminal" in refused.stderr and "--yes" in refused.stderr
    assert show(approval_id)["status"] == "pending"
    assert echo.seen == []


def test_terminal_confirmation_no_keeps_it_pending_and_yes_runs_it(
    real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path
) -> None:
    """On a terminal `approve` asks: "n" leaves it pending and sends nothing; "y" runs it."""
    install(tmp_path, echo)
    approval_id = request("on a terminal")
    code, output = on_terminal("approval", "approve", approval_id, answer="n\n")
    assert code == 1, output
    assert "Approve? [y/N]" in output and "still pending" in output
    assert show(approval_id)["status"] == "pending"
    assert echo.seen == []
    code, output = on_terminal("approval", "approve", approval_id, answer="y\n")
    assert code == 0, output
    assert show(approval_id)["status"] == "succeeded"
    assert [json.loads(s.body)["message"] for s in echo.seen] == ["on a terminal"]
    decision = next(r for r in audit() if r["type"] == "approval.approved")
    assert decision["payload"]["process"]["tty"] is not None
