"""``${…}`` placeholders in action step arguments: parsing, listing and rendering.

The whole language, on purpose (there is no expression evaluation, no defaults, no filters but
the five casts):

- ``${root.seg.seg…}`` is a *reference*. ``root`` names an entry of the rendering context
  (``args`` for the action's arguments, or an earlier step's id for that step's result); each
  further ``.seg`` selects a field of an object or, when the segment is a decimal number such as
  ``0``, an element of an array. The root matches ``[A-Za-z_][A-Za-z0-9_-]*`` and every further
  segment ``[A-Za-z0-9_-]+``.
- ``${reference | cast}`` converts the referenced value explicitly; ``cast`` is one of
  ``string``, ``int``, ``float``, ``bool`` and ``json`` (spaces around ``|`` are optional; one
  cast per placeholder). Nothing else may appear between ``${`` and ``}``. The casts:

  - ``string``: a string as is; anything else as the compact JSON text it would have inside a
    longer string (``42`` → ``"42"``, ``true`` → ``"true"``, ``[1,2]`` → ``"[1,2]"``).
  - ``int``: an integer as is; a float with no fractional part (``3.0`` → ``3``); a string of
    decimal digits with an optional sign (``"42"``, ``"-7"``). Anything else — ``true``,
    ``2.5``, ``"abc"``, ``"1e3"``, ``" 4"``, arrays, objects — is an error.
  - ``float``: a number (``3`` → ``3.0``); a string spelled as a JSON number (``"2.5"``,
    ``"1e3"``). Booleans, other strings, arrays, objects and results beyond a float's range are
    errors.
  - ``bool``: a boolean as is; the strings ``"true"`` and ``"false"`` (exactly); anything else
    is an error (no truthiness: ``0``, ``""`` and ``"yes"`` are refused).
  - ``json``: the value serialized as compact JSON text (``"abc"`` → ``"\"abc\""``, ``{"a":1}``
    → ``"{\"a\":1}"``), for an input that takes JSON as a string.

  ``null`` stays ``null`` under every cast, so an optional input left out is still left out.
  A cast that cannot be done is a ``TemplateError`` naming the placeholder and the value's type
  (never the value itself).
- ``$${`` is the escape for a literal ``${``: ``"cost: $${x}"`` renders as ``"cost: ${x}"``.
  Scanning is left to right, so ``$$${a.b}`` is a literal ``$`` followed by a literal ``${a.b}``.
  A ``$`` not followed by ``{`` is ordinary text; a ``${`` that does not start a well-formed
  reference is an error, so a typo is never silently sent as text.
- A string that is exactly one placeholder renders to the referenced value itself, keeping its
  JSON type (``"${args.count}"`` → ``3``) or taking its cast's (``"${args.count | string}"`` →
  ``"3"``). In any other string each placeholder is replaced by the (cast) value's text: a
  string as is, anything else as compact JSON (``true``, ``null``, ``[1,2]``, ``{"a":1}``), so
  rendered text never carries Python spellings such as ``True``.
- Lists and the values of objects are rendered recursively; object keys and non-string scalars
  are left as they are.

Errors::

    AileronError
    └── TemplateError   template_error   a malformed placeholder or a reference that resolves
                                         to nothing, or a cast that cannot be
                                         done; details {"template", "problem",
                                         "reference"?}
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Literal, NoReturn, get_args

import attrs

from aileron_core.errors import AileronError
from aileron_core.strict import StrictReader

Reference = tuple[str, ...]
"""A parsed reference: ``("args", "title")`` for ``${args.title}``."""

ROOT_PATTERN = r"[A-Za-z_][A-Za-z0-9_-]*"
"""What the first segment of a reference (a context name: ``args`` or a step id) looks like."""

Cast = Literal["string", "int", "float", "bool", "json"]
"""An explicit conversion: ``${one.id | string}``."""

CASTS: tuple[Cast, ...] = get_args(Cast)
"""Every cast, in the order the docs list them."""

_CAST_NAMES: Mapping[str, Cast] = {cast: cast for cast in CASTS}

CAST_TYPES: Mapping[Cast, str] = {
    "string": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "json": "string",
}
"""The input type a cast's (non-null) result has."""


