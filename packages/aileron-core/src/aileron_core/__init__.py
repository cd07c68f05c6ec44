"""Aileron's shared library.

This module stays import-light: the CLI imports it on every start-up, so it exposes only the
set version and the root error. Everything else is imported by name from its own module.
"""

from __future__ import annotations

from aileron_core.__about__ import __version__
from aileron_core.errors import AileronError

__all__ = ["AileronError", "__version__"]
