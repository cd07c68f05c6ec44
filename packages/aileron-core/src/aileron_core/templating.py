"""``${…}`` placeholders in action step arguments: parsing, listing and rendering.

The whole language, on purpose (there is no expression evaluation, no filters, no defaults):

- ``${root.seg.seg…}`` is a *reference*. ``root`` names an entry of the rendering context
  (``args`` for the action's arguments, or an earlier step's id for that step's result); each
  further ``.seg`` selects a field of an object or, when the segment is a decimal number such as
  ``0``, an element of an array. The root matches ``[A-Za-z_][A-Za-z0-9_-]*`` and every further
  segment ``[A-Za-z0-9_-]+``. Nothing else may appear between ``${`` and ``}``, not even spaces.
- ``$${`` is the escape for a literal ``${``: ``"cost: $${x}"`` renders as ``"cost: ${x}"``.
  Scanning is left to right, so ``$$${a.b}`` is a literal ``$`` followed by a literal ``${a.b}``.
  A ``$`` not followed by ``{`` is ordinary text; a ``${`` that does not start a well-formed
  reference is an error, so a typo is never silently sent as text.
- A string that is exactly one placeholder renders to the referenced value itself, keeping its
  JSON type (``"${args.count}"`` → ``3``). In any other string each placeholder is replaced by
  the value's text: a string as is, anything else as compact JSON (``true``, ``null``,
  ``[1,2]``, ``{"a":1}``), so rendered text never carries Python spellings such as ``True``.
- Lists and the values of objects are rendered recursively; object keys and non-string scalars
  are left as they are.

Errors::

    AileronError
    └── TemplateError   template_error   a malformed placeholder or a reference that resolves
                                         to nothing; details {"template", "problem",
                                         "reference"?}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from aileron_core.errors import AileronError

Reference = tuple[str, ...]
"""A parsed reference: ``("args", "title")`` for ``${args.title}``."""

ROOT_PATTERN = r"[A-Za-z_][A-Za-z0-9_-]*"
"""What the first segment of a reference (a context name: ``args`` or a step id) looks like."""

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_ROOT = re.compile(ROOT_PATTERN)
_OPENING = re.compile(r"\$\$\{|\$\{")
_INDEX = re.compile(r"0|[1-9][0-9]*")


class TemplateError(AileronError):
    """A placeholder is malformed, or refers to something the context does not hold."""

    code = "template_error"


def format_reference(reference: Reference) -> str:
    """The ``${…}`` spelling of ``reference``."""
    return "${" + ".".join(reference) + "}"


def parse_template(text: str) -> tuple[str | Reference, ...]:
    """Split ``text`` into literal strings and references (escapes already undone).

    Adjacent literal text is merged, and empty literals are left out, so a string that is
    exactly one placeholder parses to a 1-tuple holding its reference.
    """
    parts: list[str | Reference] = []
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
        reference = _parse_reference(text, text[opening.end() : close])
        if literal_text := "".join(literal):
            parts.append(literal_text)
        literal = []
        parts.append(reference)
        position = close + 1
    literal.append(text[position:])
    if literal_text := "".join(literal):
        parts.append(literal_text)
    return tuple(parts)


def single_reference(text: str) -> Reference | None:
    """The reference if ``text`` is exactly one placeholder (rendered typed), else ``None``."""
    parts = parse_template(text)
    if len(parts) == 1 and isinstance(parts[0], tuple):
        return parts[0]
    return None


def references(value: Any) -> list[Reference]:
    """Every reference in ``value`` (strings, and lists and object values, recursively), in order.

    Raises ``TemplateError`` for a malformed placeholder, so this doubles as a syntax check.
    """
    found: list[Reference] = []
    if isinstance(value, str):
        found.extend(part for part in parse_template(value) if isinstance(part, tuple))
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


def _render_text(text: str, context: Mapping[str, Any]) -> Any:
    parts = parse_template(text)
    if len(parts) == 1 and isinstance(parts[0], tuple):
        return resolve(parts[0], context, template=text)
    pieces: list[str] = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(part)
        else:
            pieces.append(_as_text(resolve(part, context, template=text), text, part))
    return "".join(pieces)


def _as_text(value: Any, template: str, reference: Reference) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        _fail(
            template,
            f"{format_reference(reference)}: a {type(value).__name__} cannot be written as text",
            reference,
        )


def _parse_reference(template: str, inner: str) -> Reference:
    segments = tuple(inner.split("."))
    root, *rest = segments
    if not _ROOT.fullmatch(root) or not all(_SEGMENT.fullmatch(s) for s in rest):
        _fail(
            template,
            f"'${{{inner}}}' is not a reference: write ${{name.field…}} with letters, digits,"
            " '_' and '-' between the dots (write '$${' for a literal '${')",
        )
    return segments


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
