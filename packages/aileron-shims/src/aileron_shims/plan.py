"""From connectors and actions to a plan: which tools exist, their names and subcommands.

The rules (SPEC §11.1, and ``README.md`` of this package):

- One tool per connector FQN. A connector that at least one action requires is
  **action-derived**: its subcommands are those actions. An installed connector that no action
  requires is **spec-derived**: its subcommands are its operations, ``<spec-tool>.<operation>``.
- An action is left out (``Skipped``) when it requires no connector, requires one that is not
  installed, or is called ``help`` (the shims' help command).
- Names are handed out action-derived connectors first, then spec-derived ones, each group in
  FQN order (``names.NameBook``). A reserved base name, or one with nothing usable in it,
  leaves an action-derived tool out (``Skipped``) and refuses a spec-derived one
  (``ShimError``).
- Everything is sorted before use, so the plan does not depend on the order of the input
  sequences (arguments keep their declared order: it is part of the action or operation).

Every name and FQN is checked (``names.check_name``) before anything is derived from it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal
from urllib.parse import quote

import attrs

from aileron_shims.model import (
    ARGUMENT_TYPES,
    Action,
    Argument,
    Connector,
    Operation,
    ShimError,
    Skipped,
)
from aileron_shims.names import (
    NameBook,
    check_name,
    check_text,
    joined,
    summary_line,
    text_lines,
    tool_name,
)

HELP_WORD = "help"
"""A subcommand no action can take: ``<tool> help`` prints the tool's help."""

Kind = Literal["action", "operation"]


@attrs.frozen
class Subcommand:
    """One subcommand of a tool: an action, or a ``<spec-tool>.<operation>`` pair."""

    name: str
    summary: str
    description: tuple[str, ...]
    inputs: tuple[Argument, ...]
    path: str
    """Where it POSTs, below ``$AILERON_API_URL`` (``/actions/<name>/run``…)."""
    prefix: str
    """The JSON body up to the arguments object (the shim appends ``{…}}``)."""
    runs: str
    """A sentence for the subcommand's help saying what it runs."""
    approval_required: bool = False
    """Whether each call waits for a human's approval (operation subcommands; ADR 0017)."""


@attrs.frozen
class Tool:
    """One shim: its name, connector, kind and subcommands (sorted by name)."""

    name: str
    fqn: str
    kind: Kind
    connector_summary: str
    subcommands: tuple[Subcommand, ...]

    @property
    def summary(self) -> str:
        """The summary of the tool's ``tools.txt`` line."""
        names = joined(s.name for s in self.subcommands)
        if self.kind == "action":
            return f"installed Aileron connector used by actions: {names}"
        gated = [s.name for s in self.subcommands if s.approval_required]
        if gated:
            return (
                f"Aileron connector operations: {names} (need a human's approval: {joined(gated)})"
            )
        return f"Aileron connector operations: {names}"


@attrs.frozen
class Plan:
    """Every tool (action-derived first, in the order names were given) and what was skipped."""

    tools: tuple[Tool, ...]
    skipped: tuple[Skipped, ...]


# --- checking the input --------------------------------------------------------------------


