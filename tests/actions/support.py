"""Helpers for action tests (imported as ``actions.support``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from aileron_cli.examples import ACTIONS, CONNECTORS
from aileron_core.paths import Layout

RESTART_TOKEN = "aim_restart-test-token"  # noqa: S105 (a test's own master token)

SECRET = "sk-echo-SECRET-4f1a9c"


def echo_spec(host: str) -> dict[str, Any]:
    """The shipped local://echo spec, pointed at ``host``."""
    text = (CONNECTORS / "local-echo.json").read_text().replace("127.0.0.1:8765", host)
    spec: dict[str, Any] = json.loads(text)
    return spec


def manifest(name: str) -> str:
    return (ACTIONS / f"{name}.md").read_text()


def restartable_daemon(layout: Layout) -> TestClient:
    """The daemon app in-process on ``layout`` with a fixed master token, so a test can stop
    it (leave the ``with``) and start it again on the same files."""
    from aileron_cli.daemon.daemon import DaemonConfig, create_app
    from aileron_core.__about__ import __version__
    from aileron_core.vault import KdfParams

    config = DaemonConfig(
        layout=layout,
        version=__version__,
        master_token=RESTART_TOKEN,
        kdf=KdfParams(time_cost=1, memory_kib=64, parallelism=1),
    )
    headers = {"Authorization": f"Bearer {RESTART_TOKEN}"}
    return TestClient(create_app(config), base_url="http://t/v1/", headers=headers)


def install_echo_careful(tmp_path: Path, echo_host: str, env: dict[str, str]) -> None:
    """Through the real CLI: the vault, the echo connector pointed at ``echo_host``, its
    binding, and `echo-careful` (an action that needs approval, argument `message`)."""
    from helpers import aileron

    spec_file = tmp_path / "echo.json"
    spec_file.write_text(json.dumps(echo_spec(echo_host)))
    steps = [
        aileron("vault", "init", env=env),
        aileron("connector", "install", str(spec_file), env=env),
        aileron("action", "install", str(ACTIONS / "echo-careful.md"), env=env),
        aileron("binding", "add", "token/echo/default", stdin=SECRET + "\n", env=env),
    ]
    assert [s.returncode for s in steps] == [0] * len(steps), [s.stderr for s in steps]


def show_approval(approval_id: str, env: dict[str, str]) -> dict[str, Any]:
    """`aileron approval show ID --json`, through the real CLI."""
    from helpers import aileron

    shown = aileron("approval", "show", approval_id, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    answer: dict[str, Any] = json.loads(shown.stdout)
    return answer
