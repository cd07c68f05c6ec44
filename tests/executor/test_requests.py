"""The executor builds the request an operation describes and injects the credential."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from executor.connector import SECRET, execute, make_spec
from executor.upstream_server import Reply, UpstreamServer, running

from aileron_cli.__about__ import __version__
from aileron_cli.daemon.egress.executor import InvalidCredential
from aileron_core.arguments import ArgsError
from aileron_core.redaction import REDACTED, Secret


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    """A recording local HTTP server."""
    with running() as server:
        yield server


def test_bearer_credential_goes_in_the_authorization_header(upstream: UpstreamServer) -> None:
    """A bearer credential arrives as `Authorization: Bearer <value>`."""
    spec, op = make_spec([upstream.host], kind="bearer")
    execute(spec, op, {}, Secret(SECRET))
    assert upstream.seen[0].headers["authorization"] == f"Bearer {SECRET}"


def test_header_credential_goes_in_the_named_header(upstream: UpstreamServer) -> None:
    """A header credential arrives in the header the spec names, and nowhere else."""
    spec, op = make_spec([upstream.host], kind="header", name="X-Api-Key")
    execute(spec, op, {}, Secret(SECRET))
    seen = upstream.seen[0]
    assert seen.headers["x-api-key"] == SECRET
    assert "authorization" not in seen.headers
    assert seen.query == {}


@pytest.mark.parametrize(
    ("value", "pair"),
    [("alice:pa ss:wörd", "alice:pa ss:wörd"), ("sk_live_only", "sk_live_only:")],
)
def test_basic_credential_is_base64_of_user_colon_password(
    upstream: UpstreamServer, value: str, pair: str
) -> None:
    """A basic credential is sent base64-encoded; one without ':' is a user with no password."""
    spec, op = make_spec([upstream.host], kind="basic")
    execute(spec, op, {}, Secret(value))
    header = upstream.seen[0].headers["authorization"]
    assert header.startswith("Basic ")
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == pair


def test_query_credential_goes_in_the_named_query_parameter(upstream: UpstreamServer) -> None:
    """A query credential arrives as the named parameter, beside the operation's own query."""
    inputs = [{"name": "q", "type": "string", "in": "query"}]
    spec, op = make_spec([upstream.host], kind="query", name="api_key", inputs=inputs)
    result = execute(spec, op, {"q": "x"}, Secret(SECRET))
    seen = upstream.seen[0]
    assert seen.query == {"q": ["x"], "api_key": [SECRET]}
    assert "authorization" not in seen.headers
    assert SECRET not in result.url
    assert f"api_key={REDACTED}" in result.url


def test_no_credential_means_no_injection(upstream: UpstreamServer) -> None:
    """With no secret, no Authorization header and no credential parameter is sent."""
    spec, op = make_spec([upstream.host], kind="query", name="api_key")
    execute(spec, op, {}, None)
    seen = upstream.seen[0]
    assert "authorization" not in seen.headers
    assert seen.query == {}


def test_fixed_headers_name_aileron_and_ask_for_json(upstream: UpstreamServer) -> None:
    """Every request carries `User-Agent: aileron/<version>` and `Accept: application/json`."""
    spec, op = make_spec([upstream.host])
    execute(spec, op)
    headers = upstream.seen[0].headers
    assert headers["user-agent"] == f"aileron/{__version__}"
    assert headers["accept"] == "application/json"
    assert headers["accept-encoding"] == "identity"


def test_path_values_are_percent_encoded(upstream: UpstreamServer) -> None:
    """Path values are percent-encoded into their placeholders, `/` and non-ASCII included."""
    inputs: list[dict[str, Any]] = [
        {"name": "owner", "type": "string", "in": "path"},
        {"name": "n", "type": "integer", "in": "path"},
        {"name": "flag", "type": "boolean", "in": "path"},
    ]
    spec, op = make_spec([upstream.host], path="/repos/{owner}/{n}/{flag}", inputs=inputs)
    execute(spec, op, {"owner": "a b/é", "n": 7, "flag": True})
    assert upstream.seen[0].target == "/repos/a%20b%2F%C3%A9/7/true"


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("../../x?y=1", "/items/..%2F..%2Fx%3Fy%3D1"),
        ("http://evil.example/", "/items/http%3A%2F%2Fevil.example%2F"),
        ("@evil.example#frag", "/items/%40evil.example%23frag"),
    ],
)
def test_a_path_value_cannot_change_host_path_or_query(
    upstream: UpstreamServer, value: str, target: str
) -> None:
    """A hostile path value stays inside its one segment: same host, no query, no traversal."""
    inputs = [{"name": "id", "type": "string", "in": "path"}]
    spec, op = make_spec([upstream.host], path="/items/{id}", inputs=inputs)
    execute(spec, op, {"id": value})
    assert [seen.target for seen in upstream.seen] == [target]
    assert upstream.seen[0].query == {}


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_a_dot_or_empty_path_value_is_refused(upstream: UpstreamServer, value: str) -> None:
    """A path value of '', '.' or '..' (which would rename the resource) is an ArgsError."""
    inputs = [{"name": "id", "type": "string", "in": "path"}]
    spec, op = make_spec([upstream.host], path="/items/{id}/delete", inputs=inputs)
    with pytest.raises(ArgsError) as caught:
        execute(spec, op, {"id": value})
    assert caught.value.details["fields"][0]["name"] == "id"
    assert upstream.seen == []


