"""The broker with the host's real curl and git: through the session's egress proxy (a TCP
port forwarding to its Unix socket, as the container's bridge does), trusting only the session
CA, with only the sentinel in hand; the upstreams are the TLS stand-ins of
``fakes.tls_upstreams`` with their own private CA (which only the daemon trusts).
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from pathlib import Path

import attrs
import pytest
from fakes.tls_upstreams import Echo, GitHttp, TlsUpstream
from network_support import PrivateCA
from sandbox.broker_support import Audit, Forwarder, Loop, serve, source

from aileron_cli.daemon.egress.broker import Broker, Brokered, new_sentinel
from aileron_cli.daemon.egress.proxies import EgressProxies
from aileron_cli.daemon.store.bindings import parse_exposure
from aileron_core.paths import Layout

TOKEN = "ghp_RealGitHubToken0123456789abcdefXYZ"  # token/github/default's in broker_support
API = "api.github.test"
GIT = "git.github.test"
BINDING = "token/github/default"


@attrs.define
class Session:
    broker: Broker
    proxies: EgressProxies
    forwarder: Forwarder
    audit: Audit
    ca_file: str

    @property
    def sentinel(self) -> str:
        return self.broker.brokered[0].sentinel

    def close(self, loop: Loop) -> None:
        self.forwarder.close()
        loop.run(self.proxies.aclose())


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    done = subprocess.run(  # noqa: S603 - the host's tools with the test's own arguments
        args, capture_output=True, text=True, check=False, env=env, cwd=cwd, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _open(loop: Loop, layout: Layout, ca: PrivateCA, port: int) -> Session:
    """A session brokering token/github/default to both names on ``port``: the broker, the
    forwarder to its proxy, its audit, and the CA file the tools trust."""
    audit = Audit()
    exposure = parse_exposure([f"{API}:{port}", f"{GIT}:{port}"], "GH_TOKEN")
    broker = Broker(
        "tools",
        [Brokered(BINDING, exposure, new_sentinel())],
        secrets=source,
        upstream_tls=ssl.create_default_context(cafile=str(ca.pem)),
        sink=audit,
    )
    allow = [f"{API}:{port}", f"{GIT}:{port}"]
    proxies, proxy = serve(loop, layout, "tools", broker, allow, [API, GIT])
    assert proxy.ca_file is not None
    return Session(broker, proxies, Forwarder(loop, str(proxy.path)), audit, str(proxy.ca_file))


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl on this host")
def test_curl_with_the_sentinel_reaches_the_upstream_with_the_token(
    loop: Loop, layout: Layout, tmp_path: Path
) -> None:
    """curl with `Authorization: Bearer <sentinel>` through the proxy: the upstream got the
    real token, curl's output never holds it (the echo comes back redacted)."""
    ca = PrivateCA(tmp_path, "upstream root")
    with TlsUpstream(ca, [API], Echo()) as upstream:
        session = _open(loop, layout, ca, upstream.port)
        try:
            out = _run(
                [
                    "curl",
                    "-sS",
                    "-i",
                    "--proxy",
                    f"http://127.0.0.1:{session.forwarder.port}",
                    "--cacert",
                    session.ca_file,
                    "-H",
                    f"Authorization: Bearer {session.sentinel}",
                    f"{upstream.url()}/user?page=2",
                ],  # fmt: skip
                env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
            )
        finally:
            session.close(loop)
    assert upstream.requests[-1].header("Authorization") == f"Bearer {TOKEN}"
    assert TOKEN not in out and "[REDACTED]" in out
    assert [used["path"] for used in session.audit.wait("binding.used")] == ["/user"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl on this host")
def test_curl_large_upload_with_expect_continue(loop: Loop, layout: Layout, tmp_path: Path) -> None:
    """A 2 MiB upload that curl sends after `Expect: 100-continue` arrives whole, with the
    token swapped in."""
    ca = PrivateCA(tmp_path, "upstream root")
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(2 << 20))
    with TlsUpstream(ca, [API], Echo()) as upstream:
        session = _open(loop, layout, ca, upstream.port)
        try:
            _run(
                [
                    "curl",
                    "-sS",
                    "-o",
                    "/dev/null",
                    "--fail",
                    "--proxy",
                    f"http://127.0.0.1:{session.forwarder.port}",
                    "--cacert",
                    session.ca_file,
                    "-H",
                    "Expect: 100-continue",
                    "-H",
                    f"Authorization: Bearer {session.sentinel}",
                    "--data-binary",
                    f"@{payload}",
                    f"{upstream.url()}/upload",
                ],  # fmt: skip
                env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
            )
        finally:
            session.close(loop)
    [request] = upstream.requests
    assert request.body == payload.read_bytes()
    assert request.header("Authorization") == f"Bearer {TOKEN}"
    assert request.header("Expect") == "100-continue"


