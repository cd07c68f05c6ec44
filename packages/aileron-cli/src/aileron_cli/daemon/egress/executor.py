"""The executor: one connector operation performed as one HTTP exchange (SPEC §7 "Executor").

``Executor.run`` turns an operation and its (already validated) arguments into a request —
``operation.scheme``, the first of ``operation.hosts``, the expanded path, ``"in": "query"``
inputs as query parameters and ``"in": "body"`` inputs as a JSON object — injects the
credential the connector declares, sends it, and returns the decoded answer. The rules that
keep the credential where it belongs:

- **Hosts.** Every request, the first and each redirect hop, goes only to an origin in
  ``operation.hosts`` with exactly ``operation.scheme`` (never https → http). Origins compare as
  ``(host, port)`` with the scheme's default port filled in, so ``api.example.com`` and
  ``api.example.com:443`` are the same https origin. Anything else is ``HostNotAllowed`` and
  nothing is sent to it. Plain http is refused for a non-loopback host even if a hand-built
  ``Operation`` asks for it.
- **Redirects** are followed by hand, at most ``max_redirects`` times, each hop checked as
  above and given the credential afresh. 303 turns the request into a GET without a body (HEAD
  stays HEAD); 301 and 302 turn a POST into a GET without a body, as browsers and common
  clients do; 307 and 308 repeat the method and body. User info in a ``Location`` is dropped:
  a redirect never chooses credentials.
- **Paths.** ``Operation.expand_path`` percent-encodes every reserved character of a value, so
  a value cannot add a segment, a query or a host; a value that is empty, ``.`` or ``..`` is
  refused (``ArgsError``) because it would change which resource the path names.
- **Credential kinds** (``aileron_core.credentials``, shared with the enclave). ``bearer`` →
  ``Authorization: Bearer <v>``; ``header`` → ``<name>: <v>``; ``basic`` → ``Authorization:
  Basic base64(<v>)`` where ``<v>`` is ``user:password`` — a value without ``:`` is an API key
  used as the user name with an empty password (``<v>:``, Stripe's convention); ``query`` →
  query parameter ``<name>=<v>``. A value that cannot travel safely (empty, control characters,
  or for header kinds non-ASCII or surrounding white space) is ``InvalidCredential`` before
  anything is sent.
- **Limits.** ``timeout_s`` bounds the whole exchange, redirects included (and each connect,
  read and write). The body is read as a stream and reading stops at ``max_response_bytes``;
  a larger ``Content-Length`` is refused without reading. The request asks for
  ``Accept-Encoding: identity`` and a compressed answer is refused, so no small body can
  inflate past the cap.
- **Redaction.** The credential never appears in an error's message, hint or details, in the
  returned URL or in the returned body: a ``Redactor`` (``aileron_core.redaction``)
  replaces every spelling in ``aileron_core.secret_forms`` (any case, JSON-escaped,
  percent-encoded, hex, base64/base64url/base32 at any byte alignment, and for
  ``user:password`` values the password alone; ADR 0015) with ``[REDACTED]``. Upstream
  errors carry a redacted excerpt of at most ``EXCERPT_BYTES`` of the body. httpx's own INFO
  request log (which prints URLs, query credential included) is raised to WARNING when an
  executor is created.

The result: ``body`` is the decoded JSON when the answer's ``Content-Type`` is JSON (and the
text parses as standard JSON), ``None`` for an empty body, and ``{"text": …}`` (UTF-8 with
replacement characters) otherwise. ``bytes_out`` counts request body bytes over all hops,
``bytes_in`` the body bytes of the final answer.

Errors::

    AileronError
    └── DaemonError
        ├── HostNotAllowed     host_not_allowed              a request or redirect hop would
        │                                                    leave the declared hosts or scheme;
        │                                                    details {"host", "scheme",
        │                                                    "allowed_hosts", "allowed_scheme"}
        ├── InvalidCredential  invalid_credential            the bound secret cannot be sent as
        │                                                    this kind; details {"service",
        │                                                    "kind", "problem"}
        └── UpstreamError      upstream_timeout              no answer within timeout_s
                               upstream_unreachable          connecting or talking failed
                               upstream_bad_response         a malformed redirect, a broken or
                                                             compressed answer
                               upstream_response_too_large   the body exceeds the cap
                               upstream_too_many_redirects   more than max_redirects hops
                               upstream_error                a non-2xx answer; details
                                                             {"status", "excerpt", "url"}
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import unquote_plus

import attrs
import httpx

from aileron_cli.__about__ import __version__
from aileron_cli.daemon.errors import DaemonError
from aileron_core.arguments import ArgsError
from aileron_core.connectors import ConnectorSpec, Credential, Operation
from aileron_core.credentials import (
    credential_headers,
    credential_problem,
    with_query_credential,
)
from aileron_core.http_bodies import BodyTooLarge, read_capped
from aileron_core.http_engine import HttpEngine
from aileron_core.network import Network
from aileron_core.origins import Origin
from aileron_core.redaction import REDACTED, Redactor, Secret

__all__ = [
    "EXCERPT_BYTES",
    "ExecutionResult",
    "Executor",
    "HostNotAllowed",
    "InvalidCredential",
    "UpstreamError",
]

EXCERPT_BYTES = 2048
"""Largest excerpt of an upstream error body kept in ``UpstreamError.details``."""

USER_AGENT = f"aileron/{__version__}"
_EXCERPT_READ_BYTES = 16 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_JSON_TYPE = re.compile(r"application/(?:[\w.+-]+\+)?json", re.IGNORECASE)


# --- errors --------------------------------------------------------------------------------


class HostNotAllowed(DaemonError):
    """A request or redirect hop would go to a host or scheme the operation does not declare."""

    code = "host_not_allowed"

    def __init__(
        self, message: str, *, hint: str | None = None, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(self.code, message, hint=hint, details=details)


class InvalidCredential(DaemonError):
    """The bound secret cannot be sent the way the connector's credential kind requires."""

    code = "invalid_credential"

    def __init__(
        self, message: str, *, hint: str | None = None, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(self.code, message, hint=hint, details=details)


class UpstreamError(DaemonError):
    """The upstream did not answer, answered too much, or answered with a non-2xx status."""


# --- the result ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ExecutionResult:
    """The decoded answer of one operation (headers are not returned)."""

    status: int
    body: Any
    bytes_in: int
    bytes_out: int
    duration_ms: float
    url: str
    """The final URL (after redirects), with a query credential replaced by ``[REDACTED]``."""


# --- one request, planned ------------------------------------------------------------------


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@attrs.frozen(kw_only=True)
class _Plan:
    """Everything about one run that does not change from hop to hop."""

    spec: ConnectorSpec
    operation: Operation
    secret: Secret | None
    redactor: Redactor
    started: float
    sender: httpx.AsyncClient | None = None
    """Where requests go instead of the executor's own client (the enclave, §12)."""

    @property
    def credential(self) -> Credential:
        return self.spec.credential

    @property
    def idempotent(self) -> bool:
        return self.operation.idempotency == "idempotent"

    def headers(self, *, has_body: bool) -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            "Connection": "keep-alive",
            "User-Agent": USER_AGENT,
        }
        if has_body:
            headers["Content-Type"] = "application/json"
        if self.secret is not None:
            credential = self.credential
            headers.update(credential_headers(credential.kind, credential.name, self.secret.value))
        return headers

    def with_credential(self, url: httpx.URL) -> httpx.URL:
        """``url`` carrying the query credential (replacing any value a redirect put there)."""
        if self.secret is None:
            return url
        credential = self.credential
        return with_query_credential(url, credential.kind, credential.name, self.secret.value)

    def display_url(self, url: httpx.URL) -> str:
        """``url`` as sent, as text, the query credential's value replaced by ``[REDACTED]``."""
        sent = self.with_credential(url).copy_with(fragment=None)
        text = str(sent)
        if self.credential.kind == "query" and sent.query:
            base, _, query = text.partition("?")
            pairs = []
            for pair in query.split("&"):
                key = pair.partition("=")[0]
                pairs.append(
                    f"{key}={REDACTED}" if unquote_plus(key) == self.credential.name else pair
                )
            text = f"{base}?{'&'.join(pairs)}"
        return self.redactor.text(text)

    def upstream_error(
        self,
        code: str,
        message: str,
        *,
        hint: str | None = None,
        details: Mapping[str, Any] | None = None,
        retriable: bool = False,
    ) -> NoReturn:
        """Raise ``UpstreamError`` with the secret redacted from its message, hint and details."""
        r = self.redactor
        raise UpstreamError(
            code,
            r.text(message),
            hint=r.text(hint) if hint is not None else None,
            details=r.data(dict(details or {})),
            retriable=retriable,
        )

    def not_allowed(self, message: str, *, hint: str, details: Mapping[str, Any]) -> NoReturn:
        """Raise ``HostNotAllowed`` with the secret redacted from its message and details."""
        r = self.redactor
        raise HostNotAllowed(r.text(message), hint=r.text(hint), details=r.data(dict(details)))


