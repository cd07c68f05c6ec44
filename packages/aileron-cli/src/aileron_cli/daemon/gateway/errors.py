"""The gateway's own errors, answered in the shape of the provider the agent thinks it talks to.

An agent's SDK reads a gateway answer as the provider's. Aileron's envelope
(``{"error": {"code", "message", …}}``) would reach the user as a bare status; the provider's
shape makes the SDK raise its own error class (``AuthenticationError`` for a 401, and so on)
with Aileron's message. So every error the gateway itself returns — a missing, unknown or
ended session token (401), the master token (403), no credential (412), a bad path (422), an
unknown provider (404), a provider that cannot be reached (502) or is too slow (504), the
daemon failing to write its audit log (503) — goes through :func:`provider_error`:

- OpenAI: ``{"error": {"message", "type", "param": null, "code", "details"?}}`` (the SDK's
  ``error.code`` is Aileron's code);
- Anthropic: ``{"type": "error", "error": {"type", "message", "code", "details"}}`` with
  Aileron's code also in ``details.error_code``, where the SDK reads an error's code.

``code`` is Aileron's error code in both (the envelope's field of that name, so clients that
read Aileron's envelope keep working); ``type`` is the provider's error type for the status;
``details`` carries the envelope's details. The message says it comes from Aileron's gateway and
carries the hint. Status and headers (``WWW-Authenticate``, ``Retry-After``) are the daemon's
usual ones (:func:`aileron_cli.daemon.errors.status_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse

from aileron_cli.daemon.errors import encodable, status_of
from aileron_core.errors import AileronError

__all__ = ["ERROR_TYPES", "provider_error", "shape_for"]

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
}
"""The providers' error type per status (the names both OpenAI's and Anthropic's SDKs know);
any other status below 500 is an ``invalid_request_error``, any from 500 an ``api_error``."""


def _error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def shape_for(kind: str | None, headers: Mapping[str, str]) -> str:
    """Whose error shape to answer with: the provider's kind, or for a name that is no
    provider's (``None``), Anthropic's when the request looks like an Anthropic SDK's
    (``anthropic-version``)."""
    if kind in ("openai", "anthropic"):
        return kind
    return "anthropic" if headers.get("anthropic-version") else "openai"


def provider_error(shape: str, error: AileronError) -> JSONResponse:
    """``error`` answered in the error shape of ``shape`` (``"openai"`` or ``"anthropic"``)."""
    status, headers = status_of(error)
    if error.code == "budget_exceeded":
        # Both SDKs retry a 429 by themselves unless told not to; a spent budget stays spent.
        headers["x-should-retry"] = "false"
    body: dict[str, Any] = {
        "type": _error_type(status),
        "message": f"Aileron gateway: {error}",
        "code": error.code,
    }
    if error.details:
        body["details"] = dict(error.details)
    if shape == "anthropic":
        body["details"] = {**body.get("details", {}), "error_code": error.code}
        document: dict[str, Any] = {"type": "error", "error": body}
    else:
        document = {"error": {"message": body.pop("message"), "param": None, **body}}
    return JSONResponse(encodable(document), status_code=status, headers=headers)
