"""Arguments of a call: checking them against declared inputs, CLI text, and their digest.

The inputs are those of an action (``aileron_core.actions``) or of a connector operation called
directly (``aileron_core.connectors``). ``validate_args`` checks a call's arguments against them,
``coerce_cli_arg`` turns ``--arg k=v`` text into the declared type, and ``args_digest`` is what an
approval binds to.

Errors::

    AileronError
    └── ArgsError   invalid_arguments   details {"fields": [{"name", "problem"}]}
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from aileron_core.actions import ActionManifest
from aileron_core.canonical import canonical_sha256
from aileron_core.connectors import Operation
from aileron_core.errors import AileronError
from aileron_core.strict import (
    LONE_SURROGATE,
    MAX_JSON_DEPTH,
    StrictReader,
    no_constants,
    show,
)

_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,100}")
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class ArgsError(AileronError):
    """A call's arguments do not fit the declared inputs; names every bad field at once."""

    code = "invalid_arguments"


def _target(target: ActionManifest | Operation) -> str:
    return (
        f"action {target.name!r}"
        if isinstance(target, ActionManifest)
        else (f"operation {target.name!r}")
    )


def _signature(target: ActionManifest | Operation) -> str:
    parts = [
        f"{item.name} ({item.type}{', required' if item.required else ''})"
        for item in target.inputs
    ]
    return "inputs: " + (", ".join(parts) if parts else "none")


def _json_problem(value: Any, depth: int = 0) -> str | None:
    if depth > MAX_JSON_DEPTH:
        return f"is nested more than {MAX_JSON_DEPTH} levels deep"
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, str):
        return (
            "holds a lone surrogate (not valid Unicode)" if LONE_SURROGATE.search(value) else None
        )
    if isinstance(value, float):
        return None if math.isfinite(value) else "holds NaN or infinity (not JSON)"
    if isinstance(value, list):
        return next((p for item in value if (p := _json_problem(item, depth + 1))), None)
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            return "has an object key that is not a string"
        return next((p for item in value.values() if (p := _json_problem(item, depth + 1))), None)
    return f"holds a {type(value).__name__}, which is not JSON data"


def _type_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` is not of input type ``kind`` (or not JSON data), or ``None``."""
    expected = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }[kind]
    if not expected:
        return f"expected {_article(kind)}, got {StrictReader.describe(value)}"
    return _json_problem(value)


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def validate_args(target: ActionManifest | Operation, args: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``args`` against the declared inputs of an action or operation; return them.

    Every required input must be present, no undeclared name may appear, and each value must
    have its input's type: ``integer`` excludes booleans (a float with an integral value such
    as ``3.0`` is accepted and returned as ``3``), ``number`` is an int or finite float but not
    a boolean, ``array`` a list, ``object`` a dict, and everything JSON data. ``None`` for an
    optional input means "not given" and is dropped. Raises ``ArgsError`` naming every bad
    field at once.
    """
    what = _target(target)
    received: object = args  # callers pass decoded JSON: check, whatever the annotation says
    if not isinstance(received, Mapping):
        wrong = f"arguments must be an object, not {StrictReader.describe(received)}"
        raise ArgsError(
            f"invalid arguments for {what}: {wrong}",
            hint=_signature(target),
            details={"fields": [{"name": "", "problem": wrong}]},
        )
    fields: list[dict[str, str]] = []
    result: dict[str, Any] = {}
    declared = {item.name for item in target.inputs}
    for item in target.inputs:
        value = args.get(item.name)
        if value is None:
            if item.required:
                absent = (
                    "is required but missing" if item.name not in args else "is required, got null"
                )
                fields.append({"name": item.name, "problem": absent})
            continue
        if item.type == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)
        problem = _type_problem(item.type, value)
        if problem:
            fields.append({"name": item.name, "problem": problem})
        else:
            result[item.name] = value
    for name in args:
        if name not in declared:
            label = name if isinstance(name, str) else ascii(name)
            fields.append({"name": label, "problem": f"unknown argument for {what}"})
    if fields:
        summary = "; ".join(f"{field['name']}: {field['problem']}" for field in fields)
        raise ArgsError(
            f"invalid arguments for {what}: {summary}",
            hint=_signature(target),
            details={"fields": fields},
        )
    return result


def coerce_cli_arg(target: ActionManifest | Operation, name: str, text: str) -> Any:
    """Turn the text of ``--arg name=text`` into ``name``'s declared type.

    string → as is; integer → decimal digits with an optional sign; number → an integer or a
    decimal/exponent number; boolean → ``true``/``false`` (any case); array and object → JSON.
    Raises ``ArgsError`` for an unknown name or text that is not of the type.
    """
    item = next((i for i in target.inputs if i.name == name), None)
    if item is None:
        _cli_error(target, name, f"unknown argument for {_target(target)}")
    kind = item.type
    if kind == "string":
        return text
    stripped = text.strip()
    if kind == "integer" and _INTEGER_TEXT.fullmatch(stripped):
        return int(stripped)
    if kind == "number":
        if _INTEGER_TEXT.fullmatch(stripped):
            return int(stripped)
        if _NUMBER_TEXT.fullmatch(stripped) and math.isfinite(number := float(stripped)):
            return number
    if kind == "boolean" and stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    if kind in ("array", "object"):
        try:
            value = json.loads(stripped, parse_constant=no_constants)
        except (ValueError, RecursionError):
            _cli_error(target, name, f"expected {_article(kind)} as JSON, got {show(text)}")
        problem = _type_problem(kind, value)
        if problem:
            _cli_error(target, name, problem)
        return value
    _cli_error(target, name, f"expected {_article(kind)}, got {show(text)}")


def _cli_error(target: ActionManifest | Operation, name: str, problem: str) -> NoReturn:
    raise ArgsError(
        f"invalid argument {name!r} for {_target(target)}: {problem}",
        hint=_signature(target),
        details={"fields": [{"name": name, "problem": problem}]},
    )


def args_digest(args: Mapping[str, Any]) -> str:
    """Hex sha256 of the canonical JSON of ``args``: what an approval is bound to.

    Pass validated arguments (``validate_args``'s result): they are JSON data by then.
    """
    return canonical_sha256(dict(args))