@pytest.mark.skipif(shutil.which("git") is None, reason="no git on this host")
def test_git_clone_and_push_with_the_sentinel_in_the_url(
    loop: Loop, layout: Layout, tmp_path: Path
) -> None:
    """git clone and a 1 MiB push over https with only the sentinel in the URL's user info:
    the server saw the real token (Basic), the push landed, git's config holds the sentinel."""
    ca = PrivateCA(tmp_path, "upstream root")
    server = GitHttp(tmp_path / "repos", "x-access-token", TOKEN)
    server.create("project.git")
    with TlsUpstream(ca, [GIT], server) as upstream:
        session = _open(loop, layout, ca, upstream.port)
        sentinel = session.sentinel
        home = tmp_path / "home"
        home.mkdir()
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_SSL_CAINFO": session.ca_file,
            "https_proxy": f"http://127.0.0.1:{session.forwarder.port}",
        }
        url = f"https://x-access-token:{sentinel}@{GIT}:{upstream.port}/project.git"
        work = tmp_path / "work"
        try:
            _run(["git", "clone", "-q", url, str(work)], env)
            (work / "blob.bin").write_bytes(os.urandom(1 << 20))
            identity = ["-c", "user.name=Agent", "-c", "user.email=agent@example.test"]
            _run(["git", "add", "blob.bin"], env, cwd=work)
            _run(["git", *identity, "commit", "-q", "-m", "a MiB"], env, cwd=work)
            _run(["git", "push", "-q", "origin", "main"], env, cwd=work)
        finally:
            session.close(loop)
        config = (work / ".git" / "config").read_text()
    assert server.log("project.git")[0] == "a MiB"
    assert ("x-access-token", TOKEN) in server.credentials
    assert sentinel in config and TOKEN not in config
    used = session.audit.wait("binding.used", 4)
    assert {u["method"] for u in used} >= {"GET", "POST"}
    assert any(u["path"].endswith("git-receive-pack") and u["status"] == 200 for u in used)


NODE_CLIENT = """
const net = require("net"), tls = require("tls");
const [proxyPort, host, port, sentinel] = process.argv.slice(1);
const raw = net.connect(Number(proxyPort), "127.0.0.1", () => {
  raw.write(`CONNECT ${host}:${port} HTTP/1.1\\r\\nHost: ${host}:${port}\\r\\n\\r\\n`);
});
raw.once("data", (head) => {
  if (!head.toString().startsWith("HTTP/1.1 200")) {
    console.error(head.toString());
    process.exit(2);
  }
  const secure = tls.connect({ socket: raw, servername: host }, () => {
    secure.write(`GET /whoami HTTP/1.1\\r\\nHost: ${host}\\r\\nAuthorization: Bearer ${sentinel}` +
                 `\\r\\nConnection: close\\r\\n\\r\\n`);
  });
  let out = "";
  secure.on("data", (d) => { out += d; });
  secure.on("end", () => { process.stdout.write(out); });
  secure.on("error", (e) => { console.error(String(e)); process.exit(3); });
});
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="no node on this host")
def test_node_trusts_the_session_ca_through_node_extra_ca_certs(
    loop: Loop, layout: Layout, tmp_path: Path
) -> None:
    """Node (npm's runtime) accepts the name-constrained session CA from
    NODE_EXTRA_CA_CERTS, and its request is brokered."""
    ca = PrivateCA(tmp_path, "upstream root")
    with TlsUpstream(ca, [API], Echo()) as upstream:
        session = _open(loop, layout, ca, upstream.port)
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
        env["NODE_EXTRA_CA_CERTS"] = session.ca_file
        args = [str(session.forwarder.port), API, str(upstream.port), session.sentinel]
        try:
            out = _run(["node", "-e", NODE_CLIENT, *args], env)
        finally:
            session.close(loop)
    assert out.startswith("HTTP/1.1 200")
    assert upstream.requests[-1].header("Authorization") == f"Bearer {TOKEN}"
    assert TOKEN not in out
