"""Strict reading of decoded JSON and TOML documents, shared by the spec and manifest parsers.

``StrictReader`` checks decoded data against a schema one value at a time; every problem goes,
with the ``Location`` of the value (keys and array indexes from the root), to the caller's
``fail``, which raises the caller's own error. ``format_location`` spells a location
(``$.tools[1].name``) and ``show`` renders a user-supplied value for a message.

For ``json.loads``: ``no_duplicate_keys`` (an ``object_pairs_hook``) raises ``DuplicateKey`` for
an object that repeats a key, and ``no_constants`` (a ``parse_constant``) refuses ``NaN`` and
``Infinity``, which are not JSON.

The text rules: ``CONTROL_CHARS`` (no control character at all, for one-line values),
``TEXT_CONTROL_CHARS`` (free text: newline and tab allowed) and ``LONE_SURROGATE`` (text that is
not valid Unicode); ``MAX_JSON_DEPTH`` bounds how deeply a JSON value may nest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

MAX_LINE_CHARS = 300
"""Longest one-line value (``StrictReader.line``)."""
MAX_TEXT_CHARS = 20_000
"""Longest free-text value (``StrictReader.text``)."""
MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects a JSON value may have."""

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
TEXT_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")

# --- reading a decoded document ------------------------------------------------------------

Location = tuple[str | int, ...]
"""Where a value sits in a document: keys and array indexes from the root."""


def format_location(location: Location, *, root: str = "$") -> str:
    """``("tools", 1, "name")`` → ``$.tools[1].name``; odd keys are quoted: ``$["a b"]``."""
    text = root
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def show(value: Any, limit: int = 60) -> str:
    """A short, printable rendering of a user-supplied value for a message.

    ``repr`` escapes control characters and lone surrogates, so the message stays one line of
    encodable text whatever the input held.
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class StrictReader:
    """Checks decoded JSON or TOML data against a schema, one value at a time.

    Every problem goes to ``fail(location, problem)``, which raises the caller's own error.
    """

    def __init__(
        self, fail: Callable[[Location, str], NoReturn], *, locate: Callable[[Location], str]
    ) -> None:
        self.fail = fail
        self.locate = locate

    @staticmethod
    def describe(value: Any) -> str:
        """The JSON/TOML kind of ``value`` with its article, for "must be X, not Y"."""
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "a boolean"
        if isinstance(value, int):
            return "an integer"
        if isinstance(value, float):
            return "a number"
        if isinstance(value, str):
            return "a string"
        if isinstance(value, list):
            return "an array"
        if isinstance(value, dict):
            return "an object"
        return f"a {type(value).__name__}"

    def table(
        self, value: Any, at: Location, *, required: Iterable[str], optional: Iterable[str] = ()
    ) -> dict[str, Any]:
        """``value`` as an object with exactly the allowed keys and every required one."""
        table = self.mapping(value, at)
        required = tuple(required)
        allowed = (*required, *optional)
        for key in table:
            if key not in allowed:
                self.fail((*at, key), f"unknown key (allowed here: {', '.join(allowed)})")
        for key in required:
            if key not in table:
                self.fail((*at, key), "is required but missing")
        return table

    def mapping(self, value: Any, at: Location) -> dict[str, Any]:
        """``value`` as an object with any keys."""
        if not isinstance(value, dict):
            self.fail(at, f"must be an object, not {self.describe(value)}")
        return value

    def array(self, value: Any, at: Location, *, non_empty: bool = True) -> list[Any]:
        """``value`` as an array (non-empty unless told otherwise)."""
        if not isinstance(value, list):
            self.fail(at, f"must be an array, not {self.describe(value)}")
        if non_empty and not value:
            self.fail(at, "must not be empty")
        return value

    def boolean(self, value: Any, at: Location) -> bool:
        """``value`` as true or false."""
        if not isinstance(value, bool):
            self.fail(at, f"must be true or false, not {self.describe(value)}")
        return value

    def string(self, value: Any, at: Location) -> str:
        """``value`` as a string of Unicode scalar values (no lone surrogates)."""
        if not isinstance(value, str):
            self.fail(at, f"must be a string, not {self.describe(value)}")
        if LONE_SURROGATE.search(value):
            self.fail(at, "must be valid Unicode (it holds a lone surrogate)")
        return value

    def matching(self, value: Any, at: Location, pattern: re.Pattern[str], rule: str) -> str:
        """``value`` as a string that matches ``pattern`` in full; ``rule`` says how to fix it."""
        text = self.string(value, at)
        if not pattern.fullmatch(text):
            self.fail(at, f"{show(text)} is not valid here: {rule}")
        return text

    def line(self, value: Any, at: Location, *, allow_empty: bool = False) -> str:
        """``value`` as one line of text: no control characters, at most 300 characters."""
        text = self.string(value, at)
        if not text.strip() and not allow_empty:
            self.fail(at, "must not be empty")
        if CONTROL_CHARS.search(text):
            self.fail(at, "must be a single line without control characters")
        if len(text) > MAX_LINE_CHARS:
            self.fail(at, f"must be at most {MAX_LINE_CHARS} characters (it has {len(text)})")
        return text

    def text(self, value: Any, at: Location, *, allow_empty: bool = False) -> str:
        """``value`` as free text: newlines and tabs allowed, other control characters not."""
        text = self.string(value, at)
        if not text.strip() and not allow_empty:
            self.fail(at, "must not be empty")
        if TEXT_CONTROL_CHARS.search(text):
            self.fail(at, "must not contain control characters other than newline and tab")
        if len(text) > MAX_TEXT_CHARS:
            self.fail(at, f"must be at most {MAX_TEXT_CHARS} characters (it has {len(text)})")
        return text

    def choice(self, value: Any, at: Location, options: Sequence[str]) -> str:
        """``value`` as one of ``options``."""
        text = self.string(value, at)
        if text not in options:
            self.fail(at, f"{show(text)} is not one of {', '.join(options)}")
        return text

    def unique(self, named: Iterable[tuple[str, Location]], what: str) -> None:
        """Fail at the second of any two entries that share a name."""
        seen: dict[str, Location] = {}
        for name, at in named:
            if name in seen:
                self.fail(at, f"duplicate {what} {show(name)} (first at {self.locate(seen[name])})")
            seen[name] = at


# --- JSON decoding -------------------------------------------------------------------------


class DuplicateKey(ValueError):
    """A JSON object repeats ``key`` (raised by ``no_duplicate_keys``)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: the object, or ``DuplicateKey`` for a repeat."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(key)
        result[key] = value
    return result


def no_constants(name: str) -> Any:
    """``json.loads``'s ``parse_constant``: ``NaN``, ``Infinity`` and ``-Infinity`` are refused."""
    raise ValueError(f"{name} is not JSON")
