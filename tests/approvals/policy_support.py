"""Helpers for the approval-policy tests (imported as ``approvals.policy_support``): a real
daemon started on a ``config.toml`` of the test's, the echo action that needs approval, and
polling with a generous deadline (never a timing threshold)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from actions.support import install_echo_careful
from helpers import aileron, kill_daemon

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.discovery import DaemonInfo, read_daemon_info
from aileron_core.paths import Layout

T = TypeVar("T")
DEADLINE_S = 60.0
"""How long a poll waits for a change before the test fails (generous: a shared machine)."""
PENDING = 75
"""``aileron action run``'s exit code when the run waits for approval."""


def env() -> dict[str, str]:
    """The test's (isolated) environment with a passphrase source; read at call time."""
    return dict(os.environ, AILERON_VAULT_PASSPHRASE="demo passphrase")


@contextmanager
def daemon_with(layout: Layout, config: str) -> Iterator[DaemonInfo]:
    """A real daemon started on ``config`` as its ``config.toml``, stopped afterwards."""
    layout.ensure()
    layout.config.write_text(config)
    started = aileron("daemon", "start", env=env())
    assert started.returncode == 0, started.stderr
    info = read_daemon_info(layout.daemon_json)
    assert info is not None
    try:
        yield info
    finally:
        kill_daemon(layout)


def install(tmp_path: Path, echo: EchoServer) -> None:
    """The vault, the echo connector, its binding and `echo-careful`, through the CLI."""
    install_echo_careful(tmp_path, echo.host, env())


def run(message: str) -> tuple[int, dict[str, Any], str]:
    """`aileron action run echo-careful --arg message=… --json`: exit code, answer, stderr."""
    done = aileron(
        "action", "run", "echo-careful", "--arg", f"message={message}", "--json", env=env()
    )
    answer: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, answer, done.stderr


def request(message: str) -> dict[str, Any]:
    """Run echo-careful and expect it to wait for approval; the 202 answer."""
    code, answer, stderr = run(message)
    assert code == PENDING, (code, answer, stderr)
    return answer


def cli_json(*args: str) -> Any:
    done = aileron(*args, "--json", env=env())
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def show(approval_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = cli_json("approval", "show", approval_id)
    return shown


def audit() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = cli_json("audit", "list")
    return records


def poll(read: Callable[[], T], until: Callable[[T], bool]) -> T:
    """``read()`` until ``until`` holds of it; fails after :data:`DEADLINE_S`."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = read()
        if until(value):
            return value
        assert time.monotonic() < deadline, f"still {value!r} after {DEADLINE_S}s"
        time.sleep(0.2)


def echoed(echo: EchoServer) -> list[str]:
    """The messages the echo server received, in order."""
    return [json.loads(s.body)["message"] for s in echo.seen]
