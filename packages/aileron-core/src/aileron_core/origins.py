"""Where a credential may go: the origin check the daemon's executor and the enclave share.

A connector operation (``Operation.hosts``) and an escrow (``Scope.hosts``) both declare the
hosts a credential may be sent to, as ``host[:port]``. A URL is in scope when its origin — the
scheme, the host (compared in lower case) and the port, the scheme's default filled in on both
sides, so ``api.example.com`` and ``api.example.com:443`` are the same https origin — is one
of them, and its scheme may carry a credential at all: ``https``, or plain ``http`` to a
loopback host only (:func:`aileron_core.connectors.is_loopback`: the literal address or the
name ``localhost``, never a DNS name that merely looks local). Anything else is refused before
anything is sent; each caller words the refusal (ADR 0026).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from aileron_core.connectors import is_loopback

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_PORTS", "Origin", "declared_origin"]

DEFAULT_PORTS = {"http": 80, "https": 443}
"""The schemes a credential may travel over, with their default ports."""


def declared_origin(entry: str, scheme: str) -> tuple[str, int]:
    """``(host, port)`` of one declared ``host[:port]`` entry, in lower case, for ``scheme``."""
    host, colon, port = entry.rpartition(":")
    if not colon:
        return entry.lower(), DEFAULT_PORTS[scheme]
    return host.lower(), int(port)


@attrs.frozen
class Origin:
    """A URL's scheme, host (lower case) and port (the scheme's default filled in)."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: httpx.URL) -> Origin:
        """The origin ``url`` would be sent to."""
        scheme = url.scheme
        port = url.port if url.port is not None else DEFAULT_PORTS.get(scheme, 0)
        return cls(scheme, url.raw_host.decode("ascii", errors="replace").lower(), port)

    @property
    def shown(self) -> str:
        """``host``, or ``host:port`` when the port is not the scheme's default."""
        if DEFAULT_PORTS.get(self.scheme) == self.port:
            return self.host
        return f"{self.host}:{self.port}"

    def in_scope(self, hosts: Iterable[str]) -> bool:
        """Whether this origin is one of ``hosts`` in a scheme that may carry a credential
        (https, or http to a loopback host)."""
        if self.scheme not in DEFAULT_PORTS:
            return False
        if self.scheme == "http" and not is_loopback(self.shown):
            return False
        return (self.host, self.port) in {declared_origin(entry, self.scheme) for entry in hosts}
