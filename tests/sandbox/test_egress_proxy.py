"""The per-session egress proxy: default deny, CONNECT tunnels, plain http, audit, lifecycle.

The daemon runs in-process (its event loop in the test client's thread) or as a real process;
the proxy is reached on its real Unix socket, and the outside world is a TCP echo server and a
tiny HTTP server on 127.0.0.1 (so the allow entries that reach them are IP literals).
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers import admin_http

from aileron_cli.daemon.egress.proxies import EgressPolicy, denial_message, parse_head
from aileron_cli.sandbox.config import (
    SandboxConfig,
    load_sandbox_config,
    normalize_host,
    parse_allow_entry,
)
from aileron_core.discovery import DaemonInfo
from aileron_core.errors import ConfigError
from aileron_core.paths import Layout

# --- the outside world ------------------------------------------------------------------------


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP echo server on 127.0.0.1 (what a tunnel reaches)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class _Web(BaseHTTPRequestHandler):
    seen: list[tuple[str, dict[str, str]]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        _Web.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        body = b"hello from upstream"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def web_port() -> Iterator[int]:
    """A tiny HTTP server on 127.0.0.1 that records each request's path and headers."""
    _Web.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Web)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


# --- talking to the proxy ---------------------------------------------------------------------


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _ask(path: str, raw: bytes) -> bytes:
    """Send ``raw`` on a new proxy connection, half-close, and read the whole answer."""
    with _connect(path) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        return _read_all(sock)


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        assert chunk, data
        data += chunk
    return data


def _records(layout: Layout, type: str, count: int = 1) -> list[dict[str, Any]]:
    """The audit records of ``type``, waiting (a connection records itself as it ends)."""
    deadline = time.monotonic() + 10
    while True:
        found = [
            record
            for line in layout.audit.read_text().splitlines()
            if (record := json.loads(line))["type"] == type
        ]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _open(api: TestClient, allow: list[str]) -> tuple[str, str]:
    """A new session and its egress proxy allowing ``allow``: (session id, socket path)."""
    session = api.post("sessions", json={"agent": "codex", "working_dir": "/w"}).json()
    answer = api.post(f"sessions/{session['id']}/egress", json={"allow": allow})
    assert answer.status_code == 201, answer.text
    return session["id"], answer.json()["socket"]


# --- policy and parsing -----------------------------------------------------------------------


def test_entries_parse_to_canonical_forms() -> None:
    """Host, host:port, *.domain and IP literals parse; names are lower-case IDNA."""
    assert str(parse_allow_entry("GitHub.com")) == "github.com"
    assert str(parse_allow_entry("api.github.com:443")) == "api.github.com:443"
    assert str(parse_allow_entry("*.Example.COM")) == "*.example.com"
    assert str(parse_allow_entry("bücher.de")) == "xn--bcher-kva.de"
    assert str(parse_allow_entry("[::1]:8080")) == "[::1]:8080"
    assert str(parse_allow_entry("127.0.0.1")) == "127.0.0.1"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "https://github.com",
        "github.com/x",
        "a b",
        "github.com:0",
        "github.com:99999",
        "github.com:x",
        "*",
        "a.*.com",
        "*.127.0.0.1",
        "-bad-.com",
        "[::1",
        "u@host",
    ],
)
def test_bad_entries_name_the_entry(text: str) -> None:
    """A malformed entry is a ConfigError that quotes it and says where it came from."""
    with pytest.raises(ConfigError) as caught:
        parse_allow_entry(text, "--allow-host")
    assert repr(text) in str(caught.value) and "--allow-host" in str(caught.value)


def test_policy_ports_and_wildcards() -> None:
    """`host` allows 443 and 80 only, `host:port` that port, `*.domain` subdomains only."""
    policy = EgressPolicy(
        tuple(parse_allow_entry(t) for t in ("github.com", "db.internal:5432", "*.example"))
    )
    assert policy.allows("github.com", 443) and policy.allows("github.com", 80)
    assert not policy.allows("github.com", 22)
    assert not policy.allows("api.github.com", 443)
    assert policy.allows("db.internal", 5432) and not policy.allows("db.internal", 443)
    assert policy.allows("a.example", 443) and policy.allows("a.b.example", 80)
    assert not policy.allows("example", 443) and not policy.allows("badexample", 443)
    assert not policy.allows("a.example", 8443)
    assert policy.allows(normalize_host("A.EXAMPLE."), 443)


