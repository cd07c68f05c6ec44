"""The broker against a hostile agent: every byte it sends into the proxy is chosen to get the
real secret back, or injected toward a host that is not exposed, or to upset the relay.

A real egress proxy with a broker serves on its real Unix socket (its event loop in a thread,
as in the daemon). The upstreams are real TLS servers on 127.0.0.1 with their own private CA:
``broker_support``'s recording upstream, and here a *scripted* one that answers with exactly
the bytes a test gives it (to echo the secret in the ways an HTTP answer can hold it). The
agent speaks raw bytes inside its TLS tunnel, trusting only the session CA.
"""

from __future__ import annotations

import base64
import functools
import gzip
import socket
import ssl
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import attrs
import pytest
from network_support import PrivateCA
from sandbox.broker_support import (
    EXPOSED,
    OTHER,
    OTHER_SECRET,
    PLAIN,
    SECRET,
    Audit,
    Loop,
    World,
    connect,
    read_head,
    serve,
    source,
    world_fixture,
)

from aileron_cli.daemon.egress.broker import Broker, Brokered, new_sentinel
from aileron_cli.daemon.egress.proxies import CHUNK, EgressProxies, EgressProxy
from aileron_cli.daemon.store.bindings import parse_exposure
from aileron_core.paths import Layout
from aileron_core.secret_forms import mask

GITHUB = "token/github/default"
NPM = "token/npm/default"


@pytest.fixture
def world(loop: Loop, layout: Layout, tmp_path: Path) -> Iterator[World]:
    """A session's proxy with a broker, and the recording upstreams behind it."""
    yield from world_fixture(loop, layout, tmp_path)


# --- a scripted upstream ------------------------------------------------------------------------

Answer = Callable[[bytes], bytes]
"""The raw request (head and body) → the raw bytes to answer it with."""


def authorization(request: bytes) -> bytes:
    """The Authorization value of a raw request, or ``b""``."""
    for line in request.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"authorization":
            return value.strip()
    return b""


def chunked(*pieces: bytes, extension: bytes = b"", trailers: bytes = b"") -> bytes:
    """``pieces`` as chunks (each chunk one piece), then the last chunk and ``trailers``."""
    body = b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension, p) for p in pieces)
    return body + b"0\r\n" + trailers + b"\r\n"


def response(body: bytes, *headers: bytes, status: bytes = b"200 OK") -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n" % len(body)
    return head + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


class Scripted:
    """A TLS server on 127.0.0.1 for ``names`` answering each request (kept alive) with
    ``self.answer(request)``; it records each raw request and remembers the last
    Authorization it was sent (to hand it back later, as a stateful upstream may)."""

    def __init__(self, ca: PrivateCA, names: list[str]) -> None:
        self.context = ca.server_context(*names)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.answer: Answer = lambda request: response(b"ok")
        self.requests: list[bytes] = []
        self.last_authorization = b""
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            with self.context.wrap_socket(raw, server_side=True) as sock:
                data = b""
                while True:
                    while b"\r\n\r\n" not in data:
                        more = sock.recv(65536)
                        if not more:
                            return
                        data += more
                    request, data = self._split(sock, data)
                    self.requests.append(request)
                    self.last_authorization = authorization(request) or self.last_authorization
                    sock.sendall(self.answer(request))
        except (OSError, ssl.SSLError):
            return

    @staticmethod
    def _split(sock: ssl.SSLSocket, data: bytes) -> tuple[bytes, bytes]:
        """The first whole request in ``data`` (reading more as needed), and what follows."""
        head_end = data.index(b"\r\n\r\n") + 4
        head = data[:head_end].lower()
        if b"transfer-encoding: chunked" in head:
            while b"\r\n0\r\n" not in data[head_end - 2 :] or not data.endswith(b"\r\n\r\n"):
                data += sock.recv(65536)
            return data, b""  # a chunked request is the last one the tests send
        length = 0
        for line in head.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.partition(b":")[2])
        while len(data) < head_end + length:
            data += sock.recv(65536)
        return data[: head_end + length], data[head_end + length :]

    def close(self) -> None:
        self.listener.close()


