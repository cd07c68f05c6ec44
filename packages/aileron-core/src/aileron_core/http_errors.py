"""The error envelope the daemon and the enclave answer with, and the HTTP status of every code.

Every error answer is ``{"error": {"code", "message", "details"?, "retriable"?, "audit_id"?}}``
(SPEC §5.2): ``details`` only when there are some, ``retriable`` whenever the error says (every
``DaemonError`` and ``EnclaveError`` does, ``true`` or ``false``), ``audit_id`` when the failure
was audited. An error's HTTP status comes from its ``code`` through :data:`STATUS_BY_CODE`, the
one table of both services (ADR 0026); a code missing from it would be answered 400, and
``tests/core/test_error_codes.py`` proves every code raised anywhere has its entry.

:func:`install_error_handlers` makes a Starlette/FastAPI app answer every failure in that shape:
an ``AileronError`` by its code, a request-validation failure as 422 ``invalid_request`` naming
the fields, an unknown route or method as 404/405, and anything unexpected as a logged 500 that
shows no traceback. This module imports no web framework until an app or a response is built
(``aileron_core`` stays importable without one).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aileron_core.errors import AileronError

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

__all__ = [
    "DEFAULT_STATUS",
    "STATUS_BY_CODE",
    "encodable",
    "envelope",
    "error_document",
    "install_error_handlers",
    "status_of",
]

DEFAULT_STATUS = 400
"""The status of a code missing from the table (none is: see the module docstring)."""

STATUS_BY_CODE: Mapping[str, int] = {
    # the request itself
    "invalid_request": 422,
    "not_found": 404,
    "method_not_allowed": 405,
    "version_mismatch": 409,
    # who is calling
    "unauthorized": 401,
    "forbidden": 403,
    "master_token_refused": 403,
    "master_token_needs_socket": 403,
    "agent_process_refused": 403,
    "operation_not_exposed": 403,
    # the vault
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
    # sessions and listeners
    "session_not_found": 404,
    "session_ended": 409,
    "listener_exists": 409,
    "listener_bind_failed": 422,
    # connectors, actions, bindings, approvals
    "invalid_connector_spec": 422,
    "invalid_action_manifest": 422,
    "invalid_arguments": 422,
    "invalid_binding_name": 422,
    "invalid_exposure": 422,
    "template_error": 422,
    "digest_mismatch": 422,
    "connector_not_found": 404,
    "unknown_operation": 404,
    "action_not_found": 404,
    "action_disabled": 409,
    "binding_not_found": 404,
    "binding_exists": 409,
    "binding_required": 412,
    "binding_not_exposed": 412,
    "approval_not_found": 404,
    "approval_decided": 409,
    "approval_tampered": 409,
    "approval_stale": 409,
    "approval_expired": 409,
    "approval_denied": 403,
    "grant_not_found": 404,
    "invalid_grant": 422,
    # the LLM gateway's governance (ADR 0030)
    "model_denied": 403,
    "rate_limited": 429,
    "budget_exceeded": 429,
    "request_too_large": 413,
    # sending a credential (the daemon's executor and the enclave alike)
    "host_not_allowed": 403,
    # The stored secret cannot travel as its kind: the request is fine, the credential the
    # owner stored is not, so it is a failed precondition (like binding_required), not a
    # request to change (ADR 0026).
    "invalid_credential": 412,
    "upstream_error": 502,
    "upstream_bad_response": 502,
    "upstream_unreachable": 502,
    "upstream_response_too_large": 502,
    "upstream_too_many_redirects": 502,
    "upstream_timeout": 504,
    # the daemon's side of the enclave (SPEC §12)
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
    # the enclave's own API (aileron_enclave)
    "unknown_client": 401,
    "bad_signature": 401,
    "stale_request": 401,
    "replayed_request": 401,
    "bad_registration_code": 403,
    "escrow_not_found": 404,
    "witness_not_found": 404,
    "nonce_reused": 409,
    "witness_rollback": 409,
    "witness_conflict": 409,
    # the audit log and the state logs: stored data that does not verify is a conflict with
    # what the service holds (as vault_corrupt); a record or event the caller built wrong is a
    # bug in the service, not in the request
    "audit_record_not_found": 404,
    "invalid_audit_query": 422,
    "audit_corrupt": 409,
    "audit_head_invalid": 409,
    "audit_log_locked": 409,
    "audit_log_closed": 503,
    "audit_error": 500,
    "invalid_audit_event": 500,
    "state_log_error": 500,
    "invalid_state_record": 500,
    "witness_invalid": 502,  # the enclave's mark does not verify (as attestation_invalid)
    # a malformed or unverifiable enclave-protocol message, on either side (400 as before ADR
    # 0026: the daemon sees it in an answer, the enclave in a request)
    "enclave_protocol_error": 400,
    # Raised in a client, a launcher or a server's start-up, never while answering a request:
    # the status is the one such an answer would carry, so no code is left to the default.
    "aileron_error": 500,
    "invalid_config": 500,
    "usage": 400,
    "invalid_input": 422,
    "invalid_shim_input": 422,
    "invalid_audit_key": 422,
    "invalid_audit_export": 422,
    "request_not_sendable": 400,
    "daemon_unreachable": 502,
    "daemon_info_invalid": 500,
    "daemon_running": 409,
    "daemon_start_failed": 500,
    "cannot_serve": 500,
    "data_dir_invalid": 500,
    "escrow_store_corrupt": 409,
    "unsupported_provider": 422,
    "unknown_agent": 404,
    "agent_not_installed": 404,
    "agent_setup_invalid": 422,
    "mcp_adapter_missing": 412,
    "unsafe_workspace": 403,
    "launch_failed": 500,
    "agent_start_failed": 500,
    "sandbox_unavailable": 503,
    "image_unavailable": 503,
    "tools_unavailable": 503,
    "image_build_failed": 500,
    "sandbox_check_failed": 500,
    "unknown_provider": 404,
    "provider_unusable": 422,
    # the connector catalog (CLI side) and credential sources (ADR 0031)
    "catalog_error": 422,
    "catalog_entry_refused": 422,
    "invalid_catalog_key": 422,
    "invalid_source_config": 412,
    # Storage: the request was fine, but the service cannot read or write its files (a full
    # disk, a read-only or failing file system; an audit log poisoned by such a failure until
    # the daemon restarts). One status for all of them, 503: each code covers every cause (the
    # message names it: ENOSPC, EROFS, EIO …), and 507 would fit only the full-disk half.
    "audit_write_failed": 503,
    "state_write_failed": 503,
    "store_write_failed": 503,
    "vault_error": 503,  # only raised for OS errors on vault.json (aileron_core.vault.storage)
}
"""The HTTP status of every error code either service raises (ADR 0026)."""


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


def error_document(
    code: str,
    message: str,
    *,
    details: Mapping[str, Any] | None = None,
    retriable: bool | None = None,
    audit_id: str | None = None,
) -> dict[str, Any]:
    """The envelope ``{"error": {...}}`` as JSON-ready data (see the module docstring)."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = dict(details)
    if retriable is not None:
        body["retriable"] = retriable
    if audit_id is not None:
        body["audit_id"] = audit_id
    return {"error": encodable(body)}


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
    """An error answer with ``status`` and the envelope as its body."""
    from starlette.responses import JSONResponse

    document = error_document(
        code, message, details=details, retriable=retriable, audit_id=audit_id
    )
    return JSONResponse(document, status_code=status, headers=dict(headers or {}))


