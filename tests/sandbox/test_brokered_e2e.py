"""Brokered credentials (issue #19, ADR 0028) on the real engines, with the real git, curl and
npm inside the container and local TLS stand-ins for GitHub and a registry on the host.

The stand-ins (:mod:`fakes.tls_upstreams`) have certificates from a private CA of the test's
own, which the daemon trusts through ``[network] ca_bundle``; their names (``*.github.test``)
resolve only through ``[sandbox.resolve]`` pins to 127.0.0.1. Two bindings are exposed:
``token/github/default`` as ``GH_TOKEN`` for the git and API stand-ins (``--expose`` at launch)
and ``token/npm/default`` as ``NPM_TOKEN`` for the registry (``[sandbox] expose``). The agent is
a script run by the stand-in agent; it writes what it saw under ``$AILERON_WORKSPACE/out``.

Each engine runs ONE container (docker on vfs costs a lot per container): podman the whole
acceptance list, docker the essential subset (git clone and push, curl, the echo).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakes.tls_upstreams import Echo, GitHttp, NpmRegistry, TlsUpstream
from helpers import aileron, script
from network_support import PrivateCA
from sandbox.support import ensure_broker_image, load_into_docker
from sandbox.test_real_engines import docker_engine  # noqa: F401 - a fixture

from aileron_cli.examples.echo_server import EchoServer
from aileron_cli.sandbox.bridge import open_endpoints
from aileron_core.client import DaemonClient
from aileron_core.discovery import DaemonInfo, read_daemon_info
from aileron_core.paths import Layout

pytestmark = pytest.mark.slow

PASSPHRASE = "brokered test passphrase"
GH_SECRET = "ghp_brokeredRealToken0123456789abcdefABCD"
NPM_SECRET = "npm_brokeredRealToken0123456789abcdefABCD"
GIT_USER = "x-access-token"
SENTINEL_PREFIX = "aileron-sentinel-"
DOCKER_IMAGE = "localhost/aileron-test-broker-docker:latest"
MIB = 1024 * 1024


def _unmatched(secret: str) -> str:
    """A grep pattern that matches ``secret`` but not its own text: the agent's script may
    search for the secret without holding it."""
    return f"{secret[:5]}[{secret[5]}]{secret[6:]}"


# The agent. Ports and patterns are filled in by the test (the script's text is in the
# workspace, so it never holds a secret: only patterns that match one).
SCRIPT_GIT_CURL = """\
set -u
out="$AILERON_WORKSPACE/out"
mkdir -p "$out"
env > "$out/env.txt"
git config --global user.name Agent
git config --global user.email agent@example.test
url="https://x-access-token:$GH_TOKEN@git.github.test:@GIT_PORT@/repo.git"
git clone -q "$url" "$HOME/repo" > "$out/clone.log" 2>&1; echo $? > "$out/clone.rc"
cd "$HOME/repo" && head -c 1048576 /dev/urandom > big.bin && git add big.bin \\
  && git commit -q -m "one mebibyte from the sandbox" \\
  && git push -q origin main > "$out/push.log" 2>&1; echo $? > "$out/push.rc"
git config -l > "$out/git-config.txt" 2>&1
cd /
curl -sS -o "$out/api.json" -D "$out/api.head" -w '%{http_code}' \\
  -H "Authorization: Bearer $GH_TOKEN" "https://api.github.test:@API_PORT@/user" \\
  > "$out/api.code" 2> "$out/api.err"
"""
SCRIPT_MORE = """\
curl -sS -o "$out/misuse-registry.txt" -w '%{http_code}' -H "Authorization: Bearer $GH_TOKEN" \\
  "https://registry.github.test:@REGISTRY_PORT@/-/whoami" > "$out/misuse-registry.code" 2>&1
curl -sS -o "$out/misuse-http.txt" -w '%{http_code}' --noproxy '' -d x \\
  -H "Authorization: Bearer $GH_TOKEN" "http://127.0.0.1:@PLAIN_PORT@/" \\
  > "$out/misuse-http.code" 2>&1
