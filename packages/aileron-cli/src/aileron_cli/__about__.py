"""The version of aileron-cli; written by `hatch run release:set-version`."""

__version__ = "0.1.0"
