"""``POST /v1/execute``: one HTTP exchange with an escrowed credential injected.

The rules, so that a client can use the credential but neither read it nor send it elsewhere:

- **Scope.** The URL's origin must be one of the escrow's ``hosts`` (``host[:port]``, the
  scheme's default port filled in) with scheme ``https``, or ``http`` for a loopback host only
  (``aileron_core.origins``, the daemon's executor's rule too). User info in the URL is
  refused. Anything else is ``host_not_allowed`` and nothing is sent.
- **No redirects.** The enclave answers a 3xx as it is; a client that follows it sends a new
  execute for the new URL, which the scope check sees like any other.
- **Injection** follows ``aileron_core.credentials`` (the daemon's executor does the same): any
  header the client sent that would carry the credential (``Authorization`` for bearer and
  basic, the named header for header) is dropped first, and a query credential replaces any
  value of that parameter. A secret that cannot travel as its kind is ``invalid_credential``.
- **Limits.** ``timeout_s`` bounds the exchange; the body is read raw (never decompressed) and
  reading stops at ``max_response_bytes`` (``upstream_response_too_large``;
  ``aileron_core.http_bodies``).
- **Redaction.** The secret is replaced by ``[REDACTED]`` in the answer's headers and body and in
  any error message (``aileron_core.redaction``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import anyio
import attrs
import httpx

from aileron_core.credentials import (
    carrier_header,
    credential_headers,
    credential_problem,
    with_query_credential,
)
from aileron_core.enclave.sealing import Scope
from aileron_core.http_bodies import BodyTooLarge, read_capped
from aileron_core.http_headers import HOP_BY_HOP
from aileron_core.origins import Origin
from aileron_core.redaction import Redactor, Secret
from aileron_enclave.errors import EnclaveError

__all__ = ["Answer", "Performer", "check_scope"]

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


def check_scope(url: httpx.URL, scope: Scope) -> None:
    """``host_not_allowed`` unless ``url`` is an origin of ``scope`` in an allowed scheme."""
    origin = Origin.of(url)
    details = {"host": origin.shown, "scheme": origin.scheme, "allowed_hosts": list(scope.hosts)}
    if url.userinfo:
        raise EnclaveError(
            "the URL carries user info; the enclave alone chooses credentials",
            code="host_not_allowed",
            details=details,
        )
    if not origin.in_scope(scope.hosts):
        raise EnclaveError(
            f"refused to send binding {scope.binding}'s credential to {origin.scheme}://"
            f"{origin.shown}: the escrow allows only {', '.join(scope.hosts)} (https, or http"
            " on loopback)",
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
        redactor = Redactor(Secret(secret))
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
            # The Content-Length of a HEAD answer is that of the GET body it does not carry.
            declared = None if request.method == "HEAD" else response.headers.get("content-length")
            content = await read_capped(
                response.aiter_raw(), self.max_response_bytes, content_length=declared
            )
        except BodyTooLarge:
            raise self._too_large() from None
        finally:
            await response.aclose()
        kept = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in _HOP_BY_HOP
        ]
        return response.status_code, kept, content

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