def status_of(
    error: AileronError, *, challenge: str | None = "Bearer"
) -> tuple[int, dict[str, str]]:
    """The HTTP status of ``error`` and the headers that go with it, whatever the body's shape
    (the envelope, or a provider's on the daemon's LLM gateway): a 401 names ``challenge`` in
    ``WWW-Authenticate`` (none for ``None``), a 429 with a ``retry_after`` detail says
    ``Retry-After``."""
    status = STATUS_BY_CODE.get(error.code, DEFAULT_STATUS)
    headers = {}
    if status == 401 and challenge is not None:
        headers["WWW-Authenticate"] = challenge
    if status == 429 and "retry_after" in error.details:
        headers["Retry-After"] = str(max(1, round(float(error.details["retry_after"]))))
    return status, headers


def install_error_handlers(
    app: Starlette,
    *,
    unexpected: str,
    log: logging.Logger,
    challenge: str | None = "Bearer",
) -> None:
    """Answer every failure of ``app`` with the envelope; an unexpected exception is logged on
    ``log`` and answered 500 ``internal_error`` with the message ``unexpected``; a 401 names
    ``challenge`` (see :func:`status_of`)."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    # async: Starlette runs a plain-function handler in a worker thread, on every error answer.
    async def aileron_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, AileronError)
        status, headers = status_of(error, challenge=challenge)
        retriable = getattr(error, "retriable", None)
        return envelope(
            status,
            error.code,
            str(error),
            details=error.details,
            retriable=retriable,
            headers=headers,
        )

    async def validation_error(_: Request, error: Exception) -> JSONResponse:
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

    async def http_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        if error.status_code == 400:
            # Starlette's answer to a body it cannot decode: a validation error like any other.
            return envelope(422, "invalid_request", f"invalid request body: {error.detail}")
        if error.status_code == 404:
            return envelope(404, "not_found", "no such route")
        if error.status_code == 405:
            return envelope(405, "method_not_allowed", "method not allowed on this route")
        return envelope(error.status_code, "http_error", str(error.detail))

    async def unexpected_error(_: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error while answering a request", exc_info=error)
        return envelope(500, "internal_error", unexpected)

    app.add_exception_handler(AileronError, aileron_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