@attrs.frozen
class Placeholder:
    """One parsed ``${…}``: the reference and the optional cast applied to its value."""

    reference: Reference
    cast: Cast | None = None


_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_PLACEHOLDER = re.compile(r"(?P<reference>[^|\s]+)(?: *\| *(?P<cast>[^|\s]*))?")
_INTEGER_TEXT = re.compile(r"[-+]?[0-9]+")
_NUMBER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_ROOT = re.compile(ROOT_PATTERN)
_OPENING = re.compile(r"\$\$\{|\$\{")
_INDEX = re.compile(r"0|[1-9][0-9]*")


class TemplateError(AileronError):
    """A placeholder is malformed, or refers to something the context does not hold."""

    code = "template_error"


def format_reference(reference: Reference) -> str:
    """The ``${…}`` spelling of ``reference``."""
    return "${" + ".".join(reference) + "}"


def format_placeholder(placeholder: Placeholder) -> str:
    """The ``${…}`` spelling of ``placeholder``, cast included."""
    cast = "" if placeholder.cast is None else f" | {placeholder.cast}"
    return "${" + ".".join(placeholder.reference) + cast + "}"


def parse_template(text: str) -> tuple[str | Placeholder, ...]:
    """Split ``text`` into literal strings and placeholders (escapes already undone).

    Adjacent literal text is merged, and empty literals are left out, so a string that is
    exactly one placeholder parses to a 1-tuple holding it.
    """
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    position = 0
    for opening in _OPENING.finditer(text):
        if opening.start() < position:
            continue  # inside a placeholder already consumed
        literal.append(text[position : opening.start()])
        if opening.group() == "$${":
            literal.append("${")
            position = opening.end()
            continue
        close = text.find("}", opening.end())
        if close < 0:
            _fail(text, "a '${' has no closing '}' (write '$${' for a literal '${')")
        placeholder = _parse_placeholder(text, text[opening.end() : close])
        if literal_text := "".join(literal):
            parts.append(literal_text)
        literal = []
        parts.append(placeholder)
        position = close + 1
    literal.append(text[position:])
    if literal_text := "".join(literal):
        parts.append(literal_text)
    return tuple(parts)


def single_placeholder(text: str) -> Placeholder | None:
    """The placeholder if ``text`` is exactly one (rendered typed), else ``None``."""
    parts = parse_template(text)
    if len(parts) == 1 and isinstance(parts[0], Placeholder):
        return parts[0]
    return None


def single_reference(text: str) -> Reference | None:
    """The reference if ``text`` is exactly one placeholder (cast or not), else ``None``."""
    placeholder = single_placeholder(text)
    return None if placeholder is None else placeholder.reference


