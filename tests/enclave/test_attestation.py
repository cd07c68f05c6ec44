"""Attestation: what the real enclave signs, and what the daemon refuses to trust."""

from __future__ import annotations

import base64
import copy
import os
from typing import Any

import pytest
from enclave.support import EnclaveProcess

from aileron_core.enclave.attestation import AttestationError, verify_attestation
from aileron_enclave.measurement import measure


def attest(enclave: EnclaveProcess, nonce: str) -> tuple[int, dict[str, Any]]:
    with enclave.client() as http:
        answer = http.post("/v1/attest", json={"nonce": nonce})
    return answer.status_code, answer.json()


def test_a_fresh_attestation_verifies(enclave: EnclaveProcess) -> None:
    """The enclave's answer verifies for the nonce sent, names its certificate, and is debug."""
    nonce = os.urandom(32).hex()
    status, payload = attest(enclave, nonce)
    assert status == 200
    document = verify_attestation(
        payload, nonce=nonce, fingerprint=enclave.fingerprint, measurement=measure()
    )
    assert document.provider == "local"
    assert document.debug is True
    assert document.cert_fingerprint == enclave.fingerprint
    assert len(base64.b64decode(document.sealing_key)) == 32


def test_a_replayed_attestation_nonce_is_refused(enclave: EnclaveProcess) -> None:
    """A reused nonce gets 409 from the enclave; a replayed answer fails the daemon's check."""
    old_nonce = os.urandom(16).hex()
    status, old_answer = attest(enclave, old_nonce)
    assert status == 200
    status, again = attest(enclave, old_nonce)
    assert status == 409
    assert again["error"]["code"] == "nonce_reused"
    fresh_nonce = os.urandom(16).hex()
    with pytest.raises(AttestationError, match="replayed or stale attestation"):
        verify_attestation(old_answer, nonce=fresh_nonce, fingerprint=enclave.fingerprint)


def test_a_tampered_attestation_signature_is_refused(enclave: EnclaveProcess) -> None:
    """Changing the signature, or any field of the signed document, fails verification."""
    nonce = os.urandom(16).hex()
    _, payload = attest(enclave, nonce)
    signature = bytearray(base64.b64decode(payload["signature"]))
    signature[7] ^= 0x01
    forged = {**payload, "signature": base64.b64encode(bytes(signature)).decode()}
    with pytest.raises(AttestationError, match="signature does not verify"):
        verify_attestation(forged, nonce=nonce, fingerprint=enclave.fingerprint)
    swapped = copy.deepcopy(payload)
    swapped["document"]["sealing_key"] = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(AttestationError, match="signature does not verify"):
        verify_attestation(swapped, nonce=nonce, fingerprint=enclave.fingerprint)


def test_other_mismatches_are_refused(enclave: EnclaveProcess) -> None:
    """Another certificate, provider, measurement or signing key than expected is refused."""
    nonce = os.urandom(16).hex()
    _, payload = attest(enclave, nonce)
    for kwargs, reason in (
        ({"fingerprint": "0" * 64}, "another TLS certificate"),
        ({"fingerprint": enclave.fingerprint, "providers": ("nitro",)}, "not accepted"),
        ({"fingerprint": enclave.fingerprint, "measurement": "1" * 64}, "measurement"),
        ({"fingerprint": enclave.fingerprint, "signing_key": "A" * 43 + "="}, "signing key"),
    ):
        with pytest.raises(AttestationError, match=reason):
            verify_attestation(payload, nonce=nonce, **kwargs)


def test_malformed_documents_are_refused() -> None:
    """Anything but a well-typed {document, signature} is refused, never crashes."""
    bad: list[object] = [None, [], {}, {"document": {}, "signature": ""}, {"document": 1, "x": 2}]
    for payload in bad:
        with pytest.raises(AttestationError):
            verify_attestation(payload, nonce="00" * 16, fingerprint="0" * 64)
