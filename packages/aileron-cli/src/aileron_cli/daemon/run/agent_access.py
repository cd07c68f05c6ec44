"""What a session token may run directly: the one rule for ``POST /v1/connector-operations/run``.

An agent (a session token) runs what the user exposed. Enabled actions are exposed as they
are. A connector operation run directly (the sandbox shims' operation subcommands) is exposed
under the strictest gate that applies (ADR 0017):

- **refused** (403 ``operation_not_exposed``) when the user closed the connector or the
  operation to agents (``aileron connector disable FQN [--operation TOOL.OP]``), or when a
  *disabled* action wraps it (has a step calling it): the user who disabled that action would
  not expect the agent to reach the operation another way;
- otherwise it **needs approval** when its own spec says ``"approval": "required"`` *or* any
  enabled action that wraps it has ``[approval] required = true``;
- otherwise it runs as today.

The master token (the human) is not subject to this rule. Every direct run is planned by
:func:`aileron_cli.daemon.run.runner.plan_operation`, which applies it (the hot routes answer
action runs only, so ``/v1/connector-operations/run`` always reaches that route); ``GET
/v1/connectors`` reports the same verdicts (``agent_operations``) so the launcher gives the
agent shims for exactly what the rule admits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from aileron_cli.daemon.errors import DaemonError

if TYPE_CHECKING:
    from aileron_cli.daemon.store.actions import ActionStore
    from aileron_cli.daemon.store.connectors import ConnectorStore


@attrs.frozen
class DirectAccess:
    """The verdict for one operation run directly by an agent."""

    allowed: bool
    approval_required: bool
    reason: str | None = None
    """Why it is refused (a sentence naming what to change), when it is."""
    approved_by: tuple[str, ...] = ()
    """The enabled, approval-gated actions that wrap it (why it needs approval)."""


def direct_access(
    connectors: ConnectorStore, actions: ActionStore, fqn: str, tool: str, op: str
) -> DirectAccess:
    """The verdict for an agent running operation ``tool``/``op`` of connector ``fqn`` directly.

    ``connector_not_found`` / ``unknown_operation`` when there is no such operation.
    """
    operation = connectors.get(fqn).spec.find_operation(tool, op)
    if connectors.closed_to_agents(fqn):
        return DirectAccess(
            False,
            True,
            f"the user closed connector {fqn} to agents' direct runs"
            f" (`aileron connector enable {fqn}` opens it)",
        )
    if connectors.closed_to_agents(fqn, tool, op):
        return DirectAccess(
            False,
            True,
            f"the user closed operation {tool}.{op} of {fqn} to agents' direct runs"
            f" (`aileron connector enable {fqn} --operation {tool}.{op}` opens it)",
        )
    gated: list[str] = []
    for installed in actions.list():
        wraps = any(
            step.connector == fqn and step.tool == tool and step.op == op
            for step in installed.manifest.execute
        )
        if not wraps:
            continue
        name = installed.manifest.name
        if not installed.enabled:
            return DirectAccess(
                False,
                True,
                f"the disabled action {name} wraps operation {tool}.{op} of {fqn}; agents may not"
                " reach it another way (enable the action, or run the operation as the user)",
            )
        if installed.manifest.approval_required:
            gated.append(name)
    return DirectAccess(True, operation.approval_required or bool(gated), None, tuple(gated))


def check_direct(
    connectors: ConnectorStore, actions: ActionStore, fqn: str, tool: str, op: str
) -> DirectAccess:
    """The verdict, or 403 ``operation_not_exposed`` when the agent may not run it at all."""
    access = direct_access(connectors, actions, fqn, tool, op)
    if not access.allowed:
        raise DaemonError(
            "operation_not_exposed",
            f"this session may not run {fqn} {tool} {op} directly: {access.reason}",
            hint="use an enabled action, or ask the user",
            details={"fqn": fqn, "tool": tool, "operation": op},
        )
    return access