def test_special_addresses_need_their_literal() -> None:
    """Loopback, link-local and unspecified addresses (mapped too) only by their own entry."""
    import ipaddress

    open_policy = EgressPolicy((parse_allow_entry("anything.test"),))
    for text in ("127.0.0.1", "::1", "169.254.169.254", "fe80::1", "0.0.0.0", "::ffff:127.0.0.1"):
        assert not open_policy.allows_address(ipaddress.ip_address(text), 443), text
    assert open_policy.allows_address(ipaddress.ip_address("192.0.2.7"), 443)
    literal = EgressPolicy((parse_allow_entry("127.0.0.1:8080"),))
    assert literal.allows_address(ipaddress.ip_address("127.0.0.1"), 8080)
    assert not literal.allows_address(ipaddress.ip_address("127.0.0.1"), 443)


def test_config_reads_sandbox_allow(layout: Layout) -> None:
    """`[sandbox] allow` is read from config.toml; an unknown key or bad entry is refused."""
    assert load_sandbox_config(layout.config) == SandboxConfig()
    layout.ensure()
    layout.config.write_text('[sandbox]\nallow = ["GitHub.com", "*.npmjs.org:443"]\n')
    assert load_sandbox_config(layout.config).allow == ("github.com", "*.npmjs.org:443")
    layout.config.write_text('[sandbox]\nallow = ["github.com/x"]\n')
    with pytest.raises(ConfigError, match="sandbox.allow in .*'github.com/x'"):
        load_sandbox_config(layout.config)
    layout.config.write_text("[sandbox]\nallw = []\n")
    with pytest.raises(ConfigError, match="unknown setting 'allw'"):
        load_sandbox_config(layout.config)


def test_forwarded_head_drops_proxy_headers() -> None:
    """An absolute-form request goes upstream in origin form with the URL's Host."""
    from aileron_cli.daemon.egress.proxies import forwarded_head

    request = parse_head(
        b"GET http://Example.org:8080/a?b=c HTTP/1.1\r\nHost: evil\r\n"
        b"Proxy-Authorization: Basic x\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n"
        b"Accept: */*\r\n\r\n"
    )
    head = forwarded_head(request).decode()
    assert head.startswith("GET /a?b=c HTTP/1.1\r\nHost: example.org:8080\r\n")
    assert "Proxy-" not in head and "X-Drop" not in head and "evil" not in head
    assert "Accept: */*\r\n" in head and head.endswith("Connection: close\r\n\r\n")


# --- the proxy in a daemon --------------------------------------------------------------------


def test_connect_tunnels_both_ways_and_is_audited(
    api: TestClient, layout: Layout, echo_port: int
) -> None:
    """An allowed CONNECT answers 200, pipes bytes both ways, and records the byte counts."""
    session_id, path = _open(api, [f"127.0.0.1:{echo_port}"])
    with _connect(path) as sock:
        sock.sendall(f"CONNECT 127.0.0.1:{echo_port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert _read_head(sock).startswith(b"HTTP/1.1 200 ")
        payload = b"x" * 300_000  # more than a socket buffer: backpressure in both pumps
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)  # a half-close reaches the echo, which then closes
        assert _read_all(sock) == payload
    [record] = _records(layout, "egress.allowed")
    assert record["session_id"] == session_id
    assert record["actor"] == {"type": "agent", "id": f"session:{session_id}"}
    payload_seen = record["payload"]
    assert payload_seen["host"] == "127.0.0.1" and payload_seen["port"] == echo_port
    assert payload_seen["method"] == "CONNECT"
    assert payload_seen["bytes_up"] == payload_seen["bytes_down"] == 300_000


