"""Nothing of Aileron's leaves through the gateway: token-shaped values are found in every
encoding an HTTP exchange uses, dropped from headers and queries, and path tricks are refused
before the base URL is applied."""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Callable
from urllib.parse import quote, unquote

import pytest
from gateway.support import CHAT, REAL_KEY, Gw, session_headers
from hypothesis import given
from hypothesis import strategies as st

from aileron_cli.daemon.errors import status_of
from aileron_cli.daemon.gateway.auth import GatewayRefused
from aileron_cli.daemon.gateway.leaks import (
    audit_path,
    clean_query,
    token_in,
    upstream_tail,
)
from aileron_cli.daemon.gateway.proxy import request_headers
from aileron_core.ids import new_token

URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
SESSION = new_token("ais")
MASTER = new_token("aim")

tokens = st.builds(
    lambda prefix, body: f"{prefix}_{body}",
    st.sampled_from(["ais", "aim"]),
    st.text(alphabet=URLSAFE, min_size=43, max_size=43),
)
surrounding = st.text(alphabet="abcXYZ019 .,:=/+-", max_size=20)


def _percent_all(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode())


def _basic(user: str, token: str, *, urlsafe: bool = False, padded: bool = True) -> str:
    raw = f"{user}:{token}".encode()
    encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return encoded if padded else encoded.rstrip("=")


ENCODINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda token: token,
    "percent-encoded": _percent_all,
    "percent-encoded twice": lambda token: quote(_percent_all(token)),
    "base64 of user:token": lambda token: _basic("user", token),
    "url-safe base64, unpadded": lambda token: _basic("x", token, urlsafe=True, padded=False),
    "base64 of the token alone": lambda token: base64.b64encode(token.encode()).decode(),
    "percent-encoded base64": lambda token: quote(_basic("u", token), safe=""),
}


# -- token_in -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("token", [SESSION, MASTER])
def test_a_token_is_found_in_every_encoding(token: str, encoding: str) -> None:
    """A session or master token is found raw, percent-encoded (once or twice) and in base64
    (standard or URL-safe, padded or not, alone or as HTTP basic `user:token`)."""
    assert token_in(ENCODINGS[encoding](token).encode())


@given(
    token=tokens, before=surrounding, after=surrounding, encoding=st.sampled_from(sorted(ENCODINGS))
)
def test_a_token_is_found_whatever_surrounds_it(
    token: str, before: str, after: str, encoding: str
) -> None:
    """Any token-shaped string (live, dead or another daemon's: only the shape counts) is found
    inside any value, in every encoding."""
    assert token_in(f"{before}{ENCODINGS[encoding](token)}{after}".encode())


@given(
    prefix=st.sampled_from(["ais_", "aim_"]),
    body=st.text(alphabet=URLSAFE, max_size=42),
    end=st.sampled_from(["", " ", ".", "/", "=", "\n"]),
)
def test_a_shorter_string_is_no_token(prefix: str, body: str, end: str) -> None:
    """The prefix followed by fewer than the 43 characters a token has is not a token (so an
    ordinary value that happens to hold `ais_` is not dropped)."""
    assert not token_in(f"{prefix}{body}{end}".encode())


@pytest.mark.parametrize(
    "value",
    [
        "OpenAI/Python 1.99.0",
        f"Bearer {REAL_KEY}",
        "Basic " + base64.b64encode(b"user:" + b"p" * 60).decode(),
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.x" * 3,
        "ais_short",
        "application/json; charset=utf-8",
    ],
)
def test_ordinary_values_hold_no_token(value: str) -> None:
    """SDK headers, a provider key, an OAuth bearer, a JWT and a short `ais_` are no tokens."""
    assert not token_in(value.encode())


# -- clean_query --------------------------------------------------------------------------------


def test_clean_query_drops_every_parameter_holding_a_token() -> None:
    """A token as a value, as a name, percent-encoded, in base64 or among `+`-spaces drops its
    parameter; the others stay byte for byte and in order."""
    query = (
        f"a=1&k={SESSION}&{MASTER}=x&b=%2Fx+y&e={_percent_all(SESSION)}"
        f"&c=Zm9v&basic={quote(_basic('u', SESSION), safe='')}&p=hi+{SESSION}+there&d="
    )
    assert clean_query(query.encode()) == b"a=1&b=%2Fx+y&c=Zm9v&d="


