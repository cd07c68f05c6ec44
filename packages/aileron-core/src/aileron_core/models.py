"""Domain models shared by the daemon and its clients (attrs; JSON through ``convert``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import attrs

from aileron_core.processes import ProcessRef

SessionState = Literal["running", "ended", "orphaned"]
VaultState = Literal["missing", "locked", "unlocked"]


@attrs.frozen
class SandboxInfo:
    """Where a sandboxed session's agent runs."""

    runtime: str
    image: str


@attrs.frozen
class SessionExposure:
    """A binding brokered to a sandboxed session (never its sentinel, never its secret)."""

    binding: str
    variable: str
    hosts: tuple[str, ...]


@attrs.frozen
class Session:
    """One launch of an agent (SPEC §8)."""

    id: str
    agent: str
    working_dir: str
    started_at: datetime
    sandbox: SandboxInfo | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    state: SessionState = "running"
    end_reason: str | None = None
    launcher: ProcessRef | None = None
    """The ``aileron launch`` process that registered the session (its tree is the agent's)."""
    agent_process: ProcessRef | None = None
    """The agent's own process, as the launcher reported it."""
    exposed: tuple[SessionExposure, ...] = ()
    """The bindings its egress proxy brokered (``aileron launch --expose``, ADR 0028)."""


ApprovalStatus = Literal[
    "pending", "approved", "denied", "running", "succeeded", "failed", "expired"
]
"""``expired``: nobody decided within ``[approvals] expire_after``; it counts as denied."""
ApprovalKind = Literal["action", "operation"]


@attrs.frozen
class ApprovalStep:
    """One connector operation an approval would run, as the deciding human is shown it."""

    connector: str  # the connector's FQN
    operation: str  # "<tool> <operation>"
    origins: tuple[str, ...]  # "scheme://host:port" the request (and any redirect) may go to
    binding: str | None  # the binding whose credential it carries; None if none resolves


@attrs.frozen
class Approval:
    """A request to run something that needs a human's yes, bound to its exact arguments and to
    what will run (``plan_sha256``: action manifest, connector specs, operations, bindings and
    target origins; ADR 0016). ``plan_sha256`` is ``None`` in records written before plans were
    bound; such an approval is stale when decided."""

    id: str
    kind: ApprovalKind
    target: str  # the action's name, or "<fqn> <tool> <operation>"
    args: dict[str, Any]
    args_sha256: str
    created_at: datetime
    session_id: str | None = None
    status: ApprovalStatus = "pending"
    decided_at: datetime | None = None
    decided_by: str | None = None
    reason: str | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    audit_id: str | None = None
    plan_sha256: str | None = None
    plan_parts: dict[str, str] = attrs.field(factory=dict)  # part name → its sha256
    steps: tuple[ApprovalStep, ...] = ()


@attrs.frozen
class Grant:
    """A human's standing yes (issue #20): later requests of ``target`` whose arguments are the
    approved ones, except that each argument named in ``match`` may be any value its glob
    matches, and whose plan is the approved one (``plan_sha256``), are approved without asking
    — in ``session_id`` only when it is set ("for the session"), until ``expires_at`` when it
    is set ("for N minutes"), and until revoked."""

    id: str
    kind: ApprovalKind
    target: str
    args: dict[str, Any]
    """The approved arguments: those not named in ``match`` must be equal to these."""
    match: dict[str, str]
    """Argument name → glob (``fnmatch``, case-sensitive) its value must match."""
    plan_sha256: str | None
    approval_id: str
    """The approval whose decision made it."""
    granted_by: str
    created_at: datetime
    session_id: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
