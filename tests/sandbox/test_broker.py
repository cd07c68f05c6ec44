"""The broker: a session's sentinels become real secrets on exposed hosts only, and no secret
comes back.

A real egress proxy with a broker serves on its real Unix socket (its event loop in a thread);
the upstreams are real HTTPS servers on 127.0.0.1 with their own private CA, reached through
`[sandbox.resolve]`-style pins; the client speaks CONNECT and then TLS trusting only the
session CA (or, for a tunnel that is not intercepted, only the upstream's CA).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox.broker_support import (
    EXPOSED,
    OTHER,
    PLAIN,
    ROGUE,
    SECRET,
    Audit,
    Loop,
    World,
    basic,
    close_world,
    connect,
    open_world,
    read_head,
    serve,
    source,
    world_fixture,
)

from aileron_cli.daemon.egress.broker import Broker, Brokered, new_sentinel
from aileron_cli.daemon.egress.proxies import MAX_HEAD_BYTES
from aileron_cli.daemon.store.bindings import parse_exposure
from aileron_core.paths import Layout


@pytest.fixture
def world(loop: Loop, layout: Layout, tmp_path: Path) -> Iterator[World]:
    """A session's proxy with a broker, and the upstreams behind it."""
    yield from world_fixture(loop, layout, tmp_path)


def _get(
    world: World, path: str, headers: dict[str, str], host: str = EXPOSED
) -> tuple[int, bytes]:
    connection = world.http(host)
    try:
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def _never_the_secret(data: bytes) -> None:
    forms = [
        SECRET.encode(),
        base64.b64encode(SECRET.encode()),
        base64.b64encode(f"x-access-token:{SECRET}".encode()),
        base64.b64encode(f"user:{SECRET}".encode()),
    ]
    for form in forms:
        assert form not in data


# --- injection ----------------------------------------------------------------------------------


def test_bearer_sentinel_becomes_the_secret_and_is_redacted_back(world: World) -> None:
    """`Authorization: Bearer <sentinel>` reaches the upstream as the real token; the upstream's
    echo of it comes back as [REDACTED]."""
    sentinel = world.sentinels["token/github/default"]
    status, body = _get(world, "/echo?x=1", {"Authorization": f"Bearer {sentinel}"})
    assert status == 200
    assert world.upstream.seen[-1].headers["authorization"] == f"Bearer {SECRET}"
    assert b"[REDACTED]" in body
    _never_the_secret(body)


def test_replace_form_swaps_only_in_authorization(world: World) -> None:
    """The `replace` form puts the secret in `Authorization` only: a sentinel in another
    header (one an upstream might log or show) is sent as it is, and nothing is recorded as
    used; in `Authorization` it is replaced where it stands."""
    sentinel = world.sentinels["token/github/default"]
    _get(world, "/echo", {"X-Api-Key": f"k={sentinel};v=2"})
    assert world.upstream.seen[-1].headers["x-api-key"] == f"k={sentinel};v=2"
    assert world.audit.of("binding.used") == []
    _get(world, "/echo", {"Authorization": f"token k={sentinel};v=2"})
    assert world.upstream.seen[-1].headers["authorization"] == f"token k={SECRET};v=2"
    assert len(world.audit.wait("binding.used")) == 1


def test_basic_credentials_are_decoded_replaced_and_reencoded(world: World) -> None:
    """A sentinel as the password of `Basic` credentials (what git sends from URL user info)
    is replaced inside them; the echoed base64 of `user:secret` is redacted."""
    sentinel = world.sentinels["token/github/default"]
    status, body = _get(world, "/echo", {"Authorization": basic("user", sentinel)})
    assert status == 200
    assert world.upstream.seen[-1].headers["authorization"] == basic("user", SECRET)
    _never_the_secret(body)
    assert b"[REDACTED]" in body


def test_header_form_sets_its_header(world: World) -> None:
    """The `header` form drops the header holding the sentinel and sets the template's."""
    sentinel = world.sentinels["token/github/header"]
    _get(world, "/echo", {"X-Token": sentinel, "Authorization": "Bearer stale"})
    seen = world.upstream.seen[-1].headers
    assert seen["authorization"] == f"token {SECRET}"
    assert "x-token" not in seen