def test_denied_host_gets_403_with_the_hint(api: TestClient, layout: Layout) -> None:
    """A host outside the allow-list gets 403 naming the fix, recorded as egress.denied."""
    session_id, path = _open(api, ["github.com"])
    answer = _ask(path, b"CONNECT evil.test:443 HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert denial_message("evil.test", 443).encode() in answer
    assert b"--allow-host evil.test" in answer
    [record] = _records(layout, "egress.denied")
    assert record["session_id"] == session_id
    assert record["payload"] == {
        "host": "evil.test",
        "port": 443,
        "reason": "not in the allow-list",
    }


def test_plain_http_is_forwarded_without_proxy_headers(
    api: TestClient, layout: Layout, web_port: int
) -> None:
    """An absolute-form GET reaches the upstream in origin form, minus Proxy-Authorization."""
    _, path = _open(api, [f"127.0.0.1:{web_port}"])
    answer = _ask(
        path,
        f"GET http://127.0.0.1:{web_port}/hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Proxy-Authorization: Basic c2VjcmV0\r\nX-Keep: yes\r\n\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.0 200 ") and answer.endswith(b"hello from upstream")
    [(target, headers)] = _Web.seen
    assert target == "/hello?x=1"
    assert "proxy-authorization" not in headers and headers["x-keep"] == "yes"
    assert headers["connection"] == "close"
    [record] = _records(layout, "egress.allowed")
    assert record["payload"]["method"] == "GET" and record["payload"]["bytes_down"] == len(answer)


def test_wildcard_and_port_rules_through_the_proxy(api: TestClient, layout: Layout) -> None:
    """`*.example` lets a subdomain on 443 through (to resolution) but not the apex or port 22."""
    _, path = _open(api, ["*.example"])
    assert _ask(path, b"CONNECT example:443 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 403 ")
    assert _ask(path, b"CONNECT a.example:22 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 403 ")
    passed = _ask(path, b"CONNECT a.b.example:443 HTTP/1.1\r\n\r\n")
    assert passed.startswith(b"HTTP/1.1 502 ")  # allowed; the name does not resolve here
    denied = _records(layout, "egress.denied", 2)
    assert [(r["payload"]["host"], r["payload"]["port"]) for r in denied] == [
        ("example", 443),
        ("a.example", 22),
    ]
    [failed] = _records(layout, "egress.allowed")
    assert failed["payload"]["host"] == "a.b.example" and "resolve" in failed["payload"]["error"]


def test_name_resolving_to_loopback_needs_the_literal(
    api: TestClient, layout: Layout, echo_port: int
) -> None:
    """`localhost` (127.0.0.1) is refused when only its name is allowed, tunnels with the IP."""
    _, path = _open(api, [f"localhost:{echo_port}"])
    refused = _ask(path, f"CONNECT localhost:{echo_port} HTTP/1.1\r\n\r\n".encode())
    assert refused.startswith(b"HTTP/1.1 403 ")
    [denied] = _records(layout, "egress.denied")
    assert "127.0.0.1" in denied["payload"]["reason"]
    _, path = _open(api, [f"localhost:{echo_port}", f"127.0.0.1:{echo_port}"])
    with _connect(path) as sock:
        sock.sendall(f"CONNECT localhost:{echo_port} HTTP/1.1\r\n\r\n".encode())
        assert _read_head(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /local HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # origin form: not a proxy request
        (b"GET https://github.com/ HTTP/1.1\r\n\r\n", 400),  # https needs CONNECT
        (b"BREW http://github.com/ HTTP/1.1\r\n\r\n", 405),
        (b"CONNECT github.com HTTP/1.1\r\n\r\n", 400),  # no port
        (b"garbage\r\n\r\n", 400),
        (b"GET http://github.com/ HTTP/1.1\r\nbad header\r\n\r\n", 400),
        (b"GET http://github.com/ HTTP/1.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n", 400),
        (b"CONNECT under_score.test:443 HTTP/1.1\r\n\r\n", 400),
    ],
)
def test_malformed_requests_get_4xx_and_the_proxy_lives(
    api: TestClient, echo_port: int, raw: bytes, status: int
) -> None:
    """Requests the proxy does not serve get a clear 400/405; the next request still works."""
    _, path = _open(api, ["github.com", f"127.0.0.1:{echo_port}"])
    answer = _ask(path, raw)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    with _connect(path) as sock:
        sock.sendall(f"CONNECT 127.0.0.1:{echo_port} HTTP/1.1\r\n\r\n".encode())
        assert _read_head(sock).startswith(b"HTTP/1.1 200 ")


