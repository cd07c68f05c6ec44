"""Acceptance 1 and 4 of #18 with real engines, a real daemon and the scripted fake provider.

1. On podman and on docker, from inside a launched container: the session's actions API and
   gateway answer through the bridge (127.0.0.1:4000); the daemon's main port, a host loopback
   server and the host's own address are unreachable; the egress proxy lets the allowed host
   through and answers the policy's 403 for another, and both connections are audited under
   the session (``egress.allowed`` / ``egress.denied``).
4. The real codex CLI (the pinned ``@openai/codex`` from npm, in an image ``aileron sandbox
   build`` makes with this machine's proxy CA) completes a tool loop with no flags from the
   user: its login-shell command finds the shim, the action runs on the host daemon and is
   audited under the session, and codex's first model request carries the tools text.

The daemon's gateway reaches the fake provider on the host (config.toml's ``[gateway.openai]
base_url``, written by :func:`agents.support.rig`); the agent reaches the gateway only through
the session's Unix socket.

The one argument codex gets besides its prompt is ``-m gpt-fake`` (a model choice, not a
sandbox flag): codex 0.171's default model offers its shell only inside a JavaScript ``exec``
tool (an ``additional_tools`` input item), which the scripted fake does not speak; a model
codex has no metadata for gets the plain ``exec_command`` function tool.
"""

from __future__ import annotations

import http.server
import json
import os
import shlex
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actions.support import SECRET
from agents.support import FINAL, Rig, agent_env, rig, wait_until
from fakes.script import ToolScript
from helpers import aileron, script
from launch.support import CODEX_VERSION
from sandbox.support import ensure_node_base, self_signed
from sandbox.test_containment import PROBES, _host_address, containment_image  # noqa: F401
from sandbox.test_image_build import SYSTEM_CA_DIR
from sandbox.test_real_engines import _docker_id, _podman_id, docker_engine  # noqa: F401

from aileron_cli.sandbox import images
from aileron_cli.sandbox.instructions import TOOLS_INSTRUCTIONS
from aileron_core.paths import Layout

pytestmark = pytest.mark.slow

REPOSITORY = "localhost/aileron-test-acceptance"
"""The test-only repository of the real codex image (never a tag a user's image may hold)."""
DOCKER_CONTAINMENT = "localhost/aileron-test-acceptance-containment:latest"
OWNER = (1000, 1000)
"""The workspace's owner: Aileron runs as root here, so the agent runs as this user."""
MESSAGE = "hello from codex in the sandbox"
# What the fake model asks codex to run: the shim through a login shell, as an agent would.
SHIM_COMMAND = "bash -lc " + shlex.quote(
    f"aileron-echo echo-say --args {shlex.quote(json.dumps({'message': MESSAGE}))}"
)
# Acceptance 1 adds the gateway to test_containment's probes.
GATEWAY_PROBE = 'probe gateway "$OPENAI_BASE_URL/models" -H "$auth"\n'
# https through the proxy: a CONNECT tunnel (curl reports the proxy's answer as http_connect).
HTTPS_PROBES = """\
tunnel() {  # name url: the proxy's answer to CONNECT, then the origin's status
  name=$1; url=$2
  codes=$(curl -sS -k -m 5 -o /dev/null -w '%{http_connect} %{http_code}' --noproxy '' "$url" \\
    2>/dev/null) || true
  echo "$name=${codes:-unreachable}" >> "$out"
}
tunnel https-allowed "https://127.0.0.1:$TLS_PORT/"
tunnel https-denied "https://$HOST_ADDR:$TLS_PORT/"
"""


@pytest.fixture
def tls_port(tmp_path: Path) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 (self-signed) answering 200 to any GET; its port."""
    cert, key = self_signed(tmp_path)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _pin(home: Path) -> None:
    """Pin codex to scripts/agent-versions' version in ``home``'s config.toml."""
    config = Layout(home / ".aileron").config
    config.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with config.open("a", encoding="utf-8") as out:
        out.write(f'\n[sandbox.pins]\ncodex = "{CODEX_VERSION}"\n')


def _labels(tag: str) -> dict[str, str] | None:
    done = subprocess.run(
        ["podman", "image", "inspect", tag], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return None
    labels: dict[str, str] = json.loads(done.stdout)[0]["Config"]["Labels"] or {}
    return labels


@pytest.fixture(scope="session")
def real_codex_image(podman: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Aileron's codex image with the pinned real codex, built once (reused while its pin
    label matches) with this machine's proxy CA passed by --ca-cert."""
    tag = images.default_tag("codex", {images.REPOSITORY_VAR: REPOSITORY})
    labels = _labels(tag)
    if labels is not None and labels.get(images.LABEL_AGENT_VERSION) == CODEX_VERSION:
        return tag
    home = tmp_path_factory.mktemp("build-home")
    _pin(home)
    certs = sorted(SYSTEM_CA_DIR.glob("**/*.crt"))
    env = {
        **os.environ,
        "AILERON_HOME": str(home / ".aileron"),
        images.REPOSITORY_VAR: REPOSITORY,
    }
    built = aileron(
        "sandbox", "build", "codex", "--engine", "podman", "--base-image", ensure_node_base(),
        *(arg for cert in certs for arg in ("--ca-cert", str(cert))),
        env=env, timeout=1200,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-4000:]
    assert built.stdout.strip() == tag
    return tag


