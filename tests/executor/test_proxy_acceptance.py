"""Issue #17, acceptance 3: behind a corporate proxy. A real daemon with HTTPS_PROXY and a
private CA ([network] ca_bundle) runs an action and serves the gateway through a real local
CONNECT proxy to a TLS upstream only the proxy can name; the proxy never sees the credential;
with NO_PROXY matching, the proxy sees nothing."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import admin_http, aileron, kill_daemon
from network_support import ConnectProxy, PrivateCA, outward_address

from aileron_core.discovery import DaemonInfo, read_daemon_info
from aileron_core.paths import Layout

ACTION_SECRET = "tok_action-S3cr3t-for-the-upstream-only"  # noqa: S105 (a test credential)
GATEWAY_KEY = "sk-gateway-key-for-the-provider-only"
NAME = "upstream.test"
"""The upstream's name: no resolver knows it, only the proxy's own map."""


class TlsUpstream:
    """An HTTPS server on ``address`` whose certificate the private CA signed for ``NAME``
    and ``address``; it answers every request with what it received, as JSON."""

    def __init__(self, ca: PrivateCA, address: str) -> None:
        self.seen: list[dict[str, Any]] = []
        self._httpd = ThreadingHTTPServer((address, 0), _Echo)
        self._httpd.daemon_threads = True
        self._httpd.upstream = self  # type: ignore[attr-defined]
        context = ca.server_context(NAME, address)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.address = address

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def __enter__(self) -> TlsUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""

    def _serve(self) -> None:
        upstream: TlsUpstream = self.server.upstream  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = {
            "method": self.command,
            "path": self.path,
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        upstream.seen.append(seen)
        answer = json.dumps({"id": "chatcmpl-1", "object": "echo", "seen": seen}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = _serve


def connector(host: str) -> dict[str, Any]:
    """A connector whose one operation calls ``https://<host>/echo`` with a bearer token."""
    return {
        "schema_version": "aileron.connector.v1",
        "connector": {"fqn": "local://behind", "version": "1.0.0", "description": "Echoes."},
        "credential": {"service": "behind", "kind": "bearer"},
        "tools": [
            {
                "name": "echo",
                "description": "Echo.",
                "operations": [
                    {
                        "name": "call",
                        "summary": "Call the upstream.",
                        "method": "GET",
                        "path": "/echo",
                        "hosts": [host],
                        "scheme": "https",
                        "idempotency": "idempotent",
                    }
                ],
            }
        ],
    }


MANIFEST = """+++
name = "behind-echo"
version = "1.0.0"

[[requires.connectors]]
fqn = "local://behind"
version = "1.0.0"

[[execute]]
id = "call"
connector = "local://behind"
tool = "echo"
op = "call"
args = {}
+++
Call the upstream behind the proxy.
"""


@pytest.fixture
def address() -> str:
    """This machine's outward (not loopback) IPv4 address: reachable directly, and not
    exempted from the proxy by the loopback rule."""
    found = outward_address()
    if found is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    return found


@pytest.fixture
def ca(tmp_path: Path) -> PrivateCA:
    return PrivateCA(tmp_path)


