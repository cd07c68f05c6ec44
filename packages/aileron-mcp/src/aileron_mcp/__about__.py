"""The version of aileron-mcp; written by `hatch run release:set-version`."""

__version__ = "0.1.0"
