"""Identifiers: ULIDs (time-ordered, 26 Crockford base32 characters) and secret tokens."""

from __future__ import annotations

import os
import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid(now_ms: int | None = None) -> str:
    """A new ULID: 48 bits of milliseconds since the epoch, then 80 random bits."""
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_token(prefix: str) -> str:
    """A 256-bit random bearer token, URL-safe, with a recognisable prefix."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"
