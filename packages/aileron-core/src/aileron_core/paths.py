"""Where Aileron keeps its state: ``AILERON_HOME`` (default ``~/.aileron``, mode 0700)."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "AILERON_HOME"
HOME_MODE = 0o700
SECRET_FILE_MODE = 0o600


def aileron_home() -> Path:
    """Return the state directory named by ``AILERON_HOME``, else ``~/.aileron``."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".aileron"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make sure it is mode 0700."""
    path.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != HOME_MODE:
        path.chmod(HOME_MODE)
    return path