def start_daemon(
    layout: Layout,
    ca: PrivateCA,
    provider_url: str,
    monkeypatch: pytest.MonkeyPatch,
    **environ: str,
) -> DaemonInfo:
    """A real daemon trusting the private CA ([network] ca_bundle) with ``environ`` (the
    proxy variables) in the CLI's environment, its gateway's openai at ``provider_url``."""
    for name in (
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    layout.ensure()
    layout.config.write_text(
        f'[network]\nca_bundle = "{ca.pem}"\n\n[gateway.openai]\nbase_url = "{provider_url}"\n'
    )
    done = aileron("daemon", "start")
    assert done.returncode == 0, done.stderr
    info = read_daemon_info(layout.daemon_json)
    assert info is not None
    return info


def exercise(
    info: DaemonInfo, host: str, working_dir: Path
) -> tuple[dict[str, Any], httpx.Response]:
    """Set up a connector, an action and both credentials; run the action with the CLI and
    send one chat completion through the gateway with a session's token."""
    with admin_http(info) as admin:
        admin.post("vault/init", json={"passphrase": "pw"}).raise_for_status()
        admin.post("connectors", json={"spec": connector(host)}).raise_for_status()
        admin.post("actions", json={"manifest": MANIFEST}).raise_for_status()
        for name, value in (
            ("token/behind/default", ACTION_SECRET),
            ("api_key/openai/default", GATEWAY_KEY),
        ):
            admin.post("bindings", json={"name": name, "value": value}).raise_for_status()
        made = admin.post("sessions", json={"agent": "codex", "working_dir": str(working_dir)})
        made.raise_for_status()
        token = made.json()["token"]
    done = aileron("action", "run", "behind-echo", "--json")
    assert done.returncode == 0, done.stderr
    ran = json.loads(done.stdout)
    answer = httpx.post(
        f"{info.url}/v1/gateway/openai/v1/chat/completions",
        json={"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    return ran, answer


def assert_reached_with_credentials(upstream: TlsUpstream) -> None:
    """The upstream got the action's token and the gateway's key, each once."""
    assert [seen["path"] for seen in upstream.seen] == ["/echo", "/v1/chat/completions"]
    assert upstream.seen[0]["headers"]["authorization"] == f"Bearer {ACTION_SECRET}"
    assert upstream.seen[1]["headers"]["authorization"] == f"Bearer {GATEWAY_KEY}"


def test_actions_and_the_gateway_work_through_the_proxy_which_never_sees_a_credential(
    layout: Layout, ca: PrivateCA, address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTPS_PROXY and the private CA configured, an action run and a gateway request
    reach an upstream the daemon cannot resolve itself (so only through the proxy); the proxy
    got two CONNECTs without credentials and then ciphertext: neither secret, nor the header
    that carries them, nor the paths."""
    with (
        TlsUpstream(ca, address) as upstream,
        ConnectProxy(hosts={NAME: address}).running() as proxy,
    ):
        origin = f"{NAME}:{upstream.port}"
        info = start_daemon(layout, ca, f"https://{origin}", monkeypatch, HTTPS_PROXY=proxy.url)
        try:
            ran, answer = exercise(info, origin, tmp_path)
        finally:
            kill_daemon(layout)
        assert ran["result"]["seen"]["path"] == "/echo", ran
        assert answer.status_code == 200, answer.text
        assert answer.json()["seen"]["path"] == "/v1/chat/completions"
        assert_reached_with_credentials(upstream)
        expected = b"CONNECT %b HTTP/1.1\r\nHost: %b\r\n\r\n" % (origin.encode(), origin.encode())
        assert proxy.connects == [expected, expected]
        received = proxy.received
        for secret in (ACTION_SECRET, GATEWAY_KEY, "Bearer", "authorization", "/echo", "/v1/chat"):
            assert secret.encode() not in received
            assert secret.lower().encode() not in received.lower()


def test_no_proxy_bypasses_the_proxy(
    layout: Layout, ca: PrivateCA, address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With NO_PROXY naming the upstream's address, the daemon goes there directly: the
    proxy (still set for https) receives nothing at all."""
    with TlsUpstream(ca, address) as upstream, ConnectProxy().running() as proxy:
        origin = f"{address}:{upstream.port}"
        info = start_daemon(
            layout,
            ca,
            f"https://{origin}",
            monkeypatch,
            HTTPS_PROXY=proxy.url,
            NO_PROXY=f"example.com,{address}",
        )
        try:
            ran, answer = exercise(info, origin, tmp_path)
        finally:
            kill_daemon(layout)
        assert ran["result"]["seen"]["path"] == "/echo", ran
        assert answer.status_code == 200, answer.text
        assert_reached_with_credentials(upstream)
        assert proxy.received == b""
        assert proxy.connects == []
