"""Generator of the in-container connector shims and ``tools.txt`` for sandboxed agents."""

from __future__ import annotations

from aileron_shims.__about__ import __version__

__all__ = ["__version__"]