def test_query_inputs_map_to_parameters(upstream: UpstreamServer) -> None:
    """Query inputs become parameters: arrays repeat, booleans are true/false, None is skipped."""
    inputs: list[dict[str, Any]] = [
        {"name": "q", "type": "string", "in": "query"},
        {"name": "n", "type": "integer", "in": "query"},
        {"name": "exact", "type": "boolean", "in": "query"},
        {"name": "tag", "type": "array", "in": "query"},
        {"name": "absent", "type": "string", "in": "query", "required": False},
    ]
    spec, op = make_spec([upstream.host], inputs=inputs)
    execute(spec, op, {"q": "a b&c=d", "n": 3, "exact": False, "tag": ["x", "y"], "absent": None})
    assert upstream.seen[0].query == {
        "q": ["a b&c=d"],
        "n": ["3"],
        "exact": ["false"],
        "tag": ["x", "y"],
    }


def test_body_inputs_become_a_json_object(upstream: UpstreamServer) -> None:
    """Body inputs are sent as one JSON object with Content-Type application/json."""
    inputs: list[dict[str, Any]] = [
        {"name": "id", "type": "string", "in": "path"},
        {"name": "title", "type": "string", "in": "body"},
        {"name": "labels", "type": "array", "in": "body"},
        {"name": "meta", "type": "object", "in": "body", "required": False},
        {"name": "note", "type": "string", "in": "body", "required": False},
    ]
    spec, op = make_spec([upstream.host], method="POST", path="/items/{id}", inputs=inputs)
    args = {"id": "7", "title": "Hi ✓", "labels": ["a"], "meta": {"k": [1, 2.5, None]}}
    result = execute(spec, op, args)
    seen = upstream.seen[0]
    assert (seen.method, seen.target) == ("POST", "/items/7")
    assert seen.headers["content-type"] == "application/json"
    assert json.loads(seen.body) == {
        "title": "Hi ✓",
        "labels": ["a"],
        "meta": {"k": [1, 2.5, None]},
    }
    assert result.bytes_out == len(seen.body)


def test_an_operation_without_body_inputs_sends_no_body(upstream: UpstreamServer) -> None:
    """A DELETE with no body inputs sends neither a body nor a Content-Type."""
    spec, op = make_spec([upstream.host], method="DELETE")
    result = execute(spec, op)
    seen = upstream.seen[0]
    assert (seen.method, seen.body) == ("DELETE", b"")
    assert "content-type" not in seen.headers
    assert result.bytes_out == 0


def test_a_json_answer_is_decoded(upstream: UpstreamServer) -> None:
    """A JSON answer is returned decoded, with its status, sizes, timing and URL."""
    upstream.replies["/echo"] = Reply(status=201, body=b'{"id": 42, "ok": true}')
    spec, op = make_spec([upstream.host])
    result = execute(spec, op)
    assert result.status == 201
    assert result.body == {"id": 42, "ok": True}
    assert result.bytes_in == len(b'{"id": 42, "ok": true}')
    assert result.duration_ms > 0
    assert result.url == upstream.url("/echo")


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("text/plain", b"hello \xff", {"text": "hello \ufffd"}),
        ("application/json", b"{not json", {"text": "{not json"}),
        ("application/json", b"[NaN]", {"text": "[NaN]"}),
        ("application/problem+json", b'{"title": "x"}', {"title": "x"}),
        ("application/json", b"", None),
    ],
)
def test_non_json_answers_become_text(
    upstream: UpstreamServer, content_type: str, body: bytes, expected: object
) -> None:
    """Non-JSON (or invalid JSON) answers come back as {"text": …}; an empty body as None."""
    upstream.replies["/echo"] = Reply(body=body, content_type=content_type)
    spec, op = make_spec([upstream.host])
    assert execute(spec, op).body == expected


@pytest.mark.parametrize(
    ("kind", "name", "value"),
    [
        ("bearer", None, "tok\n"),
        ("header", "X-Key", " padded"),
        ("bearer", None, "naïve"),
        ("basic", None, ""),
        ("query", "key", "a\x00b"),
    ],
)
def test_a_secret_that_cannot_travel_is_refused_before_sending(
    upstream: UpstreamServer, kind: str, name: str | None, value: str
) -> None:
    """An empty, control-character or (for headers) non-ASCII secret is InvalidCredential."""
    spec, op = make_spec([upstream.host], kind=kind, name=name)
    with pytest.raises(InvalidCredential) as caught:
        execute(spec, op, {}, Secret(value))
    assert caught.value.code == "invalid_credential"
    if value.strip():
        assert value.strip() not in str(caught.value) + json.dumps(caught.value.details)
    assert upstream.seen == []
