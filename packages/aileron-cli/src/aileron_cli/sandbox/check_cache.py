"""Passed pre-launch checks, remembered so a launch pays the check container once per setup.

The pre-run check (:data:`~aileron_cli.sandbox.container.CHECK_SCRIPT`) proves facts about
the image (the agent's command, curl or wget, node), about the workspace mount and the
container user (the workspace is writable by that user), and that the engine starts a
container with these mounts and options. A pass is recorded in ``AILERON_HOME/sandbox/
checks.json`` (0600, written atomically) under the digest of a :class:`CheckKey` naming
everything those facts depend on: the engine (its CLI and version), the image's immutable ID
(a rebuilt image has a new one), the agent's command, the workspace's path, owner and mode,
the container user, the mounts' targets and modes, the limits and tmpfs, the check script and
Aileron's version. A launch whose key is recorded skips the check container; any change is a
miss, and the check runs again.

The file is a cache of a diagnostic, not a security control: the container's hardening is in
every ``run`` regardless (ADR 0023), and what the check proves only turns a broken image into
a clear error before the agent starts. A file that is not a 0600 regular file of this user, or
not in this format, is ignored with a warning and rewritten on the next pass; a same-user
process that forges an entry only skips a diagnostic (see the sandbox ADR). Concurrent
launches may lose each other's entries (last writer wins): that costs a check, nothing else.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import attrs

from aileron_cli.__about__ import __version__
from aileron_cli.sandbox.container import CHECK_SCRIPT, WORKSPACE, ContainerSpec
from aileron_cli.sandbox.engine import Engine

FORMAT = 1
MAX_ENTRIES = 64
"""Passes kept; the oldest go first (one per image, workspace and user in practice)."""
SCRIPT_DIGEST = hashlib.sha256(CHECK_SCRIPT.encode()).hexdigest()[:16]


@attrs.frozen
class CheckKey:
    """What a passed check depends on; equal keys mean the same check would pass again."""

    engine: str
    engine_path: str
    engine_version: str
    image_id: str
    agent_command: str
    workspace: str
    workspace_stat: tuple[int, int, int]
    """``(uid, gid, mode)`` of the workspace: who may write it is what the check proved."""
    user: str | None
    userns: str | None
    mounts: tuple[tuple[str, bool], ...]
    """``(target, read_only)`` of every mount but the workspace (their sources are per-launch
    temporary files Aileron writes)."""
    tmpfs: tuple[str, ...]
    pids_limit: int
    memory: str
    script: str = SCRIPT_DIGEST
    aileron: str = __version__

    @property
    def digest(self) -> str:
        """The key's SHA-256, as the cache file stores it."""
        from aileron_core.canonical import canonical_sha256

        return canonical_sha256(attrs.asdict(self, recurse=True))


def check_key(
    engine: Engine, image_id: str, spec: ContainerSpec, agent_command: str
) -> CheckKey | None:
    """The key of checking ``spec`` (the run's spec), or ``None`` when the image has no ID
    or the spec no workspace (such a check is never cached)."""
    workspace = next((m for m in spec.mounts if m.target == WORKSPACE), None)
    if not image_id or workspace is None:
        return None
    try:
        found = os.stat(workspace.source)
    except OSError:
        return None
    return CheckKey(
        engine=engine.name,
        engine_path=engine.path,
        engine_version=engine.version,
        image_id=image_id,
        agent_command=agent_command,
        workspace=f"{workspace.source}:{'ro' if workspace.read_only else 'rw'}",
        workspace_stat=(found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)),
        user=spec.user,
        userns=spec.userns,
        mounts=tuple(sorted((m.target, m.read_only) for m in spec.mounts if m is not workspace)),
        tmpfs=tuple(t.argument for t in spec.tmpfs),
        pids_limit=spec.pids_limit,
        memory=spec.memory,
    )


