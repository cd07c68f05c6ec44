"""Grants: ``grants.jsonl``, replayed at start, one record appended per change (issue #20).

A grant is a human's standing yes, made when approving (``grant: {"for": "session" | "5m",
"match": {...}}``). It covers later requests of the same target whose plan is the approved one
(the ``plan_sha256`` of ADR 0016: a reinstalled connector or re-bound credential is not
covered) and whose arguments are the approved ones, except that each argument named in
``match`` may take any value its glob matches (``fnmatch``, case-sensitive; a value that is not
a string is matched as its canonical JSON). A grant "for the session" covers that session only
(a new session has a new id) and never expires; a grant "for N minutes" covers every caller
until ``expires_at``. A revoked or expired grant covers nothing.

The clock is injectable (``clock``) so the expiry of a five-minute grant is tested without
waiting five minutes.
"""

from __future__ import annotations

import builtins
import fnmatch
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from aileron_cli.approvals_config import parse_duration
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.statelog import StateLog
from aileron_core.canonical import canonical_json
from aileron_core.convert import converter
from aileron_core.ids import new_ulid
from aileron_core.models import Approval, Grant

__all__ = ["Clock", "GrantStore", "GrantTerms", "covers", "utc_now", "value_text"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def value_text(value: Any) -> str:
    """How a glob sees an argument: a string as itself, anything else as canonical JSON."""
    return value if isinstance(value, str) else canonical_json(value).decode()


def covers(grant: Grant, args: Mapping[str, Any]) -> bool:
    """Whether ``args`` are the grant's approved arguments, widened by its ``match`` globs."""
    if set(args) - set(grant.match) != set(grant.args) - set(grant.match):
        return False
    for name, value in args.items():
        glob = grant.match.get(name)
        if glob is None:
            if grant.args.get(name) != value:
                return False
        elif not fnmatch.fnmatchcase(value_text(value), glob):
            return False
    return all(name in args for name in grant.match)


@attrs.frozen
class GrantTerms:
    """What a human grants when approving: ``for`` the session or a duration, and ``match``."""

    session: bool
    lasts: timedelta | None
    match: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def parse(cls, lasts: str, match: Mapping[str, str]) -> GrantTerms:
        """``"session"`` or ``"<N>s|m|h"`` (``invalid_grant`` for anything else)."""
        if lasts == "session":
            return cls(session=True, lasts=None, match=dict(match))
        try:
            return cls(session=False, lasts=parse_duration(lasts), match=dict(match))
        except ValueError as error:
            raise DaemonError(
                "invalid_grant", f"grant for: {error}", hint='or "session" for the session'
            ) from None

    @property
    def text(self) -> str:
        """How the terms were asked for, for the audit: ``session`` or the duration."""
        if self.lasts is None:
            return "session"
        return f"{int(self.lasts.total_seconds())}s"


class GrantStore:
    def __init__(self, log: StateLog, grants: dict[str, Grant], clock: Clock = utc_now) -> None:
        self._log = log
        self._grants = grants
        self._clock = clock

    @classmethod
    def open(cls, path: Path, clock: Clock = utc_now) -> GrantStore:
        log = StateLog(path)
        grants = {k: converter.structure(v, Grant) for k, v in log.replay().items()}
        return cls(log, grants, clock)

    def now(self) -> datetime:
        return self._clock()

    def _save(self, grant: Grant) -> Grant:
        self._log.append(converter.unstructure(grant))
        self._grants[grant.id] = grant
        return grant

    def check(self, approval: Approval, terms: GrantTerms) -> None:
        """``invalid_grant`` if ``terms`` cannot be granted on ``approval``."""
        unknown = sorted(set(terms.match) - set(approval.args))
        if unknown:
            raise DaemonError(
                "invalid_grant",
                f"grant match names {unknown[0]!r}, which is not an argument of {approval.target}",
                hint=f"arguments are: {', '.join(sorted(approval.args)) or '(none)'}",
            )
        if terms.session and approval.session_id is None:
            raise DaemonError(
                "invalid_grant",
                f"approval {approval.id} was not requested in an agent session",
                hint='grant it for some minutes instead, e.g. "for": "30m"',
            )

    def add(self, approval: Approval, by: str, terms: GrantTerms) -> Grant:
        """The grant made by approving ``approval`` with ``terms``."""
        self.check(approval, terms)
        now = self.now()
        return self._save(
            Grant(
                id=f"grt_{new_ulid()}",
                kind=approval.kind,
                target=approval.target,
                args=dict(approval.args),
                match=dict(terms.match),
                plan_sha256=approval.plan_sha256,
                approval_id=approval.id,
                granted_by=by,
                created_at=now,
                session_id=approval.session_id if terms.session else None,
                expires_at=None if terms.lasts is None else now + terms.lasts,
            )
        )

    def live(self, grant: Grant) -> bool:
        """Not revoked, and not past its expiry."""
        return grant.revoked_at is None and (
            grant.expires_at is None or self.now() < grant.expires_at
        )

    def list(self, *, all: bool = False) -> builtins.list[Grant]:
        """Grants, oldest first: the live ones (``all``: every one ever made)."""
        grants = sorted(self._grants.values(), key=lambda g: g.id)
        return grants if all else [g for g in grants if self.live(g)]

    def get(self, grant_id: str) -> Grant:
        try:
            return self._grants[grant_id]
        except KeyError:
            raise DaemonError("grant_not_found", f"no grant {grant_id!r}") from None

    def revoke(self, grant_id: str, by: str) -> Grant:
        """Revoke ``grant_id`` (revoking a revoked or expired grant changes nothing)."""
        grant = self.get(grant_id)
        if not self.live(grant):
            return grant
        return self._save(attrs.evolve(grant, revoked_at=self.now(), revoked_by=by))

    def find(
        self,
        target: str,
        session_id: str | None,
        args: Mapping[str, Any],
        plan_sha256: str,
    ) -> Grant | None:
        """The oldest live grant that covers this request, if any."""
        for grant in self.list():
            if (
                grant.target == target
                and grant.plan_sha256 == plan_sha256
                and (grant.session_id is None or grant.session_id == session_id)
                and covers(grant, args)
            ):
                return grant
        return None

    def compact(self) -> None:
        """Rewrite the log with the live grants only (expired and revoked ones are in the
        audit log)."""
        self._log.compact({g.id: converter.unstructure(g) for g in self.list()})
