"""The enclave's audit witness API, against a real `aileron-enclave serve` process."""

from __future__ import annotations

import base64
import hashlib
import os

from enclave.support import EnclaveProcess

from aileron_core.audit_heads import key_id, parse_witness, witness_signature_ok
from aileron_core.canonical import canonical_json

VAULT = "0123456789abcdef0123456789abcdef"


def digest(n: int) -> str:
    return hashlib.sha256(f"head {n}".encode()).hexdigest()


def signing_key(enclave: EnclaveProcess) -> bytes:
    with enclave.client() as http:
        answer = http.post("/v1/attest", json={"nonce": os.urandom(16).hex()}).json()
    return base64.b64decode(answer["document"]["signing_key"])


def test_marks_are_signed_by_the_attested_key_and_never_go_back(enclave: EnclaveProcess) -> None:
    """Marks verify under the attested key; lower n and same-n-other-digest are 409, n again is
    the stored mark."""
    key = enclave.register()
    public = signing_key(enclave)
    with enclave.client(key) as http:
        first = http.post("/v1/witness", json={"vault_id": VAULT, "n": 1, "digest": digest(1)})
        assert first.status_code == 200, first.text
        mark = parse_witness(canonical_json(first.json()) + b"\n")
        assert (mark.n, mark.digest, mark.vault_id, mark.key) == (
            1,
            digest(1),
            VAULT,
            key_id(public),
        )
        assert witness_signature_ok(mark, public)
        third = http.post("/v1/witness", json={"vault_id": VAULT, "n": 3, "digest": digest(3)})
        assert third.status_code == 200, third.text
        back = http.post("/v1/witness", json={"vault_id": VAULT, "n": 2, "digest": digest(2)})
        assert back.status_code == 409
        assert back.json()["error"]["code"] == "witness_rollback"
        assert back.json()["error"]["details"]["latest_n"] == 3
        other = http.post("/v1/witness", json={"vault_id": VAULT, "n": 3, "digest": digest(4)})
        assert other.status_code == 409
        assert other.json()["error"]["code"] == "witness_conflict"
        again = http.post("/v1/witness", json={"vault_id": VAULT, "n": 3, "digest": digest(3)})
        assert again.status_code == 200 and again.json() == third.json()
        latest = http.get("/v1/witness/latest", params={"vault_id": VAULT})
        assert latest.status_code == 200 and latest.json() == third.json()


def test_the_latest_head_survives_a_restart(enclave: EnclaveProcess) -> None:
    """After a restart the enclave still refuses to go back below what it witnessed."""
    key = enclave.register()
    with enclave.client(key) as http:
        done = http.post("/v1/witness", json={"vault_id": VAULT, "n": 5, "digest": digest(5)})
        assert done.status_code == 200, done.text
    enclave.stop()
    enclave.start()
    with enclave.client(key) as http:
        back = http.post("/v1/witness", json={"vault_id": VAULT, "n": 4, "digest": digest(4)})
        assert back.status_code == 409 and back.json()["error"]["code"] == "witness_rollback"
        latest = http.get("/v1/witness/latest", params={"vault_id": VAULT})
        assert latest.json() == done.json()
    assert [e["n"] for e in enclave.events() if e["event"] == "witness.signed"] == [5]


def test_witness_state_is_per_client_and_needs_a_signature(enclave: EnclaveProcess) -> None:
    """Unsigned calls are 401; another client has its own history; no mark yet is 404."""
    first, second = enclave.register(), enclave.register()
    body = {"vault_id": VAULT, "n": 7, "digest": digest(7)}
    with enclave.client() as http:
        assert http.post("/v1/witness", json=body).status_code == 401
        assert http.get("/v1/witness/latest", params={"vault_id": VAULT}).status_code == 401
    with enclave.client(first) as http:
        assert http.post("/v1/witness", json=body).status_code == 200
    with enclave.client(second) as http:
        missing = http.get("/v1/witness/latest", params={"vault_id": VAULT})
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "witness_not_found"
        lower = http.post("/v1/witness", json={"vault_id": VAULT, "n": 1, "digest": digest(1)})
        assert lower.status_code == 200


def test_malformed_witness_requests_are_refused(enclave: EnclaveProcess) -> None:
    """A bad vault id, n < 1 or a digest that is not 64 hex digits is 422 invalid_request."""
    key = enclave.register()
    with enclave.client(key) as http:
        for body in (
            {"vault_id": "xyz", "n": 1, "digest": digest(1)},
            {"vault_id": VAULT, "n": 0, "digest": digest(1)},
            {"vault_id": VAULT, "n": 1, "digest": "ab"},
            {"vault_id": VAULT, "n": "1", "digest": digest(1)},
        ):
            answer = http.post("/v1/witness", json=body)
            assert answer.status_code == 422, body
            assert answer.json()["error"]["code"] == "invalid_request"
