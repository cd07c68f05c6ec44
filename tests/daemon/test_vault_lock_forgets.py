"""Locking the vault, or stopping the daemon, forgets the secrets the request paths had cached
(the runner's and the gateway's keys alike: one cache, owned by the vault service)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from actions.support import SECRET, echo_spec, manifest
from conftest import MASTER
from fakes.provider import FakeProvider
from fastapi.testclient import TestClient
from gateway.support import CHAT, REAL_KEY, session_headers, write_config

from aileron_cli.__about__ import __version__
from aileron_cli.daemon.daemon import Daemon, DaemonConfig, create_app
from aileron_cli.examples.echo_server import EchoServer
from aileron_core.paths import Layout
from aileron_core.vault import KdfParams


@pytest.fixture
def provider(layout: Layout) -> Iterator[FakeProvider]:
    """A fake LLM provider, configured for the gateway before the daemon starts."""
    with FakeProvider(REAL_KEY) as fake:
        write_config(layout.home, fake.url)
        yield fake


def daemon_of(client: TestClient) -> Daemon:
    daemon: Daemon = client.app.state.daemon  # type: ignore[attr-defined]
    return daemon


def use_both_paths(api: TestClient, echo: EchoServer) -> None:
    """Run an action with a binding, and send one gateway request with a bound key."""
    assert api.post("vault/init", json={"passphrase": "lock test"}).status_code == 201
    assert api.post("connectors", json={"spec": echo_spec(echo.host)}).status_code == 201
    assert api.post("actions", json={"manifest": manifest("echo-say")}).status_code == 201
    for name, value in (("token/echo/default", SECRET), ("api_key/openai/default", REAL_KEY)):
        assert api.post("bindings", json={"name": name, "value": value}).status_code == 201
    ran = api.post("actions/echo-say/run", json={"args": {"message": "hi"}})
    assert ran.status_code == 200, ran.text
    session = api.post("sessions", json={"agent": "codex", "working_dir": "/w"}).json()
    answer = api.post(
        "gateway/openai/v1/chat/completions", json=CHAT, headers=session_headers(session["token"])
    )
    assert answer.status_code == 200, answer.text


def test_vault_lock_empties_the_secret_cache(provider: FakeProvider, api: TestClient) -> None:
    """A run and a gateway request cache their bindings' secrets; `POST /vault/lock` drops
    both at once."""
    with EchoServer(SECRET) as echo:
        use_both_paths(api, echo)
    cache = daemon_of(api).vault.secrets
    assert len(cache) == 2
    assert api.post("vault/lock").status_code == 200
    assert len(cache) == 0


def test_stopping_the_daemon_empties_the_secret_cache(
    provider: FakeProvider, layout: Layout
) -> None:
    """The same cached secrets are forgotten when the daemon stops (the vault is locked)."""
    config = DaemonConfig(
        layout=layout,
        version=__version__,
        master_token=MASTER,
        kdf=KdfParams(time_cost=1, memory_kib=64, parallelism=1),
    )
    headers = {"Authorization": f"Bearer {MASTER}", "X-Aileron-Version": __version__}
    with (
        TestClient(create_app(config), base_url="http://testserver/v1/", headers=headers) as api,
        EchoServer(SECRET) as echo,
    ):
        use_both_paths(api, echo)
        daemon = daemon_of(api)
        assert len(daemon.vault.secrets) == 2
    assert len(daemon.vault.secrets) == 0
    assert daemon.vault.state() == "locked"