@attrs.define
class Stage:
    """A session's proxy brokering GitHub's and npm's bindings, both on the scripted server."""

    loop: Loop
    proxies: EgressProxies
    proxy: EgressProxy
    broker: Broker
    audit: Audit
    upstream: Scripted
    sentinels: dict[str, str]

    def exchange(self, request: bytes, host: str = EXPOSED, sni: str | None = None) -> bytes:
        """CONNECT to ``host``, TLS (SNI ``sni`` or ``host``) trusting the session CA only,
        send ``request`` and return every byte the agent receives until the broker closes."""
        raw = connect(str(self.proxy.path))
        raw.sendall(f"CONNECT {host}:{self.upstream.port} HTTP/1.1\r\n\r\n".encode())
        head = read_head(raw)
        assert head.startswith(b"HTTP/1.1 200"), head
        context = ssl.create_default_context(cadata=self.broker.ca_pem.decode())
        with context.wrap_socket(raw, server_hostname=sni or host) as sock:
            sock.sendall(request)
            received = b""
            while True:
                try:
                    data = sock.recv(65536)
                except (ssl.SSLError, OSError):
                    return received
                if not data:
                    return received
                received += data

    def get(self, path: str = "/", *headers: str, host: str = EXPOSED) -> bytes:
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{self.upstream.port}", *headers]
        request = "\r\n".join([*lines, "Connection: close", "", ""]).encode()
        return self.exchange(request, host)


@pytest.fixture
def stage(loop: Loop, layout: Layout, tmp_path: Path) -> Iterator[Stage]:
    """The scripted upstream behind a session's proxy and broker."""
    ca = PrivateCA(tmp_path, "scripted CA")
    upstream = Scripted(ca, [EXPOSED, OTHER])
    port = upstream.port
    brokered = [
        Brokered(GITHUB, parse_exposure([f"{EXPOSED}:{port}"], "GH_TOKEN"), new_sentinel()),
        Brokered(NPM, parse_exposure([f"{OTHER}:{port}"], "NPM_TOKEN"), new_sentinel()),
    ]
    audit = Audit()
    broker = Broker(
        "s7",
        brokered,
        secrets=source,
        upstream_tls=ssl.create_default_context(cadata=ca.pem.read_text()),
        sink=audit,
    )
    allow = [f"{EXPOSED}:{port}", f"{OTHER}:{port}"]
    proxies, proxy = serve(loop, layout, "s7", broker, allow, [EXPOSED, OTHER])
    try:
        yield Stage(
            loop, proxies, proxy, broker, audit, upstream, {b.binding: b.sentinel for b in brokered}
        )
    finally:
        loop.run(proxies.aclose())
        upstream.close()


def leaks(data: bytes, secret: str = SECRET) -> bool:
    """Whether ``data`` holds ``secret`` raw, in base64 (alone or as Basic credentials) or
    percent-encoded, in any case."""
    raw = secret.encode()
    forms = [raw, base64.b64encode(raw), base64.b64encode(b"x:" + raw), quote(secret).encode()]
    return any(form.lower() in data.lower() for form in forms)


def body_of(answer: bytes) -> bytes:
    """The body of a raw HTTP/1.1 answer (chunked or not)."""
    head, _, rest = answer.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" not in head.lower():
        return rest
    out = b""
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out, rest = out + rest[:size], rest[size + 2 :]


# --- where the request goes ---------------------------------------------------------------------


def test_absolute_form_target_naming_another_host_is_refused(stage: Stage) -> None:
    """`GET https://evil.test/` inside the API's tunnel (a shared front-end would route by it)
    is 421, never forwarded with the secret, and audited as the sentinel's misuse."""
    sentinel = stage.sentinels[GITHUB]
    answer = stage.get("https://evil.test/steal", f"Authorization: Bearer {sentinel}")
    assert answer.startswith(b"HTTP/1.1 421")
    assert stage.upstream.requests == []
    [misuse] = stage.audit.wait("egress.sentinel_misuse")
    assert misuse["binding"] == GITHUB and "only" in misuse["reason"]


