"""The daemon's HTTP client, shared by the CLI, ``aileron-mcp`` and the tests.

It sends the bearer token, the client's version (``X-Aileron-Version``) and, for agents, the
session id, and turns the daemon's error envelope (SPEC §5.2) into typed exceptions::

    AileronError
    ├── DaemonUnreachable   daemon_unreachable   nothing answered at the URL
    ├── RequestNotSendable  request_not_sendable the request cannot be encoded (nothing sent)
    └── ApiError            <the envelope's code> the daemon answered with an error
        └── VersionMismatch version_mismatch     the daemon is of another version
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

# httpx imports its optional command-line client (click, and rich and pygments where they are
# installed: 30-100 ms) on import; no Aileron process runs it. Marking that module absent before
# httpx is first imported makes httpx define its stub instead. The daemon imports this module
# first for the same reason (aileron_cli.daemon.server).
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import httpx  # noqa: E402 (after the guard above)

from aileron_core.__about__ import __version__
from aileron_core.discovery import VERSION_HEADER, DaemonInfo
from aileron_core.errors import AileronError

SESSION_HEADER = "X-Aileron-Session-Id"


class DaemonUnreachable(AileronError):
    """Nothing answered at the daemon's URL."""

    code = "daemon_unreachable"


class RequestNotSendable(AileronError):
    """The request cannot be encoded: text UTF-8 cannot encode (a lone surrogate), a URL with a
    control character or too long, a number JSON cannot carry. Callers should check their input
    first; this is the last resort that keeps such input from crashing them."""

    code = "request_not_sendable"


class ApiError(AileronError):
    """The daemon answered with an error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        retriable: bool = False,
        audit_id: str | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.status = status
        self.code = code
        self.retriable = retriable
        self.audit_id = audit_id


class VersionMismatch(ApiError):
    """The daemon runs another version of Aileron than this client."""


def error_from_response(response: httpx.Response) -> ApiError:
    """Build the typed error for a non-2xx daemon answer (tolerating a non-JSON body)."""
    try:
        envelope = response.json()["error"]
        code = str(envelope["code"])
        message = str(envelope["message"])
    except (ValueError, KeyError, TypeError):
        code = "http_error"
        message = f"the daemon answered {response.status_code} without an error envelope"
        envelope = {}
    cls = VersionMismatch if code == "version_mismatch" else ApiError
    return cls(
        response.status_code,
        code,
        message,
        details=envelope.get("details") if isinstance(envelope.get("details"), dict) else None,
        retriable=bool(envelope.get("retriable", False)),
        audit_id=envelope.get("audit_id"),
    )


def client_headers(token: str | None, session_id: str | None) -> dict[str, str]:
    """The headers every client of the daemon sends: version, and token/session if any."""
    headers = {VERSION_HEADER: __version__, "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if session_id:
        headers[SESSION_HEADER] = session_id
    return headers


def unreachable(api_url: str, error: Exception) -> DaemonUnreachable:
    """The error for a daemon that did not answer at ``api_url``."""
    return DaemonUnreachable(
        f"Aileron daemon unreachable at {api_url} ({error.__class__.__name__})",
        hint="check `aileron daemon status`",
    )


class DaemonClient:
    """A synchronous client of the daemon's ``/v1`` API."""

    @classmethod
    def for_daemon(cls, info: DaemonInfo, **kwargs: Any) -> DaemonClient:
        """The human's client of a local daemon: its master token, through its Unix socket."""
        return cls(info.api_url, info.token, unix_socket=info.socket, **kwargs)

    def __init__(
        self,
        api_url: str,
        token: str | None,
        *,
        session_id: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        unix_socket: str | None = None,
    ) -> None:
        """``unix_socket``: send every request through the daemon's Unix socket (where the
        master token is accepted) instead of TCP; ``api_url`` still names the API's base."""
        self.api_url = api_url.rstrip("/")
        if unix_socket is not None and transport is None:
            # As for TCP below: no SSL context (and its CA bundle load) for plain HTTP.
            verify = not self.api_url.startswith("http://")
            transport = httpx.HTTPTransport(uds=unix_socket, verify=verify)
        self._http = httpx.Client(
            base_url=self.api_url + "/",
            headers=client_headers(token, session_id),
            timeout=timeout,
            transport=transport,
            # A plain-HTTP daemon (the usual, on loopback) needs no TLS: skip building an SSL
            # context with the CA bundle (~50 ms of every command's start-up). An https
            # AILERON_API_URL keeps full verification.
            verify=not self.api_url.startswith("http://"),
        )

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer, or a typed error."""
        try:
            response = self._http.request(
                method,
                path.lstrip("/"),
                json=json,
                params={k: v for k, v in (params or {}).items() if v is not None},
            )
        except httpx.TransportError as error:
            raise unreachable(self.api_url, error) from error
        except (ValueError, RecursionError, httpx.InvalidURL) as error:  # UnicodeError too
            raise RequestNotSendable(
                f"cannot send the request to the daemon: {error}"[:300],
                hint="pass names and values as UTF-8 text without control characters",
            ) from error
        if response.is_success:
            return response.json() if response.content else None
        raise error_from_response(response)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None) -> Any:
        return self.request("POST", path, json=json if json is not None else {})

    def put(self, path: str, json: Any) -> Any:
        return self.request("PUT", path, json=json)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def events(self, path: str, *, read_timeout: float = 60.0) -> Iterator[tuple[str, str]]:
        """Server-sent events of ``path``: ``(event, data)`` per event (comments skipped), until
        the daemon ends the stream. ``read_timeout``: the longest quiet spell taken for a live
        stream (the daemon's streams send a comment every few seconds)."""
        timeout = httpx.Timeout(self._http.timeout.connect, read=read_timeout)
        headers = {"Accept": "text/event-stream"}
        try:
            with self._http.stream(
                "GET", path.lstrip("/"), headers=headers, timeout=timeout
            ) as response:
                if not response.is_success:
                    response.read()
                    raise error_from_response(response)
                event, data = "message", list[str]()
                for line in response.iter_lines():
                    if not line:
                        if data:
                            yield event, "\n".join(data)
                        event, data = "message", []
                    elif not line.startswith(":"):
                        field, _, value = line.partition(":")
                        value = value.removeprefix(" ")
                        if field == "event":
                            event = value
                        elif field == "data":
                            data.append(value)
        except httpx.TransportError as error:
            raise unreachable(self.api_url, error) from error