printf '//registry.github.test:@REGISTRY_PORT@/:_authToken=%s\\n' "$NPM_TOKEN" > "$HOME/.npmrc"
npm whoami --registry "https://registry.github.test:@REGISTRY_PORT@/" \\
  > "$out/whoami.txt" 2> "$out/whoami.err"; echo $? > "$out/whoami.rc"
mkdir "$HOME/pkg" && cd "$HOME/pkg" \\
  && echo '{"name": "sandbox-package", "version": "1.0.0"}' > package.json \\
  && npm publish --registry "https://registry.github.test:@REGISTRY_PORT@/" \\
  > "$out/publish.txt" 2>&1; echo $? > "$out/publish.rc"
cd /
cat "$AILERON_TOOLS_FILE" > "$out/tools.txt"
ps -eo args > "$out/ps.txt" 2>&1
cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' > "$out/environs.txt"
cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' '\\n' > "$out/cmdlines.txt"
ls -A /run/aileron > "$out/run-dir.txt"
cp /run/aileron/ca.pem "$out/ca.pem"
echo '@GH_PATTERN@' | tr -d '[]' > /tmp/canary  # proves the search finds a file holding one
grep -rl -e '@GH_PATTERN@' -e '@NPM_PATTERN@' / --exclude-dir=proc --exclude-dir=sys \\
  --exclude-dir=dev > "$out/holding-secret.txt" 2>/dev/null
rm /tmp/canary
echo 'PRIVATE KEY[-]----' | tr -d '[]' > /tmp/key-canary
grep -rl -e 'PRIVATE KEY[-]----' /run /tmp /home \\
  > "$out/holding-key.txt" 2>/dev/null
echo done > "$out/finished"
"""


@dataclass
class World:
    """The stand-ins on the host: GitHub's git and API, a registry, a plain-http server."""

    ca: PrivateCA
    git: GitHttp
    git_server: TlsUpstream
    api: TlsUpstream
    registry: NpmRegistry
    registry_server: TlsUpstream
    plain: EchoServer


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """The stand-ins, running, with the repository repo.git."""
    ca = PrivateCA(tmp_path, "Stand-in GitHub Root")
    git = GitHttp(tmp_path / "repos", GIT_USER, GH_SECRET)
    git.create("repo.git")
    registry = NpmRegistry(NPM_SECRET)
    with (
        TlsUpstream(ca, ["git.github.test"], git) as git_server,
        TlsUpstream(ca, ["api.github.test"], Echo()) as api,
        TlsUpstream(ca, ["registry.github.test"], registry) as registry_server,
        EchoServer("not-a-real-token") as plain,
    ):
        yield World(ca, git, git_server, api, registry, registry_server, plain)


def _config(world: World) -> str:
    pins = "\n".join(
        f'"{name}" = "127.0.0.1"'
        for name in ("git.github.test", "api.github.test", "registry.github.test")
    )
    return (
        f'[network]\nca_bundle = "{world.ca.pem}"\n\n'
        '[sandbox]\nexpose = ["token/npm/default"]\n\n'
        f"[sandbox.resolve]\n{pins}\n"
    )


@pytest.fixture
def brokering(layout: Layout, world: World, request: pytest.FixtureRequest) -> dict[str, str]:
    """A real daemon (config written first) with both bindings in the vault and exposed; the
    environment to run `aileron` with."""
    layout.home.mkdir(parents=True, exist_ok=True)
    layout.config.write_text(_config(world))
    request.getfixturevalue("real_daemon")
    env = dict(os.environ, AILERON_VAULT_PASSPHRASE=PASSPHRASE)
    git_host = f"git.github.test:{world.git_server.port}"
    api_host = f"api.github.test:{world.api.port}"
    registry_host = f"registry.github.test:{world.registry_server.port}"
    steps = [
        aileron("vault", "init", env=env),
        aileron("binding", "add", "token/github/default", stdin=GH_SECRET + "\n", env=env),
        aileron("binding", "add", "token/npm/default", stdin=NPM_SECRET + "\n", env=env),
        aileron(
            "binding",
            "expose",
            "token/github/default",
            "--host",
            git_host,
            "--host",
            api_host,
            "--as",
            "GH_TOKEN",
            env=env,
        ),  # fmt: skip
        aileron(
            "binding",
            "expose",
            "token/npm/default",
            "--host",
            registry_host,
            "--as",
            "NPM_TOKEN",
            env=env,
        ),  # fmt: skip
    ]
    assert [s.returncode for s in steps] == [0] * len(steps), [s.stderr for s in steps]
    return env


