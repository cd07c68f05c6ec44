"""The only ways out of a sandboxed agent's container (ADR 0023).

The container runs with ``--network none``. The daemon serves this session's listener
(``api.sock``) and egress proxy (``egress.sock``) as Unix sockets in the session's run folder,
mounted at :data:`RUN_DIR`; the shipped ``bridge.js``, mounted read-only at
:data:`BRIDGE_FILE`, forwards the loopback ports agents speak TCP to onto them, and is started
by the container's entry command before the agent (:func:`entry_command`), which waits until
the bridge's ports accept.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from aileron_cli.sandbox.container import Mount

if TYPE_CHECKING:
    from aileron_core.client import DaemonClient

NETWORK = "none"
RUN_DIR = "/run/aileron"
BRIDGE_FILE = "/opt/aileron/bridge.js"
API_PORT = 4000
EGRESS_PORT = 3128
API_URL = f"http://127.0.0.1:{API_PORT}/v1"
PROXY_URL = f"http://127.0.0.1:{EGRESS_PORT}"
NO_PROXY = "127.0.0.1,localhost"
ENTRY = (
    'r=$(node "$0" --ready-fd 3 3>&1 >/dev/null </dev/null &); [ "$r" = ready ] || exit 125;'
    ' exec "$@"'
)
"""The container's entry: start the bridge in the background and wait for the ``ready`` line
it writes once its ports accept (the command substitution ends when the bridge closes that
pipe: after the line, or at its exit if it cannot start), then become the agent. Exit 125 when
the bridge cannot start (as an engine does for its own failures). One node start-up before
the agent (``--background`` took two: a launcher and the detached bridge)."""


def bridge_source() -> bytes:
    """The shipped ``bridge.js``."""
    return resources.files("aileron_cli.sandbox").joinpath("bridge.js").read_bytes()


def stage_bridge(directory: Path) -> Mount:
    """Copy ``bridge.js`` into ``directory`` (readable by any container user) and the
    read-only mount that puts it at :data:`BRIDGE_FILE`."""
    path = directory / "bridge.js"
    path.write_bytes(bridge_source())
    path.chmod(0o644)
    return Mount(str(path), BRIDGE_FILE)


def entry_command(command: Sequence[str]) -> tuple[str, ...]:
    """``command`` behind the bridge: ``sh -c ENTRY /opt/aileron/bridge.js COMMAND…``."""
    return ("sh", "-c", ENTRY, BRIDGE_FILE, *command)


def proxy_env() -> dict[str, str]:
    """The container's proxy variables: everything outbound goes to the egress proxy, except
    the loopback addresses (the bridge's API port)."""
    env = {}
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        env[name] = PROXY_URL
    env["NO_PROXY"] = env["no_proxy"] = NO_PROXY
    return env


@attrs.frozen
class Endpoints:
    """A session's run folder on the host, with its sockets."""

    directory: str
    sockets: tuple[str, ...]

    @property
    def mount(self) -> Mount:
        """The run folder at :data:`RUN_DIR`, writable (it holds only the sockets)."""
        return Mount(self.directory, RUN_DIR, read_only=False)

    def give_to(self, user: str | None) -> None:
        """Hand the folder and its sockets to the container's ``uid:gid`` when that is not the
        invoking user (a root launch runs the agent as another user): they stay 0700/0600."""
        if user is None:
            return
        uid_text, _, gid_text = user.partition(":")
        uid, gid = int(uid_text), int(gid_text or uid_text)
        if uid == os.getuid():
            return
        for path in (self.directory, *self.sockets):
            os.chown(path, uid, gid)


def open_endpoints(client: DaemonClient, session_id: str, allow: Sequence[str]) -> Endpoints:
    """Ask the daemon for the session's listener and egress proxy, both on Unix sockets in the
    session's run folder."""
    listener = client.post(f"sessions/{session_id}/listener", {"unix": True})
    egress = client.post(f"sessions/{session_id}/egress", {"allow": list(allow)})
    return Endpoints(str(listener["dir"]), (str(listener["socket"]), str(egress["socket"])))
