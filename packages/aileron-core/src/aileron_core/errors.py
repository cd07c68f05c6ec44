"""The root of every error Aileron raises on purpose.

Each error carries a stable snake_case ``code`` (the one used in the daemon's HTTP error
envelope), a message that says what went wrong, and, where there is one, a hint that says what
to do next. Subsystems add their own branches under ``AileronError``::

    AileronError                 aileron_error
    ├── ConfigError              invalid_config
    └── (vault, daemon, client … errors live beside the code that raises them)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AileronError(Exception):
    """Base class of every error Aileron raises deliberately."""

    code: str = "aileron_error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} — {self.hint}"
        return self.message


class ConfigError(AileronError):
    """A setting (environment variable or config file) is missing or malformed."""

    code = "invalid_config"
