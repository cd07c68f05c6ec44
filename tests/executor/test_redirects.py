"""Requests and redirect hops go only to the operation's hosts, in its scheme."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from executor.connector import SECRET, execute, make_spec
from executor.upstream_server import Reply, UpstreamServer, running

from aileron_cli.daemon.egress.executor import HostNotAllowed, UpstreamError
from aileron_core.redaction import Secret

Servers = tuple[UpstreamServer, UpstreamServer, UpstreamServer]


@pytest.fixture
def servers() -> Iterator[Servers]:
    """Three local servers: A and B will be allowed hosts, C never is."""
    with running() as a, running() as b, running() as c:
        yield a, b, c


class SplitTransport(httpx.AsyncBaseTransport):
    """https requests go to a mock handler (recorded); http ones to the real local servers."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.mock = httpx.MockTransport(handler)
        self.real = httpx.AsyncHTTPTransport()
        self.https_seen: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            self.https_seen.append(request)
            return await self.mock.handle_async_request(request)
        return await self.real.handle_async_request(request)

    async def aclose(self) -> None:
        await self.real.aclose()


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status=status, body=b"", headers={"Location": location})


def test_a_same_host_redirect_is_followed_with_the_credential(servers: Servers) -> None:
    """A relative redirect on the same host is followed and the credential is sent again."""
    a, _, _ = servers
    a.replies["/echo"] = redirect("/final")
    spec, op = make_spec([a.host])
    result = execute(spec, op, {}, Secret(SECRET))
    assert [s.target for s in a.seen] == ["/echo", "/final"]
    assert [s.headers["authorization"] for s in a.seen] == [f"Bearer {SECRET}"] * 2
    assert result.url == a.url("/final")
    assert result.body["target"] == "/final"


def test_a_redirect_to_another_allowed_host_is_followed(servers: Servers) -> None:
    """A redirect to the operation's second host is followed, with the credential re-injected."""
    a, b, _ = servers
    a.replies["/echo"] = redirect(b.url("/moved"), status=307)
    spec, op = make_spec([a.host, b.host], kind="header", name="X-Key")
    result = execute(spec, op, {}, Secret(SECRET))
    assert [s.headers["x-key"] for s in b.seen] == [SECRET]
    assert result.url == b.url("/moved")


@pytest.mark.parametrize(
    "location",
    [
        lambda c: c.url("/steal"),
        lambda c: f"//{c.host}/steal",
        lambda c: f"http://localhost:{c.port}/steal",
    ],
    ids=["absolute", "scheme-relative", "other-name"],
)
def test_a_redirect_to_a_host_not_listed_is_refused_unsent(
    servers: Servers, location: Callable[[UpstreamServer], str]
) -> None:
    """A redirect to a host outside `hosts` is HostNotAllowed and that host receives nothing."""
    a, b, c = servers
    a.replies["/echo"] = redirect(location(c))
    spec, op = make_spec([a.host, b.host])
    with pytest.raises(HostNotAllowed) as caught:
        execute(spec, op, {}, Secret(SECRET))
    assert caught.value.code == "host_not_allowed"
    assert str(c.port) in caught.value.message
    assert caught.value.details["allowed_hosts"] == [a.host, b.host]
    assert c.seen == [] and b.seen == []


def test_a_redirect_to_a_listed_hostname_on_another_port_is_refused(servers: Servers) -> None:
    """Hosts compare with their port: the same IP on an unlisted port is refused."""
    a, _, c = servers
    a.replies["/echo"] = redirect(f"http://127.0.0.1:{c.port}/x")
    spec, op = make_spec([a.host])
    with pytest.raises(HostNotAllowed):
        execute(spec, op, {}, Secret(SECRET))
    assert c.seen == []


def test_a_scheme_downgrade_is_refused(servers: Servers) -> None:
    """An https operation redirected to http is refused, even to a listed host:port."""
    _, b, _ = servers

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": b.url("/plain")})

    transport = SplitTransport(handler)
    spec, op = make_spec(["api.example.test", b.host], scheme="https")
    with pytest.raises(HostNotAllowed) as caught:
        execute(spec, op, {}, Secret(SECRET), transport=transport)
    assert "never https to http" in caught.value.message
    assert len(transport.https_seen) == 1
    assert b.seen == []


