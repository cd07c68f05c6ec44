"""The daemon's error envelope (SPEC §5.2) and the HTTP status of every error code.

Every error body is ``{"error": {"code", "message", "details"?, "retriable"?, "audit_id"?}}``.
Handlers here turn Aileron errors, request-validation failures, unknown routes and anything
unexpected into that shape; an unexpected exception is logged and answered as a 500 without
its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from aileron_core.errors import AileronError

log = logging.getLogger("aileron.daemon")

STATUS_BY_CODE: dict[str, int] = {
    "invalid_request": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "version_mismatch": 409,
    "vault_missing": 404,
    "vault_exists": 409,
    "vault_already_unlocked": 409,
    "wrong_passphrase": 401,
    "too_many_attempts": 429,
    "vault_locked": 423,
    "entry_not_found": 404,
    "invalid_entry_path": 422,
    "invalid_entry": 422,
    "invalid_passphrase": 422,
    "vault_corrupt": 409,
    "vault_rolled_back": 409,
    "unsupported_version": 409,
    "session_not_found": 404,
    "session_ended": 409,
    "master_token_refused": 403,
    "master_token_needs_socket": 403,
    "agent_process_refused": 403,
    "listener_exists": 409,
    "listener_bind_failed": 422,
    "audit_record_not_found": 404,
    "invalid_connector_spec": 422,
    "invalid_action_manifest": 422,
    "invalid_arguments": 422,
    "invalid_binding_name": 422,
    "template_error": 422,
    "digest_mismatch": 422,
    "connector_not_found": 404,
    "unknown_operation": 404,
    "action_not_found": 404,
    "action_disabled": 409,
    "operation_not_exposed": 403,
    "binding_not_found": 404,
    "binding_exists": 409,
    "binding_required": 412,
    "approval_not_found": 404,
    "approval_decided": 409,
    "approval_tampered": 409,
    "approval_stale": 409,
    "host_not_allowed": 403,
    "invalid_credential": 412,
    "upstream_error": 502,
    "upstream_bad_response": 502,
    "upstream_unreachable": 502,
    "upstream_response_too_large": 502,
    "upstream_too_many_redirects": 502,
    "upstream_timeout": 504,
    # the enclave (SPEC §12)
    "invalid_enclave_url": 422,
    "invalid_scope": 422,
    "sealed_credential_invalid": 422,
    "enclave_not_attached": 412,
    "enclave_client_key_missing": 412,
    "enclave_attached": 409,
    "enclave_in_use": 409,
    "enclave_state_corrupt": 409,
    "binding_escrowed": 409,
    "escrow_scope_unknown": 409,
    "enclave_unreachable": 502,
    "enclave_certificate_mismatch": 502,
    "enclave_refused": 502,
    "attestation_invalid": 502,
    # Storage: the request was fine, but the daemon cannot read or write its files (a full
    # disk, a read-only or failing file system; an audit log poisoned by such a failure until
    # the daemon restarts). One status for all of them, 503: each code covers every cause (the
    # message names it: ENOSPC, EROFS, EIO …), and 507 would fit only the full-disk half.
    "audit_write_failed": 503,
    "state_write_failed": 503,
    "store_write_failed": 503,
    "vault_error": 503,  # only raised for OS errors on vault.json (aileron_core.vault.storage)
}


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None
    retriable: bool | None = None
    audit_id: str | None = None


class ErrorEnvelope(BaseModel):
    """The body of every error answer."""

    error: ErrorBody


class DaemonError(AileronError):
    """An error raised by a route with an explicit code (and so an explicit status)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        hint: str | None = None,
        details: Mapping[str, Any] | None = None,
        retriable: bool = False,
    ) -> None:
        super().__init__(message, hint=hint, details=details)
        self.code = code
        self.retriable = retriable


def envelope(
    status: int,
    code: str,
    message: str,
    *,
    details: Mapping[str, Any] | None = None,
    retriable: bool | None = None,
    audit_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = dict(details)
    if retriable is not None:
        body["retriable"] = retriable
    if audit_id is not None:
        body["audit_id"] = audit_id
    return JSONResponse({"error": encodable(body)}, status_code=status, headers=dict(headers or {}))


def encodable(value: Any) -> Any:
    """``value`` with every string made UTF-8-encodable. An error may quote the request, and a
    lone surrogate (``"\\ud800"`` is legal JSON) cannot be sent as UTF-8: it is answered as
    its backslash escape instead of failing the answer with a 500."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, Mapping):
        return {encodable(key): encodable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encodable(item) for item in value]
    return value


def status_of(error: AileronError) -> tuple[int, dict[str, str]]:
    """The HTTP status of ``error`` and the headers that go with it (whatever the body's
    shape: the envelope, or a provider's shape on the LLM gateway)."""
    status = STATUS_BY_CODE.get(error.code, 400)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 429 and "retry_after" in error.details:
        headers["Retry-After"] = str(max(1, round(float(error.details["retry_after"]))))
    return status, headers


def _aileron_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AileronError)
    status, headers = status_of(error)
    retriable = getattr(error, "retriable", None)
    return envelope(
        status, error.code, str(error), details=error.details, retriable=retriable, headers=headers
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
        # Starlette's answer to a body it cannot decode: a validation error like any other.
        return envelope(422, "invalid_request", f"invalid request body: {error.detail}")
    if error.status_code == 404:
        return envelope(404, "not_found", "no such route")
    if error.status_code == 405:
        return envelope(405, "method_not_allowed", "method not allowed on this route")
    return envelope(error.status_code, "http_error", str(error.detail))


def _unexpected(_: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error while answering a request", exc_info=error)
    return envelope(500, "internal_error", "the daemon failed unexpectedly; see daemon.log")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure with the error envelope."""
    app.add_exception_handler(AileronError, _aileron_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


# Documented on every route so the OpenAPI document describes the error answers.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in (
        (401, "Missing or invalid token, or a wrong passphrase"),
        (403, "The token lacks the capability"),
        (404, "No such resource"),
        (409, "Version mismatch or state conflict"),
        (412, "A binding (credential) is required: the vault is locked or it is missing"),
        (422, "Invalid request"),
        (423, "The vault is locked"),
        (429, "Too many wrong passphrases; retry later"),
        (503, "The daemon cannot read or write its files (disk full, read-only or failing)"),
    )
}