@pytest.fixture(scope="module")
def broker_image(podman: None) -> str:
    """The Node test base plus git, the stand-in agent as codex."""
    return ensure_broker_image()


def _workspace(path: Path, text: str, world: World) -> Path:
    for name, value in (
        ("@GIT_PORT@", str(world.git_server.port)),
        ("@API_PORT@", str(world.api.port)),
        ("@REGISTRY_PORT@", str(world.registry_server.port)),
        ("@PLAIN_PORT@", str(world.plain.port)),
        ("@GH_PATTERN@", _unmatched(GH_SECRET)),
        ("@NPM_PATTERN@", _unmatched(NPM_SECRET)),
    ):
        text = text.replace(name, value)
    assert GH_SECRET not in text and NPM_SECRET not in text
    path.mkdir()
    (path / "agent.sh").write_text(text)
    if os.geteuid() == 0:  # a root launch runs the agent as the workspace's owner
        for each in (path, path / "agent.sh"):
            os.chown(each, 1000, 1000)
    return path


def _launch(
    workspace: Path, env: dict[str, str], engine: str, image: str, world: World
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            script("aileron"),
            "launch",
            f"--sandbox={engine}",
            "--image",
            image,
            "--expose",
            "token/github/default",
            "--allow-host",
            f"127.0.0.1:{world.plain.port}",
            "codex",
        ],  # fmt: skip
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _text(out: Path, name: str) -> str:
    return (out / name).read_text(errors="replace").strip()


def _env(out: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in _text(out, "env.txt").splitlines())
    return {name: value for name, sep, value in pairs if sep}


def _info(layout: Layout) -> DaemonInfo:
    info = read_daemon_info(layout.daemon_json)
    assert info is not None
    return info


def _session(info: DaemonInfo) -> dict[str, Any]:
    with DaemonClient.for_daemon(info) as client:
        sessions: list[dict[str, Any]] = client.get("sessions")
    assert len(sessions) == 1, sessions
    return sessions[0]


def _audit(info: DaemonInfo, session_id: str) -> list[dict[str, Any]]:
    with DaemonClient.for_daemon(info) as client:
        records: list[dict[str, Any]] = client.get("audit", session=session_id, limit=500)
    return records


def _assert_git_and_curl(out: Path, world: World) -> str:
    """Clone and push worked with the sentinel, the server saw only the real token, the echo
    reached the API with the real token and came back without it; the sentinel, returned."""
    env = _env(out)
    sentinel = env["GH_TOKEN"]
    assert sentinel.startswith(SENTINEL_PREFIX) and sentinel != GH_SECRET
    assert _text(out, "clone.rc") == "0", _text(out, "clone.log")
    assert _text(out, "push.rc") == "0", _text(out, "push.log")
    assert world.git.log("repo.git") == ["one mebibyte from the sandbox", "initial"]
    assert set(world.git.credentials) == {(GIT_USER, GH_SECRET)}  # never the sentinel
    pushes = [r for r in world.git_server.requests if r.path.endswith("/git-receive-pack")]
    assert pushes and len(pushes[-1].body) > MIB
    # The API got the real token; the container got the echo without it.
    assert _text(out, "api.code") == "200", _text(out, "api.err")
    assert [r.header("Authorization") for r in world.api.requests] == [f"Bearer {GH_SECRET}"]
    echoed = json.loads(_text(out, "api.json"))
    given = {name.lower(): value for name, value in echoed["headers"]}
    returned = given["authorization"]
    assert returned == f"Bearer {sentinel}" or returned.startswith("Bearer [REDACTED]"), returned
    head = _text(out, "api.head").lower()
    assert "x-echo-authorization: bearer " in head
    assert "x-echo-authorization: bearer " + GH_SECRET.lower() not in head
    for name in ("api.json", "api.head", "env.txt", "git-config.txt", "clone.log", "push.log"):
        assert GH_SECRET not in _text(out, name), name
        assert base64.b64encode(f"{GIT_USER}:{GH_SECRET}".encode()).decode() not in _text(out, name)
    return sentinel


