"""The enclave's HTTP API and command line, against a real `aileron-enclave serve` process."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from enclave.support import SECRET, EnclaveProcess, echo_request, run_enclave

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.enclave.attestation import public_ed25519
from aileron_core.enclave.encoding import b64encode
from aileron_core.enclave.sealing import Scope
from aileron_core.enclave.signing import sign_request


def scope_for(echo: EchoServer) -> Scope:
    return Scope(binding="token/echo/default", hosts=[echo.host], kind="bearer")


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        (None, "AILERON_TEE_PROVIDER is not set"),
        ("confidential-space", "TEE provider 'confidential-space' (Google Cloud Confidential"),
        ("sgx-magic", "unknown TEE provider 'sgx-magic'"),
    ],
)
def test_providers_other_than_local_are_refused(
    provider: str | None, message: str, tmp_path: Path
) -> None:
    """serve refuses an unset, planned or unknown provider with one clear line, exit 1."""
    done = run_enclave("serve", "--data-dir", str(tmp_path / "d"), provider=provider)
    assert done.returncode == 1
    assert done.stderr.startswith(f"aileron-enclave: error: {message}")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "AILERON_TEE_PROVIDER=local" in done.stderr
    assert not (tmp_path / "d").exists()


def test_data_dir_is_private_and_https_only(enclave: EnclaveProcess) -> None:
    """The data dir is 0700/0600 and TLS-only, with the certificate `fingerprint` prints."""
    assert enclave.data_dir.stat().st_mode & 0o777 == 0o700
    for path in enclave.data_dir.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    printed = run_enclave("fingerprint", "--data-dir", str(enclave.data_dir))
    assert printed.returncode == 0 and printed.stdout.strip() == enclave.fingerprint
    host, port = enclave.url.removeprefix("https://").rsplit(":", 1)
    pem = ssl.get_server_certificate((host, int(port)))
    assert hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest() == enclave.fingerprint
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://{host}:{port}/health", timeout=5)
    with enclave.client() as http:
        assert http.get("/health").json()["provider"] == "local"


def test_fingerprint_without_an_identity_is_a_clear_error(tmp_path: Path) -> None:
    """`aileron-enclave fingerprint` on an empty data dir says to run serve once."""
    done = run_enclave("fingerprint", "--data-dir", str(tmp_path / "none"))
    assert done.returncode == 1
    assert "run `aileron-enclave serve` once" in done.stderr


def test_registration_needs_the_one_time_code(enclave: EnclaveProcess) -> None:
    """A wrong code is refused (403); the right one registers one client and is then replaced."""
    key = b64encode(public_ed25519(Ed25519PrivateKey.generate()))
    code = enclave.code()
    with enclave.client() as http:
        wrong = http.post("/v1/clients", json={"public_key": key, "registration_code": "aec_x"})
        assert wrong.status_code == 403
        assert wrong.json()["error"]["code"] == "bad_registration_code"
        first = http.post("/v1/clients", json={"public_key": key, "registration_code": code})
        assert first.status_code == 201
        again = http.post("/v1/clients", json={"public_key": key, "registration_code": code})
        assert again.status_code == 403
    assert enclave.code() != code


def test_an_unregistered_client_key_is_refused(enclave: EnclaveProcess) -> None:
    """An unregistered client key gets 401 unknown_client; an unsigned call 401 unauthorized."""
    stranger = Ed25519PrivateKey.generate()
    with enclave.client(stranger) as http:
        answer = http.get("/v1/escrow")
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["code"] == "unknown_client"
    assert "is not registered with this enclave" in error["message"]
    with enclave.client() as http:
        unsigned = http.post("/v1/execute", json={})
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "unauthorized"


def test_replayed_and_forged_requests_are_refused(enclave: EnclaveProcess) -> None:
    """Replayed, stale, or signed-for-another-path/enclave requests are refused with 401."""
    key = enclave.register()
    with enclave.client() as http:
        headers = sign_request(
            key, method="GET", target="/v1/escrow", body=b"", enclave=enclave.fingerprint
        )
        assert http.get("/v1/escrow", headers=headers).status_code == 200
        replayed = http.get("/v1/escrow", headers=headers)
        assert replayed.json()["error"]["code"] == "replayed_request"
        other_path = sign_request(
            key, method="GET", target="/v1/other", body=b"", enclave=enclave.fingerprint
        )
        assert http.get("/v1/escrow", headers=other_path).json()["error"]["code"] == (
            "bad_signature"
        )
        other_enclave = sign_request(
            key, method="GET", target="/v1/escrow", body=b"", enclave="0" * 64
        )
        assert http.get("/v1/escrow", headers=other_enclave).status_code == 401
        stale = sign_request(
            key, method="GET", target="/v1/escrow", body=b"", enclave=enclave.fingerprint, now=1
        )
        assert http.get("/v1/escrow", headers=stale).json()["error"]["code"] == "stale_request"


def test_execute_injects_the_credential_and_logs_without_it(
    enclave: EnclaveProcess, echo: EchoServer
) -> None:
    """Execute injects the credential (over the caller's); answer and log never show it."""
    key = enclave.register()
    escrow_id = enclave.escrow(key, scope_for(echo))
    request = echo_request(echo.host, message=f"echo {SECRET}")
    request["headers"].append(["Authorization", "Bearer attacker-chosen"])
    with enclave.client(key) as http:
        listed = http.get("/v1/escrow").json()["escrows"]
        answer = http.post("/v1/execute", json={"escrow_id": escrow_id, "request": request})
    assert [e["id"] for e in listed] == [escrow_id]
    assert "sealed" not in listed[0]
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["status"] == 200
    body = base64.b64decode(result["body"])
    assert json.loads(body) == {"echo": "echo [REDACTED]", "authorized": True}
    assert [seen.headers["Authorization"] for seen in echo.seen] == [f"Bearer {SECRET}"]
    events = enclave.events()
    executed = [e for e in events if e["event"] == "execute"]
    assert executed[0]["outcome"] == "ok" and executed[0]["status"] == 200
    assert executed[0]["escrow_id"] == escrow_id and executed[0]["path"] == "/echo"
    assert SECRET not in (enclave.data_dir / "events.jsonl").read_text()


def test_execute_to_a_host_outside_the_scope_is_refused(
    enclave: EnclaveProcess, echo: EchoServer
) -> None:
    """Execute to a host outside the scope (or with user info) is 403 and sends nothing."""
    key = enclave.register()
    escrow_id = enclave.escrow(key, scope_for(echo))
    with EchoServer(SECRET) as other, enclave.client(key) as http:
        for url in (
            f"http://{other.host}/echo",
            f"http://user:pw@{echo.host}/echo",
            "http://api.example.com/echo",
        ):
            request = {**echo_request(echo.host), "url": url}
            answer = http.post("/v1/execute", json={"escrow_id": escrow_id, "request": request})
            assert answer.status_code == 403, answer.text
            error = answer.json()["error"]
            assert error["code"] == "host_not_allowed"
        assert other.seen == []
    assert echo.seen == []
    assert "refused to send binding token/echo/default's credential" in error["message"]
    assert [e["outcome"] for e in enclave.events() if e["event"] == "execute"] == [
        "host_not_allowed"
    ] * 3


def test_a_secret_that_cannot_travel_is_412_invalid_credential(
    enclave: EnclaveProcess, echo: EchoServer
) -> None:
    """An escrowed secret with a newline is never sent: 412 invalid_credential, as the daemon
    answers it (one status table, ADR 0026), retriable false, the secret not shown."""
    key = enclave.register()
    escrow_id = enclave.escrow(key, scope_for(echo), secret=f"{SECRET}\nInjected: yes")
    with enclave.client(key) as http:
        answer = http.post(
            "/v1/execute", json={"escrow_id": escrow_id, "request": echo_request(echo.host)}
        )
    assert answer.status_code == 412, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_credential" and error["retriable"] is False
    assert SECRET not in answer.text
    assert echo.seen == []


def test_escrows_belong_to_their_client(enclave: EnclaveProcess, echo: EchoServer) -> None:
    """Another registered client can neither list, use nor delete someone else's escrow."""
    owner = enclave.register()
    escrow_id = enclave.escrow(owner, scope_for(echo))
    other = enclave.register()
    with enclave.client(other) as http:
        assert http.get("/v1/escrow").json() == {"escrows": []}
        used = http.post(
            "/v1/execute", json={"escrow_id": escrow_id, "request": echo_request(echo.host)}
        )
        assert used.json()["error"]["code"] == "escrow_not_found"
        assert http.delete(f"/v1/escrow/{escrow_id}").status_code == 404
    with enclave.client(owner) as http:
        assert http.delete(f"/v1/escrow/{escrow_id}").status_code == 204
        assert http.get("/v1/escrow").json() == {"escrows": []}


def test_a_bad_seal_is_refused_at_escrow_time(enclave: EnclaveProcess, echo: EchoServer) -> None:
    """A credential sealed for another scope than the one sent is refused with 422."""
    key = enclave.register()
    with enclave.client() as http:
        sealing = base64.b64decode(
            http.post("/v1/attest", json={"nonce": "ab" * 16}).json()["document"]["sealing_key"]
        )
    from aileron_core.enclave.sealing import seal_credential

    sealed = seal_credential(b"x", scope_for(echo), sealing)
    wider = Scope(binding="token/echo/default", hosts=[echo.host, "evil.com"], kind="bearer")
    with enclave.client(key) as http:
        answer = http.post(
            "/v1/escrow", json={"scope": wider.to_json(), "sealed": b64encode(sealed)}
        )
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "sealed_credential_invalid"
