"""OAuth2 flows and the OAuth2 source in an in-process daemon, against the local
authorization server: refusals at the start, the callback's answers, one refresh for many
concurrent uses, and a token endpoint that is down."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from actions.support import echo_spec, manifest
from fakes.oauth_server import CLIENT_ID, CLIENT_SECRET, FakeOAuthServer
from fastapi.testclient import TestClient
from oauth.support import NAME, oauth_echo_spec

NEW = {"name": NAME, "connector": "local://echo", "client_id": CLIENT_ID}


@pytest.fixture
def oauth() -> Iterator[FakeOAuthServer]:
    """A local OAuth2 authorization server and its API."""
    with FakeOAuthServer() as server:
        yield server


@pytest.fixture
def daemon(api: TestClient, oauth: FakeOAuthServer) -> TestClient:
    """The in-process daemon with a vault, the OAuth2 echo connector and `echo-say`."""
    assert api.post("vault/init", json={"passphrase": "pw"}).status_code == 201
    assert api.post("connectors", json={"spec": oauth_echo_spec(oauth)}).status_code == 201
    assert api.post("actions", json={"manifest": manifest("echo-say")}).status_code == 201
    return api


def approve(api: TestClient, authorize_url: str) -> Any:
    """The browser: the authorization server approves, and its redirect reaches the daemon."""
    approved = httpx.get(authorize_url)
    assert approved.status_code == 302, approved.text
    return api.get(approved.headers["Location"])


def authorize(api: TestClient) -> dict[str, Any]:
    flow = api.post("bindings/oauth2", json={**NEW, "client_secret": CLIENT_SECRET}).json()
    page = approve(api, flow["authorize_url"])
    assert page.status_code == 200, page.text
    done: dict[str, Any] = api.get(f"bindings/oauth2/{flow['flow_id']}").json()
    assert done["status"] == "done", done
    return done


def test_a_connector_without_oauth2_is_refused(api: TestClient) -> None:
    """A flow for a connector whose credential is a plain bearer token is refused (422)."""
    assert api.post("vault/init", json={"passphrase": "pw"}).status_code == 201
    assert api.post("connectors", json={"spec": echo_spec("127.0.0.1:9")}).status_code == 201
    answer = api.post("bindings/oauth2", json=NEW)
    assert answer.status_code == 422
    assert "does not use OAuth2" in answer.json()["error"]["message"]


def test_a_binding_for_another_service_or_an_existing_name_is_refused(daemon: TestClient) -> None:
    """The binding must be named for the connector's service, and must not exist yet."""
    other = daemon.post("bindings/oauth2", json={**NEW, "name": "oauth2/github/default"})
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "invalid_binding_name"
    assert daemon.post("bindings", json={"name": NAME, "value": "v"}).status_code == 201
    again = daemon.post("bindings/oauth2", json=NEW)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "binding_exists"


def test_a_locked_vault_is_refused_before_any_flow(daemon: TestClient) -> None:
    """No flow starts while the vault is locked (its tokens could not be stored)."""
    assert daemon.post("vault/lock").is_success
    answer = daemon.post("bindings/oauth2", json=NEW)
    assert answer.status_code == 423
    assert answer.json()["error"]["code"] == "vault_locked"


def test_the_authorize_url_carries_pkce_and_a_state_of_the_daemon(
    daemon: TestClient,
) -> None:
    """Each flow has its own state and S256 challenge, and the daemon's callback as redirect."""
    urls = [daemon.post("bindings/oauth2", json=NEW).json()["authorize_url"] for _ in range(2)]
    queries = [httpx.URL(url).params for url in urls]
    assert queries[0]["state"] != queries[1]["state"]
    assert queries[0]["code_challenge"] != queries[1]["code_challenge"]
    assert len(queries[0]["state"]) >= 43
    assert queries[0]["redirect_uri"] == "http://testserver/v1/oauth/callback"
    assert queries[0]["code_challenge_method"] == "S256"


def test_a_denial_by_the_user_fails_the_flow(daemon: TestClient) -> None:
    """The authorization server's error=access_denied ends the flow as failed with that reason;
    nothing is bound."""
    flow = daemon.post("bindings/oauth2", json=NEW).json()
    state = httpx.URL(flow["authorize_url"]).params["state"]
    page = daemon.get("oauth/callback", params={"state": state, "error": "access_denied"})
    assert page.status_code == 400
    assert "access_denied" in page.text
    status = daemon.get(f"bindings/oauth2/{flow['flow_id']}").json()
    assert (status["status"], status["reason"]) == ("failed", "access_denied")
    assert daemon.get(f"bindings/{NAME}").status_code == 404


def test_a_callback_without_state_or_for_an_unknown_flow_is_refused(daemon: TestClient) -> None:
    """No state, or one the daemon never made: a 400 page; an unknown flow id is a 404."""
    assert daemon.get("oauth/callback", params={"code": "c"}).status_code == 400
    assert daemon.get("oauth/callback", params={"code": "c", "state": "s"}).status_code == 400
    assert daemon.get("bindings/oauth2/oaf_nope").status_code == 404


