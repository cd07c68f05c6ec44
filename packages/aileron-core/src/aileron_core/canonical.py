"""Canonical JSON: the one byte encoding that Aileron hashes, signs and authenticates.

Keys sorted, no insignificant white space, UTF-8, no NaN or infinity. Two equal JSON values
always encode to the same bytes, so a hash or an AEAD associated-data string built from them
is stable across processes and versions.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON bytes (raises ``ValueError`` for NaN/infinity)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def canonical_sha256(value: Any) -> str:
    """Hex sha256 of the canonical JSON encoding of ``value``."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
