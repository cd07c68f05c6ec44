"""Keeping an escrowed secret out of what the enclave answers and logs.

An upstream may echo the credential (in a body, a header, a redirect's ``Location``), and an
HTTP library may put a URL with a query credential into an error message. Before anything
leaves the enclave, every spelling of the secret (the daemon's list: any case, hex, base64 and
base32 at any byte alignment, percent-encoded, JSON-escaped;
:func:`aileron_core.secret_forms.secret_forms`) is replaced by ``[REDACTED]``.
"""

from __future__ import annotations

from aileron_core.secret_forms import compiled_forms

__all__ = ["REDACTED", "Redactor"]

REDACTED = "[REDACTED]"


class Redactor:
    """Replaces every spelling of one secret in text and in bytes."""

    def __init__(self, secret: str) -> None:
        self._forms = compiled_forms(secret)

    def text(self, text: str) -> str:
        return self._forms.sub(REDACTED, text) if self._forms else text

    def bytes(self, data: bytes) -> bytes:
        return self._forms.sub_bytes(REDACTED.encode(), data) if self._forms else data
