"""Header names a relay must not pass on (shared by the daemon's gateway and the enclave)."""

from __future__ import annotations

# Hop-by-hop headers (RFC 9110 §7.6.1, plus the de-facto `keep-alive` and `proxy-connection`):
# they describe one connection, not the message, so a relay drops them in both directions.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