def _assert_audited(info: DaemonInfo, session: dict[str, Any]) -> list[dict[str, Any]]:
    records = _audit(info, session["id"])
    used = [r["payload"] for r in records if r["type"] == "binding.used"]
    paths = {(u["binding"], u["method"], u["path"], u["status"]) for u in used}
    assert ("token/github/default", "POST", "/repo.git/git-receive-pack", 200) in paths, used
    assert ("token/github/default", "GET", "/user", 200) in paths, used
    assert all("?" not in u["path"] for u in used)
    pushed = [u for u in used if u["path"] == "/repo.git/git-receive-pack"]
    assert pushed[-1]["bytes_up"] > MIB
    text = json.dumps(records)
    assert GH_SECRET not in text and NPM_SECRET not in text
    return records


def _host_request(path: str, host: str, port: int, ca: bytes, sentinel: str) -> bytes:
    """GET /user on ``host:port`` through the egress proxy at ``path`` (its Unix socket),
    trusting only the CA ``ca``, with ``sentinel`` as the bearer token: the raw answer."""
    context = ssl.create_default_context(cadata=ca.decode())
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(30)
        raw.connect(path)
        raw.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = raw.recv(4096)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 200"), head
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(
                f"GET /user HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
                f"Authorization: Bearer {sentinel}\r\n\r\n".encode()
            )
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    return answer