def test_absolute_form_naming_the_tunnel_host_goes_in_origin_form(stage: Stage) -> None:
    """An absolute-form target naming the tunnel's own host and port is relayed in origin
    form, the secret injected."""
    sentinel = stage.sentinels[GITHUB]
    target = f"https://{EXPOSED.upper()}:{stage.upstream.port}/repos?x=1"
    answer = stage.get(target, f"Authorization: Bearer {sentinel}")
    assert answer.startswith(b"HTTP/1.1 200")
    [request] = stage.upstream.requests
    assert request.startswith(b"GET /repos?x=1 HTTP/1.1\r\n")
    assert authorization(request) == f"Bearer {SECRET}".encode()


def test_userinfo_in_an_absolute_target_is_not_relayed(stage: Stage) -> None:
    """A target with user info (`https://u:<sentinel>@api…/`) is refused, not forwarded."""
    sentinel = stage.sentinels[GITHUB]
    answer = stage.get(f"https://u:{sentinel}@{EXPOSED}:{stage.upstream.port}/")
    assert answer.startswith(b"HTTP/1.1 421")
    assert stage.upstream.requests == []


def test_host_header_naming_another_host_is_refused(stage: Stage) -> None:
    """A `Host:` naming another host (or the right host on another port) inside the tunnel is
    421: the upstream is always the CONNECTed host, and the secret never goes out under a
    name a shared front-end could route elsewhere."""
    sentinel = stage.sentinels[GITHUB]
    for host in ("evil.test", f"{EXPOSED}:1", f"{OTHER}:{stage.upstream.port}"):
        request = f"GET / HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {sentinel}\r\n\r\n"
        assert stage.exchange(request.encode()).startswith(b"HTTP/1.1 421")
    assert stage.upstream.requests == []
    assert len(stage.audit.wait("egress.sentinel_misuse", 3)) == 3


def test_http10_request_without_host_gets_the_tunnel_host(stage: Stage) -> None:
    """An HTTP/1.0 request without `Host` is relayed with the tunnel's host, the secret
    injected."""
    sentinel = stage.sentinels[GITHUB]
    request = f"GET /x HTTP/1.0\r\nAuthorization: Bearer {sentinel}\r\n\r\n".encode()
    assert stage.exchange(request).startswith(b"HTTP/1.1 200")
    [seen] = stage.upstream.requests
    assert f"host: {EXPOSED}:{stage.upstream.port}\r\n".encode() in seen.lower()
    assert authorization(seen) == f"Bearer {SECRET}".encode()


def test_connect_and_authority_form_inside_the_tunnel_are_refused(stage: Stage) -> None:
    """A CONNECT (or any target that is not origin or absolute form) inside a brokered tunnel
    is refused and not forwarded."""
    sentinel = stage.sentinels[GITHUB]
    for line in ("CONNECT evil.test:443 HTTP/1.1", "GET evil.test:443 HTTP/1.1"):
        request = f"{line}\r\nHost: {EXPOSED}:{stage.upstream.port}\r\nX-K: {sentinel}\r\n\r\n"
        answer = stage.exchange(request.encode())
        assert answer.startswith((b"HTTP/1.1 405", b"HTTP/1.1 400")), answer
    assert stage.upstream.requests == []