@attrs.frozen(kw_only=True)
class _Answer:
    status: int
    content_type: str
    content: bytes
    url: httpx.URL


# --- the executor --------------------------------------------------------------------------


class Executor:
    """Runs connector operations over one pooled HTTP client; see the module docstring."""

    def __init__(
        self,
        *,
        timeout_s: float = 30.0,
        max_response_bytes: int = 1 << 20,
        max_redirects: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        network: Network | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._max_response_bytes = max_response_bytes
        self._max_redirects = max_redirects
        # Requests go straight to a transport, not through an httpx.AsyncClient: redirects are
        # followed by hand here, and a client's cookie jar, .netrc and proxy variables are all
        # unwanted. The default transport is the daemon's one HTTP engine, with the daemon's
        # proxies and CA roots (``network``; none given: direct, the default roots).
        self._transport = transport or HttpEngine(
            max_connections=100, max_idle=100, network=network
        )
        self._extensions = {"timeout": httpx.Timeout(timeout_s).as_dict()}
        # httpx logs every request URL at INFO, a query credential included.
        httpx_log = logging.getLogger("httpx")
        if httpx_log.getEffectiveLevel() < logging.WARNING:
            httpx_log.setLevel(logging.WARNING)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._transport.aclose()

    async def run(
        self,
        spec: ConnectorSpec,
        operation: Operation,
        args: Mapping[str, Any],
        credential: Secret | None,
        *,
        sender: httpx.AsyncClient | None = None,
    ) -> ExecutionResult:
        """Perform ``operation`` with ``args`` (validated by the caller) and ``credential``.

        With ``sender`` (an escrowed binding: ``credential`` is then ``None``), every request
        and redirect hop is built and checked here as usual but sent through ``sender``, which
        hands it to the enclave to inject the credential (``aileron_cli.daemon.enclave.client``).

        Raises ``HostNotAllowed``, ``InvalidCredential``, ``UpstreamError`` or, for a path
        value that would change the path's shape, ``ArgsError``.
        """
        plan = _Plan(
            spec=spec,
            operation=operation,
            secret=credential,
            redactor=Redactor(credential),
            started=time.monotonic(),
            sender=sender,
        )
        _check_secret(spec.credential, credential)
        url, body = _build(operation, args)
        try:
            async with asyncio.timeout(self._timeout_s):
                answer, bytes_out = await self._exchange(plan, url, body)
        except TimeoutError:
            self._timed_out(plan, retriable=plan.idempotent)
        content = answer.content
        return ExecutionResult(
            status=answer.status,
            body=plan.redactor.data(_decode(content, answer.content_type)),
            bytes_in=len(content),
            bytes_out=bytes_out,
            duration_ms=(time.monotonic() - plan.started) * 1000,
            url=plan.display_url(answer.url),
        )

    async def _exchange(
        self, plan: _Plan, url: httpx.URL, body: bytes | None
    ) -> tuple[_Answer, int]:
        method: str = plan.operation.method
        bytes_out = 0
        hops = 0
        while True:
            _check_target(plan, url)
            request = httpx.Request(
                method,
                plan.with_credential(url),
                headers=plan.headers(has_body=body is not None),
                content=body,
                extensions=self._extensions,
            )
            bytes_out += len(body or b"")
            try:
                if plan.sender is not None:
                    response = await plan.sender.send(request, stream=True)
                else:
                    response = await self._transport.handle_async_request(request)
                try:
                    if response.status_code not in _REDIRECTS:
                        answer = await self._answer(plan, url, method, response, hops)
                        return answer, bytes_out
                    if hops == self._max_redirects:
                        plan.upstream_error(
                            "upstream_too_many_redirects",
                            f"{plan.spec.fqn} redirected more than {self._max_redirects} times",
                            hint="the upstream is misconfigured or loops; check the connector's"
                            " path and hosts",
                            details={"url": plan.display_url(url), "limit": self._max_redirects},
                        )
                    hops += 1
                    url = _redirect_target(plan, url, response)
                    if response.status_code == 303 or (
                        response.status_code in (301, 302) and method == "POST"
                    ):
                        method = "HEAD" if method == "HEAD" else "GET"
                        body = None
                finally:
                    await response.aclose()
            except httpx.TimeoutException as error:
                nothing_sent = isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout)
                self._timed_out(plan, retriable=nothing_sent or plan.idempotent)
            except httpx.TransportError as error:
                _transport_failed(plan, url, error)

    async def _answer(
        self, plan: _Plan, url: httpx.URL, method: str, response: httpx.Response, hops: int
    ) -> _Answer:
        """The answer of the last hop; an ``UpstreamError`` for a non-2xx status (whose details
        say ``redirects`` when hops were followed: the first request may have acted)."""
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            plan.upstream_error(
                "upstream_bad_response",
                f"{plan.spec.fqn} answered with a compressed body (Content-Encoding: "
                f"{encoding[:40]}) though asked for identity",
                details={"url": plan.display_url(url), "status": response.status_code},
            )
        ok = 200 <= response.status_code < 300
        limit = (
            self._max_response_bytes if ok else min(self._max_response_bytes, _EXCERPT_READ_BYTES)
        )
        content = await self._read(plan, url, response, limit, strict=ok, head=method == "HEAD")
        cut = len(content) >= limit
        content_type = response.headers.get("content-type", "")
        if not ok:
            status = response.status_code
            text = content.decode("utf-8", errors="replace")
            plan.upstream_error(
                "upstream_error",
                f"{plan.spec.fqn} answered HTTP {status} to {plan.operation.method}"
                f" {plan.display_url(url)}",
                hint=_status_hint(status),
                details={
                    "status": status,
                    "excerpt": plan.redactor.excerpt(text, cut=cut, limit=EXCERPT_BYTES),
                    "url": plan.display_url(url),
                    **({"redirects": hops} if hops else {}),
                },
                retriable=status in (429, 503) or (status in (502, 504) and plan.idempotent),
            )
        return _Answer(
            status=response.status_code, content_type=content_type, content=content, url=url
        )

    async def _read(
        self,
        plan: _Plan,
        url: httpx.URL,
        response: httpx.Response,
        limit: int,
        *,
        strict: bool,
        head: bool,
    ) -> bytes:
        """At most ``limit`` body bytes; more is an error when ``strict``, else cut off."""
        # The Content-Length of a HEAD answer is that of the GET body it does not carry.
        declared = None if head else response.headers.get("content-length")
        # A transport may hand back a body already in memory (httpx.MockTransport does).
        stream = _one(response.content) if response.is_stream_consumed else response.aiter_raw()
        try:
            return await read_capped(stream, limit, content_length=declared, truncate=not strict)
        except BodyTooLarge as error:
            self._too_large(plan, url, limit, declared=error.declared)

    def _too_large(
        self, plan: _Plan, url: httpx.URL, limit: int, *, declared: int | None
    ) -> NoReturn:
        plan.upstream_error(
            "upstream_response_too_large",
            f"{plan.spec.fqn} answered with more than {limit} bytes; reading stopped",
            hint="narrow the request (filters, paging) so the answer is smaller",
            details={"url": plan.display_url(url), "limit": limit, "content_length": declared},
        )

    def _timed_out(self, plan: _Plan, *, retriable: bool) -> NoReturn:
        plan.upstream_error(
            "upstream_timeout",
            f"{plan.spec.fqn} did not answer {plan.operation.method} {plan.operation.name}"
            f" within {self._timeout_s:g} s",
            hint="try again later"
            if retriable
            else "the operation is not idempotent and may have run; check before retrying",
            details={"timeout_s": self._timeout_s, "host": plan.operation.hosts[0]},
            retriable=retriable,
        )