def _sequence(value: object, what: str) -> tuple[object, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ShimError(f"{what}: expected a sequence, got {type(value).__name__}")
    return tuple(value)


def _in_order(value: object, what: str) -> tuple[object, ...]:
    """The items sorted by their repr, so the first error found does not depend on order."""
    return tuple(sorted(_sequence(value, what), key=repr))


def _check_arguments(value: object, owner: str) -> None:
    seen: set[str] = set()
    for item in _sequence(value, f"the inputs of {owner}"):
        if not isinstance(item, Argument):
            raise ShimError(f"an input of {owner} is not an Argument: {item!r}")
        what = f"an input name of {owner}"
        name = check_name(item.name, what)
        if "=" in name:
            raise ShimError(f"{what} {name!r} holds '='", hint="--arg NAME=VALUE could not name it")
        if name in seen:
            raise ShimError(f"{owner} declares the input {name!r} twice", hint="rename one")
        seen.add(name)
        if item.type not in ARGUMENT_TYPES:
            raise ShimError(
                f"input {name!r} of {owner} has the type {item.type!r}",
                hint=f"use one of {', '.join(ARGUMENT_TYPES)}",
            )
        if not isinstance(item.required, bool):
            raise ShimError(f"input {name!r} of {owner}: 'required' is not a boolean")
        check_text(item.description, f"the description of input {name!r} of {owner}")


def _check_connector(item: object) -> Connector:
    if not isinstance(item, Connector):
        raise ShimError(f"not a Connector: {item!r}")
    fqn = check_name(item.fqn, "a connector FQN", option_safe=False)
    check_text(item.description, f"the description of connector {fqn}")
    for op in _in_order(item.operations, f"the operations of connector {fqn}"):
        if not isinstance(op, Operation):
            raise ShimError(f"an operation of connector {fqn} is not an Operation: {op!r}")
        check_name(op.tool, f"a tool name of connector {fqn}")
        check_name(op.name, f"an operation name of tool {op.tool!r} of connector {fqn}")
        owner = f"operation {op.tool}.{op.name} of connector {fqn}"
        if not isinstance(op.approval_required, bool):
            raise ShimError(f"{owner}: 'approval_required' is not a boolean")
        check_text(op.summary, f"the summary of {owner}")
        _check_arguments(op.inputs, owner)
    return item


def _check_action(item: object) -> Action:
    if not isinstance(item, Action):
        raise ShimError(f"not an Action: {item!r}")
    name = check_name(item.name, "an action name")
    check_text(item.description, f"the description of action {name}")
    _check_arguments(item.inputs, f"action {name}")
    for fqn in _in_order(item.connectors, f"the connectors of action {name}"):
        check_name(fqn, f"a connector FQN required by action {name}", option_safe=False)
    return item


def _unique(items: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise ShimError(f"{what} {item} is given twice", hint="pass each one once")
        seen.add(item)


# --- building the plan ---------------------------------------------------------------------


def _action_subcommand(action: Action) -> Subcommand:
    return Subcommand(
        name=action.name,
        summary=summary_line(action.description),
        description=text_lines(action.description),
        inputs=tuple(action.inputs),
        path=f"/actions/{quote(action.name, safe='')}/run",
        prefix='{"args":',
        runs=f"It runs the Aileron action {action.name} through the Aileron daemon.",
    )


def _operation_subcommand(fqn: str, op: Operation) -> Subcommand:
    fields = (("connector_fqn", fqn), ("tool", op.tool), ("operation", op.name))
    prefix = "{" + "".join(f"{json.dumps(k)}:{json.dumps(v)}," for k, v in fields) + '"args":'
    return Subcommand(
        name=f"{op.tool}.{op.name}",
        summary=summary_line(op.summary),
        description=text_lines(op.summary),
        inputs=tuple(op.inputs),
        path="/connector-operations/run",
        prefix=prefix,
        runs=(
            f"It runs operation {op.name} of tool {op.tool} of connector {fqn}"
            " through the Aileron daemon."
            + (
                " A human must approve each call before it runs (exit status 75 while waiting)."
                if op.approval_required
                else ""
            )
        ),
        approval_required=op.approval_required,
    )


def _operation_subcommands(connector: Connector) -> tuple[Subcommand, ...]:
    spelled: dict[str, Operation] = {}
    for op in sorted(connector.operations, key=repr):
        name = f"{op.tool}.{op.name}"
        other = spelled.get(name)
        if other is not None:
            pairs = sorted({(other.tool, other.name), (op.tool, op.name)})
            shown = " and ".join(f"tool {t!r} operation {o!r}" for t, o in pairs)
            raise ShimError(
                f"connector {connector.fqn}: {shown} both spell the subcommand {name!r}",
                hint="rename a tool or an operation of the spec",
            )
        spelled[name] = op
    return tuple(_operation_subcommand(connector.fqn, spelled[n]) for n in sorted(spelled))


def build_plan(
    connectors: Sequence[Connector], actions: Sequence[Action], *, agent_command: str
) -> Plan:
    """The tools to generate, or a ``ShimError`` (see the module docstring for the rules)."""
    if not isinstance(agent_command, str):
        raise ShimError(f"agent_command: expected a string, got {type(agent_command).__name__}")
    installed = sorted(
        (_check_connector(c) for c in _in_order(connectors, "connectors")), key=lambda c: c.fqn
    )
    checked = sorted(
        (_check_action(a) for a in _in_order(actions, "actions")), key=lambda a: a.name
    )
    _unique([c.fqn for c in installed], "connector")
    _unique([a.name for a in checked], "action")
    by_fqn = {c.fqn: c for c in installed}
    skipped: list[Skipped] = []

    users: dict[str, list[Action]] = {}
    for action in checked:
        required = sorted(set(action.connectors))
        missing = [fqn for fqn in required if fqn not in by_fqn]
        if not required:
            reason = (
                f"action {action.name} requires no connector, so no shim runs it;"
                f" run it on the host with `aileron action run {action.name}`"
            )
        elif missing:
            reason = (
                f"action {action.name} requires connector {joined(missing)}, which is not"
                " installed; install it with `aileron connector install`"
            )
        elif action.name == HELP_WORD:
            reason = (
                f"action {action.name}: '{HELP_WORD}' is the shims' help command;"
                " rename the action to run it from a shim"
            )
        else:
            for fqn in required:
                users.setdefault(fqn, []).append(action)
            continue
        skipped.append(Skipped(action.name, reason))

    book = NameBook(agent_command)
    tools: list[Tool] = []
    for fqn in sorted(users):
        used_by = joined(a.name for a in users[fqn])
        try:
            base = tool_name(fqn)
        except ShimError as error:
            skipped.append(Skipped(fqn, f"{error} (used by actions: {used_by})"))
            continue
        reserved = book.reserved(base)
        if reserved is not None:
            skipped.append(
                Skipped(
                    fqn,
                    f"connector {fqn} (used by actions: {used_by}) would be the tool {base!r},"
                    f" which is {reserved}; no shim runs these actions",
                )
            )
            continue
        subcommands = tuple(_action_subcommand(a) for a in users[fqn])
        description = summary_line(by_fqn[fqn].description)
        tools.append(Tool(book.take(base), fqn, "action", description, subcommands))

    for connector in installed:
        if connector.fqn in users:
            continue
        subcommands = _operation_subcommands(connector)
        if not subcommands:
            skipped.append(Skipped(connector.fqn, f"connector {connector.fqn} has no operations"))
            continue
        base = tool_name(connector.fqn)
        reserved = book.reserved(base)
        if reserved is not None:
            raise ShimError(
                f"connector {connector.fqn} would be the tool {base!r}, which is {reserved}",
                hint="remove the connector, or install its spec under an FQN whose last"
                " segment gives another name",
            )
        description = summary_line(connector.description)
        tools.append(Tool(book.take(base), connector.fqn, "operation", description, subcommands))

    return Plan(tuple(tools), tuple(sorted(skipped, key=lambda s: (s.name, s.reason))))
