"""The session store: ``sessions.jsonl`` replayed at start, one record appended per change."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime
from pathlib import Path

import attrs

from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.statelog import StateLog
from aileron_core.convert import converter
from aileron_core.ids import new_ulid
from aileron_core.models import SandboxInfo, Session, SessionExposure, SessionState
from aileron_core.processes import ProcessRef


class SessionStore:
    """Sessions by id, durable in an append-only state log."""

    def __init__(self, log: StateLog, sessions: dict[str, Session]) -> None:
        self._log = log
        self._sessions = sessions

    @classmethod
    def open(cls, path: Path) -> tuple[SessionStore, builtins.list[Session]]:
        """Replay the log; sessions still ``running`` (a crash) are closed as ``orphaned``."""
        log = StateLog(path)
        records = log.replay()
        sessions = {key: converter.structure(value, Session) for key, value in records.items()}
        store = cls(log, sessions)
        orphaned = []
        for session in list(sessions.values()):
            if session.state == "running":
                orphaned.append(store._save(_close(session, "orphaned", None, "daemon restarted")))
        return store, orphaned

    def _save(self, session: Session) -> Session:
        self._log.append(converter.unstructure(session))
        self._sessions[session.id] = session
        return session

    def create(
        self,
        agent: str,
        working_dir: str,
        sandbox: SandboxInfo | None,
        launcher: ProcessRef | None = None,
    ) -> Session:
        session = Session(
            id=new_ulid(),
            agent=agent,
            working_dir=working_dir,
            sandbox=sandbox,
            started_at=datetime.now(UTC),
            launcher=launcher,
        )
        return self._save(session)

    def set_agent_process(self, session_id: str, agent: ProcessRef) -> Session:
        session = self.running(session_id)
        return self._save(attrs.evolve(session, agent_process=agent))

    def set_exposed(self, session_id: str, exposed: builtins.list[SessionExposure]) -> Session:
        """Record the bindings the running session's egress proxy brokers."""
        session = self.running(session_id)
        return self._save(attrs.evolve(session, exposed=tuple(exposed)))

    def running(self, session_id: str) -> Session:
        """The session, which must still be running (else 409 ``session_ended``)."""
        session = self.get(session_id)
        if session.state != "running":
            raise DaemonError("session_ended", f"session {session_id} is already {session.state}")
        return session

    def get(self, session_id: str) -> Session:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise DaemonError("session_not_found", f"no session {session_id!r}") from None

    def end(self, session_id: str, exit_code: int | None, reason: str | None = None) -> Session:
        return self._save(_close(self.running(session_id), "ended", exit_code, reason))

    def list(
        self, *, active: bool | None = None, agent: str | None = None, limit: int | None = None
    ) -> builtins.list[Session]:
        """Sessions, oldest first; ``limit`` keeps the most recent ones."""
        found = [
            s
            for s in sorted(self._sessions.values(), key=lambda s: s.id)
            if (active is None or (s.state == "running") == active)
            and (agent is None or s.agent == agent)
        ]
        return found[-limit:] if limit else found

    def active_count(self) -> int:
        return sum(1 for s in self._sessions.values() if s.state == "running")

    def close_running(self) -> builtins.list[Session]:
        """On clean stop: close what is still running as orphaned (their agents lost us)."""
        return [
            self._save(_close(s, "orphaned", None, "daemon stopped"))
            for s in list(self._sessions.values())
            if s.state == "running"
        ]

    def compact(self) -> None:
        self._log.compact({k: converter.unstructure(v) for k, v in self._sessions.items()})


def _close(
    session: Session, state: SessionState, exit_code: int | None, reason: str | None
) -> Session:
    return attrs.evolve(
        session, state=state, ended_at=datetime.now(UTC), exit_code=exit_code, end_reason=reason
    )