# --- helpers -------------------------------------------------------------------------------


def _check_secret(credential: Credential, secret: Secret | None) -> None:
    if secret is None:
        return
    problem = credential_problem(credential.kind, secret.value)
    if problem:
        raise InvalidCredential(
            f"the credential bound for service {credential.service!r} cannot be sent as"
            f" {credential.kind!r}: {problem}",
            hint="store the secret again with `aileron binding add`",
            details={"service": credential.service, "kind": credential.kind, "problem": problem},
        )


def _build(operation: Operation, args: Mapping[str, Any]) -> tuple[httpx.URL, bytes | None]:
    """The first request's URL (without the credential) and JSON body."""
    bad = [
        {"name": item.name, "problem": "a path value must not be empty, '.' or '..'"}
        for item in operation.inputs_in("path")
        if str(args.get(item.name, "")) in ("", ".", "..")
    ]
    if bad:
        names = ", ".join(field["name"] for field in bad)
        raise ArgsError(
            f"invalid arguments for {operation.name}: {names}: a path value must not be"
            " empty, '.' or '..'",
            details={"fields": bad},
        )
    params: list[tuple[str, str]] = []
    for item in operation.inputs_in("query"):
        value = args.get(item.name)
        values: Sequence[Any] = value if isinstance(value, list) else [value]
        params.extend((item.name, _query_text(v)) for v in values if v is not None)
    url = httpx.URL(operation.base_url + operation.expand_path(args), params=params or None)
    body_inputs = operation.inputs_in("body")
    if not body_inputs:
        return url, None
    payload = {i.name: args[i.name] for i in body_inputs if args.get(i.name) is not None}
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return url, data.encode("utf-8")


