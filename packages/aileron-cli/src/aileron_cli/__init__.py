"""The ``aileron`` command and the user-scoped Aileron daemon."""

from __future__ import annotations

from aileron_cli.__about__ import __version__

__all__ = ["__version__"]
