"""`aileron approval watch` against a real daemon, in a real pseudo-terminal (pexpect): an
approval shows up as it arrives, a key decides it, and the action's result is shown; the
stream it reads (`GET /v1/approvals/events`) is the admin's only."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pexpect  # type: ignore[import-untyped]
import pytest
from actions.support import install_echo_careful, show_approval
from helpers import admin_http, aileron, script

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.discovery import DaemonInfo

TIMEOUT = 60


def env(**extra: str) -> dict[str, str]:
    """The test's (isolated) environment with a passphrase source; read at call time."""
    return dict(os.environ, AILERON_VAULT_PASSPHRASE="demo passphrase", **extra)


def install(tmp_path: Path, echo: EchoServer) -> None:
    """The vault, the echo connector, its binding and `echo-careful`, through the CLI."""
    install_echo_careful(tmp_path, echo.host, env())


def request(message: str) -> str:
    """Ask for the gated action (as an agent would); the pending approval's id."""
    pending = aileron(
        "action", "run", "echo-careful", "--arg", f"message={message}", "--json", env=env()
    )
    assert pending.returncode == 75, pending.stderr
    return str(json.loads(pending.stdout)["approval_id"])


def show(approval_id: str) -> dict[str, Any]:
    return show_approval(approval_id, env())


@pytest.fixture
def notifier(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A stand-in `notify-send` in a folder of its own: (folder, log of its calls)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    log = folder / "notify-send.log"
    program = folder / "notify-send"
    program.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    yield folder, log


def watch(*args: str, path_first: Path | None = None) -> pexpect.spawn:
    """`aileron approval watch ARGS` on a new pseudo-terminal, waiting until it is listening."""
    extra = {"PATH": f"{path_first}{os.pathsep}{os.environ['PATH']}"} if path_first else {}
    child = pexpect.spawn(
        script("aileron"),
        ["approval", "watch", *args],
        env=env(**extra),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(50, 200),
    )
    return child


def test_watch_shows_an_arriving_approval_and_approves_it_with_a_key(
    real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path, notifier: tuple[Path, Path]
) -> None:
    """Watching with nothing pending, an action asks: the watch shows the whole request and
    its link, raises a desktop notification, and `a` approves it: the action runs and its
    result is shown."""
    install(tmp_path, echo)
    folder, log = notifier
    child = watch(path_first=folder)
    child.expect_exact("No approval is pending.")
    child.expect_exact("Waiting for approvals")
    approval_id = request("hello from the agent")
    child.expect_exact(f"approval:  {approval_id} (pending)")
    child.expect_exact("action:    echo-careful")
    child.expect_exact('message: "hello from the agent"')
    child.expect_exact(f"link:      {real_daemon.url}/ui/approvals/{approval_id}")
    child.expect_exact(f"{approval_id}: [a]pprove  [d]eny  [s]kip  [q]uit")
    child.send("a")
    child.expect_exact(f"approved {approval_id}; echo-careful ran:")
    child.expect_exact("hello from the agent")
    child.expect_exact("Waiting for approvals")
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert show(approval_id)["status"] == "succeeded"
    assert [s.body for s in echo.seen] == [b'{"message":"hello from the agent"}']
    (argv,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert "echo-careful" in argv[2]
    assert f"/ui/approvals/{approval_id}" in argv[3]
    assert "hello from the agent" not in " ".join(argv)


def test_watch_denies_with_a_reason_and_skips(
    real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path
) -> None:
    """Two approvals already pending are both shown; `s` skips the first (it stays pending),
    `d` then denies the second with the reason typed on the next line."""
    install(tmp_path, echo)
    first, second = request("one"), request("two")
    child = watch("--no-notify")
    child.expect_exact(f"approval:  {first} (pending)")
    child.expect_exact(f"approval:  {second} (pending)")
    child.expect_exact(f"{first}: [a]pprove")
    child.send("s")
    child.expect_exact(f"{second}: [a]pprove")
    child.send("d")
    child.expect_exact("reason (Enter for none): ")
    child.sendline("not today")
    child.expect_exact(f"denied {second}; echo-careful will not run")
    child.expect_exact("Waiting for approvals (1 skipped)")
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert show(first)["status"] == "pending"
    denied = show(second)
    assert (denied["status"], denied["reason"]) == ("denied", "not today")
    assert echo.seen == []


def test_watch_sees_a_decision_made_elsewhere(
    real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path
) -> None:
    """An approval the watch is asking about, denied from another terminal, leaves the watch
    with a line saying so."""
    install(tmp_path, echo)
    child = watch("--no-notify")
    child.expect_exact("Waiting for approvals")
    approval_id = request("elsewhere")
    child.expect_exact(f"{approval_id}: [a]pprove")
    denied = aileron("approval", "deny", approval_id, "--reason", "from elsewhere", env=env())
    assert denied.returncode == 0, denied.stderr
    child.expect_exact(f"{approval_id} is denied")
    child.expect_exact("Waiting for approvals")
    child.send("q")
    child.expect(pexpect.EOF)


def test_event_stream_opens_with_ready_then_each_change(
    real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path
) -> None:
    """`GET /v1/approvals/events` says `ready`, then one `approval` event per change with the
    approval as `GET /v1/approvals/{id}` shows it."""
    install(tmp_path, echo)
    with (
        admin_http(real_daemon) as http,
        http.stream("GET", "approvals/events", timeout=httpx.Timeout(30)) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "event: ready"
        approval_id = request("streamed")
        while next(lines) != "event: approval":
            pass
        data = json.loads(next(lines).removeprefix("data: "))
    assert data["id"] == approval_id
    assert data["status"] == "pending"
    assert data["args"] == {"message": "streamed"}
    assert data["steps"][0]["connector"]
    assert data["link"] == f"{real_daemon.url}/ui/approvals/{approval_id}"


def test_event_stream_is_refused_without_the_master_token(real_daemon: DaemonInfo) -> None:
    """Without a token, or over TCP (where the master token is refused), there is no stream."""
    anonymous = httpx.get(f"{real_daemon.api_url}/approvals/events", timeout=10)
    assert anonymous.status_code == 401
    over_tcp = httpx.get(
        f"{real_daemon.api_url}/approvals/events",
        headers={"Authorization": f"Bearer {real_daemon.token}"},
        timeout=10,
    )
    assert over_tcp.status_code == 403
