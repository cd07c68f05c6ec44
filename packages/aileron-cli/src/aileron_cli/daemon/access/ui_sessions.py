"""Who may use the approvals web page (issue #20): one-time login links, UI sessions, CSRF.

The human mints a link through the admin API (``POST /v1/ui/links``: the master token over the
Unix socket, from outside every agent's tree — ADR 0014), so a process of an agent can never
obtain one. A link's token is 256 random bits, kept here only as its sha256, good once and for
:data:`LINK_TTL_S`. Redeeming it opens a :class:`UiSession`: a random id (the cookie, also kept
only as its sha256) good for :data:`SESSION_TTL_S`, and a CSRF token the page sends back in a
header with every state-changing request. Everything lives in the daemon's memory: a daemon
restart logs every page out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs

__all__ = ["LINK_TTL_S", "SESSION_TTL_S", "Redeemed", "UiSession", "UiSessions"]

LINK_TTL_S = 60.0
"""Seconds a login link stays good (once)."""
SESSION_TTL_S = 12 * 3600.0
"""Seconds a page's session lasts after its login."""
MAX_LINKS = 64
"""Unredeemed links kept at most; the oldest is forgotten past that."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@attrs.frozen
class UiSession:
    """One logged-in page: who minted its link, its CSRF token, when it ends."""

    by: str
    """Who minted the login link (the decisions it makes are ``web (<by>)``)."""
    csrf: str
    expires: float
    """On the monotonic clock."""

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether ``presented`` is this session's CSRF token (compared in constant time)."""
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf.encode())


@attrs.frozen
class _Link:
    by: str
    approval: str | None
    expires: float


@attrs.frozen
class Redeemed:
    """A redeemed link: the new session's cookie value, the session, the approval it names."""

    cookie: str
    session: UiSession
    approval: str | None


class UiSessions:
    """The login links not yet used and the open page sessions; ``clock`` is monotonic."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._links: dict[bytes, _Link] = {}
        self._sessions: dict[bytes, UiSession] = {}

    def now(self) -> float:
        return self._clock()

    def mint_link(self, by: str, approval: str | None = None) -> tuple[str, datetime]:
        """A new login token for ``by`` (optionally landing on ``approval``) and when it
        expires."""
        now = self._clock()
        self._forget_expired(now)
        while len(self._links) >= MAX_LINKS:
            del self._links[next(iter(self._links))]
        token = secrets.token_urlsafe(32)
        self._links[_digest(token)] = _Link(by, approval, now + LINK_TTL_S)
        return token, datetime.now(UTC) + timedelta(seconds=LINK_TTL_S)

    def redeem(self, token: str) -> Redeemed | None:
        """Use ``token`` (gone afterwards, whatever the outcome): a new session, or ``None``
        for a token unknown, already used or expired."""
        now = self._clock()
        link = self._links.pop(_digest(token), None)
        if link is None or link.expires <= now:
            return None
        self._forget_expired(now)
        cookie = secrets.token_urlsafe(32)
        session = UiSession(link.by, secrets.token_urlsafe(32), now + SESSION_TTL_S)
        self._sessions[_digest(cookie)] = session
        return Redeemed(cookie, session, link.approval)

    def session(self, cookie: str | None) -> UiSession | None:
        """The open session a cookie value names, or ``None``."""
        if not cookie:
            return None
        key = _digest(cookie)
        found = self._sessions.get(key)
        if found is None:
            return None
        if found.expires <= self._clock():
            del self._sessions[key]
            return None
        return found

    def logout(self, cookie: str) -> None:
        self._sessions.pop(_digest(cookie), None)

    def _forget_expired(self, now: float) -> None:
        for key, link in list(self._links.items()):
            if link.expires <= now:
                del self._links[key]
        for key, session in list(self._sessions.items()):
            if session.expires <= now:
                del self._sessions[key]

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)

    @property
    def unused_links(self) -> int:
        return len(self._links)
