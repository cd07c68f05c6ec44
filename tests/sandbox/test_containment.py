"""No way out but Aileron (ADR 0023), on real podman: from inside a launched container the
session's API answers through the bridge, the egress proxy lets an allowed host through and
answers 403 for any other, and nothing else of the host is reachable."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from actions.support import SECRET
from helpers import script
from sandbox.support import NODE_BASE, ensure_node_base, podman_build

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

pytestmark = pytest.mark.slow
IMAGE = "localhost/aileron-test-containment:latest"

# What the stand-in agent does: one line per probe, `name=result`.
PROBES = """\
set -u
out="$AILERON_WORKSPACE/probes.txt"
probe() {  # name url [curl options]: the HTTP status, or `unreachable` within 5 s
  name=$1; url=$2; shift 2
  code=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$@" "$url" 2>/dev/null) || code=unreachable
  [ "$code" = 000 ] && code=unreachable
  echo "$name=$code" >> "$out"
}
: > "$out"
auth="Authorization: Bearer $AILERON_TOKEN"
probe api "$AILERON_API_URL/actions" -H "$auth"
probe daemon-loopback "http://127.0.0.1:$DAEMON_PORT/v1/health" --noproxy '*'
probe daemon-slirp "http://10.0.2.2:$DAEMON_PORT/v1/health" --noproxy '*'
probe daemon-host "http://$HOST_ADDR:$DAEMON_PORT/v1/health" --noproxy '*'
probe echo-loopback "http://127.0.0.1:$ECHO_PORT/" --noproxy '*'
probe echo-slirp "http://10.0.2.2:$ECHO_PORT/" --noproxy '*'
probe echo-host "http://$HOST_ADDR:$ECHO_PORT/" --noproxy '*'
probe proxy-allowed "http://127.0.0.1:$ECHO_PORT/" --noproxy '' -d '{"message": "out"}' \\
  -H "Authorization: Bearer $SECRET"
probe proxy-denied "http://$HOST_ADDR:$ECHO_PORT/" --noproxy ''
curl -sS -m 5 --noproxy '' "http://$HOST_ADDR:$ECHO_PORT/" > "$AILERON_WORKSPACE/denied.txt" 2>&1
"""


def _host_address() -> str:
    """This machine's own non-loopback IPv4 address (the one its default route uses)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route
        address: str = probe.getsockname()[0]
    assert not address.startswith("127."), address
    return address


@pytest.fixture(scope="module")
def containment_image(podman: None) -> str:
    """The Node test base with the stand-in agent as `codex` (a test-only tag)."""
    ensure_node_base()
    podman_build("containment.Containerfile", IMAGE, BASE_IMAGE=NODE_BASE)
    return IMAGE


def test_only_the_sessions_endpoints_are_reachable_from_the_container(
    layout: Layout, real_daemon: DaemonInfo, containment_image: str, tmp_path: Path
) -> None:
    """API via 127.0.0.1:4000 works, the proxy allows the allowed host and 403s another, and
    the daemon's port, a host loopback server and the host's own address are unreachable."""
    with EchoServer(SECRET) as echo:
        workspace = tmp_path / "ws"
        workspace.mkdir()
        (workspace / "agent.sh").write_text(PROBES.replace("$SECRET", SECRET))
        if os.geteuid() == 0:  # a root launch runs the agent as the workspace's owner
            for path in (workspace, workspace / "agent.sh"):
                os.chown(path, 1000, 1000)
        daemon_port = real_daemon.url.rsplit(":", 1)[1].strip("/")
        # The agent's own variables: the stand-in reads them from its script's text.
        script_text = (workspace / "agent.sh").read_text()
        for name, value in (
            ("$DAEMON_PORT", daemon_port),
            ("$ECHO_PORT", str(echo.port)),
            ("$HOST_ADDR", _host_address()),
        ):
            script_text = script_text.replace(name, value)
        (workspace / "agent.sh").write_text(script_text)
        launched = subprocess.run(
            [
                script("aileron"),
                "launch",
                "--sandbox=podman",
                "--image",
                containment_image,
                "--allow-host",
                f"127.0.0.1:{echo.port}",
                "codex",
            ],
            cwd=workspace,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert launched.returncode == 0, launched.stderr
    probes = dict(
        line.split("=", 1) for line in (workspace / "probes.txt").read_text().splitlines()
    )
    assert probes == {
        "api": "200",
        "daemon-loopback": "unreachable",
        "daemon-slirp": "unreachable",
        "daemon-host": "unreachable",
        "echo-loopback": "unreachable",
        "echo-slirp": "unreachable",
        "echo-host": "unreachable",
        "proxy-allowed": "200",
        "proxy-denied": "403",
    }
    assert "blocked by Aileron's sandbox policy" in (workspace / "denied.txt").read_text()
    assert not any(layout.home.joinpath("run").iterdir())  # the session's sockets are gone
