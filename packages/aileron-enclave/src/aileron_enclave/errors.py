"""The enclave's errors and how it answers them: the JSON envelope of SPEC §5.2.

Every error answer is ``{"error": {"code", "message", "details"?, "retriable"}}``; request
validation failures are 422 ``invalid_request`` naming the fields; nothing unexpected leaks a
traceback. Errors::

    AileronError
    └── EnclaveError                    (code chosen where it is raised)
        ├── ProviderError               unsupported_provider    (aileron_enclave.provider)
        ├── DataDirError                data_dir_invalid        (aileron_enclave.datadir)
        └── StoreCorrupt                escrow_store_corrupt    (aileron_enclave.store)

    The status of every code, the envelope and its handlers are the daemon's too:
    :mod:`aileron_core.http_errors` (ADR 0026). Codes answered over HTTP: unauthorized,
    unknown_client, bad_signature, stale_request, replayed_request (401); bad_registration_code,
    host_not_allowed (403); escrow_not_found, witness_not_found (404);
    nonce_reused, witness_rollback, witness_conflict (409); invalid_credential (412);
    invalid_request, invalid_scope, sealed_credential_invalid (422); upstream_* (502/504).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette

from aileron_core import http_errors
from aileron_core.errors import AileronError

__all__ = ["EnclaveError", "install_error_handlers"]

log = logging.getLogger("aileron.enclave")


class EnclaveError(AileronError):
    """An error of the enclave with an explicit code (and so an explicit HTTP status)."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        details: Mapping[str, Any] | None = None,
        retriable: bool = False,
    ) -> None:
        super().__init__(message, hint=hint, details=details)
        if code is not None:
            self.code = code
        self.retriable = retriable


def install_error_handlers(app: Starlette) -> None:
    """Answer every failure with the error envelope (:mod:`aileron_core.http_errors`). The
    enclave's clients sign their requests: a 401 names no ``WWW-Authenticate`` challenge."""
    http_errors.install_error_handlers(
        app,
        unexpected="the enclave failed unexpectedly; see its log",
        log=log,
        challenge=None,
    )
