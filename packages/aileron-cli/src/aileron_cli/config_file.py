"""Reading ``config.toml``: one reader for every table of it (``[gateway]``, ``[audit]``,
``[sandbox]``), so each part parses only its own table."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from aileron_core.errors import ConfigError


def read_settings(path: Path) -> dict[str, Any] | None:
    """The parsed ``config.toml`` at ``path``, or ``None`` when there is none; ``ConfigError``
    naming the file for text that is not UTF-8 or not TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text: {error}") from error
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from error


__all__ = ["read_settings"]
