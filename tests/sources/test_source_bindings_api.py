"""A source binding through the daemon's API: its settings (an App's private key) are never
answered back, and it cannot be escrowed (the enclave would inject the settings themselves)."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

NAME = "app/github/default"


def app_settings() -> tuple[str, str]:
    """A GitHub App binding's vault value, and one line of its key's body."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    value = {"app_id": "1", "installation_id": "2", "private_key": pem}
    return json.dumps(value), pem.splitlines()[1]


def test_the_private_key_is_never_answered_and_the_binding_cannot_be_escrowed(
    api: TestClient,
) -> None:
    """Add, list and show answer the metadata only; escrow is 409 escrow_scope_unknown naming
    the source, and the binding keeps its settings in the vault."""
    api.post("vault/init", json={"passphrase": "pw"}).raise_for_status()
    value, key_line = app_settings()
    metadata = {"source": "github_app", "app_id": "1", "installation_id": "2"}
    added = api.post("bindings", json={"name": NAME, "value": value, "metadata": metadata})
    assert added.status_code == 201, added.text
    answers = [added.text, api.get("bindings").text, api.get(f"bindings/{NAME}").text]
    assert api.get(f"bindings/{NAME}").json()["metadata"] == metadata
    escrow = api.post(f"bindings/{NAME}/escrow", json={"hosts": ["api.github.com"]})
    answers.append(escrow.text)
    assert escrow.status_code == 409
    assert escrow.json()["error"]["code"] == "escrow_scope_unknown"
    assert "github_app" in escrow.json()["error"]["message"]
    assert api.get(f"bindings/{NAME}").json()["escrow"] is None
    assert not [answer for answer in answers if key_line in answer]