def _check_target(plan: _Plan, url: httpx.URL) -> None:
    """``HostNotAllowed`` unless ``url`` is one of the operation's origins, in its scheme."""
    operation = plan.operation
    origin = Origin.of(url)
    details = {
        "host": origin.shown,
        "scheme": origin.scheme,
        "allowed_hosts": list(operation.hosts),
        "allowed_scheme": operation.scheme,
    }
    if origin.scheme != operation.scheme:
        plan.not_allowed(
            f"refused to send {plan.spec.fqn} {operation.name} to {origin.scheme}://"
            f"{origin.shown}: only {operation.scheme} is allowed (no scheme change, never https"
            " to http)",
            hint="the upstream redirected to another scheme; ask the connector author",
            details=details,
        )
    if not origin.in_scope(operation.hosts):
        plan.not_allowed(
            f"refused to send {plan.spec.fqn} {operation.name} to {origin.shown}: it is not one"
            f" of the operation's hosts ({', '.join(operation.hosts)})",
            hint="if the upstream legitimately moved, the connector spec must list the new"
            " host; install an updated connector",
            details=details,
        )


def _redirect_target(plan: _Plan, url: httpx.URL, response: httpx.Response) -> httpx.URL:
    location = response.headers.get("location")
    try:
        if not location:
            raise httpx.InvalidURL("no Location header")
        target = url.join(location)
    except httpx.InvalidURL:
        plan.upstream_error(
            "upstream_bad_response",
            f"{plan.spec.fqn} answered HTTP {response.status_code} without a usable Location",
            details={"url": plan.display_url(url), "status": response.status_code},
        )
    # A redirect never chooses credentials: drop any user info and the fragment.
    return target.copy_with(username=None, password=None, fragment=None)


