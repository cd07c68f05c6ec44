"""Who may use the approvals web page (issue #20): one-time login links, UI sessions, page keys.

The human mints a link through the admin API (``POST /v1/ui/links``: the master token over the
Unix socket, from outside every agent's tree — ADR 0014), so a process of an agent can never
obtain one. A link's token is 256 random bits, kept here only as its sha256, good once and for
:data:`LINK_TTL_S`. Redeeming it opens a :class:`UiSession` good for :data:`SESSION_TTL_S`,
with two secrets of 256 random bits each, both kept here only as their sha256:

- the cookie (a random id): the browser sends it to every port of the host, so it alone
  proves nothing — any local server the human is lured to on 127.0.0.1 receives it;
- the page key: handed over once, in the login redirect's URL fragment (never sent to a
  server, nor in a ``Referer``), kept by the page in its origin's ``sessionStorage`` (scheme,
  host *and port*) and sent back with every ``/ui/api`` request. Only the page at the daemon's
  own origin holds it, so it is what scopes the page's authority to the daemon's port; and as
  a custom header no other site can set, it is also the page's CSRF token.

Everything lives in the daemon's memory: a daemon restart logs every page out.
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
    """One logged-in page: who minted its link, its page key's digest, when it ends."""

    by: str
    """Who minted the login link (the decisions it makes are ``web (<by>)``)."""
    key_digest: bytes = attrs.field(repr=False)
    """The sha256 of the page key (the key itself is handed out once, at the login)."""
    expires: float
    """On the monotonic clock."""

    def key_ok(self, presented: str | None) -> bool:
        """Whether ``presented`` is this session's page key (compared in constant time)."""
        return bool(presented) and hmac.compare_digest(_digest(presented or ""), self.key_digest)


@attrs.frozen
class _Link:
    by: str
    approval: str | None
    expires: float


@attrs.frozen
class Redeemed:
    """A redeemed link: the new session's cookie value and page key (the only time either
    exists outside a digest), the session, the approval it names."""

    cookie: str = attrs.field(repr=False)
    key: str = attrs.field(repr=False)
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
        cookie, key = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        session = UiSession(link.by, _digest(key), now + SESSION_TTL_S)
        self._sessions[_digest(cookie)] = session
        return Redeemed(cookie, key, session, link.approval)

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

    def page(self, cookie: str | None, key: str | None) -> UiSession | None:
        """The open session of a page presenting ``cookie`` *and* its page key, or ``None``
        when either is missing, unknown or not the other's."""
        found = self.session(cookie)
        return found if found is not None and found.key_ok(key) else None

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