def test_route_validates_and_reopens(api: TestClient, layout: Layout) -> None:
    """A bad entry is 422 naming it; a second open returns the same proxy (200); config.toml's
    `[sandbox] allow` comes first in the effective list."""
    layout.config.write_text('[sandbox]\nallow = ["github.com"]\n')
    session = api.post("sessions", json={"agent": "codex", "working_dir": "/w"}).json()
    url = f"sessions/{session['id']}/egress"
    bad = api.post(url, json={"allow": ["https://x.test"]})
    assert bad.status_code == 422 and "'https://x.test'" in bad.json()["error"]["message"]
    first = api.post(url, json={"allow": ["PyPI.org:443"]})
    assert first.status_code == 201
    assert first.json()["allow"] == ["github.com", "pypi.org:443"]
    socket_path = Path(first.json()["socket"])
    assert socket_path == layout.run_dir(session["id"]) / "egress.sock"
    assert socket_path.stat().st_mode & 0o777 == 0o600
    assert socket_path.parent.stat().st_mode & 0o777 == 0o700
    again = api.post(url, json={"allow": []})
    assert again.status_code == 200 and again.json() == first.json()
    api.post(f"sessions/{session['id']}/end", json={"exit_code": 0})
    ended = api.post(url, json={"allow": []})
    assert ended.status_code == 409 and ended.json()["error"]["code"] == "session_ended"


def test_proxy_closes_with_session_and_daemon(
    real_daemon: DaemonInfo, layout: Layout, echo_port: int
) -> None:
    """Ending the session removes the socket and cuts its tunnel; stopping the daemon closes
    the rest (a real daemon process)."""
    from helpers import aileron

    with admin_http(real_daemon) as admin:
        paths = []
        for _ in range(2):
            session = admin.post("sessions", json={"agent": "codex", "working_dir": "/w"}).json()
            opened = admin.post(
                f"sessions/{session['id']}/egress", json={"allow": [f"127.0.0.1:{echo_port}"]}
            )
            assert opened.status_code == 201, opened.text
            paths.append((session["id"], opened.json()["socket"]))
        (first_id, first), (_, second) = paths
        tunnel = _connect(first)
        tunnel.sendall(f"CONNECT 127.0.0.1:{echo_port} HTTP/1.1\r\n\r\n".encode())
        assert _read_head(tunnel).startswith(b"HTTP/1.1 200 ")
        admin.post(f"sessions/{first_id}/end", json={"exit_code": 0})
    assert not Path(first).exists() and not Path(first).parent.exists()
    with pytest.raises(FileNotFoundError):
        _connect(first)
    assert _read_all(tunnel) == b""  # the open tunnel was cut
    tunnel.close()
    assert _records(layout, "egress.allowed")[0]["session_id"] == first_id
    assert Path(second).exists()
    done = aileron("daemon", "stop")
    assert done.returncode == 0, done.stderr
    assert not Path(second).exists()
    with pytest.raises((FileNotFoundError, ConnectionRefusedError)):
        _connect(second)


def test_connection_cap_answers_503(
    api: TestClient, echo_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the cap a new connection gets 503; once one closes, a new one is served."""
    from aileron_cli.daemon.egress import proxies as egress

    monkeypatch.setattr(egress, "MAX_CONNECTIONS", 2)
    _, path = _open(api, [f"127.0.0.1:{echo_port}"])
    request = f"CONNECT 127.0.0.1:{echo_port} HTTP/1.1\r\n\r\n".encode()
    tunnels = [_connect(path) for _ in range(2)]
    try:
        for tunnel in tunnels:
            tunnel.sendall(request)
            assert _read_head(tunnel).startswith(b"HTTP/1.1 200 ")
        assert _ask(path, request).startswith(b"HTTP/1.1 503 ")
        tunnels[0].close()
        deadline = time.monotonic() + 10
        while (answer := _ask(path, request)).startswith(b"HTTP/1.1 503 "):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert answer.startswith(b"HTTP/1.1 200 ")
    finally:
        for tunnel in tunnels:
            tunnel.close()
