"""Where Aileron keeps its state: ``AILERON_HOME`` (default ``~/.aileron``, mode 0700).

:class:`Layout` names every file of SPEC §4 so no module spells a file name itself. It is a
plain class on purpose: the CLI's fast paths import it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

HOME_ENV = "AILERON_HOME"
HOME_MODE = 0o700
SECRET_FILE_MODE = 0o600


def aileron_home() -> Path:
    """Return the state directory named by ``AILERON_HOME``, else ``~/.aileron``."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".aileron"


def audit_segment_path(active: Path, number: int) -> Path:
    """The rotated audit segment ``number`` (1, 2, ...) beside the active log ``active``:
    ``audit.jsonl`` -> ``audit.000001.jsonl``."""
    return active.with_name(f"{active.stem}.{number:06d}{active.suffix}")


def rotated_audit_segments(active: Path) -> list[tuple[int, Path]]:
    """``(number, path)`` of every rotated segment beside the active log ``active``, oldest
    first (see :func:`audit_segment_path`)."""
    pattern = re.compile(rf"{re.escape(active.stem)}\.(\d{{6,}}){re.escape(active.suffix)}")
    found: list[tuple[int, Path]] = []
    try:
        names = os.listdir(active.parent)
    except FileNotFoundError:
        return found
    for name in names:
        matched = pattern.fullmatch(name)
        if matched is not None:
            found.append((int(matched.group(1)), active.parent / name))
    found.sort()
    return found


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make sure it is mode 0700."""
    path.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != HOME_MODE:
        path.chmod(HOME_MODE)
    return path


class Layout:
    """The files under one ``AILERON_HOME``."""

    __slots__ = ("home",)

    def __init__(self, home: Path | None = None) -> None:
        self.home = aileron_home() if home is None else home

    def ensure(self) -> Layout:
        """Create the home directory (0700) if it does not exist."""
        ensure_private_dir(self.home)
        return self

    @property
    def daemon_json(self) -> Path:
        """``{url, pid, version, started_at, token, auto_spawned}`` of the running daemon."""
        return self.home / "daemon.json"

    @property
    def daemon_socket(self) -> Path:
        """The daemon's Unix socket (0600): its admin API, where the caller's process is known.
        The running daemon names the socket it bound in ``daemon.json`` (a home whose path is
        too long for a socket address gets one under the temporary directory)."""
        return self.home / "daemon.sock"

    @property
    def daemon_lock(self) -> Path:
        """flock-ed by the running daemon for its whole life."""
        return self.home / "daemon.lock"

    @property
    def spawn_lock(self) -> Path:
        """flock-ed by a client while it checks for, and if needed spawns, the daemon."""
        return self.home / "daemon.spawn.lock"

    @property
    def daemon_log(self) -> Path:
        return self.home / "daemon.log"

    @property
    def vault(self) -> Path:
        return self.home / "vault.json"

    @property
    def audit(self) -> Path:
        """The active audit segment: appends go here."""
        return self.home / "audit.jsonl"

    def audit_segment(self, number: int) -> Path:
        """Rotated audit segment ``number`` (``audit.NNNNNN.jsonl``, 1 is the oldest)."""
        return audit_segment_path(self.audit, number)

    def audit_segments(self) -> list[Path]:
        """The audit log in chain order: the rotated segments, then ``audit.jsonl`` if it
        exists."""
        found = [path for _, path in rotated_audit_segments(self.audit)]
        if self.audit.exists():
            found.append(self.audit)
        return found

    @property
    def audit_heads(self) -> Path:
        """Signed heads of the audit log, append-only, one canonical-JSON line each."""
        return self.home / "audit.heads.jsonl"

    @property
    def audit_witness(self) -> Path:
        """The enclave's countersignatures of audit heads, append-only, one line each."""
        return self.home / "audit.witness.jsonl"

    @property
    def sessions(self) -> Path:
        return self.home / "sessions.jsonl"

    @property
    def approvals(self) -> Path:
        return self.home / "approvals.jsonl"

    @property
    def grants(self) -> Path:
        return self.home / "grants.jsonl"

    @property
    def actions_dir(self) -> Path:
        return self.home / "actions"

    @property
    def connector_store(self) -> Path:
        return self.home / "store" / "connectors" / "sha256"

    @property
    def bindings(self) -> Path:
        return self.home / "bindings.json"

    @property
    def config(self) -> Path:
        return self.home / "config.toml"

    @property
    def enclave(self) -> Path:
        """The attachment to an ``aileron-enclave`` and the escrowed bindings (no secrets)."""
        return self.home / "enclave.json"

    def run_dir(self, session_id: str) -> Path:
        """A sandboxed session's sockets (``api.sock``, ``egress.sock``), mounted into its
        container at ``/run/aileron``; 0700, removed when the session ends."""
        return self.home / "run" / session_id