def test_clean_query_keeps_a_query_without_tokens_unchanged() -> None:
    """A query with no token (including an empty one) is returned as it came."""
    for query in (b"", b"api-version=2024-10-21", b"a=1&&b=%20;c=2"):
        assert clean_query(query) == query


parameters = st.lists(
    st.tuples(
        st.text(alphabet="abcxyz_-%20+", min_size=1, max_size=8),
        st.text(alphabet="abcXYZ019%2F+=-.", max_size=12),
        st.none() | st.tuples(tokens, st.sampled_from(sorted(ENCODINGS)), st.booleans()),
    ),
    max_size=6,
)


@given(parameters=parameters)
def test_clean_query_keeps_exactly_the_parameters_without_tokens(
    parameters: list[tuple[str, str, tuple[str, str, bool] | None]],
) -> None:
    """For any query, the parameters holding a token (in the name or the value, in any
    encoding) are gone and every other one is kept, unchanged and in order."""
    built: list[tuple[str, bool]] = []
    for name, value, token in parameters:
        if token is None:
            built.append((f"{name}={value}", False))
            continue
        text, encoding, in_name = token
        encoded = quote(ENCODINGS[encoding](text), safe="%")
        built.append((f"{encoded}={value}" if in_name else f"{name}={value}{encoded}", True))
    query = "&".join(parameter for parameter, _ in built).encode()
    expected = "&".join(parameter for parameter, tokened in built if not tokened).encode()
    assert clean_query(query) == expected


# -- upstream_tail ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [
        "/v1/responses",
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/models/gpt-4o-mini",
        "/v1/files/file-abc",
        "/v1/models/x:generate",
        "/openai/deployments/my-dep/chat/completions",
        "/v1/files/file%20name.txt",
        "/v1/files/a%2ename",
        "/v1/...",
        "/",
    ],
)
def test_legitimate_paths_pass_unchanged(tail: str) -> None:
    """API paths as SDKs build them (colons, encoded spaces, dots inside names) pass as they
    came."""
    assert upstream_tail(tail.encode()) == tail


TRICKS = [
    "/v1/../admin",
    "/..",
    "/v1/./models",
    "/v1/.",
    "/v1/%2e%2e/admin",
    "/v1/%2E%2e/admin",
    "/v1/.%2E/admin",
    "/v1/%2e/models",
    "/v1/..\\admin",
    "/v1/..%5cadmin",
    "/v1/..%5Cadmin",
    "/v1/..;/admin",
    "/v1/..%3b/admin",
    "/v1/models;x=1",
    "/v1/..%2fadmin",
    "/v1%2F..%2Fadmin",
    "/v1/%00",
    "/v1/a%0d%0aX-Injected:%201",
    "/v1/a\tb",
    "/v1/%252e%252e/admin",
    "/v1/%zz",
    "/v1/%2",
    "/v1/a b",
    "/v1/caf\xe9",
    "v1/models",
    f"/v1/files/{SESSION}",
    f"/v1/files/{_percent_all(MASTER)}",
]


@pytest.mark.parametrize("tail", TRICKS)
def test_path_tricks_are_refused(tail: str) -> None:
    """Dot segments (also encoded, any case), backslashes, `;`, encoded slashes, control bytes,
    double encoding, malformed escapes, other characters and tokens are refused as 422
    `invalid_request` with reason `bad_path`."""
    with pytest.raises(GatewayRefused) as refused:
        upstream_tail(tail.encode("latin-1"))
    assert (refused.value.code, refused.value.reason) == ("invalid_request", "bad_path")
    assert status_of(refused.value)[0] == 422
    assert SESSION not in str(refused.value) and MASTER not in str(refused.value)


def _server_views(tail: str) -> list[str]:
    """How servers may read a path: decoded once or twice, `\\` as `/`, `;…` cut off."""
    views = []
    for decoded in (tail, unquote(tail), unquote(unquote(tail))):
        for slashed in (decoded, decoded.replace("\\", "/")):
            views.append(slashed)
            views.append("/".join(segment.split(";")[0] for segment in slashed.split("/")))
    return views


