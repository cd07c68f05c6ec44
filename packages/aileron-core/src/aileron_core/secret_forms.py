"""Every spelling of a secret that an HTTP exchange or an echoing upstream may produce.

The daemon's executor, the gateway and the enclave all redact a credential from whatever they
answer or log; all need the same list of forms, kept here (ADR 0015):

- the raw value and its JSON-escaped forms;
- its percent-encoded forms (``quote``, ``quote_plus``, httpx's query encoding);
- the hex of its UTF-8 bytes;
- base64 (padded or not, standard or URL-safe) of the value and of ``value:`` (HTTP basic);
- the *cores* of base64, base64url and base32 at every byte alignment: when the secret sits
  inside a longer encoded blob, its bytes start at offset 0, 1 or 2 modulo 3 (base64) or 0..4
  modulo 5 (base32), and only the characters fully determined by the secret's own bits are
  the same whatever surrounds it; a core shorter than ``MIN_CORE_CHARS`` is not redacted;
- for ``user:password`` values, the password alone (at least ``MIN_PASSWORD_CHARS``) and its
  percent-encoded forms.

Every form matches without regard to case (:class:`SecretForms` compiles them so), which
covers the value in upper or lower case, hex and percent escapes in either case, and base32
in lower case. :func:`compiled_forms` keeps the compiled forms of recent secrets, so that
redacting costs one regular-expression pass per text and nothing per secret.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote, quote_plus

import attrs
import httpx

__all__ = [
    "MIN_CORE_CHARS",
    "MIN_PASSWORD_CHARS",
    "SecretForms",
    "StreamRedactor",
    "compiled_forms",
    "mask",
    "secret_forms",
]

_PERCENT_HEX = re.compile(r"%[0-9A-F]{2}")
MIN_PASSWORD_CHARS = 4
MIN_CORE_CHARS = 8
"""The shortest base64/base32 core that is redacted: a shorter one would match by chance in
ordinary text (a 2-character core would redact every other word)."""

_URLSAFE = str.maketrans("+/", "-_")
_T = TypeVar("_T", str, bytes)


def _cores(data: bytes, encode: Callable[[bytes], bytes], bits: int, group: int) -> set[str]:
    """The characters of ``encode``'s output that only ``data``'s bits decide, for ``data``
    starting at each byte offset modulo ``group`` (the encoding's block of bytes) inside a
    longer blob. ``bits`` is the number of bits one output character carries."""
    cores: set[str] = set()
    for offset in range(group):
        encoded = encode(b"\0" * offset + data + b"\0" * group).decode("ascii")
        first = -(-8 * offset // bits)  # the first character whose bits all come from data
        end = 8 * (offset + len(data)) // bits  # one past the last such character
        core = encoded[first:end]
        if len(core) >= MIN_CORE_CHARS:
            cores.add(core)
    return cores


def secret_forms(value: str) -> list[str]:
    """The spellings of ``value`` to redact, longest first (none for an empty value).

    Each is to be matched without regard to case.
    """
    if not value:
        return []
    raw = value.encode("utf-8")
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms.add(raw.hex())
    for text in (raw, raw + b":"):
        encoded = base64.b64encode(text).decode("ascii")
        forms.update({encoded, encoded.rstrip("=")})
        forms.update({encoded.translate(_URLSAFE), encoded.translate(_URLSAFE).rstrip("=")})
    encoded = base64.b32encode(raw).decode("ascii")
    forms.update({encoded, encoded.rstrip("=")})
    base64_cores = _cores(raw, base64.b64encode, 6, 3)
    forms.update(base64_cores)
    forms.update(core.translate(_URLSAFE) for core in base64_cores)
    forms.update(_cores(raw, base64.b32encode, 5, 5))
    httpx_form = str(httpx.QueryParams([("k", value)]))[2:]
    for encoded in (quote(value, safe=""), quote_plus(value, safe=""), httpx_form):
        forms.update({encoded, _PERCENT_HEX.sub(lambda m: m.group().lower(), encoded)})
    _, colon, password = value.partition(":")
    if colon and len(password) >= MIN_PASSWORD_CHARS:
        forms.update({password, quote(password, safe=""), quote_plus(password, safe="")})
    # Matching ignores case, so forms that differ only in case are one form.
    unique = {form.casefold(): form for form in sorted(forms) if form}
    return sorted(unique.values(), key=lambda form: (-len(form), form))


def _minimal(forms: set[_T]) -> tuple[_T, ...]:
    """The forms that contain no other form: finding none of them proves there is none."""
    return tuple(form for form in forms if not any(o != form and o in form for o in forms))


@attrs.frozen(repr=False)
class SecretForms:
    """The forms of one secret, compiled for redaction.

    Finding a form is one pass: a quick test of the case-folded text for every case-folded
    form (``str.__contains__`` is much faster than a case-insensitive pattern), and the
    case-insensitive pattern only when one is there. For streams and cut excerpts,
    :meth:`held_tail` finds a tail that may be the start of a form.
    """

    forms: tuple[str, ...]
    """Longest first."""
    _text: re.Pattern[str]
    _bytes: re.Pattern[bytes]
    _folded: tuple[str, ...]
    """The case-folded forms and their JSON escapes (to test serialized JSON)."""
    _folded_bytes: tuple[bytes, ...]
    _prefixes: dict[int, frozenset[bytes]]
    """Lower-cased UTF-8 proper prefixes of the forms, by their length in bytes."""

    def __repr__(self) -> str:
        return f"SecretForms({len(self.forms)} forms)"

    @classmethod
    def of(cls, value: str) -> SecretForms | None:
        """The compiled forms of ``value`` (``None`` for an empty value)."""
        forms = secret_forms(value)
        if not forms:
            return None
        encoded = [form.encode("utf-8") for form in forms]
        prefixes: dict[int, set[bytes]] = {}
        for form in encoded:
            for size in range(1, len(form)):
                prefixes.setdefault(size, set()).add(form[:size].lower())
        folded = {form.casefold() for form in forms}
        folded |= {json.dumps(form, ensure_ascii=False)[1:-1].casefold() for form in forms}
        return cls(
            forms=tuple(forms),
            text=re.compile("|".join(map(re.escape, forms)), re.IGNORECASE),
            bytes=re.compile(b"|".join(map(re.escape, encoded)), re.IGNORECASE),
            folded=_minimal(folded),
            folded_bytes=_minimal({form.lower() for form in encoded}),
            prefixes={size: frozenset(found) for size, found in prefixes.items()},
        )

    def found_in(self, text: str) -> bool:
        """Whether ``text`` (or its JSON serialization) may hold a form; ``False`` is sure."""
        folded = text.casefold()
        return any(form in folded for form in self._folded)

    def sub(self, replacement: str, text: str) -> str:
        """``text`` with every form replaced by ``replacement``."""
        return self._text.sub(replacement, text) if self.found_in(text) else text

    def sub_bytes(self, replacement: bytes | Callable[[int], bytes], data: bytes) -> bytes:
        """``data`` with every form (as UTF-8; case folded in ASCII only) replaced by
        ``replacement``, or by ``replacement(length of the match)`` when it is callable."""
        lowered = data.lower()
        if not any(form in lowered for form in self._folded_bytes):
            return data
        if callable(replacement):
            make = replacement
            return self._bytes.sub(lambda match: make(len(match.group())), data)
        return self._bytes.sub(replacement, data)

    def held_tail(self, data: bytes) -> int:
        """The length of the longest tail of ``data`` that is a proper prefix of some form
        (0 if none): the bytes a stream must hold back until it knows what follows."""
        longest = min(len(data), len(self._prefixes))
        tail = data[len(data) - longest :].lower()  # one copy, then slices of it
        for size in range(longest, 0, -1):
            if tail[longest - size :] in self._prefixes[size]:
                return size
        return 0


@functools.lru_cache(maxsize=32)
def compiled_forms(value: str) -> SecretForms | None:
    """:meth:`SecretForms.of`, kept for the most recently used secrets: a redactor is built
    for every action run, and compiling the forms costs far more than using them. (The
    ``re`` module caches every compiled pattern, the secret in it, anyway.)"""
    return SecretForms.of(value)


def mask(length: int) -> bytes:
    """A replacement exactly ``length`` bytes long: ``[REDACTED]`` padded with ``*``, or cut
    to ``*``s when the match is shorter. Framing (``Content-Length``) stays right."""
    return b"[REDACTED]" + b"*" * (length - 10) if length >= 10 else b"*" * length


class StreamRedactor:
    """Redacts a byte stream piece by piece without holding more than it must.

    Every complete form in what has arrived is replaced by a :func:`mask` of its own length;
    then the longest tail that is a proper prefix of some form is held back until the next
    piece says whether it completes one. Nothing else waits: a piece that cannot be the start
    of the secret goes out at once.
    """

    def __init__(self, forms: SecretForms) -> None:
        self._forms = forms
        self._held = b""

    def feed(self, piece: bytes) -> bytes:
        """What of ``piece`` (after what was held) may go out now, redacted."""
        data = self._forms.sub_bytes(mask, self._held + piece if self._held else piece)
        keep = self._forms.held_tail(data)
        self._held = data[len(data) - keep :]
        return data[: len(data) - keep]

    def flush(self) -> bytes:
        """The held bytes, at the end of the stream (they complete no form)."""
        held, self._held = self._held, b""
        return held