def test_basic_form_sets_basic_authorization(world: World) -> None:
    """The `basic` form sets `Authorization: Basic b64(template with the secret)`."""
    sentinel = world.sentinels["token/github/basic"]
    _, body = _get(world, "/echo", {"Authorization": basic("whoever", sentinel)})
    assert world.upstream.seen[-1].headers["authorization"] == basic("x-access-token", SECRET)
    _never_the_secret(body)


def test_request_without_sentinel_passes_unchanged(world: World) -> None:
    """A request to an exposed host without a sentinel gets nothing injected and is not a
    `binding.used`."""
    status, body = _get(world, "/echo", {"Authorization": "Bearer mine", "X-A": "1"})
    assert status == 200
    seen = world.upstream.seen[-1].headers
    assert seen["authorization"] == "Bearer mine" and seen["x-a"] == "1"
    assert json.loads(body)["headers"]["authorization"] == "Bearer mine"
    _get(world, "/after", {"Authorization": f"Bearer {world.sentinels['token/github/default']}"})
    assert [used["path"] for used in world.audit.wait("binding.used")] == ["/after"]


def test_identity_encoding_is_asked_for(world: World) -> None:
    """The upstream is asked for `Accept-Encoding: identity` (so the broker can redact)."""
    sentinel = world.sentinels["token/github/default"]
    _get(world, "/echo", {"Authorization": f"Bearer {sentinel}", "Accept-Encoding": "gzip, br"})
    assert world.upstream.seen[-1].headers["accept-encoding"] == "identity"


# --- policy and audit ---------------------------------------------------------------------------


def test_sentinel_to_another_intercepted_host_is_refused_and_audited(world: World) -> None:
    """GitHub's sentinel sent to the npm registry (intercepted for npm's binding) is 403,
    `egress.sentinel_misuse`, and never reaches the registry."""
    sentinel = world.sentinels["token/github/default"]
    status, body = _get(world, "/echo", {"Authorization": f"Bearer {sentinel}"}, host=OTHER)
    assert status == 403 and b"token/github/default" in body
    assert world.upstream.seen == []
    [misuse] = world.audit.of("egress.sentinel_misuse")
    assert misuse["binding"] == "token/github/default" and misuse["host"] == OTHER
    assert misuse["method"] == "GET"


def test_sentinel_in_a_connect_head_or_plain_http_is_refused(world: World) -> None:
    """The proxy checks its own heads: a CONNECT to a host not exposed, or an `http://`
    request, carrying a sentinel is 403 and audited."""
    sentinel = world.sentinels["token/github/default"]
    port = world.upstream.port
    with connect(world.socket) as sock:
        sock.sendall(
            f"CONNECT {PLAIN}:{port} HTTP/1.1\r\n"
            f"Proxy-Authorization: {basic('u', sentinel)}\r\n\r\n".encode()
        )
        assert read_head(sock).startswith(b"HTTP/1.1 403")
    with connect(world.socket) as sock:
        sock.sendall(
            f"GET http://{EXPOSED}/x?t={sentinel} HTTP/1.1\r\nHost: {EXPOSED}\r\n\r\n".encode()
        )
        assert read_head(sock).startswith(b"HTTP/1.1 403")
    misuses = world.audit.of("egress.sentinel_misuse")
    assert [m["method"] for m in misuses] == ["CONNECT", "GET"]
    assert world.upstream.seen == []


def test_failing_secret_source_is_503_and_audited(world: World) -> None:
    """When the secret cannot be had (vault locked), the agent gets 503 naming the binding,
    the failure is audited, and the next connection works."""
    sentinel = world.sentinels["token/github/locked"]
    status, body = _get(world, "/echo", {"Authorization": f"Bearer {sentinel}"})
    assert status == 503 and b"token/github/locked" in body and b"locked" in body
    [used] = world.audit.of("binding.used")
    assert used["binding"] == "token/github/locked" and used["status"] == 503
    assert world.upstream.seen == []
    status, _ = _get(world, "/echo", {})
    assert status == 200


