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

Policies (issue #20, :mod:`~aileron_cli.daemon.run.policy`): a run that needs approval is
first checked against the ``[[approvals.deny]]`` rules (a match is denied at once, 403
``approval_denied``), then against the live grants (a covering grant approves it and it runs
now, as if no approval were needed); otherwise it waits, and expires after ``[approvals]
expire_after``. Every automatic decision is audited with the rule or grant that made it.

The credential is redacted from everything that leaves this module. A binding escrowed in the
enclave (SPEC §12) resolves to an ``Escrowed`` reference instead of a secret, before the vault
is consulted: its requests go through the enclave, which injects the credential; the daemon
neither has it nor reads it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import attrs

from aileron_cli.approvals_config import ApprovalsConfig
from aileron_cli.daemon.access.peers import PeerProcess
from aileron_cli.daemon.access.sessions import SERVICE
from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.audit.signer import HeadSigner
from aileron_cli.daemon.egress.executor import Executor, UpstreamError
from aileron_cli.daemon.enclave.service import EnclaveService, Escrowed
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.run import agent_access, policy
from aileron_cli.daemon.run import scope as run_scope
from aileron_cli.daemon.run.credentials import CredentialResolver
from aileron_cli.daemon.store.actions import ActionStore
from aileron_cli.daemon.store.approvals import ApprovalStore
from aileron_cli.daemon.store.bindings import Binding
from aileron_cli.daemon.store.connectors import ConnectorStore
from aileron_cli.daemon.store.grants import GrantStore, GrantTerms
from aileron_core.actions import ActionManifest, render_step_args
from aileron_core.arguments import args_digest, validate_args
from aileron_core.audit import Actor
from aileron_core.connectors import ConnectorSpec, Operation
from aileron_core.errors import AileronError
from aileron_core.ids import new_ulid
from aileron_core.models import Approval, ApprovalKind, Grant
from aileron_core.redaction import Secret, redact
from aileron_core.vault import VaultLocked

log = logging.getLogger("aileron.daemon")


@dataclass(frozen=True)
class Done:
    """A finished run: the audit record of its success and the result of its last step."""

    audit_id: str
    result: Any


@dataclass(frozen=True)
class Pending:
    """A run waiting for approval."""

    approval: Approval
    link: str
    """The approval's page on the daemon's web page (``/ui/approvals/{id}``)."""

    @property
    def message(self) -> str:
        return (
            f"{self.approval.target} needs approval before it runs; approval id"
            f" {self.approval.id}. Ask the user to approve it at {self.link} or with"
            f" `aileron approval approve {self.approval.id}` (or deny it), then poll"
            f" check_action_status / GET /v1/approvals/{self.approval.id} for the result."
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

    def needs_approval(self, connectors: ConnectorStore) -> bool:
        """Whether the action, or any operation it runs, needs a human's approval first."""
        if self.manifest is None:
            assert self.operation is not None
            if self.access is not None:
                return self.access.approval_required
            spec, tool, op = self.operation
            return spec.find_operation(tool, op).approval_required
        if self.manifest.approval_required:
            return True
        for step in self.manifest.execute:
            spec = connectors.get(step.connector).spec
            if spec.find_operation(step.tool, step.op).approval_required:
                return True
        return False


Context = tuple[Actor, str | None, str]
"""Who runs (actor, session) and the invocation id."""


class Runner:
    """Plans runs, parks them for approval, runs them; see the module docstring."""

    def __init__(
        self,
        *,
        connectors: ConnectorStore,
        actions: ActionStore,
        approvals: ApprovalStore,
        credentials: CredentialResolver,
        enclave: EnclaveService,
        executor: Executor,
        audit: AuditLog,
        heads: HeadSigner,
        grants: GrantStore,
        policy: ApprovalsConfig,
        base_url: str,
    ) -> None:
        self._connectors = connectors
        self._actions = actions
        self._approvals = approvals
        self._credentials = credentials
        self._enclave = enclave
        self._executor = executor
        self._audit = audit
        self._heads = heads
        self._grants = grants
        self._policy = policy
        self._base_url = base_url.rstrip("/")

    def link(self, approval_id: str) -> str:
        """The web page of one approval, on the daemon's own TCP address."""
        return f"{self._base_url}/ui/approvals/{approval_id}"

    def plan_action(self, name: str, args: Mapping[str, Any]) -> Plan:
        installed = self._actions.get(name)
        if not installed.enabled:
            raise DaemonError(
                "action_disabled",
                f"action {name!r} is disabled",
                hint=f"enable it with `aileron action enable {name}`",
            )
        checked = validate_args(installed.manifest, args)
        return Plan("action", name, installed.manifest, None, checked)

    def plan_operation(
        self, fqn: str, tool: str, operation: str, args: Mapping[str, Any], *, agent: bool
    ) -> Plan:
        """A direct run of one operation; for an ``agent`` (a session token) under the rule of
        :mod:`~aileron_cli.daemon.run.agent_access` (403 ``operation_not_exposed``, stricter
        approval)."""
        spec = self._connectors.get(fqn).spec
        op = spec.find_operation(tool, operation)
        access = (
            agent_access.check_direct(self._connectors, self._actions, fqn, tool, operation)
            if agent
            else None
        )
        checked = validate_args(op, args)
        target = f"{fqn} {tool} {operation}"
        return Plan("operation", target, None, (spec, tool, operation), checked, access)

    def _scope(self, plan: Plan) -> run_scope.Scope:
        return run_scope.scope(self._connectors, self._credentials, plan.manifest, plan.operation)

    async def start(self, plan: Plan, actor: Actor, session_id: str | None) -> Done | Pending:
        """Run ``plan`` now, or park it as a pending approval — unless a deny rule refuses it
        (``approval_denied``) or a live grant approves it (it runs now)."""
        if not plan.needs_approval(self._connectors):
            return await self.execute(plan, actor, session_id)
        scope = self._scope(plan)
        approval = self._approvals.request(plan.kind, plan.target, plan.args, session_id, scope)
        await self._audit.record(
            "approval.requested",
            actor,
            session_id,
            approval_id=approval.id,
            target=plan.target,
            args_sha256=approval.args_sha256,
            plan_sha256=approval.plan_sha256,
        )
        rule = policy.denying_rule(self._policy.deny, plan.target, plan.args)
        if rule is not None:
            await self._auto_deny(approval, rule)
        grant = self._grants.find(plan.target, session_id, plan.args, scope.digest)
        if grant is not None:
            return await self._run_granted(plan, approval, grant, actor)
        return Pending(approval, self.link(approval.id))

    async def _auto_deny(self, approval: Approval, rule: policy.DenyRule) -> None:
        """Deny ``approval`` by ``rule``, audited, and raise ``approval_denied`` to the caller."""
        reason = rule.reason or f"denied by the rule {rule.name} of config.toml"
        self._approvals.save(
            attrs.evolve(
                approval,
                status="denied",
                decided_at=datetime.now(UTC),
                decided_by=f"rule {rule.name}",
                reason=reason,
            )
        )
        await self._audit.record(
            "approval.auto_denied",
            SERVICE,
            approval.session_id,
            approval_id=approval.id,
            rule=rule.name,
            target=rule.target,
            match=rule.match,
            reason=rule.reason,
        )
        await self._heads.asign("decision")
        raise DaemonError(
            "approval_denied",
            f"{approval.target} is denied by the user's rule {rule.name}: {reason}",
            hint="this request will not be approved; do not retry it",
            details={"approval_id": approval.id, "rule": rule.name},
        )

    async def _run_granted(
        self, plan: Plan, approval: Approval, grant: Grant, actor: Actor
    ) -> Done:
        """Approve ``approval`` by ``grant``, audited, and run it now."""
        approvals = self._approvals
        approval = approvals.save(
            attrs.evolve(
                approval,
                status="running",
                decided_at=datetime.now(UTC),
                decided_by=f"grant {grant.id}",
            )
        )
        await self._audit.record(
            "approval.auto_approved",
            SERVICE,
            approval.session_id,
            approval_id=approval.id,
            grant=grant.id,
            granted_by=grant.granted_by,
            match=grant.match,
        )
        await self._heads.asign("decision")
        try:
            done = await self.execute(plan, actor, approval.session_id, approval_id=approval.id)
        except AileronError as error:
            approvals.save(
                attrs.evolve(
                    approval, status="failed", error={"code": error.code, "message": str(error)}
                )
            )
            raise
        approvals.save(
            attrs.evolve(approval, status="succeeded", result=done.result, audit_id=done.audit_id)
        )
        return done

    def _overdue(self, approval: Approval, now: datetime) -> bool:
        after = self._policy.expire_after
        return (
            approval.status == "pending"
            and after is not None
            and now >= approval.created_at + after
        )

    async def _expire(self, approval: Approval) -> Approval:
        """Mark ``approval`` expired (it counts as denied: nothing runs), audited."""
        expired = self._approvals.save(
            attrs.evolve(
                approval,
                status="expired",
                decided_at=datetime.now(UTC),
                decided_by="rule approvals.expire_after",
                reason=f"nobody decided within {self._policy.expire_after_text}",
            )
        )
        await self._audit.record(
            "approval.expired",
            SERVICE,
            approval.session_id,
            approval_id=approval.id,
            rule="approvals.expire_after",
            expire_after=self._policy.expire_after_text,
        )
        return expired

    async def expire_due(self) -> list[Approval]:
        """Expire every pending approval older than ``[approvals] expire_after``."""
        now = datetime.now(UTC)
        due = [a for a in self._approvals.list(status="pending") if self._overdue(a, now)]
        expired = [await self._expire(a) for a in due]
        if expired:
            await self._heads.asign("decision")
        return expired

    async def expire_forever(self) -> None:
        """The expiry sweeper: :meth:`expire_due` every tenth of ``expire_after`` (between half
        a second and 30 s), until cancelled; nothing to do when approvals never expire."""
        after = self._policy.expire_after
        if after is None:
            return
        tick = min(max(after.total_seconds() / 10, 0.5), 30.0)
        while True:
            await asyncio.sleep(tick)
            try:
                await self.expire_due()
            except (AileronError, OSError) as error:
                log.warning("expiring approvals failed: %s", error)

    async def decide(
        self,
        approval_id: str,
        approved: bool,
        actor: Actor,
        reason: str | None,
        process: PeerProcess | None = None,
        grant: GrantTerms | None = None,
    ) -> Approval:
        """Record a human's decision (and the deciding ``process``, when known); on approval
        run exactly the approved arguments, once, unless what would run changed
        (``approval_stale``). Approving with ``grant`` also makes a grant that approves later
        requests it covers (:mod:`~aileron_cli.daemon.store.grants`)."""
        approvals = self._approvals
        pending = approvals.get(approval_id)  # an unknown id is 404 even while locked
        if not self._heads.armed:  # human decisions are signed when made
            raise VaultLocked(
                "the vault is locked: Aileron signs every decision with the vault's audit key",
                hint="run `aileron vault unlock`, then decide again",
            )
        if self._overdue(pending, datetime.now(UTC)):  # the sweeper has not reached it yet
            await self._expire(pending)
        if approvals.get(approval_id).status == "expired":
            raise DaemonError(
                "approval_expired",
                f"approval {approval_id} expired: nobody decided within"
                f" {self._policy.expire_after_text}; nothing ran",
                hint="the agent must ask again",
            )
        if grant is not None:
            if not approved:
                raise DaemonError("invalid_grant", "a grant comes with an approval, not a denial")
            self._grants.check(pending, grant)
        approval = approvals.decide(approval_id, approved, actor.id, reason)
        deciding = process.to_json() if process is not None else None
        if not approved:
            await self._audit.record(
                "approval.denied",
                actor,
                approval.session_id,
                approval_id=approval.id,
                reason=reason,
                process=deciding,
            )
            await self._heads.asign("decision")
            return approval
        await self._audit.record(
            "approval.approved",
            actor,
            approval.session_id,
            approval_id=approval.id,
            process=deciding,
        )
        if grant is not None:
            made = self._grants.add(approval, actor.id, grant)
            await self._audit.record(
                "grant.created",
                actor,
                approval.session_id,
                grant_id=made.id,
                approval_id=approval.id,
                target=made.target,
                lasts=grant.text,
                match=made.match,
                expires_at=made.expires_at.isoformat() if made.expires_at else None,
                process=deciding,
            )
        await self._heads.asign("decision")
        try:
            # Re-planned from what is installed now: the action or connector may have gone.
            plan = self._replan(approval)
            now = self._scope(plan)
        except AileronError as error:
            return approvals.save(
                attrs.evolve(
                    approval, status="failed", error={"code": error.code, "message": str(error)}
                )
            )
        changed = run_scope.changes(approval, now)
        if changed:
            await self._fail_stale(approval, changed, actor)
        approval = approvals.save(attrs.evolve(approval, status="running"))
        try:
            done = await self.execute(plan, actor, approval.session_id, approval_id=approval.id)
        except AileronError as error:
            return approvals.save(
                attrs.evolve(
                    approval, status="failed", error={"code": error.code, "message": str(error)}
                )
            )
        return approvals.save(
            attrs.evolve(approval, status="succeeded", result=done.result, audit_id=done.audit_id)
        )

    async def _fail_stale(self, approval: Approval, changed: list[str], actor: Actor) -> None:
        """Fail ``approval`` as stale, audited, and raise ``approval_stale`` to the decider."""
        message = (
            f"approval {approval.id} is stale: what {approval.target} would run changed since"
            f" it was requested ({', '.join(changed)}); nothing was sent"
        )
        hint = "run it again to request a fresh approval, and check what changed before approving"
        details = {"approval_id": approval.id, "changed": changed}
        self._approvals.save(
            attrs.evolve(
                approval,
                status="failed",
                error={
                    "code": "approval_stale",
                    "message": f"{message}; {hint}",
                    "details": details,
                },
            )
        )
        await self._audit.record(
            "approval.failed",
            actor,
            approval.session_id,
            approval_id=approval.id,
            reason="approval_stale",
            changed=changed,
        )
        raise DaemonError("approval_stale", message, hint=hint, details=details)

    def _replan(self, approval: Approval) -> Plan:
        """The plan an approval stands for, against what is installed now."""
        if approval.kind == "action":
            manifest = self._actions.get(approval.target).manifest
            return Plan("action", approval.target, manifest, None, approval.args)
        fqn, tool, op = approval.target.split(" ")
        spec = self._connectors.get(fqn).spec
        return Plan("operation", approval.target, None, (spec, tool, op), approval.args)

    async def _credential(
        self, spec: ConnectorSpec, override: str | None, context: Context
    ) -> tuple[Binding, Secret | Escrowed]:
        actor, session_id, invocation = context
        binding = self._credentials.choose(spec, override)
        credential = await self._credentials.resolve(binding)
        escrow = (
            {"escrow_id": credential.record.escrow_id} if isinstance(credential, Escrowed) else {}
        )
        self._audit.note(
            "binding.used",
            actor,
            session_id,
            binding=binding.name,
            invocation_id=invocation,
            **escrow,
        )
        return binding, credential

    async def execute(
        self,
        plan: Plan,
        actor: Actor,
        session_id: str | None,
        *,
        approval_id: str | None = None,
    ) -> Done:
        """Run every operation of ``plan`` now, audited as one invocation."""
        invocation = f"inv_{new_ulid()}"
        base = {"invocation_id": invocation, "target": plan.target, "kind": plan.kind}
        self._audit.note(
            "execution.started",
            actor,
            session_id,
            **base,
            args_sha256=args_digest(plan.args),
            approval_id=approval_id,
        )
        secrets: list[Secret] = []
        try:
            result = await self._run_steps(plan, (actor, session_id, invocation), secrets)
        except AileronError as error:
            message = str(error)
            for secret in secrets:
                message = redact(message, secret)
            await self._audit.record(
                "execution.failed", actor, session_id, **base, code=error.code, message=message
            )
            raise
        record = await self._audit.record("execution.succeeded", actor, session_id, **base)
        return Done(record.id, result)

    async def _call(
        self,
        spec: ConnectorSpec,
        operation: Operation,
        args: dict[str, Any],
        binding: str | None,
        context: Context,
        secrets: list[Secret],
    ) -> Any:
        chosen, credential = await self._credential(spec, binding, context)
        if isinstance(credential, Escrowed):
            async with self._enclave.sender(credential) as sender:
                answer = await self._executor.run(spec, operation, args, None, sender=sender)
            return answer.body
        secrets.append(credential)
        try:
            return (await self._executor.run(spec, operation, args, credential)).body
        except UpstreamError as error:
            # A secret that changes over time (an OAuth2 access token, an App's installation
            # token, a command's output) may have been revoked or expired early: its source
            # forgets it and the operation is tried once more with a fresh one. Not when a
            # redirect hop answered 401 to an operation that may act (a POST answered 303):
            # the first request may have done its work, and it must not be done twice.
            if error.details.get("status") != 401 or (
                error.details.get("redirects") and operation.idempotency != "idempotent"
            ):
                raise
            if not self._credentials.invalidate(chosen):
                raise
        credential = await self._credentials.resolve(chosen)
        assert not isinstance(credential, Escrowed)
        secrets.append(credential)
        return (await self._executor.run(spec, operation, args, credential)).body

    async def _run_steps(self, plan: Plan, context: Context, secrets: list[Secret]) -> Any:
        manifest = plan.manifest
        if manifest is None:
            assert plan.operation is not None
            spec, tool, op = plan.operation
            operation = spec.find_operation(tool, op)
            return await self._call(spec, operation, plan.args, None, context, secrets)
        results: dict[str, Any] = {}
        last: Any = None
        for step in manifest.execute:
            spec = self._connectors.get(step.connector).spec
            operation = spec.find_operation(step.tool, step.op)
            rendered = render_step_args(manifest, step, plan.args, results)
            step_args = validate_args(operation, rendered)
            requirement = manifest.requirement(step.connector)
            binding = requirement.binding if requirement is not None else None
            last = await self._call(spec, operation, step_args, binding, context, secrets)
            results[step.id] = last
        return last
