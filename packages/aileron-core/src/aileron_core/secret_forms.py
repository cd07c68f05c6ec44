"""Every spelling of a secret that an HTTP exchange or an echoing upstream may produce.

The daemon's executor and the enclave both redact a credential from whatever they answer or
log; both need the same list of forms, kept here: the raw value, its JSON-escaped forms, base64
of the value and of ``value:`` (padded or not, URL-safe), its percent-encoded forms (either hex
case, ``quote``, ``quote_plus`` and httpx's query encoding), and for ``user:password`` values
the password alone when it has at least 4 characters.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

import httpx

_PERCENT_HEX = re.compile(r"%[0-9A-F]{2}")
MIN_PASSWORD_CHARS = 4


def secret_forms(value: str) -> list[str]:
    """The spellings of ``value`` to redact, longest first (none for an empty value)."""
    if not value:
        return []
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    for text in (value, f"{value}:"):
        encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
        forms.update({encoded, encoded.rstrip("=")})
        forms.add(base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii"))
    httpx_form = str(httpx.QueryParams([("k", value)]))[2:]
    for encoded in (quote(value, safe=""), quote_plus(value, safe=""), httpx_form):
        forms.update({encoded, _PERCENT_HEX.sub(lambda m: m.group().lower(), encoded)})
    _, colon, password = value.partition(":")
    if colon and len(password) >= MIN_PASSWORD_CHARS:
        forms.update({password, quote(password, safe=""), quote_plus(password, safe="")})
    return sorted((form for form in forms if form), key=len, reverse=True)
