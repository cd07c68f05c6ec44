"""Strict encodings of the enclave protocol: base64 text, raw public keys, fingerprints."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from aileron_core.errors import AileronError

__all__ = [
    "EnclaveProtocolError",
    "b64decode",
    "b64encode",
    "fingerprint_of",
    "normalize_fingerprint",
]

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


class EnclaveProtocolError(AileronError):
    """A message of the enclave protocol is malformed or does not verify."""

    code = "enclave_protocol_error"


def b64encode(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object, *, what: str, size: int | None = None) -> bytes:
    """Decode strict standard base64 (``ValueError`` naming ``what`` if it is not)."""
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a base64 string")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError(f"{what} is not valid base64") from None
    if size is not None and len(data) != size:
        raise ValueError(f"{what} must be {size} bytes, not {len(data)}")
    return data


def fingerprint_of(der: bytes) -> str:
    """The sha256 fingerprint (lowercase hex) of a DER certificate."""
    return hashlib.sha256(der).hexdigest()


def normalize_fingerprint(text: str) -> str:
    """``text`` as 64 lowercase hex digits (colons and spaces dropped); ``ValueError`` if not."""
    value = text.replace(":", "").replace(" ", "").strip().lower()
    if not _FINGERPRINT.fullmatch(value):
        raise ValueError(
            "a certificate fingerprint is 64 hex digits (the sha256 that"
            " `aileron-enclave fingerprint` prints)"
        )
    return value
