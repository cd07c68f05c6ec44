"""What the generator reads and what it returns: plain frozen attrs classes and ``ShimError``.

The inputs mirror the daemon's JSON (``from_api`` builds them, SPEC §7):

- a ``Connector`` is an installed connector spec, flattened to its operations; each
  ``Operation`` keeps the name of the spec tool it belongs to (``issues`` of ``issues.list``);
- an ``Action`` is an enabled installed action with the FQNs of the connectors it requires;
- an ``Argument`` is one declared input of either.

The output is a ``ShimSet``: the text of ``tools.txt``, one POSIX ``sh`` script per tool, and
what was left out (``Skipped``) so the caller can warn about it.

Errors::

    AileronError
    └── ShimError   invalid_shim_input   (also a ValueError) the input cannot be turned into
                                         shims; the message names the connector or action and
                                         the hint says what to change
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from aileron_core.errors import AileronError

ARGUMENT_TYPES: tuple[str, ...] = ("string", "number", "integer", "boolean", "array", "object")
"""The argument types of connector specs and action manifests (JSON Schema's, minus null)."""


class ShimError(AileronError, ValueError):
    """The connectors or actions cannot be turned into shims; the message names which."""

    code = "invalid_shim_input"


@attrs.frozen
class Argument:
    """One declared input of an action or operation."""

    name: str
    type: str
    """One of ``ARGUMENT_TYPES``; it decides how ``--arg NAME=VALUE`` encodes the value."""
    required: bool = True
    description: str = ""


@attrs.frozen
class Operation:
    """One operation of a connector spec: ``tools[].operations[]``, with its tool's name."""

    tool: str
    name: str
    summary: str
    inputs: tuple[Argument, ...] = ()
    approval_required: bool = False
    """Whether the daemon holds an agent's direct run for a human's approval (ADR 0017)."""


@attrs.frozen
class Connector:
    """An installed connector: its FQN, description and every operation of every tool."""

    fqn: str
    description: str
    operations: tuple[Operation, ...]


@attrs.frozen
class Action:
    """An enabled installed action and the FQNs of the connectors it requires."""

    name: str
    description: str
    """The manifest's Markdown body; its first non-empty line is the one-line summary."""
    inputs: tuple[Argument, ...]
    connectors: tuple[str, ...]


@attrs.frozen
class Skipped:
    """Something the generator left out, and why (a sentence the caller can print as is)."""

    name: str
    """The action's name, or the connector's FQN for a tool that was left out."""
    reason: str


@attrs.frozen
class ShimSet:
    """The generated files: ``tools.txt``, the shims by tool name (sorted), what was skipped."""

    tools_txt: str
    shims: Mapping[str, str]
    skipped: tuple[Skipped, ...]
