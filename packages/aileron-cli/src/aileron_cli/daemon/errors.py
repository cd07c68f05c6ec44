"""The daemon's error type and the documentation of its error answers (SPEC §5.2).

The envelope, the status of every code and the handlers that answer every failure in that
shape are the rules the daemon shares with the enclave: they live once in
:mod:`aileron_core.http_errors` (ADR 0026) and are re-exported here for the daemon's modules.
An unexpected exception is logged on ``aileron.daemon`` and answered as a 500 without its
traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from starlette.applications import Starlette

from aileron_core import http_errors
from aileron_core.errors import AileronError
from aileron_core.http_errors import STATUS_BY_CODE, encodable, envelope, status_of

__all__ = [
    "ERROR_RESPONSES",
    "STATUS_BY_CODE",
    "DaemonError",
    "ErrorBody",
    "ErrorEnvelope",
    "encodable",
    "envelope",
    "install_error_handlers",
    "status_of",
]

log = logging.getLogger("aileron.daemon")


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


class Refusal(DaemonError):
    """A refusal whose ``reason`` goes into the audit record of what was refused."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        reason: str,
        hint: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(code, message, hint=hint, details=details)
        self.reason = reason


def install_error_handlers(app: Starlette) -> None:
    """Answer every failure with the error envelope (:mod:`aileron_core.http_errors`)."""
    http_errors.install_error_handlers(
        app, unexpected="the daemon failed unexpectedly; see daemon.log", log=log
    )


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
