"""``from_api``: the daemon's JSON answers → ``Connector`` and ``Action`` models.

It reads the list answered by ``GET /v1/connectors``::

    [{"fqn", "version", "description", "sha256", "credential",
      "tools": [{"name", "description", "operations": [{"name", "summary", "method", "path",
          "hosts", "scheme", "inputs": [{"name", "type", "required", "description", "in"}],
          "approval", "idempotency"}]}]}]

and the ``actions`` list of ``GET /v1/actions``::

    [{"name", "version", "description", "enabled", "approval_required",
      "inputs": [{"name", "type", "required", "description"}], "input_schema",
      "connectors": ["<fqn>", …]}]

A connector's ``agent_operations`` (``[{"tool", "operation", "allowed", "approval_required"}]``,
the daemon's verdict for a session's direct runs, ADR 0017) drops the operations an agent may
not run and marks those that wait for approval; a daemon that does not send it leaves every
operation in, without approval.

Only the keys the shims need are read; others are ignored, so a newer daemon that adds keys
still works. ``required`` defaults to true, ``description`` to ``""`` and ``enabled`` to
true; disabled actions are dropped. Anything else malformed (a missing key, a value of the
wrong JSON type, an unknown argument type) is a ``ShimError`` that names the place, such as
``connectors[0].tools[1].operations[2].inputs[0].type``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from aileron_shims.model import ARGUMENT_TYPES, Action, Argument, Connector, Operation, ShimError

_HINT = "pass the JSON answered by the daemon's GET /v1/connectors and GET /v1/actions"


def _fail(where: str, problem: str) -> NoReturn:
    raise ShimError(f"{where}: {problem}", hint=_HINT)


def _list(value: object, where: str) -> Sequence[Any]:
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Sequence):
        _fail(where, f"expected a list, got {type(value).__name__}")
    return value


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _fail(where, f"expected an object, got {type(value).__name__}")
    return value


def _field(item: Mapping[str, Any], key: str, kind: type, where: str, default: Any = ...) -> Any:
    """``item[key]`` checked to be a ``kind`` (a list may be any non-text sequence)."""
    if key not in item:
        if default is ...:
            _fail(where, f"missing key {key!r}")
        return default
    value = item[key]
    if kind is list:
        return _list(value, f"{where}.{key}")
    # bool is an int in Python; JSON keeps them apart, and so does this check.
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        _fail(f"{where}.{key}", f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _arguments(value: object, where: str) -> tuple[Argument, ...]:
    arguments = []
    for index, raw in enumerate(_list(value, where)):
        place = f"{where}[{index}]"
        item = _object(raw, place)
        kind = _field(item, "type", str, place)
        if kind not in ARGUMENT_TYPES:
            _fail(f"{place}.type", f"{kind!r} is not one of {', '.join(ARGUMENT_TYPES)}")
        arguments.append(
            Argument(
                name=_field(item, "name", str, place),
                type=kind,
                required=_field(item, "required", bool, place, True),
                description=_field(item, "description", str, place, ""),
            )
        )
    return tuple(arguments)


def _verdicts(item: Mapping[str, Any], where: str) -> dict[tuple[str, str], tuple[bool, bool]]:
    """``(tool, operation)`` → ``(allowed, approval_required)`` from ``agent_operations``."""
    verdicts = {}
    for index, raw in enumerate(_field(item, "agent_operations", list, where, ())):
        place = f"{where}.agent_operations[{index}]"
        verdict = _object(raw, place)
        key = (_field(verdict, "tool", str, place), _field(verdict, "operation", str, place))
        verdicts[key] = (
            _field(verdict, "allowed", bool, place),
            _field(verdict, "approval_required", bool, place, False),
        )
    return verdicts


def _connector(raw: object, where: str) -> Connector:
    item = _object(raw, where)
    verdicts = _verdicts(item, where) if "agent_operations" in item else None
    operations = []
    for t, raw_tool in enumerate(_field(item, "tools", list, where)):
        tool_where = f"{where}.tools[{t}]"
        tool = _object(raw_tool, tool_where)
        tool_name = _field(tool, "name", str, tool_where)
        ops = _field(tool, "operations", list, tool_where)
        for o, raw_op in enumerate(ops):
            op_where = f"{tool_where}.operations[{o}]"
            op = _object(raw_op, op_where)
            name = _field(op, "name", str, op_where)
            # No verdict for an operation of a daemon that sends verdicts: not exposed.
            allowed, approval = (
                (True, False)
                if verdicts is None
                else verdicts.get((tool_name, name), (False, True))
            )
            if not allowed:
                continue
            operations.append(
                Operation(
                    tool=tool_name,
                    name=name,
                    summary=_field(op, "summary", str, op_where, ""),
                    inputs=_arguments(
                        _field(op, "inputs", list, op_where, ()), f"{op_where}.inputs"
                    ),
                    approval_required=approval,
                )
            )
    return Connector(
        fqn=_field(item, "fqn", str, where),
        description=_field(item, "description", str, where, ""),
        operations=tuple(operations),
    )


def _action(item: Mapping[str, Any], where: str) -> Action:
    fqns = _field(item, "connectors", list, where)
    for index, fqn in enumerate(fqns):
        if not isinstance(fqn, str):
            _fail(f"{where}.connectors[{index}]", f"expected str, got {type(fqn).__name__}")
    return Action(
        name=_field(item, "name", str, where),
        description=_field(item, "description", str, where, ""),
        inputs=_arguments(_field(item, "inputs", list, where, ()), f"{where}.inputs"),
        connectors=tuple(fqns),
    )


def from_api(
    connectors: Sequence[Mapping[str, Any]], actions: Sequence[Mapping[str, Any]]
) -> tuple[tuple[Connector, ...], tuple[Action, ...]]:
    """The models of the daemon's connector list and enabled actions (``ShimError`` if malformed).

    ``actions`` is the ``actions`` list of ``GET /v1/actions``, not the whole answer.
    """
    if isinstance(actions, Mapping):
        _fail("actions", "expected the 'actions' list of GET /v1/actions, got the whole answer")
    built_connectors = tuple(
        _connector(raw, f"connectors[{index}]")
        for index, raw in enumerate(_list(connectors, "connectors"))
    )
    built_actions = []
    for index, raw in enumerate(_list(actions, "actions")):
        where = f"actions[{index}]"
        item = _object(raw, where)
        if _field(item, "enabled", bool, where, True):
            built_actions.append(_action(item, where))
    return built_connectors, tuple(built_actions)
