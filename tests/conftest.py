"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import REPO, aileron, kill_daemon

from aileron_core.__about__ import __version__
from aileron_core.discovery import DaemonInfo, read_daemon_info
from aileron_core.paths import Layout

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

# Variables that would let a test reach a real daemon or a real secret.
LEAKY_ENV = (
    "AILERON_API_URL",
    "AILERON_API_SOCKET",
    "AILERON_URL",
    "AILERON_TOKEN",
    "AILERON_SESSION_ID",
    "AILERON_VAULT_PASSPHRASE",
    "AILERON_DEBUG",
)


@pytest.fixture(autouse=True, scope="session")
def no_background_route_builds() -> Iterator[None]:
    """Daemon apps run in this process build their routes on a request, while the test waits,
    never in a background task (see ``aileron_cli.daemon.http.app.WARM_AFTER_S``)."""
    from aileron_cli.daemon.http import app

    kept = app.WARM_AFTER_S
    app.WARM_AFTER_S = None
    yield
    app.WARM_AFTER_S = kept


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point HOME, AILERON_HOME and the XDG dirs at a fresh temp dir for every test."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AILERON_HOME", str(home / ".aileron"))
    for name, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_RUNTIME_DIR", "run"),
    ):
        monkeypatch.setenv(name, str(home / sub))
    for name in LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="session")
def set_version() -> str:
    """The version of the release set, from its single source of truth."""
    return (REPO / "release" / "VERSION").read_text().strip()


MASTER = "aim_test-master-token-0123456789abcdefghijklmnopqrstuv"


@pytest.fixture
def layout(isolated_home: Path) -> Layout:
    """The isolated AILERON_HOME of this test."""
    return Layout(isolated_home / ".aileron")


@pytest.fixture
def api(layout: Layout) -> Iterator[TestClient]:
    """The daemon app in-process, authenticated with the master token."""
    from fastapi.testclient import TestClient

    from aileron_cli.daemon.daemon import DaemonConfig, create_app
    from aileron_core.vault import KdfParams

    cheap_kdf = KdfParams(time_cost=1, memory_kib=64, parallelism=1)
    config = DaemonConfig(layout=layout, version=__version__, master_token=MASTER, kdf=cheap_kdf)
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
