"""A stdio MCP server that exposes Aileron actions to agent hosts."""

from __future__ import annotations

from aileron_mcp.__about__ import __version__

__all__ = ["__version__"]
