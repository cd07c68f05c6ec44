"""Locking the vault also forgets the secrets the daemon's request paths had cached."""

from __future__ import annotations

from actions.support import SECRET, echo_spec, manifest
from fastapi.testclient import TestClient

from aileron_cli.daemon.store import secret_cache
from aileron_cli.examples.echo_server import EchoServer


def test_vault_lock_empties_the_secret_cache(api: TestClient) -> None:
    """A run caches its binding's secret; `POST /vault/lock` drops it at once."""
    with EchoServer(SECRET) as echo:
        assert api.post("vault/init", json={"passphrase": "lock test"}).status_code == 201
        assert api.post("connectors", json={"spec": echo_spec(echo.host)}).status_code == 201
        assert api.post("actions", json={"manifest": manifest("echo-say")}).status_code == 201
        binding = {"name": "token/echo/default", "value": SECRET}
        assert api.post("bindings", json=binding).status_code == 201
        ran = api.post("actions/echo-say/run", json={"args": {"message": "hi"}})
        assert ran.status_code == 200, ran.text
    state = api.app.state.daemon  # type: ignore[attr-defined]
    cache = secret_cache.for_vault(state.vault)
    assert len(cache) == 1
    assert api.post("vault/lock").status_code == 200
    assert len(cache) == 0
