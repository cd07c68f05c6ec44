"""Login links and page sessions (``access.ui_sessions``) on a clock the test moves."""

from __future__ import annotations

from aileron_cli.daemon.access.ui_sessions import LINK_TTL_S, SESSION_TTL_S, UiSessions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_link_opens_one_session_once() -> None:
    """Redeeming a link gives a session (cookie, page key, who minted it, the approval it
    names); the same token again gives nothing."""
    sessions = UiSessions(clock=Clock())
    token, _ = sessions.mint_link("local-user on /dev/pts/1", "apr_1")
    redeemed = sessions.redeem(token)
    assert redeemed is not None
    assert redeemed.approval == "apr_1"
    assert redeemed.session.by == "local-user on /dev/pts/1"
    assert sessions.session(redeemed.cookie) == redeemed.session
    assert sessions.redeem(token) is None


def test_a_link_expires_after_a_minute() -> None:
    """A link not used within LINK_TTL_S is refused (and forgotten)."""
    clock = Clock()
    sessions = UiSessions(clock=clock)
    token, _ = sessions.mint_link("u")
    clock.now += LINK_TTL_S
    assert sessions.redeem(token) is None
    fresh, _ = sessions.mint_link("u")
    clock.now += LINK_TTL_S - 1
    assert sessions.redeem(fresh) is not None


def test_a_session_ends_after_its_time_or_a_logout() -> None:
    """A session's cookie stops working SESSION_TTL_S after the login, or at logout."""
    clock = Clock()
    sessions = UiSessions(clock=clock)
    first = sessions.redeem(sessions.mint_link("u")[0])
    second = sessions.redeem(sessions.mint_link("u")[0])
    assert first is not None and second is not None
    sessions.logout(second.cookie)
    assert sessions.session(second.cookie) is None
    clock.now += SESSION_TTL_S - 1
    assert sessions.session(first.cookie) is not None
    clock.now += 1
    assert sessions.session(first.cookie) is None


def test_the_page_key_is_the_sessions_own() -> None:
    """Only the session's own page key passes; another session's, none, an empty one or a
    prefix fail; the session keeps the key's digest, not the key."""
    sessions = UiSessions(clock=Clock())
    a = sessions.redeem(sessions.mint_link("u")[0])
    b = sessions.redeem(sessions.mint_link("u")[0])
    assert a is not None and b is not None
    assert a.key != a.cookie
    assert a.session.key_ok(a.key)
    assert not a.session.key_ok(b.key)
    assert not a.session.key_ok(None)
    assert not a.session.key_ok("")
    assert not a.session.key_ok(a.key[:-1])
    assert a.key not in repr(a) and a.key.encode() not in a.session.key_digest


def test_a_page_needs_its_cookie_and_its_key() -> None:
    """`page` names the session only for its cookie together with its own key: the cookie
    alone, the key alone, or one session's cookie with another's key name nothing."""
    sessions = UiSessions(clock=Clock())
    a = sessions.redeem(sessions.mint_link("u")[0])
    b = sessions.redeem(sessions.mint_link("u")[0])
    assert a is not None and b is not None
    assert sessions.page(a.cookie, a.key) == a.session
    assert sessions.page(a.cookie, None) is None
    assert sessions.page(None, a.key) is None
    assert sessions.page(a.cookie, b.key) is None
    assert sessions.page(b.cookie, a.key) is None
    assert sessions.page(a.key, a.cookie) is None


def test_unknown_cookies_and_tokens_name_nothing() -> None:
    """A made-up cookie or token, or an empty one, is no session."""
    sessions = UiSessions(clock=Clock())
    assert sessions.session(None) is None
    assert sessions.session("") is None
    assert sessions.session("made-up") is None
    assert sessions.redeem("made-up") is None
