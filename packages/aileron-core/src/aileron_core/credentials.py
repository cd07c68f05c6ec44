"""How a credential travels in an HTTP request, per connector credential kind (SPEC §7).

One implementation shared by the daemon's executor and the enclave, so that a binding behaves
the same whether the daemon or the enclave injects it:

- ``bearer`` → ``Authorization: Bearer <v>``; ``oauth2`` too (``<v>`` is the binding's current
  access token, which its source refreshes);
- ``header`` → ``<name>: <v>``;
- ``basic`` → ``Authorization: Basic base64(<v>)`` where ``<v>`` is ``user:password``; a value
  without ``:`` is an API key used as the user name with an empty password (``<v>:``);
- ``query`` → query parameter ``<name>=<v>``, replacing any value already there.

``credential_problem`` says why a value cannot travel safely (empty, control characters, or for
header kinds non-ASCII or surrounding white space) before anything is sent.
"""

from __future__ import annotations

import base64
import re

import httpx

from aileron_core.connectors import CredentialKind

__all__ = [
    "HEADER_NAME_PATTERN",
    "carrier_header",
    "credential_headers",
    "credential_problem",
    "with_query_credential",
]

HEADER_NAME_PATTERN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}"
"""RFC 9110 token characters: a header name that may carry a credential."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# An RFC 9110 field value that h11 accepts: visible ASCII, inner spaces and tabs only.
_HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?")


def credential_problem(kind: CredentialKind, value: str) -> str | None:
    """Why ``value`` cannot be sent as a credential of ``kind``, or ``None`` when it can."""
    if not value:
        return "it is empty"
    if _CONTROL.search(value):
        return "it contains control characters (a trailing newline?)"
    if kind in ("bearer", "oauth2", "header") and not _HEADER_VALUE.fullmatch(value):
        return "a header value must be ASCII without surrounding spaces"
    return None


def carrier_header(kind: CredentialKind, name: str | None) -> str | None:
    """The (lowercase) header that carries a credential of ``kind``; ``None`` for ``query``."""
    if kind in ("bearer", "oauth2", "basic"):
        return "authorization"
    if kind == "header":
        return _need_name(kind, name).lower()
    return None


def credential_headers(kind: CredentialKind, name: str | None, value: str) -> dict[str, str]:
    """The headers that carry ``value`` as a credential of ``kind`` (none for ``query``)."""
    if kind in ("bearer", "oauth2"):
        return {"Authorization": f"Bearer {value}"}
    if kind == "basic":
        pair = value if ":" in value else f"{value}:"
        token = base64.b64encode(pair.encode("utf-8")).decode("ascii")
        return {"Authorization": f"Basic {token}"}
    if kind == "header":
        return {_need_name(kind, name): value}
    return {}


def with_query_credential(
    url: httpx.URL, kind: CredentialKind, name: str | None, value: str
) -> httpx.URL:
    """``url`` carrying a ``query`` credential (replacing any value already there)."""
    if kind != "query":
        return url
    param = _need_name(kind, name)
    return url.copy_with(params=url.params.remove(param).add(param, value))


def _need_name(kind: str, name: str | None) -> str:
    if name is None:  # the spec and scope parsers guarantee a name for these kinds
        raise ValueError(f"credential kind {kind!r} needs a name")
    return name