def test_a_scheme_upgrade_is_refused_too(servers: Servers) -> None:
    """An http operation redirected to https is refused: the scheme must stay the spec's."""
    a, _, _ = servers
    a.replies["/echo"] = redirect(f"https://{a.host}/echo")
    spec, op = make_spec([a.host])
    with pytest.raises(HostNotAllowed):
        execute(spec, op, {}, Secret(SECRET))
    assert len(a.seen) == 1


@pytest.mark.parametrize(
    ("location", "allowed"),
    [
        ("https://api.example.test:443/final", True),
        ("https://API.Example.TEST/final", True),
        ("https://api.example.test:8443/final", False),
    ],
)
def test_default_ports_normalize_away(location: str, allowed: bool) -> None:
    """`host` and `host:443` are one https origin; another port is another origin."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/start":
            return httpx.Response(301, headers={"Location": location})
        auth = request.headers.get("authorization", "")
        return httpx.Response(200, json={"auth_ok": auth == f"Bearer {SECRET}"})

    transport = SplitTransport(handler)
    spec, op = make_spec(["api.example.test"], scheme="https", path="/start")
    if allowed:
        result = execute(spec, op, {}, Secret(SECRET), transport=transport)
        assert result.body == {"auth_ok": True}
        assert len(transport.https_seen) == 2
    else:
        with pytest.raises(HostNotAllowed):
            execute(spec, op, {}, Secret(SECRET), transport=transport)
        assert len(transport.https_seen) == 1


def test_too_many_redirects_is_an_upstream_error(servers: Servers) -> None:
    """A redirect loop stops after max_redirects hops with upstream_too_many_redirects."""
    a, _, _ = servers
    a.replies["/echo"] = redirect("/echo")
    spec, op = make_spec([a.host])
    with pytest.raises(UpstreamError) as caught:
        execute(spec, op, {}, Secret(SECRET), max_redirects=2)
    assert caught.value.code == "upstream_too_many_redirects"
    assert len(a.seen) == 3


@pytest.mark.parametrize(
    ("status", "method", "has_body"),
    [(303, "GET", False), (302, "GET", False), (307, "POST", True), (308, "POST", True)],
)
def test_redirect_status_decides_method_and_body(
    servers: Servers, status: int, method: str, has_body: bool
) -> None:
    """303 (and 301/302 for POST) re-send as GET without body; 307 and 308 repeat the POST."""
    a, _, _ = servers
    a.replies["/echo"] = redirect("/next", status=status)
    inputs = [{"name": "title", "type": "string", "in": "body"}]
    spec, op = make_spec([a.host], method="POST", inputs=inputs)
    execute(spec, op, {"title": "t"}, Secret(SECRET))
    second = a.seen[1]
    assert second.method == method
    assert (json.loads(second.body) if has_body else None) == ({"title": "t"} if has_body else None)
    assert ("content-type" in second.headers) is has_body
    assert second.body == (b'{"title":"t"}' if has_body else b"")


def test_user_info_in_a_location_is_dropped(servers: Servers) -> None:
    """A redirect cannot choose credentials: user info in Location is dropped, ours is sent."""
    a, _, _ = servers
    a.replies["/echo"] = redirect(f"http://mallory:pw@{a.host}/next")
    spec, op = make_spec([a.host])
    execute(spec, op, {}, Secret(SECRET))
    assert a.seen[1].headers["authorization"] == f"Bearer {SECRET}"


def test_a_query_credential_replaces_one_planted_by_a_redirect(servers: Servers) -> None:
    """On a redirect hop the query credential is re-added once, replacing any planted value."""
    a, _, _ = servers
    a.replies["/echo"] = redirect("/next?api_key=planted&page=2")
    spec, op = make_spec([a.host], kind="query", name="api_key")
    result = execute(spec, op, {}, Secret(SECRET))
    assert a.seen[1].query == {"page": ["2"], "api_key": [SECRET]}
    assert "planted" not in result.url and SECRET not in result.url


def test_a_redirect_without_location_is_a_bad_response(servers: Servers) -> None:
    """A 302 without a Location header is upstream_bad_response."""
    a, _, _ = servers
    a.replies["/echo"] = Reply(status=302, body=b"")
    spec, op = make_spec([a.host])
    with pytest.raises(UpstreamError) as caught:
        execute(spec, op)
    assert caught.value.code == "upstream_bad_response"
