"""The ``oauth2`` credential kind of a connector spec: its parser rules, its normal form and
digest, and how its token is injected."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from actions.support import echo_spec

from aileron_core.connectors import (
    OAuth2Endpoints,
    SpecError,
    parse_connector_spec,
    spec_digest,
    spec_to_json,
)
from aileron_core.credentials import carrier_header, credential_headers, credential_problem

OAUTH2: dict[str, Any] = {
    "authorize_url": "https://github.com/login/oauth/authorize",
    "token_url": "https://github.com/login/oauth/access_token",
    "device_authorization_url": "https://github.com/login/device/code",
    "scopes": ["repo", "read:org"],
}


def spec_with(credential: dict[str, Any]) -> dict[str, Any]:
    spec = echo_spec("127.0.0.1:8765")
    spec["credential"] = credential
    return spec


def parse(document: dict[str, Any]) -> Any:
    return parse_connector_spec(json.dumps(document))


def test_an_oauth2_credential_parses_with_its_endpoints() -> None:
    """kind oauth2 with its object: the endpoints and scopes are kept as given."""
    spec = parse(spec_with({"service": "github", "kind": "oauth2", "oauth2": OAUTH2}))
    assert spec.credential.kind == "oauth2"
    assert spec.credential.oauth2 == OAuth2Endpoints(
        authorize_url=OAUTH2["authorize_url"],
        token_url=OAUTH2["token_url"],
        device_authorization_url=OAUTH2["device_authorization_url"],
        scopes=("repo", "read:org"),
    )


def test_the_normal_form_round_trips_and_omits_what_is_absent() -> None:
    """spec_to_json parses back to the same spec; a missing device URL is not written as null."""
    endpoints = {k: v for k, v in OAUTH2.items() if k != "device_authorization_url"}
    spec = parse(spec_with({"service": "github", "kind": "oauth2", "oauth2": endpoints}))
    normal = spec_to_json(spec)
    assert "device_authorization_url" not in normal["credential"]["oauth2"]
    assert parse(normal) == spec


def test_a_spec_without_oauth2_keeps_its_digest() -> None:
    """A bearer spec's normal form has no oauth2 key: its credential is exactly the three
    keys it had before the kind existed, so its digest has not changed."""
    spec = parse(echo_spec("127.0.0.1:8765"))
    assert "oauth2" not in spec_to_json(spec)["credential"]
    assert spec_digest(spec) == spec_digest(parse(spec_to_json(spec)))
    assert spec_to_json(spec)["credential"] == {"service": "echo", "kind": "bearer", "name": None}


@pytest.mark.parametrize(
    ("credential", "place", "problem"),
    [
        ({"service": "s", "kind": "oauth2"}, "oauth2", "is required for kind 'oauth2'"),
        ({"service": "s", "kind": "bearer", "oauth2": OAUTH2}, "oauth2", "must be absent"),
        ({"service": "s", "kind": "oauth2", "oauth2": OAUTH2, "name": "X"}, "name", "absent"),
        (
            {"service": "s", "kind": "oauth2", "oauth2": {**OAUTH2, "token_url": "http://a.com/t"}},
            "token_url",
            "plain http is allowed only to a loopback host",
        ),
        (
            {"service": "s", "kind": "oauth2", "oauth2": {**OAUTH2, "authorize_url": "ftp://x"}},
            "authorize_url",
            "must be an https:// URL",
        ),
        (
            {"service": "s", "kind": "oauth2", "oauth2": {**OAUTH2, "token_url": "https://u@a/t"}},
            "token_url",
            "user info",
        ),
        (
            {"service": "s", "kind": "oauth2", "oauth2": {**OAUTH2, "scopes": ["a b"]}},
            "scopes[0]",
            "no spaces",
        ),
        (
            {"service": "s", "kind": "oauth2", "oauth2": {**OAUTH2, "scopes": ["a", "a"]}},
            "scopes[1]",
            "",
        ),
        (
            {"service": "s", "kind": "oauth2", "oauth2": {**OAUTH2, "extra": 1}},
            "extra",
            "unknown key",
        ),
        (
            {"service": "s", "kind": "oauth2", "oauth2": {"token_url": OAUTH2["token_url"]}},
            "authorize_url",
            "is required",
        ),
    ],
)
def test_a_broken_oauth2_credential_is_refused_naming_the_place(
    credential: dict[str, Any], place: str, problem: str
) -> None:
    """Each broken rule is a SpecError at the exact place, saying what is wrong."""
    with pytest.raises(SpecError) as raised:
        parse(spec_with(copy.deepcopy(credential)))
    assert raised.value.details["path"].endswith(place), raised.value.details
    assert problem in raised.value.details["problem"]


def test_http_endpoints_on_loopback_are_allowed() -> None:
    """A local authorization server (a test or a dev box) may use plain http on 127.0.0.1."""
    local = {"authorize_url": "http://127.0.0.1:9/a", "token_url": "http://localhost:9/t"}
    spec = parse(spec_with({"service": "s", "kind": "oauth2", "oauth2": local}))
    assert spec.credential.oauth2 is not None
    assert spec.credential.oauth2.token_url == "http://localhost:9/t"


def test_an_oauth2_token_travels_as_a_bearer_token() -> None:
    """The access token goes in Authorization: Bearer, checked like a bearer value."""
    assert credential_headers("oauth2", None, "at-123") == {"Authorization": "Bearer at-123"}
    assert carrier_header("oauth2", None) == "authorization"
    assert credential_problem("oauth2", "at-123\n") is not None
    assert credential_problem("oauth2", "at-123") is None
