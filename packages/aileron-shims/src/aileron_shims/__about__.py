"""The version of aileron-shims; written by `hatch run release:set-version`."""

__version__ = "0.1.0"