def _transport_failed(plan: _Plan, url: httpx.URL, error: httpx.TransportError) -> NoReturn:
    reason = plan.redactor.excerpt(str(error) or type(error).__name__, cut=False, limit=300)
    if isinstance(error, httpx.RemoteProtocolError | httpx.DecodingError):
        plan.upstream_error(
            "upstream_bad_response",
            f"{plan.spec.fqn} sent a malformed answer: {reason}",
            details={"url": plan.display_url(url), "reason": reason},
        )
    nothing_sent = isinstance(error, httpx.ConnectError)
    origin = url.netloc.decode("ascii", errors="replace")
    plan.upstream_error(
        "upstream_unreachable",
        f"could not reach {plan.spec.fqn} at {url.scheme}://{origin}: {reason}",
        hint="check the network and that the upstream is up, then try again",
        details={"url": plan.display_url(url), "reason": reason},
        retriable=nothing_sent or plan.idempotent,
    )


async def _one(content: bytes) -> AsyncIterator[bytes]:
    yield content


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return "the upstream refused the credential; check the binding's secret and its scopes"
    if status == 404:
        return "the upstream has no such resource; check the arguments"
    if status == 429:
        return "the upstream is rate limiting; wait and try again"
    if status >= 500:
        return "the upstream failed; try again later"
    return "see details.excerpt for the upstream's explanation"


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _decode(content: bytes, content_type: str) -> Any:
    """JSON data for a JSON answer, ``None`` for no body, else ``{"text": …}``."""
    if not content:
        return None
    text = content.decode("utf-8", errors="replace")
    if _JSON_TYPE.match(content_type.strip()):
        try:
            return json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            pass
    return {"text": text}
