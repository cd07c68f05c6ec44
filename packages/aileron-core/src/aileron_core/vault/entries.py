"""What an entry is: its path rules, its metadata rules, and the public ``EntryInfo`` view.

The same rules apply to what callers pass in (violations raise ``InvalidEntryPath`` or
``InvalidEntry``) and to what a file contains (violations make the file ``VaultCorrupt``), so
the ``*_problem`` functions only describe the problem and let the caller pick the error.

Entry paths
    Non-empty strings of at most 512 characters, made of ``/``-separated segments; no segment is
    empty, ``.`` or ``..`` (so no leading, trailing or doubled ``/``); no control characters
    (U+0000-U+001F, U+007F-U+009F) and no lone surrogates (the path must be encodable as UTF-8).
    Paths are compared as exact code point sequences; no normalisation is applied.
Metadata
    A mapping of at most 32 string keys to string values. Keys have 1-64 characters and no
    control characters; values at most 1024 characters; keys and values together at most 4096
    characters. Neither may contain lone surrogates.
Values
    ``bytes`` (also ``bytearray``/``memoryview``) or ``str`` (stored as its UTF-8 encoding), at
    most 1 MiB. ``get`` always returns ``bytes``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import cast

import attrs

from aileron_core.vault.errors import InvalidEntry, InvalidEntryPath

MAX_PATH_CHARS = 512
MAX_METADATA_ITEMS = 32
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 1024
MAX_METADATA_TOTAL_CHARS = 4096
MAX_VALUE_BYTES = 1024 * 1024

_CONTROL_OR_SURROGATE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_BAD_SEGMENTS = frozenset({"", ".", ".."})


@attrs.frozen
class EntryInfo:
    """What may be known about an entry without its value: path, metadata, times (UTC)."""

    path: str
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime


def entry_path_problem(path: object) -> str | None:
    """Say why ``path`` is not a valid entry path, or ``None`` when it is."""
    if not isinstance(path, str):
        return f"an entry path must be a string, not {type(path).__name__}"
    if not path:
        return "an entry path must not be empty"
    if len(path) > MAX_PATH_CHARS:
        return f"an entry path has at most {MAX_PATH_CHARS} characters (this has {len(path)})"
    if _CONTROL_OR_SURROGATE.search(path):
        return "an entry path must not contain control characters or lone surrogates"
    if not _BAD_SEGMENTS.isdisjoint(path.split("/")):
        return "an entry path's '/'-separated segments must not be empty, '.' or '..'"
    return None


def check_entry_path(path: object) -> str:
    """Return ``path`` if it is a valid entry path; raise ``InvalidEntryPath`` otherwise."""
    problem = entry_path_problem(path)
    if problem:
        raise InvalidEntryPath(f"invalid entry path {path!r}: {problem}", details={"path": path})
    return cast(str, path)


def metadata_problem(metadata: object) -> str | None:
    """Say why ``metadata`` is not valid entry metadata, or ``None`` when it is."""
    if not isinstance(metadata, Mapping):
        return f"metadata must be a mapping of strings, not {type(metadata).__name__}"
    if len(metadata) > MAX_METADATA_ITEMS:
        return f"metadata has at most {MAX_METADATA_ITEMS} items (this has {len(metadata)})"
    total = 0
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            return "metadata keys and values must be strings"
        if not 1 <= len(key) <= MAX_METADATA_KEY_CHARS:
            return f"metadata key {key!r} must have 1-{MAX_METADATA_KEY_CHARS} characters"
        if _CONTROL_OR_SURROGATE.search(key):
            return f"metadata key {key!r} contains control characters or lone surrogates"
        if len(value) > MAX_METADATA_VALUE_CHARS:
            return f"metadata value of {key!r} has more than {MAX_METADATA_VALUE_CHARS} characters"
        if _SURROGATE.search(value):
            return f"metadata value of {key!r} contains lone surrogates"
        total += len(key) + len(value)
    if total > MAX_METADATA_TOTAL_CHARS:
        return f"metadata has more than {MAX_METADATA_TOTAL_CHARS} characters in all"
    return None


def check_metadata(metadata: object) -> dict[str, str]:
    """Return a plain ``dict`` copy of valid ``metadata``; raise ``InvalidEntry`` otherwise."""
    problem = metadata_problem(metadata)
    if problem:
        raise InvalidEntry(f"invalid entry metadata: {problem}")
    return dict(cast(Mapping[str, str], metadata))


def check_value(value: object) -> bytes:
    """The plaintext bytes of a value given to ``put``; raise ``InvalidEntry`` if impossible."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise InvalidEntry("a text value must not contain lone surrogates")
        data = value.encode("utf-8")
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
    else:
        raise InvalidEntry(f"a value must be bytes or str, not {type(value).__name__}")
    if len(data) > MAX_VALUE_BYTES:
        raise InvalidEntry(f"a value has at most {MAX_VALUE_BYTES} bytes (this has {len(data)})")
    return data


__all__ = [
    "EntryInfo",
    "check_entry_path",
    "check_metadata",
    "check_value",
    "entry_path_problem",
    "metadata_problem",
]
