"""Running actions and connector operations: arguments, approvals, credentials, audit.

The flow of one run (SPEC §7):

1. validate the arguments against the declared inputs (422 naming every bad field);
2. if the action or any operation it runs needs approval, record a pending approval bound to
   the arguments' sha256 and to what would run (``run_scope``: manifest, connector specs,
   operations, bindings, target origins) and answer 202; nothing runs until a human approves,
   and an approval whose scope changed in between fails ``approval_stale`` unsent;
3. otherwise (or once approved) audit ``execution.started``, run each step through the
   executor with the credential resolved from its binding (412 ``binding_required`` when the
   vault is locked or the binding is missing), audit ``binding.used`` per resolution, then
   ``execution.succeeded`` or ``execution.failed`` with the same invocation id.

The credential is redacted from everything that leaves this module. A binding escrowed in the
enclave (SPEC §12) resolves to an ``Escrowed`` reference instead of a secret, before the vault
is consulted: its requests go through the enclave, which injects the credential; the daemon
neither has it nor reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import attrs

from aileron_cli.daemon.access.peers import PeerProcess
from aileron_cli.daemon.enclave import service as enclave_service
from aileron_cli.daemon.enclave.service import Escrowed
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.run import agent_access
from aileron_cli.daemon.run import scope as run_scope
from aileron_cli.daemon.store import secret_cache
from aileron_core.actions import ActionManifest, render_step_args
from aileron_core.arguments import args_digest, validate_args
from aileron_core.audit import Actor
from aileron_core.connectors import ConnectorSpec, Operation
from aileron_core.errors import AileronError
from aileron_core.ids import new_ulid
from aileron_core.models import Approval, ApprovalKind
from aileron_core.redaction import Secret, redact
from aileron_core.vault import EntryNotFound, VaultLocked

if TYPE_CHECKING:
    from aileron_cli.daemon.daemon import DaemonState


@dataclass(frozen=True)
class Done:
    """A finished run: the audit record of its success and the result of its last step."""

    audit_id: str
    result: Any


@dataclass(frozen=True)
class Pending:
    """A run waiting for approval."""

    approval: Approval

    @property
    def message(self) -> str:
        return (
            f"{self.approval.target} needs approval before it runs; approval id"
            f" {self.approval.id}. Ask the user to run `aileron approval approve"
            f" {self.approval.id}` (or deny it), then poll check_action_status / GET"
            f" /v1/approvals/{self.approval.id} for the result."
        )


@dataclass(frozen=True)
class Plan:
    """What one run will execute: connector operations with their rendered arguments."""

    kind: ApprovalKind
    target: str
    manifest: ActionManifest | None
    operation: tuple[ConnectorSpec, str, str] | None  # (spec, tool, op) for direct runs
    args: dict[str, Any]
    access: agent_access.DirectAccess | None = None
    """For an agent's direct run: the verdict of ``agent_access`` (its approval gate)."""

    def needs_approval(self, state: DaemonState) -> bool:
        if self.manifest is None:
            assert self.operation is not None
            if self.access is not None:
                return self.access.approval_required
            spec, tool, op = self.operation
            return spec.find_operation(tool, op).approval_required
        if self.manifest.approval_required:
            return True
        for step in self.manifest.execute:
            spec = state.connectors.get(step.connector).spec
            if spec.find_operation(step.tool, step.op).approval_required:
                return True
        return False


def plan_action(state: DaemonState, name: str, args: Mapping[str, Any]) -> Plan:
    installed = state.actions.get(name)
    if not installed.enabled:
        raise DaemonError(
            "action_disabled",
            f"action {name!r} is disabled",
            hint=f"enable it with `aileron action enable {name}`",
        )
    checked = validate_args(installed.manifest, args)
    return Plan("action", name, installed.manifest, None, checked)