def test_binding_used_is_audited_per_request(world: World) -> None:
    """Each brokered request records `binding.used` with host, method, the path without its
    query, status and byte counts."""
    sentinel = world.sentinels["token/github/default"]
    _get(world, "/echo?secret=query", {"Authorization": f"Bearer {sentinel}"})
    [used] = world.audit.wait("binding.used")
    assert used["binding"] == "token/github/default"
    assert (used["host"], used["port"]) == (EXPOSED, world.upstream.port)
    assert (used["method"], used["path"], used["status"]) == ("GET", "/echo", 200)
    assert used["bytes_up"] > 0 and used["bytes_down"] > 0 and used["ms"] >= 0
    [allowed] = [e for e in world.audit.wait("egress.allowed") if e.get("brokered")]
    assert allowed["host"] == EXPOSED and allowed["method"] == "CONNECT"


# --- the upstream side --------------------------------------------------------------------------


def test_untrusted_upstream_certificate_is_502(world: World) -> None:
    """An upstream whose certificate the daemon does not trust gets no request: 502 with a
    reason, never the secret."""
    sentinel = world.sentinels["token/github/default"]
    status, body = _get(world, "/echo", {"Authorization": f"Bearer {sentinel}"}, host=ROGUE)
    assert status == 502 and b"not trusted" in body
    assert world.rogue.seen == []
    _never_the_secret(body)


def test_keep_alive_serves_several_requests_on_one_upstream_connection(world: World) -> None:
    """Several requests on one tunnel are answered in turn over one upstream connection."""
    _keep_alive(world)


def test_plain_asyncio_loop_serves_too(layout: Layout, tmp_path: Path) -> None:
    """The broker needs nothing of uvloop: asyncio's own loop serves the same tunnel."""
    running = Loop(asyncio.new_event_loop)
    world = open_world(running, layout, tmp_path)
    try:
        _keep_alive(world)
    finally:
        close_world(world)
        running.close()


def _keep_alive(world: World) -> None:
    sentinel = world.sentinels["token/github/default"]
    connection = world.http()
    try:
        for index in range(3):
            connection.request(
                "GET", f"/echo?i={index}", headers={"Authorization": f"Bearer {sentinel}"}
            )
            answer = connection.getresponse()
            assert answer.status == 200
            _never_the_secret(answer.read())
    finally:
        connection.close()
    assert [s.path for s in world.upstream.seen] == ["/echo?i=0", "/echo?i=1", "/echo?i=2"]
    assert len({s.peer for s in world.upstream.seen}) == 1
    assert len(world.audit.wait("binding.used", 3)) == 3


def test_host_not_exposed_is_a_plain_tunnel(world: World) -> None:
    """A host no binding exposes is tunnelled: the client sees the upstream's own certificate
    (and the session CA does not vouch for it)."""
    connection = world.http(PLAIN, trust=world.upstream_ca.pem.read_text())
    connection.request("GET", "/echo", headers={"X-A": "1"})
    assert connection.getresponse().status == 200
    connection.close()
    with pytest.raises(ssl.SSLCertVerificationError):
        world.tunnel(PLAIN)


def test_reason_phrase_and_headers_are_redacted(world: World) -> None:
    """A secret echoed in the status line's reason or a response header comes back
    [REDACTED]."""
    sentinel = world.sentinels["token/github/default"]
    connection = world.http()
    connection.request("GET", "/reason", headers={"Authorization": f"Bearer {sentinel}"})
    answer = connection.getresponse()
    assert SECRET not in answer.reason and "[REDACTED]" in answer.reason
    assert (answer.getheader("X-Echo") or "").startswith("Bearer [REDACTED]")
    _never_the_secret(answer.read())
    connection.close()


def test_gzip_is_decoded_and_redacted_other_encodings_refused(world: World) -> None:
    """A gzip body the upstream sends anyway is decoded (and redacted); brotli is 502."""
    sentinel = world.sentinels["token/github/default"]
    connection = world.http()
    connection.request("GET", "/gzip", headers={"Authorization": f"Bearer {sentinel}"})
    answer = connection.getresponse()
    body = answer.read()
    assert answer.getheader("Content-Encoding") is None
    assert json.loads(body)["headers"]["authorization"].startswith("Bearer [REDACTED]")
    connection.request("GET", "/br", headers={"Authorization": f"Bearer {sentinel}"})
    answer = connection.getresponse()
    assert answer.status == 502 and b"cannot inspect 'br'" in answer.read()
    connection.close()
    assert [used["status"] for used in world.audit.of("binding.used")] == [200, 502]


