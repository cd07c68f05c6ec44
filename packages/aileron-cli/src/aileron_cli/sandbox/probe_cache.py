"""The engine probe, remembered: a launch on podman runs ``podman version`` once per podman.

The probe (:func:`~aileron_cli.sandbox.engine.probe`) finds the engine's CLI on PATH and asks
it for its version. For a daemonless engine (podman without a remote service) that answer is
the CLI's own, so it is remembered in ``AILERON_HOME/sandbox/engines.json`` (0600, written
atomically, read with the check cache's rules) under the digest of a :class:`ProbeKey`: the
``--sandbox`` mode, the CLI's path and its file's identity (device, inode, size, modification
and change times: an upgrade or a replaced binary is a miss), and the environment variables
that send podman to a remote service. ``auto`` is remembered only while docker, which it
tries first, is not on PATH; docker itself (its version is its server's, which its CLI's file
does not identify) is probed on every launch.

A remembered engine is not trusted to work, only to be the one the probe would find: when the
first thing the launch asks it (``image inspect``) fails, the remembered answer is forgotten
and the engine probed as without this cache, so a broken engine still reports the probe's
diagnosis (:func:`prepare_with_engine`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from aileron_cli.launch.errors import ImageUnavailable
from aileron_cli.sandbox.check_cache import load_entries, store_entries
from aileron_cli.sandbox.engine import ENGINES, Engine, EngineName, detect

REMOTE_VARS = ("CONTAINER_HOST", "CONTAINER_CONNECTION")
"""podman's variables naming a remote service: while one is set, the probe is not remembered."""
MAX_ENTRIES = 8

T = TypeVar("T")


@attrs.frozen
class ProbeKey:
    """What the probe's answer for a mode depends on."""

    mode: str
    name: EngineName
    path: str
    file: tuple[int, int, int, int, int]
    """``(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)`` of the CLI's file."""

    @property
    def digest(self) -> str:
        """The key's SHA-256, as the cache file stores it."""
        from aileron_core.canonical import canonical_sha256

        return canonical_sha256(attrs.asdict(self, recurse=True))


def probe_key(mode: str, env: Mapping[str, str]) -> ProbeKey | None:
    """The key of probing for ``--sandbox=mode``, or ``None`` when that probe is not
    remembered: docker, ``auto`` with docker on PATH, podman pointed at a remote service, or
    no podman on PATH."""
    search = env.get("PATH", os.defpath)
    if mode == "auto":
        if any(shutil.which(name, path=search) for name in ENGINES if name != "podman"):
            return None
    elif mode != "podman":
        return None
    if any(env.get(name) for name in REMOTE_VARS):
        return None
    path = shutil.which("podman", path=search)
    if path is None:
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    identity = (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)
    return ProbeKey(mode=mode, name="podman", path=path, file=identity)


def cache_path(home: Path) -> Path:
    """``AILERON_HOME/sandbox/engines.json``."""
    return home / "sandbox" / "engines.json"


def _load(home: Path) -> dict[str, dict[str, Any]]:
    return load_entries(
        cache_path(home), "engines", "an engine probe cache", "the engine is probed again"
    )


def recall(mode: str, env: Mapping[str, str], home: Path) -> Engine | None:
    """The engine a probe found for ``mode`` before, if nothing it depends on changed."""
    key = probe_key(mode, env)
    if key is None:
        return None
    entry = _load(home).get(key.digest)
    version = entry.get("version") if entry is not None else None
    if not isinstance(version, str) or not version:
        return None
    return Engine(name=key.name, path=key.path, version=version, daemonless=True)


def remember(mode: str, engine: Engine, env: Mapping[str, str], home: Path) -> None:
    """Record ``engine`` as what the probe for ``mode`` found (a daemonless engine only)."""
    key = probe_key(mode, env)
    if key is None or not engine.daemonless or (engine.name, engine.path) != (key.name, key.path):
        return
    entries = _load(home)
    if entries.get(key.digest, {}).get("version") == engine.version:
        return
    entries.pop(key.digest, None)
    entries[key.digest] = {"mode": mode, "engine": engine.path, "version": engine.version}
    store_entries(cache_path(home), "engines", dict(list(entries.items())[-MAX_ENTRIES:]))


def forget(mode: str, env: Mapping[str, str], home: Path) -> None:
    """Drop what the probe for ``mode`` found before: the next launch probes again."""
    key = probe_key(mode, env)
    entries = _load(home)
    if key is not None and entries.pop(key.digest, None) is not None:
        store_entries(cache_path(home), "engines", entries)


def prepare_with_engine(
    mode: str, env: Mapping[str, str], home: Path, prepare: Callable[[Engine], T]
) -> tuple[Engine, T]:
    """``prepare(engine)`` (the image step) with the engine for ``mode``: the remembered one,
    else the probe's (then remembered). When a remembered engine fails ``prepare`` with
    :class:`ImageUnavailable`, the engine is probed again, as without this cache: a broken
    engine fails there with the probe's diagnosis; another engine (``auto``) gets the image
    step again; the same engine's failure stands."""
    remembered = recall(mode, env, home)
    if remembered is None:
        engine = detect(mode, env)
        remember(mode, engine, env, home)
        return engine, prepare(engine)
    try:
        return remembered, prepare(remembered)
    except ImageUnavailable:
        forget(mode, env, home)
        engine = detect(mode, env)
        remember(mode, engine, env, home)
        if engine == remembered:
            raise
    return engine, prepare(engine)