@pytest.fixture
def codex_loop(tmp_path: Path) -> Iterator[Rig]:
    """A daemon whose gateway's OpenAI key (the vault's) reaches the fake provider, which asks
    for SHIM_COMMAND through codex's shell tool; codex pinned in config.toml."""
    home = tmp_path / "home"
    home.mkdir()
    tool_script = ToolScript(
        tool="exec_command", arguments={"cmd": SHIM_COMMAND, "login": True}, final=FINAL
    )
    with rig(home, tool_script) as set_up:
        _pin(home)
        yield set_up


def _workspace(path: Path) -> Path:
    """A git repository (so codex runs there without a flag) owned by :data:`OWNER`."""
    path.mkdir()
    done = subprocess.run(["git", "init", "-q", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for root, dirs, files in os.walk(path):
        for name in (root, *(os.path.join(root, n) for n in (*dirs, *files))):
            os.chown(name, *OWNER)
    return path


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_real_codex_runs_its_tool_in_podman_with_no_flags(
    codex_loop: Rig, real_codex_image: str, tmp_path: Path
) -> None:
    """`aileron launch --sandbox=podman codex exec PROMPT`: the real codex is told about its
    tools in its first request, runs the shim through `bash -lc`, the action runs with the
    vault's credential and is audited under the session, and codex prints the final text."""
    work = _workspace(tmp_path / "work")
    done = subprocess.run(
        [script("aileron"), "launch", "--sandbox=podman", "codex", "exec",
         "-m", "gpt-fake", "Say hello through the echo tool."],
        cwd=work,
        env=agent_env(codex_loop.home, **{images.REPOSITORY_VAR: REPOSITORY}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert FINAL in done.stdout
    assert codex_loop.fake.script is not None and codex_loop.fake.script.calls == ["exec_command"]
    assert [(e.headers.get("Authorization"), json.loads(e.body)) for e in codex_loop.echo.seen] == [
        (f"Bearer {SECRET}", {"message": MESSAGE})
    ]
    requests = [s for s in codex_loop.fake.seen if s.method == "POST"]
    assert TOOLS_INSTRUCTIONS in _strings(json.loads(requests[0].body)), requests[0].body[:3000]
    # The shim's JSON result went back to the model with the call's output.
    assert any(
        '"echo"' in text and MESSAGE in text for text in _strings(json.loads(requests[-1].body))
    )

    session = codex_loop.session_in(work)
    assert session["sandbox"] == {"runtime": "podman", "image": real_codex_image}
    assert (session["state"], session["exit_code"]) == ("ended", 0)
    succeeded = wait_until(lambda: codex_loop.audit("execution.succeeded", session["id"]))
    assert len(succeeded) == 1, succeeded
    assert succeeded[0]["actor"]["id"] == f"session:{session['id']}"
    assert wait_until(lambda: codex_loop.audit("gateway.request", session["id"]))


# --- Acceptance 1 ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_containment_image(docker_engine: None, containment_image: str) -> str:  # noqa: F811
    """The same image in the real docker engine under a test-only tag (loaded only when
    docker does not hold that very image yet)."""
    wanted = _podman_id(containment_image)
    if _docker_id(DOCKER_CONTAINMENT) != wanted:
        with subprocess.Popen(
            ["podman", "save", containment_image], stdout=subprocess.PIPE
        ) as save:
            load = subprocess.run(
                ["docker", "load", "--quiet"], stdin=save.stdout, capture_output=True, text=True
            )
        assert save.returncode == 0 and load.returncode == 0, load.stderr
        loaded = load.stdout.strip().rpartition("Loaded image: ")[2]
        tagged = subprocess.run(
            ["docker", "tag", loaded, DOCKER_CONTAINMENT], capture_output=True, text=True
        )
        assert tagged.returncode == 0, tagged.stderr
    assert _docker_id(DOCKER_CONTAINMENT) == wanted
    return DOCKER_CONTAINMENT


@pytest.fixture(params=["podman", "docker"])
def containment_engine(request: pytest.FixtureRequest) -> tuple[str, str]:
    """``(engine, image)`` for the stand-in agent on each real engine."""
    fixture = "containment_image" if request.param == "podman" else "docker_containment_image"
    image: str = request.getfixturevalue(fixture)
    return request.param, image


@pytest.fixture
def gateway_rig(tmp_path: Path) -> Iterator[Rig]:
    """A daemon with the fake provider behind its gateway (the vault's OpenAI key)."""
    home = tmp_path / "home"
    home.mkdir()
    with rig(home) as set_up:
        yield set_up


def test_only_the_sessions_endpoints_are_reachable_on_both_engines(
    gateway_rig: Rig, containment_engine: tuple[str, str], tls_port: int, tmp_path: Path
) -> None:
    """On podman and docker: actions API and gateway answer through the bridge; the daemon's
    port, a host loopback server and the host's address are unreachable; the proxy passes the
    allowed host and 403s another, each audited as egress.allowed / egress.denied."""
    engine, image = containment_engine
    echo, host_address = gateway_rig.echo, _host_address()
    daemon_port = gateway_rig.info.url.rsplit(":", 1)[1].strip("/")
    probes = PROBES + GATEWAY_PROBE + HTTPS_PROBES
    for name, value in (
        ("$TLS_PORT", str(tls_port)),
        ("$SECRET", SECRET),
        ("$DAEMON_PORT", daemon_port),
        ("$ECHO_PORT", str(echo.port)),
        ("$HOST_ADDR", host_address),
    ):
        probes = probes.replace(name, value)
    work = tmp_path / "work"
    work.mkdir()
    (work / "agent.sh").write_text(probes)
    for path in (work, work / "agent.sh"):
        os.chown(path, *OWNER)
    launched = subprocess.run(
        [script("aileron"), "launch", f"--sandbox={engine}", "--image", image,
         "--allow-host", f"127.0.0.1:{echo.port}", "--allow-host", f"127.0.0.1:{tls_port}",
         "codex"],
        cwd=work,
        env=agent_env(gateway_rig.home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,  # docker with vfs copies the image for each container
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr
    results = dict(line.split("=", 1) for line in (work / "probes.txt").read_text().splitlines())
    assert results == {
        "api": "200",
        "gateway": "200",
        "daemon-loopback": "unreachable",
        "daemon-slirp": "unreachable",
        "daemon-host": "unreachable",
        "echo-loopback": "unreachable",
        "echo-slirp": "unreachable",
        "echo-host": "unreachable",
        "proxy-allowed": "200",
        "proxy-denied": "403",
        "https-allowed": "200 200",
        "https-denied": "403 000",
    }
    assert "blocked by Aileron's sandbox policy" in (work / "denied.txt").read_text()
    # Only the allowed request reached the echo server: through the proxy, never directly.
    assert [json.loads(seen.body) for seen in echo.seen] == [{"message": "out"}]

    session = gateway_rig.session_in(work)
    assert session["sandbox"] == {"runtime": engine, "image": image}
    allowed = wait_until(
        lambda: (found := gateway_rig.audit("egress.allowed", session["id"]))[1:] and found
    )
    assert sorted(
        (r["payload"]["host"], r["payload"]["port"], r["payload"]["method"]) for r in allowed
    ) == sorted([("127.0.0.1", echo.port, "POST"), ("127.0.0.1", tls_port, "CONNECT")])
    assert all(r["payload"]["bytes_up"] > 0 and r["payload"]["bytes_down"] > 0 for r in allowed)
    # The denied host was asked twice (the probe, then the message kept in denied.txt).
    denied = wait_until(
        lambda: (found := gateway_rig.audit("egress.denied", session["id"]))[2:] and found
    )
    assert sorted((r["payload"]["host"], r["payload"]["port"]) for r in denied) == sorted(
        [(host_address, echo.port)] * 2 + [(host_address, tls_port)]
    )
    actor = {"type": "agent", "id": f"session:{session['id']}"}
    assert all(r["actor"] == actor for r in [*allowed, *denied])
    assert wait_until(lambda: gateway_rig.audit("gateway.request", session["id"]))
