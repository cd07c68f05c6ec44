"""How a registered client authenticates each request to the enclave.

At attach time the daemon generates an Ed25519 key pair and registers the public half (see
``aileron_enclave`` for who may register). Every later request carries four headers::

    X-Aileron-Client: ck_<32 hex>        the client id: sha256 of the raw public key, cut
    X-Aileron-Timestamp: <unix seconds>
    X-Aileron-Nonce: <32 hex>            random, never reused
    X-Aileron-Signature: <base64>        Ed25519 over the canonical JSON below

The signed message is the canonical JSON of ``{"v": 1, "method", "target" (raw path and query),
"body_sha256", "timestamp", "nonce", "client", "enclave" (the enclave's certificate
fingerprint)}``, so a signature covers exactly one request, to one enclave. The enclave refuses
a timestamp outside its window and a nonce it has seen inside that window.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Generator

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aileron_core.canonical import canonical_json
from aileron_core.enclave.attestation import public_ed25519
from aileron_core.enclave.encoding import b64encode

__all__ = [
    "CLIENT_HEADER",
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignedRequests",
    "client_id",
    "request_message",
    "sign_request",
]

CLIENT_HEADER = "X-Aileron-Client"
TIMESTAMP_HEADER = "X-Aileron-Timestamp"
NONCE_HEADER = "X-Aileron-Nonce"
SIGNATURE_HEADER = "X-Aileron-Signature"


def client_id(public_key: bytes) -> str:
    """The id of a client key: ``ck_`` and the first 32 hex digits of its sha256."""
    return "ck_" + hashlib.sha256(public_key).hexdigest()[:32]


def request_message(
    *,
    method: str,
    target: str,
    body: bytes,
    timestamp: int,
    nonce: str,
    client: str,
    enclave: str,
) -> bytes:
    """The bytes a client signs for one request (and the enclave verifies)."""
    return canonical_json(
        {
            "v": 1,
            "method": method.upper(),
            "target": target,
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "timestamp": timestamp,
            "nonce": nonce,
            "client": client,
            "enclave": enclave,
        }
    )


def sign_request(
    key: Ed25519PrivateKey,
    *,
    method: str,
    target: str,
    body: bytes,
    enclave: str,
    now: float | None = None,
) -> dict[str, str]:
    """The authentication headers of one request."""
    client = client_id(public_ed25519(key))
    timestamp = int(time.time() if now is None else now)
    nonce = secrets.token_hex(16)
    message = request_message(
        method=method,
        target=target,
        body=body,
        timestamp=timestamp,
        nonce=nonce,
        client=client,
        enclave=enclave,
    )
    return {
        CLIENT_HEADER: client,
        TIMESTAMP_HEADER: str(timestamp),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: b64encode(key.sign(message)),
    }


class SignedRequests(httpx.Auth):
    """An httpx auth flow that signs every request with a client key, for one enclave."""

    requires_request_body = True

    def __init__(self, key: Ed25519PrivateKey, enclave_fingerprint: str) -> None:
        self._key = key
        self._enclave = enclave_fingerprint

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(
            sign_request(
                self._key,
                method=request.method,
                target=request.url.raw_path.decode("ascii"),
                body=request.content,
                enclave=self._enclave,
            )
        )
        yield request
