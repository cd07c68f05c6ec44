"""Finding a container engine that works (SPEC §11: ``--sandbox=auto|docker|podman``).

"Works" means it answers a real probe — ``<engine> version`` reaching its server — not that a
binary of that name exists: a docker CLI with no engine behind it is not an engine. ``auto``
takes the first of docker, podman that answers and says why none did otherwise.

The probe, like the image inspection and the pre-run check, calls the engine's CLI directly
with a timeout; ``python-on-whales`` (``Engine.client()``) builds images and inspects networks.
Importing it costs ~0.4 s, a third of the sandbox launch budget (B11), so the launch path only
pays it when it builds (ADR 0011).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from aileron_cli.launch.errors import SandboxUnavailable

if TYPE_CHECKING:
    from python_on_whales import DockerClient

EngineName = Literal["docker", "podman"]
ENGINES: tuple[EngineName, ...] = ("docker", "podman")
MODES = ("auto", *ENGINES)
PROBE_TIMEOUT = 10.0


@attrs.frozen
class Engine:
    """A container engine that answered the probe."""

    name: EngineName
    path: str
    """Absolute path of its CLI."""
    version: str
    daemonless: bool = False
    """Whether the version is the CLI's own (podman without a remote service): then the CLI's
    file identifies the engine, and its probe can be remembered
    (:mod:`aileron_cli.sandbox.probe_cache`). A server's version (docker, remote podman) can
    change under the same CLI."""

    @property
    def call(self) -> tuple[str, ...]:
        """How to invoke the engine's CLI."""
        return (self.path,)

    @property
    def rootless(self) -> bool:
        """Whether containers run in the user's own user namespace (rootless podman)."""
        return self.name == "podman" and os.geteuid() != 0

    def client(self) -> DockerClient:
        """A ``python-on-whales`` client of this engine."""
        from python_on_whales import DockerClient

        return DockerClient(client_call=[self.path], client_type=self.name)


def probe(name: EngineName, env: Mapping[str, str]) -> Engine | str:
    """The engine ``name`` if it answers, else why not (one phrase)."""
    path = shutil.which(name, path=env.get("PATH", os.defpath))
    if path is None:
        return f"{name}: not installed (no `{name}` on PATH)"
    try:
        done = subprocess.run(
            [path, "version", "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return f"{name}: `{name} version` did not answer within {PROBE_TIMEOUT:.0f} s"
    except OSError as error:
        return f"{name}: {error.strerror or error}"
    if done.returncode != 0:
        return f"{name}: {first_line(done.stderr) or 'does not answer'}"
    # docker answers for its server; podman (no server of its own) for itself.
    server = _version(done.stdout, "Server")
    version = server or (_version(done.stdout, "Client") if name == "podman" else None)
    if version is None:
        return f"{name}: its engine did not answer `{name} version`"
    return Engine(name=name, path=path, version=version, daemonless=server is None)


def _version(output: str, part: str) -> str | None:
    try:
        info: Any = json.loads(output)
    except ValueError:
        return None
    section = info.get(part) if isinstance(info, dict) else None
    version = section.get("Version") if isinstance(section, dict) else None
    return str(version) if version else None


def detect(mode: str, env: Mapping[str, str]) -> Engine:
    """The engine for ``--sandbox=mode``: that one, or with ``auto`` the first that works."""
    names: Sequence[EngineName] = ENGINES if mode == "auto" else (_engine_name(mode),)
    reasons = []
    for name in names:
        found = probe(name, env)
        if isinstance(found, Engine):
            return found
        reasons.append(found)
    if mode == "auto":
        raise SandboxUnavailable(
            "no container engine works here (" + "; ".join(reasons) + ")",
            hint="install podman or docker and make sure `podman version` or `docker version`"
            " answers, or launch on the host with --sandbox=off",
        )
    raise SandboxUnavailable(
        f"the {mode} engine does not work here ({reasons[0]})",
        hint=f"check that `{mode} version` answers, try --sandbox=auto, or launch on the host"
        " with --sandbox=off",
    )


def _engine_name(mode: str) -> EngineName:
    for name in ENGINES:
        if name == mode:
            return name
    raise SandboxUnavailable(
        f"unknown sandbox engine {mode!r}", hint=f"use one of: {', '.join(MODES)}"
    )


def first_line(text: str | bytes | None) -> str:
    """The first non-blank line of an engine's message, without its ``Error:`` prefix."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip().removeprefix("Error: ").removeprefix("error: ")
    return ""
