"""The enclave's errors and their JSON envelope (SPEC §5.2), with the HTTP status of each code.

Every error answer is ``{"error": {"code", "message", "details"?, "retriable"?}}``; request
validation failures are 422 ``invalid_request`` naming the fields; nothing unexpected leaks a
traceback. Errors::

    AileronError
    └── EnclaveError                    (code chosen where it is raised)
        ├── ProviderError               unsupported_provider    (aileron_enclave.provider)
        ├── DataDirError                data_dir_invalid        (aileron_enclave.datadir)
        └── StoreCorrupt                escrow_store_corrupt    (aileron_enclave.store)

    Codes answered over HTTP: unauthorized, unknown_client, bad_signature, stale_request,
    replayed_request (401); bad_registration_code (403); host_not_allowed (403);
    escrow_not_found, client_not_found, witness_not_found (404); nonce_reused,
    witness_rollback, witness_conflict (409); invalid_request,
    invalid_scope, sealed_credential_invalid, invalid_credential (422); upstream_* (502/504).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aileron_core.errors import AileronError

log = logging.getLogger("aileron.enclave")

STATUS_BY_CODE: dict[str, int] = {
    "unauthorized": 401,
    "unknown_client": 401,
    "bad_signature": 401,
    "stale_request": 401,
    "replayed_request": 401,
    "bad_registration_code": 403,
    "host_not_allowed": 403,
    "escrow_not_found": 404,
    "client_not_found": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "nonce_reused": 409,
    "witness_rollback": 409,
    "witness_conflict": 409,
    "witness_not_found": 404,
    "invalid_request": 422,
    "invalid_scope": 422,
    "sealed_credential_invalid": 422,
    "invalid_credential": 422,
    "upstream_unreachable": 502,
    "upstream_bad_response": 502,
    "upstream_response_too_large": 502,
    "upstream_timeout": 504,
}


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


def envelope(
    status: int,
    code: str,
    message: str,
    *,
    details: Mapping[str, Any] | None = None,
    retriable: bool = False,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = dict(details)
    if retriable:
        body["retriable"] = True
    return JSONResponse({"error": body}, status_code=status)


def _enclave_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AileronError)
    return envelope(
        STATUS_BY_CODE.get(error.code, 400),
        error.code,
        str(error),
        details=error.details,
        retriable=bool(getattr(error, "retriable", False)),
    )


def _validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    fields = [
        {
            "location": [str(part) for part in item.get("loc", ())],
            "problem": str(item.get("msg", "invalid")),
        }
        for item in error.errors()
    ]
    names = ", ".join(".".join(f["location"]) for f in fields) or "the request"
    return envelope(422, "invalid_request", f"invalid {names}", details={"fields": fields})


def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400:
        return envelope(422, "invalid_request", f"invalid request body: {error.detail}")
    if error.status_code == 404:
        return envelope(404, "not_found", "no such route")
    if error.status_code == 405:
        return envelope(405, "method_not_allowed", "method not allowed on this route")
    return envelope(error.status_code, "http_error", str(error.detail))


def _unexpected(_: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error while answering a request", exc_info=error)
    return envelope(500, "internal_error", "the enclave failed unexpectedly; see its log")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure with the error envelope."""
    app.add_exception_handler(AileronError, _enclave_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
