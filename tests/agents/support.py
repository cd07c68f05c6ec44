"""A whole Aileron set-up for real agents (imported as ``agents.support``).

:func:`rig` starts a scripted fake provider, the local echo server, and a real daemon whose
gateway points at the fake, with the echo connector, the ``echo-say`` action and both
providers' keys in the vault. :func:`agent_env` is the environment ``aileron launch`` runs
with: HOME in a temp dir, the real CLIs on PATH, every phone-home switched off.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from actions.support import SECRET, echo_spec, manifest
from fakes.provider import FakeProvider
from fakes.script import ToolScript
from gateway.support import REAL_KEY, isolated_env, write_config
from helpers import admin_http, aileron, script
from launch.support import NPM_BIN, OFFLINE

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.discovery import DaemonInfo, read_daemon_info

MESSAGE = "hello from the tool loop"
FINAL = "The echo server answered: all done."


def echo_script() -> ToolScript:
    """A fresh script: call the tool named like ``echo_say`` with MESSAGE, then say FINAL."""
    return ToolScript(tool="echo_say", arguments={"message": MESSAGE}, final=FINAL)


def agent_binary(name: str) -> Path:
    """The real CLI ``name``; skipped when absent, but a failure on CI (bootstrap installs it)."""
    path = NPM_BIN / name
    if not path.exists():
        why = f"the {name} binary is not installed at {path} (scripts/bootstrap does it)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return path


@dataclass
class Rig:
    """A real daemon, its fake provider and the echo server it reaches."""

    home: Path
    info: DaemonInfo
    fake: FakeProvider
    echo: EchoServer

    def launch(
        self, agent: str, *args: str, cwd: Path, timeout: float = 240, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """``aileron launch AGENT -- ARGS`` in ``cwd``, non-interactive, offline."""
        return subprocess.run(
            [script("aileron"), "launch", agent, "--", *args],
            cwd=cwd,
            env=agent_env(self.home, **env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def session_in(self, work: Path) -> dict[str, Any]:
        """The one session launched in ``work``."""
        with admin_http(self.info) as admin:
            found: list[dict[str, Any]] = admin.get("sessions").json()
        launched = [s for s in found if s["working_dir"] == str(work)]
        assert len(launched) == 1, found
        return launched[0]

    def audit(self, type: str, session: str) -> list[dict[str, Any]]:
        with admin_http(self.info) as admin:
            answer = admin.get("audit", params={"type": type, "session": session})
            answer.raise_for_status()
            records: list[dict[str, Any]] = answer.json()
        return records


def agent_env(home: Path, **extra: str) -> dict[str, str]:
    """The launcher's environment: ``home`` as HOME, the real CLIs first on PATH, offline,
    and no provider key or base URL of the test machine's own."""
    env = {
        k: v
        for k, v in isolated_env(home).items()
        if not k.startswith(("OPENAI", "ANTHROPIC", "CODEX", "CLAUDE", "OPENCODE"))
    }
    env.update(OFFLINE, PATH=f"{NPM_BIN}{os.pathsep}{env['PATH']}")
    env.update(extra)
    return env


@contextmanager
def rig(home: Path, tool_script: ToolScript | None = None) -> Iterator[Rig]:
    """Everything of :class:`Rig`, set up under ``home`` and torn down afterwards."""
    env = isolated_env(home)
    with (
        FakeProvider(REAL_KEY, script=tool_script or echo_script()) as fake,
        EchoServer(SECRET) as echo,
    ):
        write_config(home / ".aileron", fake.url)
        started = aileron("daemon", "start", env=env)
        assert started.returncode == 0, started.stderr
        info = read_daemon_info(home / ".aileron" / "daemon.json")
        assert info is not None
        try:
            with admin_http(info) as admin:
                admin.post("vault/init", json={"passphrase": "agent tests"}).raise_for_status()
                spec = json.loads(json.dumps(echo_spec(echo.host)))
                admin.post("connectors", json={"spec": spec}).raise_for_status()
                admin.post("actions", json={"manifest": manifest("echo-say")}).raise_for_status()
                for name, value in (
                    ("token/echo/default", SECRET),
                    ("api_key/openai/default", REAL_KEY),
                    ("api_key/anthropic/default", REAL_KEY),
                ):
                    admin.post("bindings", json={"name": name, "value": value}).raise_for_status()
            yield Rig(home, info, fake, echo)
        finally:
            aileron("daemon", "stop", env=env, timeout=30)
            with suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)


def wait_until(check: Any, timeout: float = 10.0) -> Any:
    """Poll ``check()`` until it returns something truthy (or the time is up)."""
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result
