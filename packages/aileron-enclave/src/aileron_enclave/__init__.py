"""Aileron's credential escrow service (the TEE side), with a local provider (SPEC §12).

Run it with ``AILERON_TEE_PROVIDER=local aileron-enclave serve``. The modules, by concern:
``provider`` (which TEE), ``datadir`` (keys, certificate, files), ``measurement``, ``store``
(clients and escrows, sealed at rest), ``auth`` (registration and signed requests),
``execute`` (requests with a credential injected), ``app`` (the HTTP API), ``server`` (TLS,
uvicorn), ``cli``.
"""

from __future__ import annotations

from aileron_enclave.__about__ import __version__

__all__ = ["__version__"]
