"""Fixtures for daemon tests: an in-process app, and a real daemon process on a real port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import aileron, kill_daemon

from aileron_cli.daemon.app import create_app
from aileron_cli.daemon.state import DaemonConfig
from aileron_core.__about__ import __version__
from aileron_core.discovery import DaemonInfo, read_daemon_info
from aileron_core.paths import Layout
from aileron_core.vault import KdfParams

MASTER = "aim_test-master-token-0123456789abcdefghijklmnopqrstuv"
CHEAP_KDF = KdfParams(time_cost=1, memory_kib=64, parallelism=1)


@pytest.fixture
def layout(isolated_home: Path) -> Layout:
    """The isolated AILERON_HOME of this test."""
    return Layout(isolated_home / ".aileron")


@pytest.fixture
def api(layout: Layout) -> Iterator[TestClient]:
    """The daemon app in-process, authenticated with the master token."""
    config = DaemonConfig(layout=layout, version=__version__, master_token=MASTER, kdf=CHEAP_KDF)
    with TestClient(
        create_app(config),
        base_url="http://testserver/v1/",
        headers={"Authorization": f"Bearer {MASTER}", "X-Aileron-Version": __version__},
    ) as client:
        yield client


@pytest.fixture
def real_daemon(layout: Layout) -> Iterator[DaemonInfo]:
    """A real daemon process, started with `aileron daemon start`, stopped afterwards."""
    done = aileron("daemon", "start")
    assert done.returncode == 0, done.stderr
    info = read_daemon_info(layout.daemon_json)
    assert info is not None
    try:
        yield info
    finally:
        kill_daemon(layout)