def test_podman_agent_uses_git_curl_and_npm_with_sentinels_only(
    layout: Layout,
    brokering: dict[str, str],
    world: World,
    broker_image: str,
    tmp_path: Path,
) -> None:
    """In one podman container: git clone/push, curl and npm whoami work with sentinels; the
    servers saw the real tokens, the container never (env, processes, git config, files, the
    echo); a sentinel sent elsewhere is refused and audited; afterwards the session's CA and
    sentinel are gone and a new session's proxy neither trusts the old CA nor swaps the old
    sentinel."""
    workspace = _workspace(tmp_path / "ws", SCRIPT_GIT_CURL + SCRIPT_MORE, world)
    done = _launch(workspace, brokering, "podman", broker_image, world)
    assert done.returncode == 0, done.stderr
    out = workspace / "out"
    assert _text(out, "finished") == "done"

    # 1-3: git, curl, the echo.
    sentinel = _assert_git_and_curl(out, world)
    env = _env(out)
    npm_sentinel = env["NPM_TOKEN"]
    assert npm_sentinel.startswith(SENTINEL_PREFIX) and npm_sentinel != sentinel
    assert env["SSL_CERT_FILE"] == env["GIT_SSL_CAINFO"] == "/tmp/aileron-ca.pem"
    assert env["NODE_EXTRA_CA_CERTS"] == "/run/aileron/ca.pem"
    # Nothing in the container holds a real token or the CA's key.
    for name in ("env.txt", "ps.txt", "environs.txt", "cmdlines.txt", "git-config.txt"):
        text = _text(out, name)
        assert GH_SECRET not in text and NPM_SECRET not in text, name
    assert sentinel in _text(out, "environs.txt")  # the search did read the environments
    assert _text(out, "holding-secret.txt") == "/tmp/canary"  # the search's own canary only
    assert _text(out, "holding-key.txt") == "/tmp/key-canary"  # no key but the canary
    ca_pem = (out / "ca.pem").read_bytes()
    assert ca_pem.count(b"-----BEGIN CERTIFICATE-----") == 1 and b"PRIVATE" not in ca_pem
    assert "ca.pem" in _text(out, "run-dir.txt").split()

    # 2: the GitHub sentinel elsewhere: another binding's host, a plain-http allowed host.
    assert _text(out, "misuse-registry.code") == "403"
    assert _text(out, "misuse-http.code") == "403"
    assert world.plain.seen == []
    assert sentinel not in world.registry.tokens
    # 4: npm with the registry binding's sentinel in .npmrc ([sandbox] expose).
    assert _text(out, "whoami.rc") == "0", _text(out, "whoami.err")
    assert _text(out, "whoami.txt") == "stand-in-user"
    assert _text(out, "publish.rc") == "0", _text(out, "publish.txt")
    assert "sandbox-package" in world.registry.published
    assert set(world.registry.tokens) == {NPM_SECRET}
    tools = _text(out, "tools.txt")  # the agent is told what it has
    assert "GH_TOKEN" in tools and "NPM_TOKEN" in tools and "api.github.test" in tools, tools

    info = _info(layout)
    session = _session(info)
    assert session["state"] == "ended"
    exposed = {item["binding"]: item for item in session["exposed"]}
    assert set(exposed) == {"token/github/default", "token/npm/default"}
    assert exposed["token/github/default"]["variable"] == "GH_TOKEN"
    assert sentinel not in json.dumps(session) and npm_sentinel not in json.dumps(session)
    shown = aileron("sessions", "show", session["id"], env=brokering)
    assert shown.returncode == 0 and "token/github/default" in shown.stdout, shown.stderr
    records = _assert_audited(info, session)
    misuse = [r["payload"] for r in records if r["type"] == "egress.sentinel_misuse"]
    assert {(m["binding"], m["host"]) for m in misuse} == {
        ("token/github/default", "registry.github.test"),
        ("token/github/default", "127.0.0.1"),
    }
    used = [r["payload"] for r in records if r["type"] == "binding.used"]
    assert ("token/npm/default", "/-/whoami") in {(u["binding"], u["path"]) for u in used}

    # 4: after the session: its run folder (and ca.pem) is gone; a new session gets a new CA
    # and sentinel, and its proxy neither trusts the old CA nor swaps the old sentinel.
    assert not layout.run_dir(session["id"]).exists()
    with DaemonClient.for_daemon(info) as client:
        second = client.post("sessions", {"agent": "codex", "working_dir": str(workspace)})
        endpoints = open_endpoints(client, second["id"], [], ["token/github/default"])
        try:
            assert endpoints.ca_file is not None
            new_ca = Path(endpoints.ca_file).read_bytes()
            assert new_ca != ca_pem
            (new_sentinel,) = (e.sentinel for e in endpoints.exposed if e.variable == "GH_TOKEN")
            assert new_sentinel != sentinel
            egress = endpoints.sockets[1]
            with pytest.raises(ssl.SSLCertVerificationError):
                _host_request(egress, "api.github.test", world.api.port, ca_pem, sentinel)
            before = len(world.api.requests)
            answer = _host_request(egress, "api.github.test", world.api.port, new_ca, sentinel)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            assert [r.header("Authorization") for r in world.api.requests[before:]] == [
                f"Bearer {sentinel}"
            ]
        finally:
            client.post(f"sessions/{second['id']}/end", {"exit_code": 0})
    assert not layout.run_dir(second["id"]).exists()


def test_docker_agent_pushes_and_curls_with_a_sentinel_only(
    layout: Layout,
    brokering: dict[str, str],
    world: World,
    broker_image: str,
    docker_engine: None,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    """In one docker container: git clone and a 1 MiB push and curl work with the sentinel,
    the servers saw the real token, and the echo came back without it."""
    image = load_into_docker(broker_image, DOCKER_IMAGE)
    workspace = _workspace(tmp_path / "ws", SCRIPT_GIT_CURL, world)
    done = _launch(workspace, brokering, "docker", image, world)
    assert done.returncode == 0, done.stderr
    out = workspace / "out"
    _assert_git_and_curl(out, world)
    info = _info(layout)
    session = _session(info)
    assert session["sandbox"]["runtime"] == "docker"
    _assert_audited(info, session)
    assert not layout.run_dir(session["id"]).exists()