def plan_operation(
    state: DaemonState,
    fqn: str,
    tool: str,
    operation: str,
    args: Mapping[str, Any],
    *,
    agent: bool,
) -> Plan:
    """A direct run of one operation; for an ``agent`` (a session token) under the rule of
    :mod:`~aileron_cli.daemon.run.agent_access` (403 ``operation_not_exposed``, stricter
    approval)."""
    spec = state.connectors.get(fqn).spec
    op = spec.find_operation(tool, operation)
    access = (
        agent_access.check_direct(state.connectors, state.actions, fqn, tool, operation)
        if agent
        else None
    )
    checked = validate_args(op, args)
    target = f"{fqn} {tool} {operation}"
    return Plan("operation", target, None, (spec, tool, operation), checked, access)


async def start(
    state: DaemonState, plan: Plan, actor: Actor, session_id: str | None
) -> Done | Pending:
    """Run ``plan`` now, or park it as a pending approval."""
    if plan.needs_approval(state):
        scope = run_scope.scope(state, plan.manifest, plan.operation)
        approval = state.approvals.request(plan.kind, plan.target, plan.args, session_id, scope)
        await state.record(
            "approval.requested",
            actor,
            session_id,
            approval_id=approval.id,
            target=plan.target,
            args_sha256=approval.args_sha256,
            plan_sha256=approval.plan_sha256,
        )
        return Pending(approval)
    return await execute(state, plan, actor, session_id)


async def decide(
    state: DaemonState,
    approval_id: str,
    approved: bool,
    actor: Actor,
    reason: str | None,
    process: PeerProcess | None = None,
) -> Approval:
    """Record a human's decision (and the deciding ``process``, when known); on approval run
    exactly the approved arguments, once, unless what would run changed (``approval_stale``)."""
    state.approvals.get(approval_id)  # an unknown id is 404 even while locked
    state.require_signing()
    approval = state.approvals.decide(approval_id, approved, actor.id, reason)
    deciding = process.to_json() if process is not None else None
    if not approved:
        await state.record(
            "approval.denied",
            actor,
            approval.session_id,
            approval_id=approval.id,
            reason=reason,
            process=deciding,
        )
        await state.heads.asign("decision")
        return approval
    await state.record(
        "approval.approved", actor, approval.session_id, approval_id=approval.id, process=deciding
    )
    await state.heads.asign("decision")
    try:
        # Re-planned from what is installed now: the action or connector may have gone.
        plan = _replan(state, approval)
        now = run_scope.scope(state, plan.manifest, plan.operation)
    except AileronError as error:
        return state.approvals.save(
            attrs.evolve(
                approval, status="failed", error={"code": error.code, "message": str(error)}
            )
        )
    changed = run_scope.changes(approval, now)
    if changed:
        await _fail_stale(state, approval, changed, actor)
    approval = state.approvals.save(attrs.evolve(approval, status="running"))
    try:
        done = await execute(state, plan, actor, approval.session_id, approval_id=approval.id)
    except AileronError as error:
        return state.approvals.save(
            attrs.evolve(
                approval, status="failed", error={"code": error.code, "message": str(error)}
            )
        )
    return state.approvals.save(
        attrs.evolve(approval, status="succeeded", result=done.result, audit_id=done.audit_id)
    )


async def _fail_stale(
    state: DaemonState, approval: Approval, changed: list[str], actor: Actor
) -> None:
    """Fail ``approval`` as stale, audited, and raise ``approval_stale`` to the decider."""
    message = (
        f"approval {approval.id} is stale: what {approval.target} would run changed since it"
        f" was requested ({', '.join(changed)}); nothing was sent"
    )
    hint = "run it again to request a fresh approval, and check what changed before approving"
    details = {"approval_id": approval.id, "changed": changed}
    state.approvals.save(
        attrs.evolve(
            approval,
            status="failed",
            error={"code": "approval_stale", "message": f"{message}; {hint}", "details": details},
        )
    )
    await state.record(
        "approval.failed",
        actor,
        approval.session_id,
        approval_id=approval.id,
        reason="approval_stale",
        changed=changed,
    )
    raise DaemonError("approval_stale", message, hint=hint, details=details)


def _replan(state: DaemonState, approval: Approval) -> Plan:
    """The plan an approval stands for, against what is installed now."""
    if approval.kind == "action":
        manifest = state.actions.get(approval.target).manifest
        return Plan("action", approval.target, manifest, None, approval.args)
    fqn, tool, op = approval.target.split(" ")
    spec = state.connectors.get(fqn).spec
    return Plan("operation", approval.target, None, (spec, tool, op), approval.args)


