"""The HTTP engine (aileron_core.http_engine) against real local servers written here: pooling,
stale connections, bodies that are not there, chunking, backpressure, timeouts, TLS and proxies."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from network_support import ConnectProxy, PrivateCA

from aileron_core.http_engine import READ_BUFFER, HttpEngine
from aileron_core.network import Network, Proxy

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
SECRET = b"sk-live-proxy-must-never-see-this"


class Server:
    """A real TCP server on 127.0.0.1 in the test's loop, one ``handler`` call per connection."""

    def __init__(self, handler: Handler, context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.context = context
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, path: str = "/", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request: its head and its (Content-Length) body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length) if length else b""


def ok(body: bytes = b"ok", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%b\r\n%b" % (len(body), extra, body)


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer every request on the connection with its request line."""
    while True:
        head, _ = await read_request(reader)
        writer.write(ok(head.split(b"\r\n")[0]))
        await writer.drain()


async def get(
    engine: HttpEngine, url: str, method: str = "GET", **kwargs: object
) -> httpx.Response:
    """One exchange straight on the engine, the body read to the end."""
    response = await engine.handle_async_request(httpx.Request(method, url, **kwargs))  # type: ignore[arg-type]
    await response.aread()
    await response.aclose()
    return response


async def once(network: Network | None, url: str, **kwargs: object) -> httpx.Response:
    """One exchange on an engine of its own, closed afterwards."""
    async with HttpEngine(network=network) as engine:
        return await get(engine, url, **kwargs)  # type: ignore[arg-type]


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())  # type: ignore[arg-type]


# --- pooling ---------------------------------------------------------------------------------


def test_sequential_requests_reuse_one_kept_alive_connection() -> None:
    """Three requests to one origin, one after another, travel on one connection."""

    async def main() -> None:
        engine = HttpEngine()
        async with Server(keep_alive) as server:
            for path in ("/a", "/b", "/c"):
                answer = await engine.handle_async_request(httpx.Request("GET", server.url(path)))
                assert await answer.aread() == f"GET {path} HTTP/1.1".encode()
                await answer.aclose()
            assert server.connections == 1
        await engine.aclose()

    run(main)


def test_an_expired_idle_connection_is_not_reused() -> None:
    """With a keep-alive expiry of zero every request opens a fresh connection."""

    async def main() -> None:
        engine = HttpEngine(keepalive_expiry=0.0)
        async with Server(keep_alive) as server:
            for _ in range(2):
                answer = await engine.handle_async_request(httpx.Request("GET", server.url()))
                await answer.aread()
                await answer.aclose()
            assert server.connections == 2
        await engine.aclose()

    run(main)


def closes_after_one_answer() -> Handler:
    """Each connection answers its first request and drops the second unanswered: a server
    that closed an idle connection just as the engine reused it."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok())
        await writer.drain()
        await read_request(reader)

    return handler


def test_an_idempotent_request_on_a_stale_connection_is_sent_again_on_a_fresh_one() -> None:
    """A GET whose reused connection breaks before any answer is retried once, transparently."""

    async def main() -> None:
        engine = HttpEngine()
        async with Server(closes_after_one_answer()) as server:
            for _ in range(2):
                answer = await engine.handle_async_request(httpx.Request("GET", server.url()))
                assert await answer.aread() == b"ok"
                await answer.aclose()
            assert server.connections == 2
        await engine.aclose()

    run(main)


def test_a_post_on_a_stale_connection_is_not_sent_again() -> None:
    """A POST whose reused connection breaks fails: it may have been acted on."""

    async def main() -> None:
        engine = HttpEngine()
        async with Server(closes_after_one_answer()) as server:
            first = await engine.handle_async_request(httpx.Request("POST", server.url()))
            await first.aread()
            await first.aclose()
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await engine.handle_async_request(
                    httpx.Request("POST", server.url(), content=b"{}")
                )
            assert server.connections == 1
        await engine.aclose()

    run(main)


# --- bodies ----------------------------------------------------------------------------------


def test_head_204_and_304_answers_have_no_body_and_keep_the_connection() -> None:
    """A HEAD answer's Content-Length announces no body, nor do 204 and 304 carry one; the
    connection serves the next request."""
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 40\r\n\r\n",
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in [*answers, ok(b"after")]:
            await read_request(reader)
            writer.write(answer)
            await writer.drain()

    async def main() -> None:
        engine = HttpEngine()
        async with Server(handler) as server:
            for method, status in (("HEAD", 200), ("GET", 204), ("GET", 304), ("GET", 200)):
                answer = await engine.handle_async_request(httpx.Request(method, server.url()))
                body = await answer.aread()
                await answer.aclose()
                assert answer.status_code == status
                assert body == (b"after" if method == "GET" and status == 200 else b"")
            assert server.connections == 1
        await engine.aclose()

    run(main)


def test_informational_answers_are_skipped() -> None:
    """100 Continue and 103 Early Hints before the answer are not the answer."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
        writer.write(ok(b"final"))
        await writer.drain()

    async def main() -> None:
        async with Server(handler) as server:
            answer = await once(None, server.url(), method="POST", content=b"x")
            assert (answer.status_code, answer.content) == (200, b"final")
            assert "link" not in answer.headers

    run(main)


def test_a_chunked_answer_is_reassembled() -> None:
    """A Transfer-Encoding: chunked body arrives whole, its framing gone."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"hello, ", b"chunked ", b"world"):
            writer.write(b"%x\r\n%b\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def main() -> None:
        async with Server(handler) as server:
            answer = await once(None, server.url())
            assert answer.content == b"hello, chunked world"

    run(main)


def test_a_slow_reader_makes_the_server_wait_instead_of_the_engine_buffering() -> None:
    """While nobody reads the body, the engine stops reading the socket: a server sending 64 MB
    stalls (its writes back up) long before it is done, and reading then gets every byte."""
    total = 64 * 1024 * 1024
    chunk = b"x" * 65536

    async def main() -> None:
        stalled = asyncio.Event()
        done = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
            for _ in range(total // len(chunk)):
                writer.write(chunk)
                if writer.transport.get_write_buffer_size() > len(chunk):
                    stalled.set()  # the kernel's buffers are full: drain waits for the peer
                await writer.drain()
            done.set()

        engine = HttpEngine()
        async with Server(handler) as server:
            answer = await engine.handle_async_request(httpx.Request("GET", server.url()))
            waits = [asyncio.create_task(stalled.wait()), asyncio.create_task(done.wait())]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            assert stalled.is_set() and not done.is_set()
            for _ in range(100):  # give an engine that would read on every chance to do so
                await asyncio.sleep(0)
            assert not done.is_set()
            buffered = answer.stream._connection._buffered  # type: ignore[union-attr]
            assert buffered <= READ_BUFFER + 256 * 1024  # one more socket read at most
            received = sum([len(piece) async for piece in answer.aiter_raw()])
            assert received == total
            await answer.aclose()
            for wait in waits:
                wait.cancel()
        await engine.aclose()

    run(main)


# --- timeouts --------------------------------------------------------------------------------


def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    """No answer within the read timeout raises ReadTimeout."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # until the engine gives up and closes

    async def main() -> None:
        async with Server(silent) as server:
            request = httpx.Request(
                "GET", server.url(), extensions={"timeout": {"read": 0.2, "connect": 5}}
            )
            with pytest.raises(httpx.ReadTimeout):
                await HttpEngine().handle_async_request(request)

    run(main)


def test_a_proxy_that_never_answers_connect_is_a_connect_timeout() -> None:
    """Setting up a connection (here: a tunnel that never opens) is bounded by the connect
    timeout, and the message names the proxy."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async def main() -> None:
        async with Server(silent) as proxy:
            network = Network(https_proxy=Proxy("127.0.0.1", proxy.port))
            request = httpx.Request(
                "GET", "https://upstream.test/", extensions={"timeout": {"connect": 0.2}}
            )
            with pytest.raises(httpx.ConnectTimeout, match=f"proxy http://127.0.0.1:{proxy.port}"):
                await HttpEngine(network=network).handle_async_request(request)

    run(main)


# --- TLS -------------------------------------------------------------------------------------


def test_a_private_ca_is_trusted_only_when_configured(tmp_path: Path) -> None:
    """A server whose certificate a private CA signed is refused with the default roots, and
    accepted with the CA as [network] ca_bundle or as SSL_CERT_FILE."""
    ca = PrivateCA(tmp_path)

    async def main() -> None:
        async with Server(keep_alive, ca.server_context("127.0.0.1")) as server:
            url = server.url(scheme="https")
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await once(None, url)
            extra = Network.from_environ({}, ca_bundle=ca.pem)
            assert (await once(extra, url)).status_code == 200
            env = Network.from_environ({"SSL_CERT_FILE": str(ca.pem)})
            answer = await once(env, url)
            assert answer.status_code == 200

    run(main)


def test_a_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    """A trusted CA's certificate for other.test does not vouch for 127.0.0.1."""
    ca = PrivateCA(tmp_path)

    async def main() -> None:
        async with Server(keep_alive, ca.server_context("other.test")) as server:
            network = Network.from_environ({}, ca_bundle=ca.pem)
            with pytest.raises(httpx.ConnectError, match="IP address mismatch|doesn't match"):
                await once(network, server.url(scheme="https"))

    run(main)


def test_the_answer_exposes_the_peer_certificate(tmp_path: Path) -> None:
    """The network_stream extension gives the TLS object, as httpx's transport does (the
    enclave client checks its pin with it)."""
    ca = PrivateCA(tmp_path)

    async def main() -> None:
        async with Server(keep_alive, ca.server_context("127.0.0.1")) as server:
            network = Network.from_environ({}, ca_bundle=ca.pem)
            answer = await once(network, server.url(scheme="https"))
            tls = answer.extensions["network_stream"].get_extra_info("ssl_object")
            assert tls.getpeercert(binary_form=True)

    run(main)


# --- proxies ---------------------------------------------------------------------------------


def test_https_goes_through_a_connect_tunnel_the_proxy_cannot_read(tmp_path: Path) -> None:
    """An https origin the machine cannot resolve is reached through the proxy's tunnel; the
    proxy got the CONNECT line and ciphertext only: not the header, not the secret."""
    ca = PrivateCA(tmp_path)

    async def main() -> None:
        async with Server(keep_alive, ca.server_context("upstream.test")) as server:
            with ConnectProxy(hosts={"upstream.test": "127.0.0.1"}).running() as proxy:
                network = Network.from_environ({"HTTPS_PROXY": proxy.url}, ca_bundle=ca.pem)
                engine = HttpEngine(network=network)
                for _ in range(2):
                    answer = await get(
                        engine,
                        server.url("/v1", host="upstream.test", scheme="https"),
                        headers={"X-Api-Key": SECRET.decode()},
                    )
                    assert answer.content == b"GET /v1 HTTP/1.1"
                await engine.aclose()
                assert proxy.connects == [
                    b"CONNECT upstream.test:%d HTTP/1.1\r\nHost: upstream.test:%d\r\n\r\n"
                    % (server.port, server.port)
                ]
                assert SECRET not in proxy.received
                assert b"x-api-key" not in proxy.received.lower()
                assert b"/v1" not in proxy.received

    run(main)


def test_plain_http_is_tunnelled_too_never_handed_over_as_a_proxy_request() -> None:
    """A plain-http origin goes through CONNECT as well: the proxy never gets a request to
    forward (it sees the tunnelled bytes, as it would have seen them anyway)."""

    async def main() -> None:
        async with Server(keep_alive) as server:
            with ConnectProxy(hosts={"plain.test": "127.0.0.1"}).running() as proxy:
                network = Network.from_environ({"http_proxy": proxy.url})
                answer = await once(network, server.url(host="plain.test"))
                assert answer.content == b"GET / HTTP/1.1"
                assert proxy.received.startswith(b"CONNECT plain.test:%d " % server.port)
                assert len(proxy.connects) == 1

    run(main)


def test_proxy_credentials_go_only_on_connect_and_never_into_messages() -> None:
    """user:password@ in the proxy URL becomes Proxy-Authorization on CONNECT; a proxy that
    refuses them (407) is a ConnectError naming the proxy without the password."""
    wanted = b"Basic " + base64.b64encode(b"alice:s3cret pw")

    async def main() -> None:
        async with Server(keep_alive) as server:
            with ConnectProxy(hosts={"up.test": "127.0.0.1"}, require_auth=wanted).running() as p:
                url = server.url(host="up.test")
                good = Network.from_environ(
                    {"HTTP_PROXY": f"http://alice:s3cret%20pw@127.0.0.1:{p.port}"}
                )
                assert (await once(good, url)).status_code == 200
                assert b"Proxy-Authorization: " + wanted in p.connects[0]
                bad = Network.from_environ({"HTTP_PROXY": f"http://alice:wrong@127.0.0.1:{p.port}"})
                with pytest.raises(httpx.ConnectError) as caught:
                    await once(bad, url)
                message = str(caught.value)
                assert f"the proxy http://127.0.0.1:{p.port} refused the tunnel" in message
                assert "407" in message
                assert "wrong" not in message and "alice" not in message

    run(main)


@pytest.mark.parametrize(
    ("proxy", "expected"),
    [
        ({"refuse": True}, "refused the tunnel to nowhere.test:443: 403 Forbidden"),
        ({}, "refused the tunnel to nowhere.test:443: 502 Bad Gateway"),
    ],
)
def test_a_proxy_refusing_the_tunnel_is_a_connect_error(
    proxy: dict[str, bool], expected: str
) -> None:
    """A refused CONNECT (403) or a target the proxy cannot reach (502) is a ConnectError
    naming the proxy and the origin; nothing was sent to the origin."""

    async def main() -> None:
        with ConnectProxy(**proxy).running() as running:  # type: ignore[arg-type]
            network = Network.from_environ({"https_proxy": running.url})
            with pytest.raises(httpx.ConnectError, match=expected):
                await once(network, "https://nowhere.test/")

    run(main)


def test_a_proxy_that_is_not_there_is_a_connect_error_naming_it() -> None:
    """Nothing listening at the proxy's address: a ConnectError that says it was the proxy."""
    from executor.upstream_server import closed_port

    async def main() -> None:
        port = closed_port()
        network = Network.from_environ({"https_proxy": f"127.0.0.1:{port}"})
        with pytest.raises(httpx.ConnectError, match=f"the proxy http://127.0.0.1:{port}"):
            await once(network, "https://upstream.test/")

    run(main)


# --- which proxy -----------------------------------------------------------------------------

NO_PROXY_TABLE = [
    # (NO_PROXY, host, port, direct?)
    ("example.com", "example.com", 443, True),
    ("example.com", "api.example.com", 443, True),
    (".example.com", "example.com", 443, True),
    (".example.com", "a.b.example.com", 443, True),
    ("*.example.com", "api.example.com", 443, True),
    ("example.com", "notexample.com", 443, False),
    ("example.com", "example.com.evil.test", 443, False),
    ("EXAMPLE.com", "Api.Example.COM.", 443, True),
    ("example.com:8443", "example.com", 8443, True),
    ("example.com:8443", "example.com", 443, False),
    ("10.0.0.0/8", "10.1.2.3", 443, True),
    ("10.0.0.0/8", "11.1.2.3", 443, False),
    ("10.0.0.0/8", "ten.example", 443, False),
    ("192.168.1.5", "192.168.1.5", 80, True),
    ("192.168.1.5", "192.168.1.6", 80, False),
    ("fd00::/8", "fd12::1", 443, True),
    ("[fd12::1]:443", "fd12::1", 443, True),
    ("[fd12::1]:443", "fd12::1", 80, False),
    (" a.test , ,b.test ", "b.test", 443, True),
    ("*", "anything.example", 443, True),
    ("", "example.com", 443, False),
]


@pytest.mark.parametrize(("no_proxy", "host", "port", "direct"), NO_PROXY_TABLE)
def test_no_proxy_matching(no_proxy: str, host: str, port: int, direct: bool) -> None:
    """NO_PROXY entries: domain suffixes (with or without a dot), host:port, addresses, CIDR
    networks and *; a name is never resolved to match an address."""
    network = Network.from_environ({"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": no_proxy})
    assert (network.proxy_for("https", host, port) is None) is direct


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "127.0.0.1", "127.8.9.10", "::1"])
def test_loopback_is_never_proxied(host: str) -> None:
    """Loopback destinations (local services, a local enclave) are reached directly, whatever
    the proxy variables say."""
    network = Network.from_environ({"ALL_PROXY": "http://proxy.corp:3128"})
    assert network.proxy_for("https", host, 443) is None
    assert network.proxy_for("https", "localhost.example.com", 443) is not None


def test_lower_case_variables_win_and_all_proxy_is_the_fallback() -> None:
    """https_proxy beats HTTPS_PROXY (as with curl); ALL_PROXY serves a scheme with none of its
    own; an empty value is unset."""
    network = Network.from_environ(
        {
            "https_proxy": "http://lower:1",
            "HTTPS_PROXY": "http://upper:2",
            "http_proxy": "",
            "ALL_PROXY": "http://all:3",
            "no_proxy": "direct.test",
            "NO_PROXY": "*",
        }
    )
    assert network.proxy_for("https", "x.test", 443) == Proxy("lower", 1)
    assert network.proxy_for("http", "x.test", 80) == Proxy("all", 3)
    assert network.proxy_for("https", "direct.test", 443) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("socks5://user:hunter2@proxy:1080", "only http:// proxies"),
        ("https://user:hunter2@proxy:443", "only http:// proxies"),
        ("http://user:hunter2@proxy:99999", "is not a proxy URL"),
        ("http://user:hunter2@proxy:3128/path", "must be a proxy's address"),
    ],
)
def test_a_malformed_proxy_is_a_config_error_without_its_password(value: str, message: str) -> None:
    """A proxy URL the engine cannot use is refused when the settings are read, naming the
    variable and never the password."""
    from aileron_core.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as caught:
        Network.from_environ({"HTTPS_PROXY": value})
    assert "HTTPS_PROXY" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(Proxy.parse("http://u:hunter2@p:1", "test"))


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SSL_CERT_FILE": "/nonexistent/ca.pem"}, "SSL_CERT_FILE names /nonexistent/ca.pem"),
        ({"SSL_CERT_DIR": "/nonexistent/certs"}, "SSL_CERT_DIR names /nonexistent/certs"),
    ],
)
def test_missing_certificate_locations_are_config_errors(
    environ: dict[str, str], message: str
) -> None:
    """SSL_CERT_FILE or SSL_CERT_DIR naming nothing is refused when the settings are read."""
    from aileron_core.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        Network.from_environ(environ)