def test_a_callback_with_oversized_values_is_a_page_not_json(daemon: TestClient) -> None:
    """A state, code or error longer than any flow's gets the browser a 400 page (never
    FastAPI's JSON validation error, which the OpenAPI document does not promise here)."""
    for params in (
        {"state": "s" * 201},
        {"state": "s", "code": "c" * 4097},
        {"state": "s", "error": "e" * 201},
    ):
        page = daemon.get("oauth/callback", params=params)
        assert page.status_code == 400
        assert page.headers["content-type"].startswith("text/html")
        assert "longer than any flow" in page.text


def test_a_wrong_client_secret_fails_at_the_code_exchange(daemon: TestClient) -> None:
    """The token endpoint's invalid_client fails the flow (named), and the page shows no code."""
    flow = daemon.post("bindings/oauth2", json={**NEW, "client_secret": "wrong"}).json()
    approved = httpx.get(flow["authorize_url"])
    code = httpx.URL(approved.headers["Location"]).params["code"]
    page = daemon.get(approved.headers["Location"])
    assert page.status_code == 400
    assert "invalid_client" in page.text
    assert code not in page.text
    assert daemon.get(f"bindings/oauth2/{flow['flow_id']}").json()["reason"] == "invalid_client"


def test_concurrent_uses_of_an_expiring_token_refresh_it_once(
    daemon: TestClient, oauth: FakeOAuthServer
) -> None:
    """Eight requests for the token of a binding about to expire wait for one refresh and all
    get its new access token."""
    oauth.expires_in = 30
    authorize(daemon)
    oauth.expires_in = 3600
    state = daemon.app.state.daemon  # type: ignore[attr-defined]
    binding = state.bindings.get(NAME)

    async def use_at_once() -> list[bytes]:
        found: list[bytes] = await asyncio.gather(
            *(state.credentials.secret(binding) for _ in range(8))
        )
        return found

    assert daemon.portal is not None
    tokens = daemon.portal.call(use_at_once)
    assert oauth.refreshes == 1
    assert len(set(tokens)) == 1
    assert tokens[0].decode() == oauth.issued[-2]  # the refreshed access token


def test_a_token_endpoint_that_is_down_is_a_clear_502(
    daemon: TestClient, oauth: FakeOAuthServer
) -> None:
    """When the access token needs refreshing and the token endpoint does not answer, the run
    fails upstream_unreachable naming the binding (not refresh_failed: nothing was refused)."""
    oauth.expires_in = 30
    authorize(daemon)
    oauth.stop()
    answer = daemon.post("actions/echo-say/run", json={"args": {"message": "m"}})
    assert answer.status_code == 502, answer.text
    error = answer.json()["error"]
    assert error["code"] == "upstream_unreachable"
    assert NAME in error["message"]


def test_a_state_is_good_for_ten_minutes_only(daemon: TestClient) -> None:
    """A flow whose browser comes back after FLOW_TTL_S is expired: its state is refused and
    the flow reads failed (expired); nothing is bound."""
    from aileron_cli.daemon.errors import DaemonError
    from aileron_cli.daemon.run.sources.oauth2 import OAuth2Source, TokenEndpoint
    from aileron_cli.daemon.run.sources.oauth2_flows import FLOW_TTL_S, OAuth2Flows
    from aileron_core.audit import Actor

    state = daemon.app.state.daemon  # type: ignore[attr-defined]
    now = [1000.0]
    endpoint = TokenEndpoint(state.network)
    flows = OAuth2Flows(
        source=OAuth2Source(vault=state.vault, audit=state.audit, endpoint=endpoint),
        endpoint=endpoint,
        vault=state.vault,
        bindings=state.bindings,
        connectors=state.connectors,
        audit=state.audit,
        base_url="http://127.0.0.1:1",
        clock=lambda: now[0],
    )
    human = Actor(type="human", id="user")

    async def scenario() -> tuple[str, str | None]:
        flow = await flows.start(
            name=NAME,
            connector="local://echo",
            client_id=CLIENT_ID,
            client_secret=None,
            scopes=None,
            device=False,
            actor=human,
        )
        assert flow.authorize_url is not None
        now[0] += FLOW_TTL_S + 1
        late = httpx.URL(flow.authorize_url).params["state"]
        with pytest.raises(DaemonError, match="unknown, finished or expired"):
            await flows.callback(state=late, code="c", error=None)
        status = await flows.status(flow.flow_id)
        return status.status, status.reason

    assert daemon.portal is not None
    assert daemon.portal.call(scenario) == ("failed", "expired")
    assert daemon.get(f"bindings/{NAME}").status_code == 404


def test_the_cli_asks_for_the_connector_and_client_id() -> None:
    """`binding add oauth2/...` without --connector/--client-id is a usage error (exit 2)
    naming both, before the daemon is asked anything."""
    from helpers import aileron

    done = aileron("binding", "add", NAME)
    assert done.returncode == 2
    assert "--connector FQN --client-id ID" in done.stderr
