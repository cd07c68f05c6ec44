"""A session's egress proxy with brokered bindings (issue #19): what the egress route checks
and answers, what the session keeps, and the secret the broker gets per request.

The daemon runs in-process with its real egress proxy on its real Unix socket; the upstream is
a real TLS server on 127.0.0.1 with a private CA of the test's own, trusted by the daemon
through ``[network] ca_bundle`` and reached through a ``[sandbox.resolve]`` pin.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actions.support import echo_spec
from enclave.support import EnclaveProcess
from fakes.tls_upstreams import Echo, TlsUpstream
from fastapi.testclient import TestClient
from helpers import admin_http, aileron
from network_support import PrivateCA

from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

NAME = "token/github/default"
SECRET = "ghp_brokered-SECRET-0c9d4a"  # noqa: S105 (a test's own secret)
HOST = "api.github.test"
ECHO = "token/echo/default"
SENTINEL = re.compile(r"aileron-sentinel-[a-z2-7]{32}")


def _audit(layout: Layout, type: str) -> list[dict[str, Any]]:
    lines = layout.audit.read_text().splitlines()
    return [record for line in lines if (record := json.loads(line))["type"] == type]


@pytest.fixture
def upstream_ca(tmp_path: Path, layout: Layout) -> PrivateCA:
    """A private CA the daemon trusts (``[network] ca_bundle``, written before it starts)."""
    ca = PrivateCA(tmp_path, "Brokered Upstream Root")
    layout.config.parent.mkdir(parents=True, exist_ok=True)
    layout.config.write_text(f'[network]\nca_bundle = "{ca.pem}"\n')
    return ca


@pytest.fixture
def upstream(upstream_ca: PrivateCA) -> Iterator[TlsUpstream]:
    """An echoing TLS upstream for api.github.test on 127.0.0.1."""
    with TlsUpstream(upstream_ca, [HOST], Echo()) as server:
        yield server


@pytest.fixture
def bound(upstream_ca: PrivateCA, api: TestClient) -> TestClient:
    """The daemon (trusting the upstream's CA) with an unlocked vault holding the binding."""
    assert api.post("vault/init", json={"passphrase": "correct horse"}).status_code == 201
    assert api.post("bindings", json={"name": NAME, "value": SECRET}).status_code == 201
    return api


def _expose(api: TestClient, name: str, hosts: list[str], variable: str = "GH_TOKEN") -> None:
    answer = api.put(f"bindings/{name}/exposure", json={"hosts": hosts, "variable": variable})
    assert answer.status_code == 200, answer.text


def _session(api: TestClient) -> str:
    return str(api.post("sessions", json={"agent": "codex", "working_dir": "/w"}).json()["id"])


def _settings(layout: Layout, lines: str) -> None:
    """Add ``lines`` (a `[sandbox]` table) to config.toml, after the `[network]` table."""
    layout.config.write_text(layout.config.read_text() + lines)


def _brokered_get(socket_path: str, ca_file: str, port: int, authorization: str) -> bytes:
    """A GET to api.github.test through the proxy, trusting the session CA: the answer."""
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.settimeout(20)
    raw.connect(socket_path)
    raw.sendall(f"CONNECT {HOST}:{port} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = raw.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    context = ssl.create_default_context(cafile=ca_file)
    with context.wrap_socket(raw, server_hostname=HOST) as tls:
        tls.sendall(
            f"GET /user?x=1 HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: {authorization}"
            "\r\nConnection: close\r\n\r\n".encode()
        )
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_egress_brokers_exposed_bindings_and_the_session_keeps_no_sentinel(
    bound: TestClient, layout: Layout, upstream: TlsUpstream
) -> None:
    """`[sandbox] expose` and the body's `expose` are merged; the answer gives a sentinel per
    binding and the CA file; the hosts are allowed; the session and the audit name the
    bindings and hosts but hold no sentinel; the upstream sees the real secret, the agent's
    side never does; a second call answers the same (200)."""
    host = f"{HOST}:{upstream.port}"
    _expose(bound, NAME, [host])
    bound.post("bindings", json={"name": "token/npm/default", "value": "npm_SECRET_2"})
    _expose(bound, "token/npm/default", ["registry.npm.test"], "NPM_TOKEN")
    _settings(
        layout, f'[sandbox]\nexpose = ["{NAME}"]\n[sandbox.resolve]\n"{HOST}" = "127.0.0.1"\n'
    )
    session_id = _session(bound)
    url = f"sessions/{session_id}/egress"
    answer = bound.post(url, json={"allow": [], "expose": ["token/npm/default", NAME]})
    assert answer.status_code == 201, answer.text
    out = answer.json()
    assert [(e["binding"], e["variable"], e["hosts"]) for e in out["exposed"]] == [
        (NAME, "GH_TOKEN", [host]),
        ("token/npm/default", "NPM_TOKEN", ["registry.npm.test"]),
    ]
    sentinels = [e["sentinel"] for e in out["exposed"]]
    assert all(SENTINEL.fullmatch(s) for s in sentinels) and len(set(sentinels)) == 2
    assert out["ca_file"] == str(layout.run_dir(session_id) / "ca.pem")
    assert Path(out["ca_file"]).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert out["allow"] == [host, "registry.npm.test:443"]
    assert bound.post(url, json={"allow": []}).json() == out  # the open proxy, as it is

    shown = bound.get(f"sessions/{session_id}").json()
    assert shown["exposed"] == [
        {"binding": NAME, "variable": "GH_TOKEN", "hosts": [host]},
        {"binding": "token/npm/default", "variable": "NPM_TOKEN", "hosts": ["registry.npm.test"]},
    ]
    [opened] = _audit(layout, "session.egress_opened")
    assert opened["payload"]["exposed"] == shown["exposed"]

    echoed = _brokered_get(out["socket"], out["ca_file"], upstream.port, f"Bearer {sentinels[0]}")
    assert echoed.startswith(b"HTTP/1.1 200"), echoed[:200]
    assert [r.header("Authorization") for r in upstream.requests] == [f"Bearer {SECRET}"]
    assert SECRET.encode() not in echoed
    for path in (layout.sessions, layout.audit):
        text = path.read_text()
        assert not any(s in text for s in sentinels) and SECRET not in text


def test_lock_and_unexpose_take_effect_at_the_next_request(
    bound: TestClient, layout: Layout, upstream: TlsUpstream
) -> None:
    """The broker reads the secret per request: with the vault locked, or the exposure
    removed, a brokered request is answered 503 naming the binding and never forwarded."""
    _expose(bound, NAME, [f"{HOST}:{upstream.port}"])
    _settings(layout, f'[sandbox.resolve]\n"{HOST}" = "127.0.0.1"\n')
    session_id = _session(bound)
    out = bound.post(f"sessions/{session_id}/egress", json={"expose": [NAME]}).json()
    sentinel = out["exposed"][0]["sentinel"]

    def ask() -> bytes:
        return _brokered_get(out["socket"], out["ca_file"], upstream.port, f"Bearer {sentinel}")

    assert ask().startswith(b"HTTP/1.1 200")
    assert bound.post("vault/lock").status_code == 200
    locked = ask()
    assert locked.startswith(b"HTTP/1.1 503") and b"vault is locked" in locked
    assert bound.post("vault/unlock", json={"passphrase": "correct horse"}).status_code == 200
    assert ask().startswith(b"HTTP/1.1 200")
    bound.delete(f"bindings/{NAME}/exposure")
    gone = ask()
    assert gone.startswith(b"HTTP/1.1 503") and b"not exposed" in gone
    assert len(upstream.requests) == 2


def _refused(api: TestClient, layout: Layout, expose: list[str], status: int, code: str) -> str:
    """Open a new session's egress with ``expose``: refused with ``status``/``code``, no proxy,
    no exposure on the session and no audit. The error message."""
    session_id = _session(api)
    answer = api.post(f"sessions/{session_id}/egress", json={"expose": expose})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    assert not (layout.run_dir(session_id) / "egress.sock").exists()
    assert api.get(f"sessions/{session_id}").json()["exposed"] == []
    assert _audit(layout, "session.egress_opened") == []
    message: str = answer.json()["error"]["message"]
    return message


def test_bindings_that_cannot_be_brokered_are_refused_clearly(
    bound: TestClient, layout: Layout
) -> None:
    """A binding without an exposure (412 binding_not_exposed), two bindings on one variable
    (422), a locked vault (412 binding_required) each name the binding; nothing opens. A bad
    `[sandbox] expose` entry is the daemon's invalid_config (500, as for `allow`)."""
    assert NAME in _refused(bound, layout, [NAME], 412, "binding_not_exposed")
    _expose(bound, NAME, ["github.com"])
    bound.post("bindings", json={"name": "token/github/other", "value": "x-SECRET-2"})
    _expose(bound, "token/github/other", ["api.github.com"])
    both = _refused(bound, layout, [NAME, "token/github/other"], 422, "invalid_exposure")
    assert "both exposed as GH_TOKEN" in both
    bound.post("vault/lock")
    locked = _refused(bound, layout, [NAME], 412, "binding_required")
    assert "vault is locked" in locked and NAME in locked
    _settings(layout, '[sandbox]\nexpose = ["github"]\n')
    assert "'github' is not a binding name" in _refused(bound, layout, [], 500, "invalid_config")


def test_unknown_binding_message_names_it(bound: TestClient, layout: Layout) -> None:
    """The 404 for an unknown binding names it and how to add it."""
    message = _refused(bound, layout, ["token/github/nope"], 404, "binding_not_found")
    assert "token/github/nope" in message


def test_a_session_without_exposures_is_as_before(bound: TestClient, layout: Layout) -> None:
    """No expose: no CA file, an empty `exposed`, the allow list unchanged."""
    session_id = _session(bound)
    out = bound.post(f"sessions/{session_id}/egress", json={"allow": ["github.com"]}).json()
    assert out["exposed"] == [] and out["ca_file"] is None and out["allow"] == ["github.com"]
    assert not (layout.run_dir(session_id) / "ca.pem").exists()


def test_an_escrowed_binding_cannot_be_exposed_or_brokered(
    real_daemon: DaemonInfo, tmp_path: Path
) -> None:
    """Once the enclave holds a binding's secret, exposing it again is 409 binding_escrowed,
    and a session that names it is refused 409 binding_escrowed naming it: the daemon cannot
    broker a secret it does not hold."""
    env = dict(os.environ, AILERON_VAULT_PASSPHRASE="demo passphrase")
    spec = tmp_path / "echo.json"
    spec.write_text(json.dumps(echo_spec("127.0.0.1:9")))  # a connector of service "echo"
    for args, stdin in (
        (("vault", "init"), None),
        (("connector", "install", str(spec)), None),
        (("binding", "add", ECHO), SECRET + "\n"),
        (("binding", "expose", ECHO, "--host", "github.com", "--as", "GH_TOKEN"), None),
    ):
        done = aileron(*args, stdin=stdin, env=env)
        assert done.returncode == 0, done.stderr
    enclave = EnclaveProcess(tmp_path / "enclave-data").start()
    try:
        attached = aileron(
            "enclave", "attach", enclave.url, "--fingerprint", enclave.fingerprint,
            "--code-file", str(enclave.code_file), env=env,
        )  # fmt: skip
        assert attached.returncode == 0, attached.stderr
        escrowed = aileron("binding", "escrow", ECHO, env=env)
        assert escrowed.returncode == 0, escrowed.stderr
        again = aileron("binding", "expose", ECHO, "--host", "github.com", "--as", "GH_TOKEN")
        assert again.returncode == 1 and "escrowed in the enclave" in again.stderr
        with admin_http(real_daemon) as http:
            session = http.post("sessions", json={"agent": "codex", "working_dir": "/w"}).json()
            answer = http.post(f"sessions/{session['id']}/egress", json={"expose": [ECHO]})
            assert answer.status_code == 409, answer.text
            error = answer.json()["error"]
            assert error["code"] == "binding_escrowed" and ECHO in error["message"]
            assert http.get(f"sessions/{session['id']}").json()["exposed"] == []
    finally:
        enclave.stop()
