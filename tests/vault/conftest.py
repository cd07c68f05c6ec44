"""Fixtures of the vault tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    """Where a test's vault lives: a not-yet-existing directory inside the test's temp dir."""
    return tmp_path / "state" / "vault.json"
