"""Keeping an escrowed secret out of what the enclave answers and logs.

An upstream may echo the credential (in a body, a header, a redirect's ``Location``), and an
HTTP library may put a URL with a query credential into an error message. Before anything
leaves the enclave, every spelling of the secret (the daemon's list,
:func:`aileron_core.secret_forms.secret_forms`) is replaced by ``[REDACTED]``.
"""

from __future__ import annotations

import re

from aileron_core.secret_forms import secret_forms

__all__ = ["REDACTED", "Redactor"]

REDACTED = "[REDACTED]"


class Redactor:
    """Replaces every spelling of one secret in text and in bytes."""

    def __init__(self, secret: str) -> None:
        forms = secret_forms(secret)
        self._text = re.compile("|".join(map(re.escape, forms))) if forms else None
        self._bytes = (
            re.compile(b"|".join(re.escape(f.encode("utf-8")) for f in forms)) if forms else None
        )

    def text(self, text: str) -> str:
        return self._text.sub(REDACTED, text) if self._text else text

    def bytes(self, data: bytes) -> bytes:
        return self._bytes.sub(REDACTED.encode(), data) if self._bytes else data
