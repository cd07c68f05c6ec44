"""The only ways out of a sandboxed agent's container (ADR 0023).

The container runs with ``--network none``. The daemon serves this session's listener
(``api.sock``) and egress proxy (``egress.sock``) as Unix sockets in the session's run folder,
mounted at :data:`RUN_DIR`; the shipped ``bridge.js``, mounted read-only at
:data:`BRIDGE_FILE`, forwards the loopback ports agents speak TCP to onto them, and is started
by the container's entry command before the agent (:func:`entry_command`), which waits until
the bridge's ports accept.

With brokered bindings (``aileron launch --expose``, ADR 0028) the egress proxy also writes its
session CA's certificate as ``ca.pem`` beside its socket (:data:`CA_FILE` in the container);
the entry command then builds :data:`CA_BUNDLE` (the image's system roots plus that CA) before
the bridge starts, and :func:`broker_env` points the usual variables at it and gives each
exposed variable its sentinel.
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
CA_FILE = f"{RUN_DIR}/ca.pem"
"""The session CA's certificate in the container (written by the egress proxy when it brokers)."""
CA_BUNDLE = "/tmp/aileron-ca.pem"  # noqa: S108 (the container's own /tmp, a tmpfs)
"""The image's system roots plus the session CA, written by :data:`ENTRY` at start."""
SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # others
)
CA_VARIABLES = ("SSL_CERT_FILE", "GIT_SSL_CAINFO", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE")
"""Variables that replace a tool's roots: they name :data:`CA_BUNDLE` (node's
``NODE_EXTRA_CA_CERTS`` adds to its roots, so it names :data:`CA_FILE`)."""
ENTRY = (
    f"[ -r {CA_FILE} ] && {{ for f in {' '.join(SYSTEM_BUNDLES)}; do"
    f' [ -r "$f" ] && cat "$f" && break; done; cat {CA_FILE}; }} 2>/dev/null >{CA_BUNDLE};'
    ' r=$(node "$0" --ready-fd 3 3>&1 >/dev/null </dev/null &); [ "$r" = ready ] || exit 125;'
    ' exec "$@"'
)
"""The container's entry: with a session CA, write :data:`CA_BUNDLE` (the first readable
system bundle, then the CA; a failure to write it is silent and starts the agent all the
same); start the bridge in the background and wait for the ``ready`` line it writes once its
ports accept (the command substitution ends when the bridge closes that pipe: after the line,
or at its exit if it cannot start), then become the agent. Exit 125 when the bridge cannot
start (as an engine does for its own failures). One node start-up before the agent
(``--background`` took two: a launcher and the detached bridge)."""


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
class Exposed:
    """A binding brokered to the session: the container's ``variable`` holds ``sentinel``,
    which the egress proxy swaps for the secret on requests to ``hosts``."""

    binding: str
    variable: str
    sentinel: str
    hosts: tuple[str, ...]


@attrs.frozen
class Endpoints:
    """A session's run folder on the host, with its sockets (and the brokered bindings)."""

    directory: str
    sockets: tuple[str, ...]
    exposed: tuple[Exposed, ...] = ()
    ca_file: str | None = None
    """The session CA's certificate on the host (``ca.pem`` in the folder) when it brokers."""

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


def broker_env(endpoints: Endpoints) -> dict[str, str]:
    """Each exposed variable with its sentinel and, with a session CA, the variables that make
    the container's tools trust it."""
    env = {exposed.variable: exposed.sentinel for exposed in endpoints.exposed}
    if endpoints.ca_file is not None:
        env.update(dict.fromkeys(CA_VARIABLES, CA_BUNDLE))
        env["NODE_EXTRA_CA_CERTS"] = CA_FILE
    return env


def open_endpoints(
    client: DaemonClient, session_id: str, allow: Sequence[str], expose: Sequence[str] = ()
) -> Endpoints:
    """Ask the daemon for the session's listener and egress proxy (brokering ``expose`` on top
    of ``[sandbox] expose``), both on Unix sockets in the session's run folder."""
    listener = client.post(f"sessions/{session_id}/listener", {"unix": True})
    egress = client.post(
        f"sessions/{session_id}/egress", {"allow": list(allow), "expose": list(expose)}
    )
    exposed = tuple(
        Exposed(
            str(item["binding"]),
            str(item["variable"]),
            str(item["sentinel"]),
            tuple(str(host) for host in item["hosts"]),
        )
        for item in egress.get("exposed", ())
    )
    ca_file = egress.get("ca_file")
    return Endpoints(
        str(listener["dir"]),
        (str(listener["socket"]), str(egress["socket"])),
        exposed,
        None if ca_file is None else str(ca_file),
    )