def cache_path(home: Path) -> Path:
    """``AILERON_HOME/sandbox/checks.json``."""
    return home / "sandbox" / "checks.json"


def _warn(path: Path, why: str, then: str) -> None:
    print(f"aileron: warning: ignoring {path} ({why}); {then}", file=sys.stderr)


def load_entries(path: Path, section: str, what: str, then: str) -> dict[str, dict[str, Any]]:
    """The ``section`` table of a private cache file of this :data:`FORMAT` (``what`` it is,
    for the warning); ``{}`` for a missing file, and with a warning ending in ``then`` for a
    file not to trust: a symbolic link, not a regular file, not a 0600 file of this user, not
    JSON, not this format."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return {}
    except OSError as error:
        why = "a symbolic link" if error.errno == errno.ELOOP else str(error.strerror)
        _warn(path, why, then)
        return {}
    with os.fdopen(fd, "rb") as handle:
        found = os.fstat(handle.fileno())
        if not stat.S_ISREG(found.st_mode):
            _warn(path, "not a regular file", then)
            return {}
        if found.st_uid != os.geteuid() or found.st_mode & 0o077:
            _warn(path, "not a 0600 file of this user", then)
            return {}
        data = handle.read()
    try:
        document = json.loads(data)
    except ValueError:
        _warn(path, "not valid JSON", then)
        return {}
    entries = document.get(section) if isinstance(document, dict) else None
    if (
        not isinstance(document, dict)
        or document.get("format") != FORMAT
        or not isinstance(entries, dict)
        or not all(isinstance(entry, dict) for entry in entries.values())
    ):
        _warn(path, f"not {what} of this format", then)
        return {}
    return entries


def store_entries(path: Path, section: str, entries: dict[str, dict[str, Any]]) -> None:
    """Write ``entries`` as the ``section`` of a private cache file (0600 in 0700 folders,
    atomically)."""
    from aileron_core.fileio import atomic_write
    from aileron_core.paths import ensure_private_dir

    ensure_private_dir(path.parent.parent)
    ensure_private_dir(path.parent)
    document = {"format": FORMAT, section: entries}
    atomic_write(path, (json.dumps(document, indent=1, sort_keys=True) + "\n").encode())


def _load(path: Path) -> dict[str, dict[str, Any]]:
    """The recorded passes by digest; ``{}`` (with a warning) for a file not to trust."""
    return load_entries(path, "passes", "a sandbox check cache", "the sandbox check runs again")


@attrs.define
class CheckCache:
    """The passes recorded in one cache file, read once (a file not to trust warns once)."""

    path: Path
    passes: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, home: Path) -> CheckCache:
        """The cache under ``home`` (``AILERON_HOME``)."""
        path = cache_path(home)
        return cls(path, _load(path))

    def passed(self, key: CheckKey) -> bool:
        """Whether a pass of ``key`` is recorded."""
        return key.digest in self.passes

    def record(self, key: CheckKey, image_ref: str) -> None:
        """Remember that the check of ``key`` passed (the fields only help a reader), and
        write the file anew (a file that was ignored is replaced)."""
        self.passes[key.digest] = {
            "engine": f"{key.engine} {key.engine_version}",
            "image": image_ref,
            "image_id": key.image_id,
            "workspace": key.workspace,
            "checked_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        self._store()

    def forget(self, *, key: CheckKey | None = None, image_id: str | None = None) -> None:
        """Drop the pass of ``key``, or every pass of ``image_id``: the check runs again."""
        digest = None if key is None else key.digest
        kept = {
            name: entry
            for name, entry in self.passes.items()
            if name != digest and (image_id is None or entry.get("image_id") != image_id)
        }
        if kept != self.passes:
            self.passes = kept
            self._store()

    def _store(self) -> None:
        newest = sorted(self.passes.items(), key=lambda item: str(item[1].get("checked_at")))
        self.passes = dict(newest[-MAX_ENTRIES:])
        store_entries(self.path, "passes", self.passes)
