"""Helpers for action tests (imported as ``actions.support``)."""

from __future__ import annotations

import json
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
