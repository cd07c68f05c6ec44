"""Talking to an attached enclave over HTTPS pinned to its certificate.

**Pinning.** Before anything is sent, ``fetch_certificate`` reads the certificate the enclave
presents and compares its sha256 with the fingerprint the user gave (``aileron enclave attach
--fingerprint``); a mismatch is ``enclave_certificate_mismatch``. From then on connections
trust exactly that certificate (it is loaded as the only trust anchor; public CAs are not
consulted and the host name is not checked), and every answer's peer certificate is compared
with the pinned fingerprint again. Calls go through the daemon's one HTTP engine
(:mod:`aileron_core.http_engine`) with the pinned context: an enclave on a loopback address is
reached directly, a remote one through the daemon's proxy when ``network`` names one (the pin
holds inside the tunnel; :mod:`aileron_core.network`).

**Signing.** Calls other than attestation and registration are signed with the daemon's
client key (``aileron_core.enclave.signing``).

**Executing.** ``EnclaveTransport`` is an httpx transport: the executor builds each request
(and each redirect hop) as usual, and the transport sends it to the enclave's ``/v1/execute``
with the escrow id instead of to the upstream. The enclave injects the credential; the daemon
never has it. The enclave's refusals map onto the executor's own errors (``host_not_allowed``,
``invalid_credential``, ``upstream_*``), so an escrowed binding fails the way a local one does.

Errors (``DaemonError`` codes)::

    enclave_unreachable            502  nothing answered at the enclave's URL (retriable)
    enclave_certificate_mismatch   502  the certificate is not the pinned one
    enclave_refused                502  the enclave answered with an error (its code in details)
    attestation_invalid            502  (AttestationError) the attestation does not verify
"""

from __future__ import annotations

import hashlib
import ssl
from typing import Any

import anyio
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aileron_cli.__about__ import __version__
from aileron_cli.daemon.egress.executor import HostNotAllowed, InvalidCredential, UpstreamError
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.attachments import Attachment, EscrowRecord
from aileron_core.enclave.encoding import b64decode, b64encode
from aileron_core.enclave.signing import SignedRequests
from aileron_core.http_engine import HttpEngine
from aileron_core.network import Network

__all__ = [
    "EnclaveConnection",
    "EnclaveTransport",
    "fetch_certificate",
    "origin",
]

TIMEOUT_S = 35.0
CONNECT_TIMEOUT_S = 5.0
_SKIPPED_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding"})


def origin(url: str) -> tuple[str, int]:
    """``(host, port)`` of an enclave URL (``https://host[:port]``)."""
    parsed = httpx.URL(url)
    return parsed.host, parsed.port or 443


def unreachable(url: str, error: Exception) -> DaemonError:
    return DaemonError(
        "enclave_unreachable",
        f"the enclave at {url} did not answer ({type(error).__name__}: {error})"[:400],
        hint="check that `aileron-enclave serve` is running there",
        details={"url": url},
        retriable=True,
    )


def mismatch(url: str, expected: str, actual: str) -> DaemonError:
    return DaemonError(
        "enclave_certificate_mismatch",
        f"the enclave at {url} presented certificate sha256 {actual}, not the pinned {expected}",
        hint="check the fingerprint with `aileron-enclave fingerprint` where the enclave runs;"
        " if it was re-created on purpose, detach and attach again",
        details={"url": url, "expected": expected, "actual": actual},
    )


async def fetch_certificate(url: str, fingerprint: str) -> str:
    """The enclave's certificate (PEM) if its sha256 is ``fingerprint``; nothing is sent."""

    def fetch() -> str:
        return ssl.get_server_certificate(origin(url), timeout=CONNECT_TIMEOUT_S)

    try:
        pem = await anyio.to_thread.run_sync(fetch)
    except (OSError, ssl.SSLError, ValueError) as error:
        raise unreachable(url, error) from None
    actual = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    if actual != fingerprint:
        raise mismatch(url, fingerprint, actual)
    return pem


def _pinned_context(certificate: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=certificate)
    context.check_hostname = False  # the pin is the certificate itself, whatever the name
    return context


def connect(
    attachment: Attachment, client_key: Ed25519PrivateKey | None, network: Network | None
) -> EnclaveConnection:
    """A connection to the attached enclave, pinned to the certificate recorded at attach,
    signing with ``client_key`` when given, through ``network``'s proxy when it names one."""
    return EnclaveConnection(
        attachment.url,
        attachment.certificate,
        attachment.fingerprint,
        client_key=client_key,
        network=network,
    )


