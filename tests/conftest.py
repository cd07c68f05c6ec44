"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO

# Variables that would let a test reach a real daemon or a real secret.
LEAKY_ENV = (
    "AILERON_API_URL",
    "AILERON_URL",
    "AILERON_TOKEN",
    "AILERON_SESSION_ID",
    "AILERON_VAULT_PASSPHRASE",
    "AILERON_DEBUG",
)


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
