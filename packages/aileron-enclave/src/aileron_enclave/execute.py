"""``POST /v1/execute``: one HTTP exchange with an escrowed credential injected.

The rules, so that a client can use the credential but neither read it nor send it elsewhere:

- **Scope.** The URL's origin must be one of the escrow's ``hosts`` (``host[:port]``, the
  scheme's default port filled in) with scheme ``https``, or ``http`` for a loopback host only.
  User info in the URL is refused. Anything else is ``host_not_allowed`` and nothing is sent.
- **No redirects.** The enclave answers a 3xx as it is; a client that follows it sends a new
  execute for the new URL, which the scope check sees like any other.
- **Injection** follows ``aileron_core.credentials`` (the daemon's executor does the same): any
  header the client sent that would carry the credential (``Authorization`` for bearer and
  basic, the named header for header) is dropped first, and a query credential replaces any
  value of that parameter. A secret that cannot travel as its kind is ``invalid_credential``.
- **Limits.** ``timeout_s`` bounds the exchange; the body is read raw (never decompressed) and
  reading stops at ``max_response_bytes`` (``upstream_response_too_large``).
- **Redaction.** The secret is replaced by ``[REDACTED]`` in the answer's headers and body and in
  any error message (``aileron_enclave.redaction``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import anyio
import attrs
import httpx

from aileron_core.connectors import is_loopback
from aileron_core.credentials import (
    carrier_header,
    credential_headers,
    credential_problem,
    with_query_credential,
)
from aileron_core.enclave.sealing import Scope
from aileron_core.http_headers import HOP_BY_HOP
from aileron_enclave.errors import EnclaveError
from aileron_enclave.redaction import Redactor

__all__ = ["Answer", "Performer", "check_scope"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# What a relayed request or answer never carries on: the connection's own headers, and the
# ones the HTTP client sets itself.
_HOP_BY_HOP = HOP_BY_HOP | {"host", "content-length"}


@attrs.frozen(kw_only=True)
class Answer:
    """The upstream's answer, the secret redacted from it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    bytes_out: int
    duration_ms: float


def _host_port(entry: str, scheme: str) -> tuple[str, int]:
    host, colon, port = entry.rpartition(":")
    if not colon:
        return entry, _DEFAULT_PORTS[scheme]
    return host, int(port)


def check_scope(url: httpx.URL, scope: Scope) -> None:
    """``host_not_allowed`` unless ``url`` is an origin of ``scope`` in an allowed scheme."""
    scheme = url.scheme
    host = url.raw_host.decode("ascii", errors="replace").lower()
    port = url.port if url.port is not None else _DEFAULT_PORTS.get(scheme, 0)
    shown = host if _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    details = {"host": shown, "scheme": scheme, "allowed_hosts": list(scope.hosts)}
    if url.userinfo:
        raise EnclaveError(
            "the URL carries user info; the enclave alone chooses credentials",
            code="host_not_allowed",
            details=details,
        )
    allowed = scheme in _DEFAULT_PORTS and (host, port) in {
        _host_port(entry, scheme) for entry in scope.hosts
    }
    if not allowed or (scheme == "http" and not is_loopback(shown)):
        raise EnclaveError(
            f"refused to send binding {scope.binding}'s credential to {scheme}://{shown}: the"
            f" escrow allows only {', '.join(scope.hosts)} (https, or http on loopback)",
            code="host_not_allowed",
            hint="escrow the binding again with the hosts it needs",
            details=details,
        )


class Performer:
    """Sends requests with escrowed credentials over one pooled HTTP client."""

    def __init__(
        self,
        *,
        timeout_s: float = 30.0,
        max_response_bytes: int = 4 << 20,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            trust_env=False,
            verify=True,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def perform(
        self,
        scope: Scope,
        secret: str,
        *,
        method: str,
        url: httpx.URL,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
    ) -> Answer:
        """Send one request with ``secret`` injected per ``scope``; see the module docstring."""
        check_scope(url, scope)
        problem = credential_problem(scope.kind, secret)
        if problem:
            raise EnclaveError(
                f"the credential escrowed for {scope.binding} cannot be sent as"
                f" {scope.kind!r}: {problem}",
                code="invalid_credential",
                hint="escrow the binding again with a valid secret",
                details={"binding": scope.binding, "kind": scope.kind, "problem": problem},
            )
        redactor = Redactor(secret)
        carrier = carrier_header(scope.kind, scope.name)
        sent = [
            (name, value)
            for name, value in headers
            if name.lower() not in _HOP_BY_HOP and name.lower() != carrier
        ]
        sent.extend(credential_headers(scope.kind, scope.name, secret).items())
        target = with_query_credential(url.copy_with(fragment=None), scope.kind, scope.name, secret)
        request = self._client.build_request(method, target, headers=sent, content=body)
        started = time.monotonic()
        try:
            with anyio.fail_after(self.timeout_s):
                status, answer_headers, content = await self._exchange(request)
        except TimeoutError:
            raise self._timeout(False) from None
        except httpx.TimeoutException as error:
            nothing_sent = isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise self._timeout(nothing_sent) from None
        except httpx.TransportError as error:
            reason = redactor.text(str(error) or type(error).__name__)[:300]
            bad = isinstance(error, httpx.RemoteProtocolError | httpx.DecodingError)
            raise EnclaveError(
                f"{'malformed answer from' if bad else 'could not reach'} {url.scheme}://"
                f"{url.netloc.decode('ascii', errors='replace')}: {reason}",
                code="upstream_bad_response" if bad else "upstream_unreachable",
                details={"reason": reason, "nothing_sent": isinstance(error, httpx.ConnectError)},
                retriable=isinstance(error, httpx.ConnectError),
            ) from None
        return Answer(
            status=status,
            headers=[(name, redactor.text(value)) for name, value in answer_headers],
            body=redactor.bytes(content),
            bytes_out=len(body or b""),
            duration_ms=(time.monotonic() - started) * 1000,
        )

    async def _exchange(self, request: httpx.Request) -> tuple[int, list[tuple[str, str]], bytes]:
        response = await self._client.send(request, stream=True)
        try:
            declared = response.headers.get("content-length", "")
            if request.method != "HEAD" and declared.isdigit():
                if int(declared) > self.max_response_bytes:
                    raise self._too_large()
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise self._too_large()
                chunks.append(chunk)
        finally:
            await response.aclose()
        kept = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in _HOP_BY_HOP
        ]
        return response.status_code, kept, b"".join(chunks)

    def _too_large(self) -> EnclaveError:
        return EnclaveError(
            f"the upstream answered with more than {self.max_response_bytes} bytes;"
            " reading stopped",
            code="upstream_response_too_large",
            hint="narrow the request (filters, paging) so the answer is smaller",
            details={"limit": self.max_response_bytes},
        )

    def _timeout(self, nothing_sent: bool) -> EnclaveError:
        return EnclaveError(
            f"the upstream did not answer within {self.timeout_s:g} s",
            code="upstream_timeout",
            details={"timeout_s": self.timeout_s, "nothing_sent": nothing_sent},
            retriable=nothing_sent,
        )
