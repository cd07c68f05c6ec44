"""Text an agent chose, made safe to show a human on a terminal.

Anything the terminal would not print as itself — control characters (ESC sequences that move
the cursor or clear the screen), format characters (U+202E right-to-left override, zero-width
spaces), separators other than the plain space, private-use and unassigned code points — is
written as a visible escape (``\\x1b``, ``\\u202e``, ``\\U000e0041``), so nothing in an
argument can hide, reorder or overwrite what the human is asked to approve.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["clip", "escape", "json_text"]


def _escaped(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str) -> str:
    """``text`` with every character that is not printable as itself escaped visibly."""
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def json_text(value: Any) -> str:
    """``value`` as one line of JSON (keys sorted), non-printable characters escaped."""
    return escape(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, marked with how much was cut (``…(+N chars)``)."""
    if len(text) <= width:
        return text
    return f"{text[:width]}…(+{len(text) - width} chars)"