@given(st.text(alphabet="/.%2eE5cC3bBfF0;\\a:", max_size=24).map(lambda text: "/" + text))
def test_no_accepted_path_leaves_the_base_path(tail: str) -> None:
    """Whatever the tail, if it is accepted then no server's reading of it (decoded once or
    twice, backslash as slash, `;` parameters cut) climbs out of the base URL's path."""
    try:
        path = upstream_tail(tail.encode())
    except GatewayRefused:
        return
    assert path == tail
    for view in _server_views(tail):
        assert posixpath.normpath("/base" + view).startswith("/base")
        assert not any(segment in (".", "..") for segment in view.split("/"))


def test_the_audited_path_never_shows_a_token() -> None:
    """The audit's copy of a path masks a raw token and hides a path with an encoded one."""
    assert audit_path(f"/v1/files/{SESSION}".encode()) == "/v1/files/[aileron-token]"
    assert SESSION not in audit_path(f"/v1/{quote(_percent_all(SESSION))}".encode())
    assert audit_path(b"/v1/models") == "/v1/models"


# -- request_headers ----------------------------------------------------------------------------


def test_headers_holding_a_token_are_dropped() -> None:
    """Every header whose value (in any encoding) or name holds a token is not forwarded; the
    agent's own credential and ordinary headers are."""
    raw = [
        (b"Authorization", f"Bearer {REAL_KEY}".encode()),
        (b"X-Foo", MASTER.encode()),
        (b"X-Bar", f"id={SESSION}".encode()),
        (b"X-Proxy-Auth", f"Basic {_basic('me', SESSION)}".encode()),
        (b"X-Enc", _percent_all(SESSION).encode()),
        (f"X-{SESSION}".encode(), b"1"),
        (b"User-Agent", b"OpenAI/Python 1.99.0"),
        (b"OpenAI-Beta", b"responses=v1"),
    ]
    kept = request_headers(raw, drop=[], add=[("x-added", "1")])
    assert kept == [
        (b"Authorization", f"Bearer {REAL_KEY}".encode()),
        (b"User-Agent", b"OpenAI/Python 1.99.0"),
        (b"OpenAI-Beta", b"responses=v1"),
        (b"x-added", b"1"),
    ]


# -- through the daemon (in-process) --------------------------------------------------------


def test_tokens_in_headers_and_query_never_reach_the_provider(gw: Gw) -> None:
    """A request carrying the master token, the session token and a dead one in other headers
    and the query is forwarded without any of them; the rest of the query goes as it came."""
    dead = new_token("ais")
    master = gw.master["Authorization"].removeprefix("Bearer ")
    headers = {
        **session_headers(gw.token),
        "X-Foo": master,
        "X-Bar": gw.token,
        "X-Old": f"Basic {_basic('me', dead)}",
    }
    query = f"?k={gw.token}&api-version=2024-10-21&m={_percent_all(master)}&d={dead}"
    answer = gw.client.post(
        f"gateway/openai/v1/chat/completions{query}", json=CHAT, headers=headers
    )
    assert answer.status_code == 200, answer.text
    (seen,) = gw.fake.seen
    assert seen.path == "/v1/chat/completions?api-version=2024-10-21"
    assert {"x-foo", "x-bar", "x-old"}.isdisjoint(seen.header_names())
    everything = seen.path + "".join(f"{name}:{value}" for name, value in seen.headers)
    assert not token_in(everything.encode())


@pytest.mark.parametrize("tail", ["/v1/%2e%2e/admin", "/v1/..%5cadmin", "/v1/..;/x", "/v1%2fx"])
def test_a_path_trick_is_refused_audited_and_never_forwarded(gw: Gw, tail: str) -> None:
    """An encoded trick reaches the daemon as sent and is refused (422 in OpenAI's error shape),
    audited as `gateway.refused` with reason `bad_path`, and nothing is forwarded."""
    answer = gw.client.get(f"gateway/openai{tail}", headers=session_headers(gw.token))
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_request"
    assert gw.fake.seen == []
    (record,) = gw.audit("gateway.refused")
    assert record["session_id"] == gw.session_id
    assert (record["payload"]["reason"], record["payload"]["path"]) == ("bad_path", tail)