def references(value: Any) -> list[Reference]:
    """Every reference in ``value`` (strings, and lists and object values, recursively), in order.

    Raises ``TemplateError`` for a malformed placeholder, so this doubles as a syntax check.
    """
    found: list[Reference] = []
    if isinstance(value, str):
        found.extend(p.reference for p in parse_template(value) if isinstance(p, Placeholder))
    elif isinstance(value, Mapping):
        for item in value.values():
            found.extend(references(item))
    elif isinstance(value, list | tuple):
        for item in value:
            found.extend(references(item))
    return found


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every placeholder in ``value`` against ``context`` (see the module docstring)."""
    if isinstance(value, str):
        return _render_text(value, context)
    if isinstance(value, Mapping):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, context) for item in value]
    return value


def resolve(reference: Reference, context: Mapping[str, Any], *, template: str = "") -> Any:
    """The value ``reference`` points at in ``context``; ``TemplateError`` if there is none."""
    root, *fields = reference
    if root not in context:
        _fail(
            template or format_reference(reference),
            f"{format_reference(reference)}: nothing named {root!r} to refer to"
            f" (known: {', '.join(sorted(context)) or 'nothing'})",
            reference,
        )
    current = context[root]
    walked = [root]
    for field in fields:
        if isinstance(current, Mapping) and field in current:
            current = current[field]
        elif isinstance(current, list) and _INDEX.fullmatch(field) and int(field) < len(current):
            current = current[int(field)]
        else:
            _fail(
                template or format_reference(reference),
                f"{format_reference(reference)}: {'.'.join(walked)} ({_describe(current)})"
                f" has no {'element' if isinstance(current, list) else 'field'} {field!r}",
                reference,
            )
        walked.append(field)
    return current


def cast_value(value: Any, cast: Cast) -> Any:
    """``value`` converted by ``cast`` (see the module docstring); ``ValueError`` if it cannot
    be, with a message that names the value's type but not the value."""
    if value is None:
        return None
    if cast == "string":
        return value if isinstance(value, str) else _json_text(value)
    if cast == "json":
        return _json_text(value)
    if cast == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
    elif isinstance(value, bool):
        pass  # a boolean is not a number here, whatever Python thinks
    elif cast == "int":
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
            try:
                return int(value)
            except ValueError:  # more digits than Python converts
                raise ValueError(f"a string of {len(value)} digits is too long") from None
    elif isinstance(value, int | float) or (
        isinstance(value, str) and _NUMBER_TEXT.fullmatch(value)
    ):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
        raise ValueError(f"{describe(value)} is beyond a float's range")
    raise ValueError(f"{describe(value)} cannot be cast to {cast}{_CAST_HINTS[cast]}")


_CAST_HINTS: Mapping[Cast, str] = {
    "string": "",
    "json": "",
    "int": " (it takes an integer, a whole float or a string of decimal digits)",
    "float": " (it takes a number or a string spelled as a JSON number)",
    "bool": ' (it takes a boolean or the string "true" or "false")',
}


describe = StrictReader.describe
"""What a value is, in JSON's words, for a cast's error (which never shows the value)."""


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _render_text(text: str, context: Mapping[str, Any]) -> Any:
    parts = parse_template(text)
    if len(parts) == 1 and isinstance(parts[0], Placeholder):
        return _value(parts[0], context, text)
    pieces: list[str] = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(part)
        else:
            pieces.append(_as_text(_value(part, context, text), text, part))
    return "".join(pieces)


def _value(placeholder: Placeholder, context: Mapping[str, Any], template: str) -> Any:
    value = resolve(placeholder.reference, context, template=template)
    if placeholder.cast is None:
        return value
    try:
        return cast_value(value, placeholder.cast)
    except ValueError as error:
        _fail(
            template,
            f"{format_placeholder(placeholder)}: {error}",
            placeholder.reference,
        )


def _as_text(value: Any, template: str, placeholder: Placeholder) -> str:
    if isinstance(value, str):
        return value
    try:
        return _json_text(value)
    except (TypeError, ValueError):
        _fail(
            template,
            f"{format_placeholder(placeholder)}: a {type(value).__name__} cannot be written as"
            " text",
            placeholder.reference,
        )


def _parse_placeholder(template: str, inner: str) -> Placeholder:
    match = _PLACEHOLDER.fullmatch(inner)
    segments = tuple((inner if match is None else match["reference"]).split("."))
    root, *rest = segments
    if match is None or not _ROOT.fullmatch(root) or not all(_SEGMENT.fullmatch(s) for s in rest):
        _fail(
            template,
            f"'${{{inner}}}' is not a reference: write ${{name.field…}} with letters, digits,"
            " '_' and '-' between the dots, optionally followed by ' | CAST'"
            " (write '$${' for a literal '${')",
        )
    name = match["cast"]
    if name is None:
        return Placeholder(segments)
    cast = _CAST_NAMES.get(name)
    if cast is None:
        _fail(
            template,
            f"'${{{inner}}}': {name!r} is not a cast (casts: {', '.join(CASTS)})",
        )
    return Placeholder(segments, cast)


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _fail(template: str, problem: str, reference: Reference | None = None) -> NoReturn:
    details: dict[str, Any] = {"template": template, "problem": problem}
    if reference is not None:
        details["reference"] = ".".join(reference)
    raise TemplateError(f"template {template!r}: {problem}", details=details)
