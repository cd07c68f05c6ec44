"""Secrets and their redaction: a credential value must never leave in a message or a body.

``Secret`` wraps a credential value so its ``repr`` and ``str`` never show it. ``Redactor``
replaces every spelling of one secret an HTTP exchange or an echoing upstream may produce
(:func:`aileron_core.secret_forms.secret_forms`: raw, any case, JSON-escaped, percent-encoded,
hex, base64 and base32 at any byte alignment; ADR 0015) with ``REDACTED``, in text, in bytes,
in decoded JSON data and in excerpts cut from a longer text. ``redact`` does it for one text.
The daemon and the enclave share it (ADR 0026).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from aileron_core.secret_forms import compiled_forms

__all__ = ["REDACTED", "Redactor", "Secret", "redact"]

REDACTED = "[REDACTED]"


@attrs.frozen(repr=False)
class Secret:
    """A credential value; its ``repr`` and ``str`` never show it."""

    value: str = attrs.field(repr=False)

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"


class Redactor:
    """Replaces every form of one secret in text, in bytes and in decoded JSON data (the
    daemon's and the enclave's one redactor)."""

    def __init__(self, secret: Secret | None) -> None:
        self._forms = compiled_forms(secret.value) if secret is not None else None

    def text(self, text: str) -> str:
        """``text`` with every form of the secret replaced by ``[REDACTED]``."""
        return self._forms.sub(REDACTED, text) if self._forms else text

    def bytes(self, data: bytes) -> bytes:
        """``data`` with every form of the secret replaced by ``[REDACTED]``."""
        return self._forms.sub_bytes(REDACTED.encode(), data) if self._forms else data

    def data(self, value: Any) -> Any:
        """``value`` with the secret replaced in every string, key and number of it."""
        if self._forms is None:
            return value
        # One test of the whole document first: almost every answer holds no form at all.
        if not self._forms.found_in(json.dumps(value, ensure_ascii=False, default=repr)):
            return value
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self._walk(key): self._walk(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(item) for item in value]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return REDACTED if self.text(json.dumps(value)) != json.dumps(value) else value
        return value

    def excerpt(self, text: str, *, cut: bool, limit: int) -> str:
        """At most ``limit`` UTF-8 bytes of redacted ``text``.

        ``cut`` says ``text`` is the start of something longer; then, as when the excerpt
        itself is shortened, a tail that could be the first part of a secret is dropped.
        """
        text = self.text(text)
        data = text.encode("utf-8")
        if len(data) > limit:
            data = data[:limit]
            cut = True
        if cut and self._forms is not None:
            data = data[: len(data) - self._forms.held_tail(data)]
        return data.decode("utf-8", errors="ignore")


def redact(text: str, secret: Secret | None) -> str:
    """``text`` with every form of ``secret`` (:mod:`aileron_core.secret_forms`) replaced by
    ``[REDACTED]``; ``text`` unchanged when ``secret`` is ``None``."""
    return Redactor(secret).text(text)