class EnclaveConnection:
    """A pinned HTTPS client of one enclave; signs calls when it has a client key."""

    def __init__(
        self,
        url: str,
        certificate: str,
        fingerprint: str,
        client_key: Ed25519PrivateKey | None = None,
        network: Network | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.fingerprint = fingerprint
        engine = HttpEngine(
            max_connections=8, max_idle=8, network=network, ssl_context=_pinned_context(certificate)
        )
        self._http = httpx.AsyncClient(
            base_url=self.url,
            transport=engine,
            timeout=httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            trust_env=False,
            follow_redirects=False,
            headers={"User-Agent": f"aileron-daemon/{__version__}"},
            auth=SignedRequests(client_key, fingerprint) if client_key is not None else None,
        )

    async def __aenter__(self) -> EnclaveConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """One call; the decoded JSON answer. An error answer raises ``EnclaveRefusal``."""
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.TransportError as error:
            raise unreachable(self.url, error) from None
        self._check_peer(response)
        if response.is_success:
            return response.json() if response.content else None
        raise EnclaveRefusal.from_response(response)

    def _check_peer(self, response: httpx.Response) -> None:
        stream = response.extensions.get("network_stream")
        ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        actual = hashlib.sha256(der).hexdigest() if der else "none"
        if actual != self.fingerprint:
            raise mismatch(self.url, self.fingerprint, actual)


class EnclaveRefusal(DaemonError):
    """The enclave answered with its error envelope."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(
            "enclave_refused",
            f"the enclave refused: {message}",
            details={"enclave_code": code, "enclave_status": status, **details},
            retriable=status in (502, 503, 504),
        )
        self.enclave_code = code
        self.enclave_message = message
        self.enclave_details = details

    @classmethod
    def from_response(cls, response: httpx.Response) -> EnclaveRefusal:
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
            details = error.get("details") if isinstance(error.get("details"), dict) else {}
        except (ValueError, KeyError, TypeError):
            code, message, details = "http_error", f"HTTP {response.status_code}", {}
        return cls(response.status_code, code, message, details)


class EnclaveTransport(httpx.AsyncBaseTransport):
    """Sends each request to the enclave's ``/v1/execute`` for one escrowed binding."""

    def __init__(self, connection: EnclaveConnection, escrow: EscrowRecord) -> None:
        self._connection = connection
        self._escrow = escrow

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        outbound = {
            "method": request.method,
            "url": str(request.url),
            "headers": [
                [name, value]
                for name, value in request.headers.multi_items()
                if name.lower() not in _SKIPPED_HEADERS
            ],
            "body": b64encode(body) if body else None,
        }
        try:
            answer = await self._connection.call(
                "POST", "/v1/execute", {"escrow_id": self._escrow.escrow_id, "request": outbound}
            )
            content = b64decode(answer["body"], what="body")
            return httpx.Response(
                int(answer["status"]),
                headers=[(str(k), str(v)) for k, v in answer["headers"]],
                content=content,
                request=request,
            )
        except EnclaveRefusal as refusal:
            raise _executor_error(refusal, self._escrow, request) from None
        except (KeyError, TypeError, ValueError) as error:
            raise DaemonError(
                "enclave_refused",
                f"the enclave's execute answer is malformed: {error}"[:300],
            ) from None


def _executor_error(
    refusal: EnclaveRefusal, escrow: EscrowRecord, request: httpx.Request
) -> Exception:
    """The error the executor would raise itself for what the enclave refused."""
    code, message, details = refusal.enclave_code, refusal.enclave_message, refusal.enclave_details
    nothing_sent = bool(details.get("nothing_sent"))
    if code == "host_not_allowed":
        return HostNotAllowed(f"the enclave refused: {message}", details=details)
    if code == "invalid_credential":
        return InvalidCredential(f"the enclave refused: {message}", details=details)
    if code == "escrow_not_found":
        return DaemonError(
            "binding_required",
            f"the enclave no longer holds the credential of binding {escrow.binding!r}",
            hint=f"revoke it (`aileron binding revoke {escrow.binding}`), add it again and"
            " escrow it again",
            details={"binding": escrow.binding, "escrow_id": escrow.escrow_id},
        )
    if code == "upstream_unreachable":
        if nothing_sent:
            return httpx.ConnectError(message, request=request)
        return httpx.ReadError(message, request=request)
    if code == "upstream_timeout":
        if nothing_sent:
            return httpx.ConnectTimeout(message, request=request)
        return httpx.ReadTimeout(message, request=request)
    if code == "upstream_bad_response":
        return httpx.RemoteProtocolError(message, request=request)
    if code == "upstream_response_too_large":
        return UpstreamError(code, f"the enclave refused: {message}", details=details)
    return refusal
