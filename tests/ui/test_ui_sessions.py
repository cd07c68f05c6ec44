"""Login links and page sessions (``access.ui_sessions``) on a clock the test moves."""

from __future__ import annotations

from aileron_cli.daemon.access.ui_sessions import LINK_TTL_S, SESSION_TTL_S, UiSessions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_link_opens_one_session_once() -> None:
    """Redeeming a link gives a session (cookie, CSRF token, who minted it, the approval it
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


def test_the_csrf_token_is_the_sessions_own() -> None:
    """Only the session's own CSRF token passes; another session's, none or a prefix fail."""
    sessions = UiSessions(clock=Clock())
    a = sessions.redeem(sessions.mint_link("u")[0])
    b = sessions.redeem(sessions.mint_link("u")[0])
    assert a is not None and b is not None
    assert a.session.csrf_ok(a.session.csrf)
    assert not a.session.csrf_ok(b.session.csrf)
    assert not a.session.csrf_ok(None)
    assert not a.session.csrf_ok(a.session.csrf[:-1])


def test_unknown_cookies_and_tokens_name_nothing() -> None:
    """A made-up cookie or token, or an empty one, is no session."""
    sessions = UiSessions(clock=Clock())
    assert sessions.session(None) is None
    assert sessions.session("") is None
    assert sessions.session("made-up") is None
    assert sessions.redeem("made-up") is None
