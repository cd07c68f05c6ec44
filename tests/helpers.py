"""Small helpers shared by tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def script(name: str) -> str:
    """Path of a console script installed in the running environment."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is not installed beside {sys.executable}"
    return os.fspath(path)
