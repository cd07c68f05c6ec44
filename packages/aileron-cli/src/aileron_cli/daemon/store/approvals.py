"""Approvals: ``approvals.jsonl`` replayed at start, one record appended per change.

An approval is bound to the sha256 of the exact arguments it was requested with, and to the
digest of what would run (``run_scope``); deciding it runs exactly those arguments, once. A
daemon that stopped while one was ``running`` marks it ``failed`` at the next start ("daemon
stopped during execution").
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.approval_feed import ApprovalFeed
from aileron_cli.daemon.store.statelog import StateLog
from aileron_core.arguments import args_digest
from aileron_core.canonical import canonical_sha256
from aileron_core.convert import converter
from aileron_core.ids import new_ulid
from aileron_core.models import Approval, ApprovalKind, ApprovalStatus, ApprovalStep


@attrs.frozen
class Scope:
    """What one run will touch: the steps as shown to a human, and the digest of each part
    (computed by ``aileron_cli.daemon.run.scope``)."""

    steps: tuple[ApprovalStep, ...]
    parts: dict[str, str]

    @property
    def digest(self) -> str:
        """``plan_sha256``: the sha256 of the canonical JSON of the parts' digests."""
        return canonical_sha256(self.parts)


class ApprovalStore:
    def __init__(self, log: StateLog, approvals: dict[str, Approval]) -> None:
        self._log = log
        self._approvals = approvals
        self.feed = ApprovalFeed()
        """Every approval saved from now on, live (issue #20)."""

    @classmethod
    def open(cls, path: Path) -> tuple[ApprovalStore, builtins.list[Approval]]:
        """Replay the log; approvals still ``running`` are failed (returned for the audit)."""
        log = StateLog(path)
        approvals = {k: converter.structure(v, Approval) for k, v in log.replay().items()}
        store = cls(log, approvals)
        failed = [
            store.save(
                attrs.evolve(
                    approval,
                    status="failed",
                    error={"code": "daemon_stopped", "message": "daemon stopped during execution"},
                )
            )
            for approval in list(approvals.values())
            if approval.status == "running"
        ]
        return store, failed

    def save(self, approval: Approval) -> Approval:
        self._log.append(converter.unstructure(approval))
        self._approvals[approval.id] = approval
        self.feed.publish(approval)
        return approval

    def request(
        self,
        kind: ApprovalKind,
        target: str,
        args: Mapping[str, Any],
        session_id: str | None,
        scope: Scope,
    ) -> Approval:
        return self.save(
            Approval(
                id=f"apr_{new_ulid()}",
                kind=kind,
                target=target,
                args=dict(args),
                args_sha256=args_digest(args),
                created_at=datetime.now(UTC),
                session_id=session_id,
                plan_sha256=scope.digest,
                plan_parts=dict(scope.parts),
                steps=scope.steps,
            )
        )

    def get(self, approval_id: str) -> Approval:
        try:
            return self._approvals[approval_id]
        except KeyError:
            raise DaemonError("approval_not_found", f"no approval {approval_id!r}") from None

    def decide(self, approval_id: str, approved: bool, by: str, reason: str | None) -> Approval:
        approval = self.get(approval_id)
        if approval.status != "pending":
            raise DaemonError(
                "approval_decided", f"approval {approval_id} is already {approval.status}"
            )
        if args_digest(approval.args) != approval.args_sha256:
            raise DaemonError("approval_tampered", f"approval {approval_id}'s arguments changed")
        status: ApprovalStatus = "approved" if approved else "denied"
        return self.save(
            attrs.evolve(
                approval, status=status, decided_at=datetime.now(UTC), decided_by=by, reason=reason
            )
        )

    def list(
        self, *, status: str | None = None, session_id: str | None = None
    ) -> builtins.list[Approval]:
        return [
            a
            for a in sorted(self._approvals.values(), key=lambda a: a.id)
            if (status is None or a.status == status)
            and (session_id is None or a.session_id == session_id)
        ]

    def compact(self) -> None:
        self._log.compact({k: converter.unstructure(v) for k, v in self._approvals.items()})
