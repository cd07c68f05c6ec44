"""The credential never reaches an error, a returned URL, a returned body or a log line."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from executor.connector import SECRET, execute, make_spec
from executor.upstream_server import Reply, UpstreamServer, closed_port, running

from aileron_cli.daemon.egress.executor import UpstreamError
from aileron_core.errors import AileronError
from aileron_core.redaction import REDACTED, Secret, redact

PASSWORD = "hunter2-" + SECRET
# (kind, credential name, secret value) for every credential kind.
KINDS = [
    ("bearer", None, SECRET),
    ("header", "X-Api-Key", SECRET),
    ("basic", None, f"alice:{PASSWORD}"),
    ("basic", None, SECRET),
    ("query", "api_key", SECRET),
]
KIND_IDS = ["bearer", "header", "basic", "basic-no-colon", "query"]


def spellings(value: str) -> list[str]:
    """Every way the value travels: raw, base64 (basic), percent-encoded (query)."""
    forms = [value, quote(value, safe=""), quote_plus(value), str(httpx.QueryParams(k=value))[2:]]
    for text in (value, value + ":"):
        forms.append(base64.b64encode(text.encode()).decode())
    if value.startswith("alice:"):
        forms.append(PASSWORD)
    return forms


def assert_no_secret(text: str, value: str) -> None:
    for form in spellings(value):
        assert form not in text, f"{form!r} leaked"


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    """A recording local HTTP server."""
    with running() as server:
        yield server


def test_redact_replaces_every_spelling_of_the_secret() -> None:
    """redact() removes the raw, base64 and percent-encoded forms of a secret."""
    value = f"alice:{PASSWORD}"
    text = " | ".join(spellings(value))
    redacted = redact(text, Secret(value))
    assert_no_secret(redacted, value)
    assert redacted.count(REDACTED) == len(spellings(value))


def test_redact_without_a_secret_changes_nothing() -> None:
    """redact(text, None) returns the text unchanged."""
    assert redact("Bearer abc", None) == "Bearer abc"


def test_a_secret_does_not_show_in_repr_or_str() -> None:
    """Secret's repr and str hide the value."""
    secret = Secret(SECRET)
    assert SECRET not in repr(secret)
    assert SECRET not in str(secret)
    assert SECRET not in repr([secret])


@pytest.mark.parametrize(("kind", "name", "value"), KINDS, ids=KIND_IDS)
def test_a_success_body_echoing_the_credential_is_redacted(
    upstream: UpstreamServer, kind: str, name: str | None, value: str
) -> None:
    """When the upstream echoes the request (credential included), the result holds none of it."""
    spec, op = make_spec([upstream.host], kind=kind, name=name)
    result = execute(spec, op, {}, Secret(value))
    sent = json.dumps(upstream.seen[0].echo())
    assert any(form in sent for form in spellings(value))  # the server did see it
    assert_no_secret(json.dumps(result.body) + result.url, value)
    assert REDACTED in json.dumps(result.body)


def test_a_number_equal_to_the_secret_is_redacted(upstream: UpstreamServer) -> None:
    """A JSON number spelling the secret (a numeric PIN) is redacted too."""
    upstream.replies["/echo"] = Reply(body=b'{"pin": 82736451, "n": 1}')
    spec, op = make_spec([upstream.host])
    result = execute(spec, op, {}, Secret("82736451"))
    assert result.body == {"pin": REDACTED, "n": 1}


Scenario = Callable[[UpstreamServer], tuple[list[str], dict[str, Any]]]


def _server_error(server: UpstreamServer) -> tuple[list[str], dict[str, Any]]:
    server.replies["/echo"] = Reply(status=500)  # echoes the whole request back
    return [server.host], {}


def _timeout(server: UpstreamServer) -> tuple[list[str], dict[str, Any]]:
    server.replies["/echo"] = Reply(delay_s=10)
    return [server.host], {"timeout_s": 0.2}


def _too_large(server: UpstreamServer) -> tuple[list[str], dict[str, Any]]:
    server.replies["/echo"] = Reply(stream_total=4 << 20)
    return [server.host], {"max_response_bytes": 1024}


def _refused_redirect(server: UpstreamServer) -> tuple[list[str], dict[str, Any]]:
    server.replies["/echo"] = Reply(status=302, body=b"", headers={"Location": "http://localhost/"})
    return [server.host], {}


def _redirect_loop(server: UpstreamServer) -> tuple[list[str], dict[str, Any]]:
    server.replies["/echo"] = Reply(status=307, body=b"", headers={"Location": "/echo"})
    return [server.host], {"max_redirects": 1}


def _unreachable(server: UpstreamServer) -> tuple[list[str], dict[str, Any]]:
    return [f"127.0.0.1:{closed_port()}"], {}


SCENARIOS: dict[str, Scenario] = {
    "server-error": _server_error,
    "timeout": _timeout,
    "too-large": _too_large,
    "refused-redirect": _refused_redirect,
    "redirect-loop": _redirect_loop,
    "unreachable": _unreachable,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize(("kind", "name", "value"), KINDS, ids=KIND_IDS)
def test_errors_never_contain_the_secret(
    upstream: UpstreamServer, scenario: str, kind: str, name: str | None, value: str
) -> None:
    """For every kind and failure, message, hint and details hold no form of the secret."""
    hosts, options = SCENARIOS[scenario](upstream)
    spec, op = make_spec(hosts, kind=kind, name=name)
    with pytest.raises(AileronError) as caught:
        execute(spec, op, {}, Secret(value), **options)
    error = caught.value
    assert isinstance(error.code, str) and error.code != "aileron_error"
    if scenario != "refused-redirect":
        assert isinstance(error, UpstreamError)
    assert_no_secret(f"{error}|{error.message}|{error.hint}|{json.dumps(error.details)}", value)
    assert error.__cause__ is None or not isinstance(error.__cause__, httpx.HTTPError)


def test_logs_never_contain_a_query_credential(
    upstream: UpstreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Even at DEBUG, no log record (httpx's request log included) holds the credential."""
    caplog.set_level(logging.DEBUG)
    spec, op = make_spec([upstream.host], kind="query", name="api_key")
    execute(spec, op, {}, Secret(SECRET))
    assert upstream.seen[0].query["api_key"] == [SECRET]
    assert_no_secret(caplog.text, SECRET)
    assert_no_secret(" ".join(str(record.args) for record in caplog.records), SECRET)