def test_content_length_with_transfer_encoding_is_refused(stage: Stage) -> None:
    """A request with both `Content-Length` and `Transfer-Encoding` (smuggling toward an
    upstream that trusts the length) is 400 and not forwarded."""
    sentinel = stage.sentinels[GITHUB]
    smuggled = b"GET /admin HTTP/1.1\r\nHost: evil.test\r\nX: "
    request = (
        f"POST / HTTP/1.1\r\nHost: {EXPOSED}:{stage.upstream.port}\r\n"
        f"Authorization: Bearer {sentinel}\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode() + chunked(smuggled)
    assert stage.exchange(request).startswith(b"HTTP/1.1 400")
    assert stage.upstream.requests == []


def test_two_content_lengths_are_refused(stage: Stage) -> None:
    """Two different `Content-Length`s are a malformed request: 400, not forwarded."""
    request = (
        f"POST / HTTP/1.1\r\nHost: {EXPOSED}:{stage.upstream.port}\r\n"
        "Content-Length: 3\r\nContent-Length: 40\r\n\r\nabc"
    )
    assert stage.exchange(request.encode()).startswith(b"HTTP/1.1 400")
    assert stage.upstream.requests == []


def test_pipelined_requests_are_each_checked_on_the_tunnel_host(stage: Stage) -> None:
    """Requests pipelined in one write are handled one by one: the first gets its secret on
    the tunnel's host; the second, holding npm's sentinel, is 403 and never forwarded."""
    port = stage.upstream.port
    bearer = f"Authorization: Bearer {stage.sentinels[GITHUB]}"
    first = f"GET /1 HTTP/1.1\r\nHost: {EXPOSED}:{port}\r\n{bearer}\r\n\r\n"
    second = f"GET /2 HTTP/1.1\r\nHost: {EXPOSED}:{port}\r\nX-K: {stage.sentinels[NPM]}\r\n\r\n"
    answer = stage.exchange((first + second).encode())
    assert answer.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 403" in answer
    [seen] = stage.upstream.requests
    assert seen.startswith(b"GET /1 ") and f"authorization: Bearer {SECRET}".encode() in seen
    assert OTHER_SECRET.encode() not in seen
    [misuse] = stage.audit.wait("egress.sentinel_misuse")
    assert misuse["binding"] == NPM and misuse["host"] == EXPOSED


def test_obs_fold_cannot_join_a_sentinel(stage: Stage) -> None:
    """A header continued on a folded line is unfolded with a space: a sentinel split across
    the fold stays split (nothing injected, nothing refused) and no secret goes out."""
    sentinel = stage.sentinels[GITHUB]
    request = (
        f"GET / HTTP/1.1\r\nHost: {EXPOSED}:{stage.upstream.port}\r\n"
        f"X-K: {sentinel[:20]}\r\n {sentinel[20:]}\r\nConnection: close\r\n\r\n"
    )
    assert stage.exchange(request.encode()).startswith(b"HTTP/1.1 200")
    [seen] = stage.upstream.requests
    assert not leaks(seen) and stage.audit.of("binding.used") == []


def test_request_trailers_are_not_forwarded(stage: Stage) -> None:
    """Trailers of a chunked request (which the broker does not look into) are dropped: npm's
    sentinel in one never reaches the API's host."""
    request = (
        f"POST /up HTTP/1.1\r\nHost: {EXPOSED}:{stage.upstream.port}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode() + chunked(b"data", trailers=f"X-T: {stage.sentinels[NPM]}\r\n".encode())
    assert stage.exchange(request).startswith(b"HTTP/1.1 200")
    [seen] = stage.upstream.requests
    assert b"data" in seen and stage.sentinels[NPM].encode() not in seen


# --- sentinel spellings toward a host that is not exposed -------------------------------------


def _refused_on_npm(stage: Stage, request: bytes) -> None:
    answer = stage.exchange(request, OTHER)
    assert answer.startswith(b"HTTP/1.1 403"), answer
    assert stage.upstream.requests == []
    assert stage.audit.wait("egress.sentinel_misuse")[-1]["binding"] == GITHUB


@pytest.mark.parametrize(
    "spelling",
    [
        "X-K: {upper}",
        "Cookie: a=1; session={s}; b=2",
        "{s}: 1",
        "Authorization: Basic\t{b64}",
        "Authorization: basic   {b64_unpadded}",
        "Authorization: Basic {b64_urlsafe}",
        "X-K: {percent}",
    ],
)
def test_sentinel_spellings_toward_another_host_are_refused(stage: Stage, spelling: str) -> None:
    """GitHub's sentinel sent into npm's tunnel in upper case, in a cookie, as a header name,
    inside Basic credentials after a tab, unpadded or URL-safe, or percent-encoded, is 403 and
    audited as misuse."""
    sentinel = stage.sentinels[GITHUB]
    credentials = base64.b64encode(f"u?>:{sentinel}".encode()).decode()
    header = spelling.format(
        s=sentinel,
        upper=sentinel.upper(),
        b64=credentials,
        b64_unpadded=credentials.rstrip("="),
        b64_urlsafe=credentials.translate(str.maketrans("+/", "-_")),
        percent="".join(f"%{byte:02X}" for byte in sentinel.encode()),
    )
    request = f"GET / HTTP/1.1\r\nHost: {OTHER}:{stage.upstream.port}\r\n{header}\r\n\r\n"
    _refused_on_npm(stage, request.encode())


def test_sentinel_in_the_method_or_target_toward_another_host_is_refused(stage: Stage) -> None:
    """GitHub's sentinel as the method, or percent-encoded in the path, is 403 in npm's
    tunnel."""
    sentinel = stage.sentinels[GITHUB]
    host = f"Host: {OTHER}:{stage.upstream.port}"
    _refused_on_npm(stage, f"{sentinel} / HTTP/1.1\r\n{host}\r\n\r\n".encode())
    encoded = "".join(f"%{byte:02x}" for byte in sentinel.encode())
    _refused_on_npm(stage, f"GET /p?t={encoded} HTTP/1.1\r\n{host}\r\n\r\n".encode())


def test_sentinel_as_a_header_name_in_plain_http_is_refused(world: World) -> None:
    """The proxy's own check of an `http://` head sees a sentinel used as a header name."""
    sentinel = world.sentinels[GITHUB]
    with connect(world.socket) as sock:
        sock.sendall(f"GET http://{PLAIN}/ HTTP/1.1\r\n{sentinel}: 1\r\n\r\n".encode())
        assert read_head(sock).startswith(b"HTTP/1.1 403")
    assert world.audit.wait("egress.sentinel_misuse")[0]["binding"] == GITHUB


def test_sni_naming_another_exposed_host_does_not_change_the_tunnel(stage: Stage) -> None:
    """TLS naming npm's registry inside a tunnel CONNECTed to the API: the tunnel stays the
    API's (npm's sentinel is refused there; GitHub's goes to the API's upstream, verified for
    the API's name)."""
    port = stage.upstream.port
    for binding, status in ((NPM, b"403"), (GITHUB, b"200")):
        request = (
            f"GET / HTTP/1.1\r\nHost: {EXPOSED}:{port}\r\n"
            f"Authorization: Bearer {stage.sentinels[binding]}\r\nConnection: close\r\n\r\n"
        )
        answer = stage.exchange(request.encode(), EXPOSED, sni=OTHER)
        assert answer.startswith(b"HTTP/1.1 " + status), answer
    [seen] = stage.upstream.requests
    assert authorization(seen) == f"Bearer {SECRET}".encode()


def test_connect_in_another_case_with_a_trailing_dot_is_intercepted(stage: Stage) -> None:
    """`CONNECT API.GITHUB.TEST.:port` is the same exposed host: intercepted, and the secret
    is injected (never a plain tunnel carrying the sentinel)."""
    request = (
        f"GET / HTTP/1.1\r\nHost: {EXPOSED}:{stage.upstream.port}\r\n"
        f"Authorization: Bearer {stage.sentinels[GITHUB]}\r\nConnection: close\r\n\r\n"
    )
    answer = stage.exchange(request.encode(), EXPOSED.upper() + ".", sni=EXPOSED)
    assert answer.startswith(b"HTTP/1.1 200")
    assert authorization(stage.upstream.requests[0]) == f"Bearer {SECRET}".encode()


# --- getting the secret back --------------------------------------------------------------------


def test_chunk_extensions_trailers_and_informational_heads_never_reach_the_agent(
    stage: Stage,
) -> None:
    """The secret echoed in a 103's header, a chunk extension and a trailer: the agent's
    bytes hold none of them (the answer is re-framed, 1xx other than 100 dropped)."""

    def answer(request: bytes) -> bytes:
        token = authorization(request)
        early = b"HTTP/1.1 103 Early Hints\r\nLink: <" + token + b">\r\n\r\n"
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        body = chunked(b"hello", extension=b";t=" + token.replace(b" ", b"_"))
        return early + head + body[:-2] + b"X-T: " + token + b"\r\n\r\n"

    stage.upstream.answer = answer
    received = stage.get("/", f"Authorization: Bearer {stage.sentinels[GITHUB]}")
    assert received.startswith(b"HTTP/1.1 200") and body_of(received) == b"hello"
    assert not leaks(received) and b"103" not in received


def test_redirect_location_and_reason_are_redacted(stage: Stage) -> None:
    """A `Location` and a reason phrase carrying the secret (raw and base64) come back
    redacted."""
    b64 = base64.b64encode(SECRET.encode())

    def answer(request: bytes) -> bytes:
        location = b"Location: https://evil.test/?t=" + SECRET.encode() + b"&b=" + b64
        return response(b"", location, status=b"302 " + SECRET.encode())

    stage.upstream.answer = answer
    received = stage.get("/", f"Authorization: Bearer {stage.sentinels[GITHUB]}")
    assert received.startswith(b"HTTP/1.1 302") and b"[REDACTED]" in received
    assert not leaks(received)


def test_secret_split_at_every_offset_across_chunks_is_redacted(stage: Stage) -> None:
    """The secret cut in two at every offset across two chunks (the redactor's held-back
    window) comes back as exactly one mask per copy, nothing else changed."""
    secret = SECRET.encode()
    pieces = []
    expected = b""
    for cut in range(len(secret) + 1):
        pieces += [b"<%d>" % cut + secret[:cut], secret[cut:] + b"."]
        expected += b"<%d>" % cut + mask(len(secret)) + b"."
    stage.upstream.answer = lambda request: (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(*pieces)
    )
    received = stage.get("/", f"Authorization: Bearer {stage.sentinels[GITHUB]}")
    assert body_of(received) == expected


def test_gzip_body_with_the_secret_around_every_chunk_edge_is_redacted(stage: Stage) -> None:
    """A gzip body (10 MiB inflated) with the secret across the inflater's 256 KiB edges at
    every offset comes back inflated, with each copy masked and nothing else changed."""
    secret = SECRET.encode()
    plain = bytearray(b"." * ((len(secret) + 2) * CHUNK))
    expected = bytearray(plain)
    for cut in range(len(secret) + 1):
        at = (cut + 1) * CHUNK - cut
        plain[at : at + len(secret)] = secret
        expected[at : at + len(secret)] = mask(len(secret))
    packed = gzip.compress(bytes(plain))
    stage.upstream.answer = lambda request: response(packed, b"Content-Encoding: gzip")
    received = stage.get("/", f"Authorization: Bearer {stage.sentinels[GITHUB]}")
    assert body_of(received) == expected


def test_two_content_encodings_are_refused(stage: Stage) -> None:
    """gzip inside gzip, declared in two headers or one list, is 502: the broker inflates one
    layer only, and what a second would hide is never relayed."""
    twice = gzip.compress(gzip.compress(SECRET.encode()))
    declared: list[tuple[bytes, ...]] = [
        (b"Content-Encoding: gzip", b"Content-Encoding: gzip"),
        (b"Content-Encoding: gzip, gzip",),
        (b"Content-Encoding: identity, gzip, deflate",),
    ]
    for headers in declared:
        stage.upstream.answer = functools.partial(lambda h, request: response(twice, *h), headers)
        received = stage.get("/", f"Authorization: Bearer {stage.sentinels[GITHUB]}")
        assert received.startswith(b"HTTP/1.1 502") and b"cannot inspect" in received
        assert not leaks(received)


def test_raw_deflate_body_is_cut_without_the_secret(stage: Stage) -> None:
    """A `deflate` body that is raw deflate (no zlib header) cannot be inflated: the answer is
    cut and no byte of the secret comes back; the proxy serves the next tunnel."""
    raw = zlib.compressobj(wbits=-15)
    packed = raw.compress(SECRET.encode() * 10) + raw.flush()
    stage.upstream.answer = lambda request: response(packed, b"Content-Encoding: deflate")
    received = stage.get("/", f"Authorization: Bearer {stage.sentinels[GITHUB]}")
    assert not leaks(received)
    stage.upstream.answer = lambda request: response(b"fine")
    assert body_of(stage.get("/")) == b"fine"


def test_head_answer_with_a_body_cannot_smuggle_the_secret(stage: Stage) -> None:
    """An upstream that sends a body after a HEAD answer (shaped as the next answer, holding
    the secret): the next request on the connection gets it redacted at worst."""

    def answer(request: bytes) -> bytes:
        smuggled = response(SECRET.encode())
        if request.startswith(b"HEAD"):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + smuggled
        return response(b"real")

    stage.upstream.answer = answer
    port = stage.upstream.port
    sentinel = stage.sentinels[GITHUB]
    head = f"HEAD / HTTP/1.1\r\nHost: {EXPOSED}:{port}\r\nAuthorization: Bearer {sentinel}\r\n\r\n"
    get = f"GET / HTTP/1.1\r\nHost: {EXPOSED}:{port}\r\nConnection: close\r\n\r\n"
    received = stage.exchange((head + get).encode())
    assert received.startswith(b"HTTP/1.1 200") and not leaks(received)


def test_secret_stored_by_the_upstream_is_redacted_on_another_tunnel(stage: Stage) -> None:
    """An upstream that hands back, on a later connection without any sentinel, the credential
    another connection sent it: still redacted (every tunnel redacts every secret the session
    injected)."""
    stage.get("/login", f"Authorization: Bearer {stage.sentinels[GITHUB]}")
    stage.upstream.answer = lambda request: response(stage.upstream.last_authorization)
    received = stage.get("/whoami")
    assert received.startswith(b"HTTP/1.1 200") and b"[REDACTED]" in received
    assert not leaks(received)


def test_oversized_answer_head_is_502(stage: Stage) -> None:
    """An upstream whose answer head never ends (64 KiB of headers) is 502: the broker holds
    at most h11's bound of it."""
    headers = [b"X-%d: %s" % (i, b"v" * 60) for i in range(1000)]
    stage.upstream.answer = lambda request: response(b"x", *headers)
    received = stage.get("/", f"Authorization: Bearer {stage.sentinels[GITHUB]}")
    assert received.startswith(b"HTTP/1.1 502")
    [used] = stage.audit.wait("binding.used")
    assert used["status"] == 502


def test_gzip_transfer_coding_is_502(stage: Stage) -> None:
    """A body in a `gzip` transfer coding (which h11 does not decode, so the broker could
    not redact it) is 502, the secret not relayed."""
    packed = gzip.compress(SECRET.encode())
    stage.upstream.answer = lambda request: (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + chunked(packed)
    )
    received = stage.get("/", f"Authorization: Bearer {stage.sentinels[GITHUB]}")
    assert received.startswith(b"HTTP/1.1 502") and packed not in received


def test_http2_preface_in_a_tunnel_is_refused(stage: Stage) -> None:
    """HTTP/2's preface inside a brokered tunnel (the session CA offers http/1.1 only) is
    answered with an error and nothing is forwarded."""
    answer = stage.exchange(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert answer.startswith((b"HTTP/1.1 4", b"HTTP/1.1 5")), answer
    assert stage.upstream.requests == []


def test_ip_literal_of_a_pinned_name_is_not_a_way_around(stage: Stage) -> None:
    """`CONNECT 127.0.0.1:port` (the address a pinned exposed name resolves to) is denied: a
    pin allows its name, not its address."""
    for target in ("127.0.0.1", "[::ffff:127.0.0.1]"):
        with connect(str(stage.proxy.path)) as sock:
            sock.sendall(f"CONNECT {target}:{stage.upstream.port} HTTP/1.1\r\n\r\n".encode())
            assert read_head(sock).startswith(b"HTTP/1.1 403")
    assert stage.upstream.requests == []
