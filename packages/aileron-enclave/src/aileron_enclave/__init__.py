"""Aileron's credential escrow service (the TEE side)."""

from __future__ import annotations

from aileron_enclave.__about__ import __version__

__all__ = ["__version__"]
