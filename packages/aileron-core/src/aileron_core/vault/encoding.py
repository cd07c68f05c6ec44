"""The byte-level encodings of vault.json: strict base64, fixed-width timestamps, JSON pieces.

Every encoding here has exactly one accepted spelling per value, so a file can be required to
equal its own canonical re-encoding. The JSON helpers build canonical JSON
(``aileron_core.canonical``) incrementally, so a write re-encodes only what changed; tests prove
they agree byte for byte with ``canonical_json``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from json.encoder import encode_basestring  # the escaper canonical_json uses (ensure_ascii off)

_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def b64encode(data: bytes) -> str:
    """Standard base64 (RFC 4648 section 4) with ``=`` padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(text: str) -> bytes | None:
    """Decode canonical standard base64; ``None`` for anything else.

    Rejected: characters outside the alphabet (including white space and the URL-safe ``-_``),
    missing or extra padding, and non-zero bits in the final character's unused low bits.
    """
    try:
        data = binascii.a2b_base64(text, strict_mode=True)
        canonical = binascii.b2a_base64(data, newline=False) == text.encode("ascii")
    except (binascii.Error, ValueError):  # ValueError: not ASCII
        return None
    return data if canonical else None


def format_timestamp(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC: always 27 characters, always microseconds."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def parse_timestamp(text: str) -> datetime | None:
    """The UTC-aware datetime of a timestamp in :func:`format_timestamp` form; else ``None``."""
    if not _TIMESTAMP.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text)  # the "Z" suffix makes it UTC-aware
    except ValueError:  # a date or time that does not exist
        return None


def json_text(text: str) -> str:
    """The canonical JSON encoding of one string, as text (lone surrogates ruled out before)."""
    return encode_basestring(text)


def json_string(text: str) -> bytes:
    """The canonical JSON encoding of one string (the caller has ruled out lone surrogates)."""
    return encode_basestring(text).encode("utf-8")


def json_object(members: Iterable[tuple[str, bytes]]) -> bytes:
    """A canonical JSON object from ``(key, already-canonical value bytes)`` pairs."""
    return (
        b"{" + b",".join([json_string(key) + b":" + value for key, value in sorted(members)]) + b"}"
    )


def json_text_map(mapping: dict[str, str]) -> str:
    """The canonical JSON encoding of a ``str -> str`` mapping, as text."""
    if not mapping:
        return "{}"
    pairs = [f"{encode_basestring(k)}:{encode_basestring(v)}" for k, v in sorted(mapping.items())]
    return "{" + ",".join(pairs) + "}"


def json_string_map(mapping: dict[str, str]) -> bytes:
    """The canonical JSON encoding of a ``str -> str`` mapping."""
    return json_text_map(mapping).encode("utf-8")


__all__ = [
    "b64decode_strict",
    "b64encode",
    "format_timestamp",
    "json_object",
    "json_string",
    "json_string_map",
    "json_text",
    "json_text_map",
    "parse_timestamp",
]