async def _credential(
    state: DaemonState,
    spec: ConnectorSpec,
    override: str | None,
    actor: Actor,
    session_id: str | None,
    invocation: str,
) -> Secret | Escrowed:
    binding = run_scope.choose_binding(state, spec, override)
    name = binding.name
    escrow = enclave_service.escrow_for(state, name)
    try:
        if escrow is not None:
            # Escrowed: the secret is in the enclave only; fetch the key that signs for it.
            key = await enclave_service.client_key(state)
            state.note(
                "binding.used",
                actor,
                session_id,
                binding=name,
                invocation_id=invocation,
                escrow_id=escrow.escrow_id,
            )
            return Escrowed(escrow, key)
        # Cached while the binding and vault.json are unchanged (saves a worker-thread trip).
        cache = secret_cache.for_vault(state.vault)
        value = await cache.value(state.vault, binding, lambda: state.vault.get(name))
    except VaultLocked:
        raise DaemonError(
            "binding_required",
            f"the vault is locked, so binding {name!r} cannot be used",
            hint="run `aileron vault unlock`",
            details={"binding": name, "vault": "locked"},
        ) from None
    except EntryNotFound:
        raise DaemonError(
            "binding_required",
            f"binding {name!r} has no secret in the vault",
            hint=f"add it again with `aileron binding add {name}`",
            details={"binding": name},
        ) from None
    state.note("binding.used", actor, session_id, binding=name, invocation_id=invocation)
    return Secret(value.decode("utf-8"))


async def execute(
    state: DaemonState,
    plan: Plan,
    actor: Actor,
    session_id: str | None,
    *,
    approval_id: str | None = None,
) -> Done:
    """Run every operation of ``plan`` now, audited as one invocation."""
    invocation = f"inv_{new_ulid()}"
    base = {"invocation_id": invocation, "target": plan.target, "kind": plan.kind}
    state.note(
        "execution.started",
        actor,
        session_id,
        **base,
        args_sha256=args_digest(plan.args),
        approval_id=approval_id,
    )
    secrets: list[Secret] = []
    try:
        result = await _run_steps(state, plan, (actor, session_id, invocation), secrets)
    except AileronError as error:
        message = str(error)
        for secret in secrets:
            message = redact(message, secret)
        await state.record(
            "execution.failed", actor, session_id, **base, code=error.code, message=message
        )
        raise
    record = await state.record("execution.succeeded", actor, session_id, **base)
    return Done(record.id, result)


async def _call(
    state: DaemonState,
    spec: ConnectorSpec,
    operation: Operation,
    args: dict[str, Any],
    binding: str | None,
    context: tuple[Actor, str | None, str],
    secrets: list[Secret],
) -> Any:
    actor, session_id, invocation = context
    credential = await _credential(state, spec, binding, actor, session_id, invocation)
    if isinstance(credential, Escrowed):
        async with enclave_service.sender(state, credential) as sender:
            return (await state.executor.run(spec, operation, args, None, sender=sender)).body
    secrets.append(credential)
    return (await state.executor.run(spec, operation, args, credential)).body


async def _run_steps(
    state: DaemonState,
    plan: Plan,
    context: tuple[Actor, str | None, str],
    secrets: list[Secret],
) -> Any:
    manifest = plan.manifest
    if manifest is None:
        assert plan.operation is not None
        spec, tool, op = plan.operation
        operation = spec.find_operation(tool, op)
        return await _call(state, spec, operation, plan.args, None, context, secrets)
    results: dict[str, Any] = {}
    last: Any = None
    for step in manifest.execute:
        spec = state.connectors.get(step.connector).spec
        operation = spec.find_operation(step.tool, step.op)
        step_args = validate_args(operation, render_step_args(manifest, step, plan.args, results))
        requirement = manifest.requirement(step.connector)
        binding = requirement.binding if requirement is not None else None
        last = await _call(state, spec, operation, step_args, binding, context, secrets)
        results[step.id] = last
    return last
