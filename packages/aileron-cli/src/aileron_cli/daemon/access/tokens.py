"""Who is calling: the master token (the user, on the host) or a session token (an agent).

The master token is generated at each start and written only to ``daemon.json``. Session tokens
are minted by ``POST /v1/sessions`` and die with their session; the daemon keeps only their
sha256. Both are compared in constant time. No token, or an unknown one, is a 401; a valid
token outside its capabilities is a 403 (SPEC §5.1).

A token alone does not make the human (SPEC §16): the agent runs as the user and can read
``daemon.json``. :class:`Gate` admits the master token only on the daemon's Unix socket, where
the kernel names the calling process, and only from a process outside every live agent
session's tree; a refusal is audited (``auth.refused``). Session tokens are not checked
further: they carry an agent's capabilities whoever presents them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request

from aileron_cli.daemon.access.peers import (
    PEER_SCOPE_KEY,
    ConnectionPeer,
    PeerProcess,
    SessionTrees,
)
from aileron_cli.daemon.errors import DaemonError
from aileron_core.audit import Actor
from aileron_core.ids import new_token

SESSION_CAPABILITIES = frozenset({"actions:list", "actions:run", "approvals:poll", "gateway"})
ADMIN = "admin"

Audit = Callable[[str, Actor, "str | None", dict[str, Any]], Awaitable[object]]


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

    Raises ``DaemonError`` ``unauthorized`` (no or an unknown token) or ``forbidden``. This is
    the token half only; :meth:`Gate.admit` adds the process half for the master token.
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


class Gate:
    """Tokens plus, for the master token, the calling process (SPEC §16).

    ``peer_required`` is set for a real daemon: every connection it serves names its peer, so
    a request without one is refused the master token. In-process tests (no socket at all)
    leave it unset.
    """

    def __init__(
        self,
        tokens: TokenRegistry,
        *,
        audit: Audit,
        peer_required: bool = False,
        trees: SessionTrees | None = None,
    ) -> None:
        self.tokens = tokens
        self.trees = trees or SessionTrees()
        self._audit = audit
        self._peer_required = peer_required
        self._uid = os.getuid()

    async def admit(
        self, authorization: str | None, capability: str, peer: ConnectionPeer | None
    ) -> Principal:
        """The caller, or the error that refuses it (a process refusal audited first)."""
        principal = authenticate(self.tokens, authorization, capability)
        if principal.kind != "master":
            return principal
        if peer is None:
            if self._peer_required:
                raise _needs_socket()
            return principal
        if peer.transport != "unix":
            raise _needs_socket()
        if peer.uid not in (self._uid, 0):
            raise DaemonError("forbidden", f"uid {peer.uid} may not use this daemon's socket")
        process = PeerProcess.of(peer)
        session_id = self.trees.session_of(peer.pid)
        if session_id is None:
            return Principal("master", None, frozenset(), process)
        await self._audit(
            "auth.refused",
            Actor(type="agent", id=f"session:{session_id}"),
            session_id,
            {
                "reason": "master token from a process of an agent session",
                "capability": capability,
                "process": process.to_json(),
            },
        )
        raise DaemonError(
            "agent_process_refused",
            "this process belongs to an agent session: the human's authority is not the agent's",
            hint="run this command yourself, outside the agent's session",
            details={"session_id": session_id},
        )

    async def admit_request(self, request: Request, capability: str) -> Principal:
        return await self.admit(
            request.headers.get("authorization"), capability, request.scope.get(PEER_SCOPE_KEY)
        )


def _needs_socket() -> DaemonError:
    return DaemonError(
        "master_token_needs_socket",
        "the master token is accepted only on the daemon's Unix socket",
        hint="use the `aileron` CLI, which connects through daemon.sock",
    )


def require(capability: str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency that admits callers holding ``capability``."""

    async def dependency(request: Request) -> Principal:
        gate: Gate = request.app.state.daemon.gate
        return await gate.admit_request(request, capability)

    return dependency
