"""A session's life as the daemon guards it: its token, its process tree, its launcher.

A contained session's launcher tree is treated as the agent (SPEC §16) for as long as the
launcher lives; when the launcher dies first, the session ends and what is left of the agent
is ended too. Ending a session kills its token, closes what it was served on (its listener and
its egress proxy: parts of rooms above this one, given to :class:`SessionService` as plain
closers by the composition root) and releases its tree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from aileron_cli.daemon.access.launchers import LauncherWatch
from aileron_cli.daemon.access.tokens import Gate, TokenRegistry
from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.store.sessions import SessionStore
from aileron_core.audit import Actor
from aileron_core.models import Session
from aileron_core.processes import ProcessRef, descendants, end_processes

__all__ = ["SERVICE", "SessionService"]

SERVICE = Actor(type="service", id="aileron-daemon")
"""The daemon itself, as the actor of what it does on its own."""

Closer = Callable[[str], None]
"""Closes what a session was served on, by session id (nothing when there is none)."""


class SessionService:
    """Ends sessions, and guards contained ones by their launcher."""

    def __init__(
        self,
        sessions: SessionStore,
        *,
        tokens: TokenRegistry,
        gate: Gate,
        audit: AuditLog,
        closers: Sequence[Closer] = (),
    ) -> None:
        self.store = sessions
        self._tokens = tokens
        self._gate = gate
        self._audit = audit
        self._closers = tuple(closers)
        self.launchers = LauncherWatch(self._launcher_exited)

    def guard(self, session: Session) -> None:
        """Treat the launcher's process tree as the session's agent (SPEC §16) for as long as
        the launcher lives, and end the session if the launcher dies first."""
        launcher = session.launcher
        if launcher is None:
            return
        self._gate.trees.add(launcher, session.id)
        self.launchers.watch(session.id, launcher)

    def guard_orphans(self) -> None:
        """After a restart: the trees of sessions whose launcher still runs stay the agent's
        (an agent that killed the daemon must not come back as the human)."""
        for session in self.store.list(active=False):
            if session.state == "orphaned" and session.launcher and session.launcher.alive():
                self.guard(session)

    async def end(
        self, session_id: str, exit_code: int | None, actor: Actor, reason: str | None = None
    ) -> Session:
        """End a running session: its token dies, its listener closes, its tree is released."""
        session = self.store.end(session_id, exit_code, reason)
        self._tokens.revoke_session(session_id)
        for close in self._closers:
            close(session_id)
        self._gate.trees.remove(session_id)
        self.launchers.unwatch(session_id)
        payload: dict[str, Any] = {"exit_code": exit_code}
        if reason is not None:
            payload["reason"] = reason
        await self._audit.record("session.ended", actor, session_id, **payload)
        return session

    async def _launcher_exited(self, session_id: str) -> None:
        """The launcher died without ending its session: end it, and end what is left of the
        agent (the processes still below the agent's own, which the launcher reported)."""
        self._gate.trees.remove(session_id)
        session = self.store.get(session_id)
        if session.state != "running":
            return
        await self.end(session_id, None, SERVICE, reason="launcher exited")
        if session.agent_process is not None:
            ended = await asyncio.to_thread(_end_tree, session.agent_process)
            if ended:
                await self._audit.record(
                    "session.processes_ended", SERVICE, session_id, pids=[p.pid for p in ended]
                )

    def close(self) -> None:
        """Stop watching every launcher (the daemon stops)."""
        self.launchers.close()


def _end_tree(root: ProcessRef) -> list[ProcessRef]:
    return end_processes([root, *descendants(root)])