def test_large_bodies_stream_both_ways(world: World) -> None:
    """A 3 MiB chunked upload arrives whole; a 3 MiB download with the secret planted across
    chunk edges arrives with every copy redacted."""
    sentinel = world.sentinels["token/github/default"]
    upload = bytes(range(256)) * (3 * 4096)

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(upload), 100_000):
            yield upload[start : start + 100_000]

    connection = world.http()
    connection.request(
        "POST",
        "/sink",
        body=pieces(),
        headers={"Authorization": f"Bearer {sentinel}"},
        encode_chunked=True,
    )
    answer = connection.getresponse()
    assert json.loads(answer.read()) == {
        "size": len(upload),
        "sha": hashlib.sha256(upload).hexdigest(),
    }
    size = 3 << 20
    connection.request("GET", f"/big?n={size}", headers={"Authorization": f"Bearer {sentinel}"})
    answer = connection.getresponse()
    body = answer.read()
    connection.close()
    _never_the_secret(body)
    copies = size // (65531 + len(f"Bearer {SECRET}"))
    assert body.count(b"[REDACTED]") >= copies
    assert answer.getheader("Transfer-Encoding") == "chunked"


def test_head_keeps_its_content_length(world: World) -> None:
    """A HEAD answer keeps the upstream's Content-Length and has no body."""
    connection = world.http()
    connection.request("HEAD", "/echo")
    answer = connection.getresponse()
    assert answer.status == 200 and int(answer.getheader("Content-Length") or 0) > 0
    assert answer.read() == b""
    connection.request("GET", "/echo")
    assert connection.getresponse().status == 200
    connection.close()


def test_oversized_request_head_is_refused(world: World) -> None:
    """A request head past the proxy's cap is answered 431 and never forwarded."""
    connection = world.http()
    connection.request("GET", "/echo", headers={"X-Big": "x" * (MAX_HEAD_BYTES + 1)})
    answer = connection.getresponse()
    assert answer.status == 431
    connection.close()
    assert world.upstream.seen == []


def test_malformed_request_in_a_tunnel_is_400(world: World) -> None:
    """A malformed request inside an intercepted tunnel is answered 400 and not forwarded."""
    with world.tunnel(EXPOSED) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
        assert read_head(sock).startswith(b"HTTP/1.1 400")
    assert world.upstream.seen == []


def test_unreachable_upstream_is_502(loop: Loop, layout: Layout, tmp_path: Path) -> None:
    """An exposed host whose upstream refuses connections gets a 502 naming it, audited as
    `binding.used` with status 502."""
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    audit = Audit()
    exposure = parse_exposure([f"down.github.test:{port}"], "GH_TOKEN")
    brokered = Brokered("token/github/default", exposure, new_sentinel())
    broker = Broker(
        "s9", [brokered], secrets=source, upstream_tls=ssl.create_default_context(), sink=audit
    )
    proxies, proxy = serve(
        loop, layout, "s9", broker, [f"down.github.test:{port}"], ["down.github.test"]
    )
    try:
        raw = connect(str(proxy.path))
        raw.sendall(f"CONNECT down.github.test:{port} HTTP/1.1\r\n\r\n".encode())
        assert read_head(raw).startswith(b"HTTP/1.1 200")
        context = ssl.create_default_context(cadata=broker.ca_pem.decode())
        connection = http.client.HTTPConnection("down.github.test", timeout=20)
        connection.sock = context.wrap_socket(raw, server_hostname="down.github.test")
        connection.request("GET", "/", headers={"Authorization": f"Bearer {brokered.sentinel}"})
        answer = connection.getresponse()
        assert answer.status == 502 and b"cannot connect" in answer.read()
        connection.close()
    finally:
        loop.run(proxies.aclose())
    [used] = audit.wait("binding.used")
    assert used["status"] == 502 and "cannot connect" in used["error"]
