"""Who is calling: the master token (the user, on the host) or a session token (an agent).

The master token is generated at each start and written only to ``daemon.json``. Session tokens
are minted by ``POST /v1/sessions`` and die with their session; the daemon keeps only their
sha256. Both are compared in constant time. No token, or an unknown one, is a 401; a valid
token outside its capabilities is a 403 (SPEC §5.1).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request

from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.peers import PeerProcess
from aileron_core.audit import Actor
from aileron_core.ids import new_token

SESSION_CAPABILITIES = frozenset({"actions:list", "actions:run", "approvals:poll", "gateway"})
ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    kind: Literal["master", "session"]
    session_id: str | None
    capabilities: frozenset[str]
    process: PeerProcess | None = None
    """The calling process, when the request came over the Unix socket (``SO_PEERCRED``)."""

    def can(self, capability: str) -> bool:
        return self.kind == "master" or capability in self.capabilities

    @property
    def actor(self) -> Actor:
        if self.kind == "master":
            return Actor(type="human", id="local-user")
        return Actor(type="agent", id=f"session:{self.session_id}")


MASTER = Principal("master", None, frozenset())


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenRegistry:
    """The master token and the live session tokens."""

    def __init__(self, master_token: str | None = None) -> None:
        self.master_token = master_token or new_token("aim")
        self._master_digest = _digest(self.master_token)
        self._sessions: dict[bytes, str] = {}

    def mint_session_token(self, session_id: str) -> str:
        token = new_token("ais")
        self._sessions[_digest(token)] = session_id
        return token

    def revoke_session(self, session_id: str) -> None:
        for digest, owner in list(self._sessions.items()):
            if owner == session_id:
                del self._sessions[digest]

    def resolve(self, token: str) -> Principal | None:
        """The principal a presented token stands for, or ``None``."""
        digest = _digest(token)
        if hmac.compare_digest(digest, self._master_digest):
            return MASTER
        # Digests are looked up, not compared byte by byte against secrets, so the lookup leaks
        # nothing about a token; the master comparison above is constant-time.
        session_id = self._sessions.get(digest)
        if session_id is None:
            return None
        return Principal("session", session_id, SESSION_CAPABILITIES)


def bearer_token(request: Request) -> str | None:
    """The bearer token of a request, or ``None``."""
    return _bearer(request.headers.get("authorization"))


def _bearer(header: str | None) -> str | None:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate(registry: TokenRegistry, authorization: str | None, capability: str) -> Principal:
    """The caller behind an ``Authorization`` header value, if it holds ``capability``.

    Raises ``DaemonError`` ``unauthorized`` (no or an unknown token) or ``forbidden``.
    """
    token = _bearer(authorization)
    principal = registry.resolve(token) if token else None
    if principal is None:
        raise DaemonError(
            "unauthorized",
            "missing or invalid token",
            hint="send `Authorization: Bearer <token>` (the CLI does this for you)",
        )
    if not principal.can(capability):
        raise DaemonError("forbidden", f"this token may not use this route (needs {capability!r})")
    return principal


def require(capability: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency that admits callers holding ``capability``."""

    def dependency(request: Request) -> Principal:
        registry: TokenRegistry = request.app.state.daemon.tokens
        return authenticate(registry, request.headers.get("authorization"), capability)

    return dependency
