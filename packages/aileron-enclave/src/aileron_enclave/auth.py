"""Who may call the enclave: registration with a one-time code, then signed requests.

**Registration.** ``POST /v1/clients`` registers a client's Ed25519 public key when it presents
the current *registration code*: a random one-time code the enclave keeps in its data
directory (``registration-code``, 0600) and prints when it starts;
``aileron-enclave registration-code`` prints it again (``--new`` replaces it). A code registers
one client and is then replaced, so whoever attaches must have been given the code by whoever
runs the enclave — reaching its port is not enough.

**Signed requests.** Every other call except ``GET /health`` and ``POST /v1/attest`` carries
the signature headers of ``aileron_core.enclave.signing``. The enclave refuses (401) a call
without them (``unauthorized``), from a key it does not know (``unknown_client``), with a
signature that does not verify over that exact request to this enclave (``bad_signature``),
with a timestamp more than ``WINDOW_S`` seconds off its clock (``stale_request``), or with a
nonce it already accepted inside that window (``replayed_request``).
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aileron_core.enclave.encoding import b64decode
from aileron_core.enclave.signing import (
    CLIENT_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_message,
)
from aileron_core.fileio import atomic_write
from aileron_enclave.errors import EnclaveError
from aileron_enclave.store import Client, EscrowStore

__all__ = ["WINDOW_S", "RegistrationCodes", "ReplayGuard", "authenticate"]

WINDOW_S = 120
_NONCE = re.compile(r"[0-9a-f]{32,128}")
_REATTACH = "run `aileron enclave detach --force`, then `aileron enclave attach` again"


class ReplayGuard:
    """Remembers values for ``ttl_s`` seconds (at most ``limit`` of them, oldest forgotten)."""

    def __init__(self, ttl_s: float, limit: int = 100_000) -> None:
        self._ttl_s = ttl_s
        self._limit = limit
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, value: str, now: float | None = None) -> bool:
        """Record ``value``; ``False`` if it was already seen within the time to live."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            expiry = self._seen.get(value)
            if expiry is not None and expiry > moment:
                return False
            self._seen[value] = moment + self._ttl_s
            if len(self._seen) > self._limit:
                self._prune(moment)
            return True

    def _prune(self, moment: float) -> None:
        self._seen = {k: v for k, v in self._seen.items() if v > moment}
        while len(self._seen) > self._limit:
            del self._seen[next(iter(self._seen))]


class RegistrationCodes:
    """The one-time registration code in the data directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def current(self, *, new: bool = False) -> str:
        """The current code, creating it (or, with ``new``, replacing it) first."""
        with self._lock:
            if not new:
                try:
                    code = self.path.read_text().strip()
                except FileNotFoundError:
                    code = ""
                if code:
                    return code
            code = "aec_" + secrets.token_urlsafe(24)
            atomic_write(self.path, code.encode() + b"\n")
            return code

    def consume(self, presented: str) -> None:
        """Accept ``presented`` once and replace the code; ``bad_registration_code`` if wrong."""
        with self._lock:
            try:
                code = self.path.read_text().strip()
            except FileNotFoundError:
                code = ""
            if not code or not hmac.compare_digest(code.encode(), presented.encode()):
                raise EnclaveError(
                    "the registration code is not the enclave's current one",
                    code="bad_registration_code",
                    hint="ask whoever runs the enclave for the code that"
                    " `aileron-enclave registration-code` prints (each code works once)",
                )
            atomic_write(self.path, ("aec_" + secrets.token_urlsafe(24)).encode() + b"\n")


def _refuse(code: str, message: str, hint: str) -> EnclaveError:
    return EnclaveError(message, code=code, hint=hint)


def authenticate(
    *,
    store: EscrowStore,
    guard: ReplayGuard,
    fingerprint: str,
    method: str,
    target: str,
    body: bytes,
    headers: Mapping[str, str],
    now: float | None = None,
) -> Client:
    """The registered client that signed this request; raises a 401 ``EnclaveError`` if none."""
    values = {
        name: headers.get(name)
        for name in (CLIENT_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
    }
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise _refuse(
            "unauthorized",
            f"this call must be signed by a registered client (missing {', '.join(missing)})",
            "attach a daemon with `aileron enclave attach`; it signs every call",
        )
    client_id, stamp, nonce, signature = (str(v) for v in values.values())
    moment = time.time() if now is None else now
    if not stamp.isdigit() or abs(moment - int(stamp)) > WINDOW_S:
        raise _refuse(
            "stale_request",
            f"the request's timestamp is more than {WINDOW_S} s off the enclave's clock",
            "check both machines' clocks, then retry",
        )
    client = store.client(client_id)
    if client is None:
        raise _refuse(
            "unknown_client",
            f"client key {client_id[:40]!r} is not registered with this enclave",
            _REATTACH,
        )
    message = request_message(
        method=method,
        target=target,
        body=body,
        timestamp=int(stamp),
        nonce=nonce,
        client=client_id,
        enclave=fingerprint,
    )
    try:
        public = Ed25519PublicKey.from_public_bytes(
            b64decode(client.public_key, what="public_key", size=32)
        )
        public.verify(b64decode(signature, what="signature", size=64), message)
    except (ValueError, InvalidSignature):
        raise _refuse(
            "bad_signature",
            "the request's signature does not verify for this client, request and enclave",
            _REATTACH,
        ) from None
    if not _NONCE.fullmatch(nonce) or not guard.first_use(f"{client_id}:{nonce}"):
        raise _refuse(
            "replayed_request",
            "this request's nonce was already used (a replayed request)",
            "send a fresh request; the client signs each one with a new nonce",
        )
    return client
