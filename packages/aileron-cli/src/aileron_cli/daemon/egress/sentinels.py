"""Sentinels: what a sandboxed session holds instead of a brokered secret (issue #19, ADR 0028).

A sentinel is random, per session and binding, and worthless anywhere but in a request its
session's egress proxy brokers. This module finds sentinels in request heads (in any header
value, raw or inside ``Basic`` credentials) and puts a secret in their place as the binding's
:class:`~aileron_cli.daemon.store.bindings.Exposure` form says:

- ``replace``: the sentinel becomes the secret where it stands in the ``Authorization``
  header (``Basic`` credentials are decoded, replaced and re-encoded: git sends URL user info
  that way) — and nowhere else: the agent does not choose the header a secret travels in (an
  upstream may log or show another header where the agent can read it); a sentinel in
  another header is sent as it is;
- ``header`` (``"Name: value {}"``): a header holding the sentinel is dropped and the template's
  header set (replacing any of that name);
- ``basic`` (``"user:{}"``): the same, setting ``Authorization: Basic``.
"""

from __future__ import annotations

import base64
import binascii
import secrets as random
from collections.abc import Iterable

import attrs

from aileron_cli.daemon.store.bindings import Exposure

__all__ = [
    "SENTINEL_PREFIX",
    "Brokered",
    "carries",
    "head_fields",
    "holds",
    "inject",
    "new_sentinel",
]

SENTINEL_PREFIX = "aileron-sentinel-"
PREFIX = SENTINEL_PREFIX.encode()
_URLSAFE = bytes.maketrans(b"-_", b"+/")


def new_sentinel() -> str:
    """A fresh sentinel: ``aileron-sentinel-`` and 160 random bits in lowercase base32."""
    return SENTINEL_PREFIX + base64.b32encode(random.token_bytes(20)).decode().lower()


@attrs.frozen
class Brokered:
    """One binding exposed to one session."""

    binding: str
    exposure: Exposure
    sentinel: str


def basic_credentials(value: bytes) -> bytes | None:
    """The decoded credentials of a ``Basic`` header value, or ``None``. Lenient as the most
    lenient server: any whitespace after the scheme, padding missing, URL-safe base64."""
    stripped = value.lstrip()
    if stripped[:5].lower() != b"basic":  # the common case, quickly
        return None
    parts = stripped.split(None, 1)
    if len(parts) != 2 or parts[0].lower() != b"basic":
        return None
    encoded = b"".join(parts[1].split()).translate(_URLSAFE)
    try:
        return base64.b64decode(encoded + b"=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def holds(value: bytes, sentinel: bytes) -> bool:
    """Whether a header value holds ``sentinel`` (any case), raw or inside ``Basic``."""
    lowered = value.lower()
    if sentinel in lowered:
        return True
    decoded = basic_credentials(value)
    return decoded is not None and sentinel in decoded.lower()


def head_fields(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The request line and the ``(lower-case name, value)`` headers of a raw request head."""
    lines = head.split(b"\r\n")
    fields = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if colon:
            fields.append((name.strip().lower(), value.strip()))
    return lines[0], fields


def carries(headers: Iterable[tuple[bytes, bytes]], brokered: Brokered) -> bool:
    """Whether ``headers`` ask for ``brokered``'s secret: its sentinel in ``Authorization``
    (raw or inside ``Basic``) for the ``replace`` form, in any header for the others."""
    sentinel = brokered.sentinel.encode()
    if brokered.exposure.form != "replace":
        return any(holds(value, sentinel) for _, value in headers)
    for name, value in headers:
        if name == b"authorization":
            decoded = basic_credentials(value)
            if sentinel in value or (decoded is not None and sentinel in decoded):
                return True
    return False


def inject(
    headers: Iterable[tuple[bytes, bytes]], brokered: Brokered, secret: bytes
) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``brokered``'s sentinel turned into ``secret`` as its form says."""
    sentinel = brokered.sentinel.encode()
    exposure = brokered.exposure
    if exposure.form == "replace":
        out = []
        for name, value in headers:
            if name == b"authorization":
                decoded = basic_credentials(value)
                if decoded is not None and sentinel in decoded:
                    value = b"Basic " + base64.b64encode(decoded.replace(sentinel, secret))
                value = value.replace(sentinel, secret)
            out.append((name, value))
        return out
    template = (exposure.template or "").encode()
    if exposure.form == "header":
        header, _, pattern = template.partition(b":")
        target, value = header.strip().lower(), pattern.strip().replace(b"{}", secret)
    else:  # basic
        target = b"authorization"
        value = b"Basic " + base64.b64encode(template.replace(b"{}", secret))
    kept = [(n, v) for n, v in headers if n != target and not holds(v, sentinel)]
    return [*kept, (target, value)]
