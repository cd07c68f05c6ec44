"""Brokered credentials: the egress proxy swaps a session's sentinels for real secrets on the
hosts a binding is exposed to (issue #19, ADR 0028).

A sandboxed session that exposes a binding gets a *sentinel* (:func:`new_sentinel`, random,
per session and binding) in the container variable the binding's :class:`Exposure` names. Its
egress proxy hands a ``CONNECT`` to an exposed ``host:port`` to :meth:`Broker.serve`, which
terminates TLS with the session's CA (:class:`~.session_ca.SessionCA`) and relays each
HTTP/1.1 request (``h11`` on both sides) over one verified TLS connection to the real upstream:

- a request holding a sentinel (in ``Authorization``, raw or inside ``Basic`` credentials, for
  the ``replace`` form; in any header for ``header``/``basic``) of a binding exposed to this
  host and port gets the binding's *current* secret in the way its
  exposure's form says (``replace``/``header``/``basic``); ``binding.used`` is audited;
- a sentinel of a binding not exposed to this host and port (anywhere in the request line or
  a header name or value: as it stands, percent-decoded or inside ``Basic`` credentials, in any
  case) is refused (403, ``egress.sentinel_misuse``) and not forwarded — :meth:`Broker.misuse`
  is the same check for the proxy's own ``CONNECT`` and ``http://`` heads;
- every form of every secret injected in the session is redacted (``[REDACTED]`` padded
  with ``*`` to the form's length, :func:`~aileron_core.secret_forms.mask`) from the status
  line, the headers and the body streaming back (``gzip``/``deflate`` decoded first;
  ``identity`` is asked for); the response is re-framed since redaction changes lengths.

Hosts not exposed are never intercepted: the proxy tunnels them as before. The sentinels and
their forms are :mod:`.sentinels`; one tunnel's HTTP relay is :mod:`.relay`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from urllib.parse import unquote_to_bytes

from aileron_cli.daemon.egress.proxies import (
    CONNECT_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    EventSink,
    IPAddress,
)
from aileron_cli.daemon.egress.relay import Tunnel
from aileron_cli.daemon.egress.sentinels import (
    PREFIX,
    SENTINEL_PREFIX,
    Brokered,
    basic_credentials,
    head_fields,
    new_sentinel,
)
from aileron_cli.daemon.egress.session_ca import SessionCA
from aileron_cli.daemon.egress.tls_stream import TLSStream
from aileron_core.redaction import Secret
from aileron_core.secret_forms import SecretForms

__all__ = ["SENTINEL_PREFIX", "Broker", "Brokered", "SecretSource", "new_sentinel"]

log = logging.getLogger("aileron.daemon")

SecretSource = Callable[[str], Awaitable[Secret]]
"""Binding name → its current secret; raises (a ``DaemonError``) when it cannot be had now
(vault locked, binding revoked, escrowed in the enclave)."""


class Broker:
    """The brokered bindings of one session, its CA, and the relay for intercepted tunnels."""

    def __init__(
        self,
        session_id: str,
        brokered: Sequence[Brokered],
        *,
        secrets: SecretSource,
        upstream_tls: ssl.SSLContext,
        sink: EventSink,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.session_id = session_id
        self.brokered = tuple(brokered)
        self.secrets = secrets
        self.upstream_tls = upstream_tls
        self.sink = sink
        self.idle_timeout_s = idle_timeout_s
        self._exposed = {
            (b.binding, pair) for b in self.brokered for pair in b.exposure.host_ports()
        }
        self._host_ports = {pair for _, pair in self._exposed}
        self._sentinels = [(b, b.sentinel.encode()) for b in self.brokered]
        names = sorted({name for name, _ in self._host_ports})
        self._ca: SessionCA | None = SessionCA.create(session_id, names)
        self.ca_pem: bytes = self._ca.cert_pem
        self._context: ssl.SSLContext | None = self._ca.server_context()
        self._tunnels: set[Tunnel] = set()
        self.forms: dict[str, SecretForms] = {}
        """The forms of every secret injected in this session, by value: every tunnel redacts
        them all (an upstream may hand back on one connection what another one sent it)."""

    def intercepts(self, host: str, port: int) -> bool:
        """Whether ``host:port`` is exposed by some brokered binding."""
        return (host, port) in self._host_ports

    def exposes(self, brokered: Brokered, host: str, port: int) -> bool:
        return (brokered.binding, (host, port)) in self._exposed

    def found(self, target: bytes, headers: Iterable[tuple[bytes, bytes]]) -> list[Brokered]:
        """The brokered bindings whose sentinel is in ``target`` (the request line, or a part
        of it), a header name or value — as it stands, percent-decoded, or inside ``Basic``
        credentials, in any case."""
        pairs = list(headers)
        texts = [name for name, _ in pairs]  # (h11 and head_fields give names in lower case)
        for value in (target, *(value for _, value in pairs)):  # decoded as a server might
            texts.append(value.lower())
            if b"%" in value:
                texts.append(unquote_to_bytes(value).lower())
            decoded = basic_credentials(value)
            if decoded:
                texts.append(decoded.lower())
        if not any(PREFIX in text for text in texts):
            return []
        return [b for b, sentinel in self._sentinels if any(sentinel in t for t in texts)]

    def misuse(self, head: bytes, host: str, port: int) -> str | None:
        """The binding whose sentinel is in this request head (raw or inside ``Basic``
        credentials) although its exposure does not list ``host:port``; ``None`` otherwise."""
        request_line, headers = head_fields(head)
        for brokered in self.found(request_line, headers):
            if not self.exposes(brokered, host, port):
                return brokered.binding
        return None

    async def serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        port: int,
        addresses: Sequence[IPAddress],
    ) -> tuple[int, int]:
        """Serve one intercepted tunnel (the proxy has answered ``200 Connection
        Established``): TLS with the session CA toward the agent, each request relayed to the
        upstream; ``(bytes_up, bytes_down)`` of the decrypted traffic."""
        if self._context is None:
            raise RuntimeError("this broker is closed")
        agent = TLSStream(reader, writer, self._context)
        try:
            await asyncio.wait_for(agent.handshake(), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ssl.SSLError) as error:
            log.info("session %s: agent TLS to %s failed: %r", self.session_id, host, error)
            return 0, 0
        tunnel = Tunnel(self, agent, host, port, addresses)
        self._tunnels.add(tunnel)
        try:
            await tunnel.run()
        except (OSError, TimeoutError) as error:  # a peer that left, or went quiet
            log.info(
                "session %s: brokered connection to %s:%s ended (%s)",
                self.session_id,
                host,
                port,
                type(error).__name__,
            )
        except Exception as error:  # any failure closes this connection only; no message:
            # an exception's text may hold a header value, and so a secret
            log.warning(
                "session %s: brokered connection to %s:%s failed (%s)",
                self.session_id,
                host,
                port,
                type(error).__name__,
            )
        finally:
            self._tunnels.discard(tunnel)
            tunnel.close_upstream()
            with contextlib.suppress(Exception):
                agent.close_notify()
        return tunnel.bytes_up, tunnel.bytes_down

    def close(self) -> None:
        """Forget the CA's keys and the server context (no new tunnel can be served) and cut
        the upstream connections of open tunnels (the proxy cuts their agents' side)."""
        if self._ca is not None:
            self._ca.forget()
        self._ca = None
        self._context = None
        self.forms.clear()
        for tunnel in list(self._tunnels):
            tunnel.close_upstream()

    async def event(self, type: str, **payload: object) -> None:
        try:
            await self.sink(type, dict(payload))
        except Exception as error:  # an audit failure is the audit log's to report
            log.warning("session %s: could not record %s: %r", self.session_id, type, error)
