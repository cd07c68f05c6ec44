"""Keeping an escrowed secret out of what the enclave answers and logs.

An upstream may echo the credential (in a body, a header, a redirect's ``Location``), and an
HTTP library may put a URL with a query credential into an error message. Before anything
leaves the enclave, every spelling of the secret — raw, JSON-escaped, base64 (of the value and
of ``value:``, padded or not, URL-safe), percent-encoded, and for ``user:password`` values the
password alone (at least 4 characters) — is replaced by ``[REDACTED]``.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

import httpx

__all__ = ["REDACTED", "Redactor"]

REDACTED = "[REDACTED]"
_PERCENT_HEX = re.compile(r"%[0-9A-F]{2}")
_MIN_PASSWORD_CHARS = 4


def _forms(value: str) -> list[str]:
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    for text in (value, f"{value}:"):
        encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
        forms.update({encoded, encoded.rstrip("=")})
        forms.add(base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii"))
    httpx_form = str(httpx.QueryParams([("k", value)]))[2:]
    for encoded in (quote(value, safe=""), quote_plus(value, safe=""), httpx_form):
        forms.update({encoded, _PERCENT_HEX.sub(lambda m: m.group().lower(), encoded)})
    _, colon, password = value.partition(":")
    if colon and len(password) >= _MIN_PASSWORD_CHARS:
        forms.update({password, quote(password, safe=""), quote_plus(password, safe="")})
    return sorted((form for form in forms if form), key=len, reverse=True)


class Redactor:
    """Replaces every spelling of one secret in text and in bytes."""

    def __init__(self, secret: str) -> None:
        forms = _forms(secret) if secret else []
        self._text = re.compile("|".join(map(re.escape, forms))) if forms else None
        self._bytes = (
            re.compile(b"|".join(re.escape(f.encode("utf-8")) for f in forms)) if forms else None
        )

    def text(self, text: str) -> str:
        return self._text.sub(REDACTED, text) if self._text else text

    def bytes(self, data: bytes) -> bytes:
        return self._bytes.sub(REDACTED.encode(), data) if self._bytes else data
