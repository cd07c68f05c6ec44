"""The approvals web page (issue #20) against a real daemon on a real port: the one-time link,
the cookie and the page key, the guards (Host, Origin, page key, loopback TCP only), the
security headers, the live stream and decisions that run (or deny) the action."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
from helpers import admin_http, aileron
from ui.support import ask, browser, logged_in, mint, page_key

from aileron_cli.daemon.http.routes.ui import CSP
from aileron_cli.daemon.http.routes.ui_api import PAGE_KEY_HEADER
from aileron_cli.examples.echo_server import EchoServer
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

Armed = tuple[DaemonInfo, EchoServer, str]


def _path(url: str) -> str:
    return httpx.URL(url).raw_path.decode()


def _audit(info: DaemonInfo, type: str) -> list[dict[str, Any]]:
    with admin_http(info) as admin:
        records: list[dict[str, Any]] = admin.get("audit", params={"type": type}).json()
    return records


def test_a_login_link_logs_in_once_with_a_strict_cookie(real_daemon: DaemonInfo) -> None:
    """The link answers 303 to the page, the page key in the fragment, with an HttpOnly
    SameSite=Strict cookie on /ui; the same link a second time is a 403 page; the login and
    the minting are audited."""
    link = mint(real_daemon)
    assert link["url"].startswith(f"{real_daemon.url}/ui/login?t=")
    with browser(real_daemon) as page:
        first = page.get(_path(link["url"]))
        assert first.status_code == 303
        key = page_key(first)
        assert first.headers["location"] == f"/ui/#k={key}" and len(key) >= 43
        cookie = first.headers["set-cookie"]
        assert cookie.startswith("aileron_ui=")
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/ui"} <= flags
        assert key not in cookie
        assert page.get("/ui/api/me", headers={PAGE_KEY_HEADER: key}).status_code == 200
    with browser(real_daemon) as other:
        again = other.get(_path(link["url"]))
        assert again.status_code == 403
        assert "already used" in again.text
        assert "aileron_ui" not in again.headers.get("set-cookie", "")
        assert other.get("/ui/api/me").status_code == 401
    assert len(_audit(real_daemon, "ui.link_created")) == 1
    assert len(_audit(real_daemon, "ui.login")) == 1


def test_a_link_to_one_approval_lands_on_its_page(armed: Armed) -> None:
    """`approval` in the link request makes the login redirect to /ui/approvals/ID, which
    serves the page; an unknown approval mints nothing (404)."""
    info, _, token = armed
    approval = ask(info, token, "hello")
    with browser(info) as page:
        login = page.get(_path(mint(info, approval)["url"]))
        assert login.headers["location"] == f"/ui/approvals/{approval}#k={page_key(login)}"
        shown = page.get(f"/ui/approvals/{approval}")
        assert shown.status_code == 200
        assert 'id="pending"' in shown.text
    with admin_http(info) as admin:
        assert admin.post("ui/links", json={"approval": "apr_nope"}).status_code == 404


def test_an_unknown_or_missing_token_is_refused(real_daemon: DaemonInfo) -> None:
    """A made-up token, or none, is a 403 page and no cookie."""
    with browser(real_daemon) as page:
        for path in ("/ui/login?t=made-up-token", "/ui/login"):
            refused = page.get(path)
            assert refused.status_code == 403
            assert "set-cookie" not in refused.headers


def test_every_ui_answer_carries_the_security_headers(real_daemon: DaemonInfo) -> None:
    """The page, its script and style, the API, a 401 and a refused login all carry the
    strict CSP, nosniff, no-referrer and no-store; the page has no inline script or style."""
    with browser(real_daemon) as page:
        answers = {
            path: page.get(path)
            for path in ("/ui/", "/ui/app.js", "/ui/app.css", "/ui/api/approvals", "/ui/login")
        }
    assert [a.status_code for a in answers.values()] == [200, 200, 200, 401, 403]
    for path, answer in answers.items():
        assert answer.headers["content-security-policy"] == CSP, path
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["referrer-policy"] == "no-referrer", path
        assert answer.headers["cache-control"] == "no-store", path
    html = answers["/ui/"].text
    assert '<script src="/ui/app.js"' in html and "<script>" not in html
    assert "style=" not in html and "<style" not in html and "http" not in html.split("<body")[1]
    assert answers["/ui/app.js"].headers["content-type"].startswith("text/javascript")


def test_the_api_needs_the_cookie(real_daemon: DaemonInfo) -> None:
    """Without the page's cookie every /ui/api route is 401 (with it and the key, 200)."""
    with browser(real_daemon) as anonymous:
        for path in ("me", "approvals", "events", "sessions", "audit", "audit/verify"):
            assert anonymous.get(f"/ui/api/{path}").status_code == 401, path
        assert anonymous.post("/ui/api/approvals/apr_x/approve", json={}).status_code == 401
    with logged_in(real_daemon) as (page, key):
        for path in ("me", "approvals", "sessions", "audit", "audit/verify"):
            assert page.get(f"/ui/api/{path}").status_code == 200, path
        anonymous_with_key = httpx.get(
            f"{real_daemon.url}/ui/api/approvals", headers={PAGE_KEY_HEADER: key}
        )
        assert anonymous_with_key.status_code == 401


def test_the_cookie_without_the_page_key_opens_nothing(armed: Armed) -> None:
    """What a server on another port of 127.0.0.1 receives from the browser — the cookie —
    opens no /ui/api route without the page key, reads and the event stream included, even
    with Host and Origin forged: no key, a wrong key, another session's key, or the key where
    that route does not take it are 401; nothing is decided, nothing runs."""
    info, echo, token = armed
    approval = ask(info, token, "must not run")
    port = httpx.URL(info.url).port
    own = f"127.0.0.1:{port}"
    with logged_in(info) as (page, key), logged_in(info) as (_, other_key):
        cookie = page.cookies["aileron_ui"]
        forged = {"Host": own, "Origin": f"http://{own}", "Cookie": f"aileron_ui={cookie}"}
        keys: dict[str, dict[str, str]] = {
            "no key": {},
            "a wrong key": {PAGE_KEY_HEADER: key[::-1]},
            "another session's key": {PAGE_KEY_HEADER: other_key},
            "an empty key": {PAGE_KEY_HEADER: ""},
        }
        reads = ["me", "approvals", f"approvals/{approval}", "sessions", "audit", "audit/verify"]
        posts = [f"approvals/{approval}/approve", f"approvals/{approval}/deny", "logout"]
        with httpx.Client(base_url=info.url, timeout=30) as agent:
            for why, extra in keys.items():
                for path in reads:
                    got = agent.get(f"/ui/api/{path}", headers={**forged, **extra})
                    assert got.status_code == 401, (why, path, got.text)
                for path in posts:
                    got = agent.post(f"/ui/api/{path}", json={}, headers={**forged, **extra})
                    assert got.status_code == 401, (why, path, got.text)
                stream = agent.get("/ui/api/events", headers={**forged, **extra})
                assert stream.status_code == 401, why
            for wrong in (key[::-1], other_key, ""):
                stream = agent.get("/ui/api/events", params={"k": wrong}, headers=forged)
                assert stream.status_code == 401, wrong
            in_query = agent.get("/ui/api/approvals", params={"k": key}, headers=forged)
            assert in_query.status_code == 401  # only the event stream takes ?k=
            in_header = agent.get("/ui/api/events", headers={**forged, PAGE_KEY_HEADER: key})
            assert in_header.status_code == 401  # the stream takes ?k= only
        assert page.get(f"/ui/api/approvals/{approval}").json()["status"] == "pending"
        assert page.get("/ui/api/me").status_code == 200  # the refused logout did not log out
    assert echo.seen == []
    assert _audit(info, "approval.approved") == [] and _audit(info, "approval.denied") == []


def test_the_page_key_is_in_no_answer_but_the_login_redirect(armed: Armed, layout: Layout) -> None:
    """After the login, the page key appears in no answer body or header of the page, its
    script, or any /ui/api route, nor in the audit log or the daemon's log — even after the
    event stream was opened with it in its URL; only the redirect's Location fragment has
    it."""
    info, _, token = armed
    approval = ask(info, token, "where is the key")
    with browser(info) as page:
        login = page.get(_path(mint(info, approval)["url"]))
        key = page_key(login)
        assert key not in login.text and key not in login.headers["set-cookie"]
        page.headers[PAGE_KEY_HEADER] = key
        with page.stream("GET", "/ui/api/events", params={"k": key}) as stream:
            first = next(stream.iter_lines())
            assert stream.status_code == 200, first
        answers = [
            page.get(path)
            for path in (
                "/ui/",
                f"/ui/approvals/{approval}",
                "/ui/app.js",
                "/ui/api/me",
                "/ui/api/approvals",
                f"/ui/api/approvals/{approval}",
                "/ui/api/sessions",
                "/ui/api/audit",
                "/ui/api/audit/verify",
            )
        ]
        answers.append(page.post(f"/ui/api/approvals/{approval}/deny", json={"reason": "k?"}))
    assert [a.status_code for a in answers] == [200] * len(answers)
    for answer in answers:
        assert key not in answer.text, answer.url
        assert key not in str(answer.headers), answer.url
    assert "csrf" not in answers[3].json()
    with admin_http(info) as admin:
        assert key not in admin.get("audit").text
    for written in (layout.daemon_log, layout.home / "audit.jsonl"):
        if written.exists():
            assert key not in written.read_text(errors="replace"), written


@pytest.mark.parametrize(
    "host", ["evil.example:{port}", "127.0.0.1:1", "localhost", "[::1]:{port}"]
)
def test_a_foreign_host_header_is_refused(real_daemon: DaemonInfo, host: str) -> None:
    """A Host other than 127.0.0.1:PORT or localhost:PORT (what a DNS-rebinding page sends)
    is 421 on the login, the page and the API, even with a valid cookie."""
    port = httpx.URL(real_daemon.url).port
    with logged_in(real_daemon) as (page, _):
        named = host.format(port=port)
        for path in ("/ui/", "/ui/api/approvals", "/ui/login?t=x"):
            assert page.get(path, headers={"Host": named}).status_code == 421, path
        assert page.get("/ui/", headers={"Host": f"localhost:{port}"}).status_code == 200


def test_a_cross_origin_or_keyless_post_is_refused(armed: Armed) -> None:
    """A decision with a foreign or missing Origin is 403, without (or with a wrong) page
    key 401, and the approval stays pending; with both it goes through."""
    info, echo, token = armed
    approval = ask(info, token, "guarded")
    path = f"/ui/api/approvals/{approval}/approve"
    port = httpx.URL(info.url).port
    assert port is not None
    with logged_in(info) as (page, key):
        cookies = page.cookies
        with httpx.Client(base_url=info.url, cookies=cookies, timeout=30) as raw:
            own = {"Origin": f"http://127.0.0.1:{port}"}
            refusals = [
                raw.post(
                    path, json={}, headers={"Origin": "http://evil.example", PAGE_KEY_HEADER: key}
                ),
                raw.post(
                    path,
                    json={},
                    headers={"Origin": f"http://127.0.0.1:{port + 1}", PAGE_KEY_HEADER: key},
                ),
                raw.post(path, json={}, headers={"Origin": "null", PAGE_KEY_HEADER: key}),
                raw.post(path, json={}, headers={PAGE_KEY_HEADER: key}),
                raw.post(path, json={}, headers=own),
                raw.post(path, json={}, headers={**own, PAGE_KEY_HEADER: key + "x"}),
            ]
        assert [r.status_code for r in refusals] == [403, 403, 403, 403, 401, 401]
        assert page.get(f"/ui/api/approvals/{approval}").json()["status"] == "pending"
        assert echo.seen == []
        done = page.post(path, json={})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "succeeded"


def test_the_page_is_not_served_on_the_admin_socket(real_daemon: DaemonInfo) -> None:
    """Over the daemon's Unix socket (the admin's) /ui is refused: the page lives on the
    loopback TCP address only, where its Host and Origin checks mean something."""
    port = httpx.URL(real_daemon.url).port
    with admin_http(real_daemon) as admin:
        answer = admin.get(f"{real_daemon.url}/ui/", headers={"Host": f"127.0.0.1:{port}"})
    assert answer.status_code == 403


def test_the_pending_list_shows_the_request_in_full(armed: Armed) -> None:
    """GET /ui/api/approvals lists the pending approval with target, kind, every argument,
    each step's connector, operation, origins and binding, the session and its agent, and
    how long it has waited; no secret anywhere."""
    info, echo, token = armed
    approval = ask(info, token, "show me in full")
    with logged_in(info) as (page, _):
        listed = page.get("/ui/api/approvals").json()
        [session] = page.get("/ui/api/sessions").json()
    assert [a["id"] for a in listed] == [approval]
    shown = listed[0]
    assert shown["target"] == "echo-careful" and shown["kind"] == "action"
    assert shown["args"] == {"message": "show me in full"}
    assert shown["agent"] == "codex" and shown["session_id"] == session["id"]
    assert shown["waited_s"] >= 0
    step = shown["steps"][0]
    assert step["connector"] == "local://echo"
    assert step["binding"] == "token/echo/default"
    assert step["origins"] == [f"http://{echo.host}"]
    assert step["operation"]
    assert "sk-echo" not in json.dumps(listed)


def _events(page: httpx.Client, seen: list[tuple[str, Any]], ready: threading.Event) -> None:
    """Read the page's event stream into ``seen`` until an approval reaches an end state."""
    key = page.headers[PAGE_KEY_HEADER]  # the stream takes it as ?k=, as the page sends it
    with page.stream("GET", "/ui/api/events", params={"k": key}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind is not None:
                data = json.loads(line.removeprefix("data: "))
                seen.append((kind, data))
                if kind == "ready":
                    ready.set()
                if kind == "approval" and data["status"] in ("succeeded", "failed", "denied"):
                    return


def test_the_event_stream_delivers_a_new_approval_and_its_outcome(armed: Armed) -> None:
    """A page subscribed to /ui/api/events gets `ready`, then the approval an agent asks for
    (in full) as it is created, then its changes once the page approves it; the action ran
    with the approved arguments and the page's answer carries its result."""
    info, echo, token = armed
    seen: list[tuple[str, Any]] = []
    ready = threading.Event()
    with logged_in(info) as (page, _):
        listener = threading.Thread(target=_events, args=(page, seen, ready), daemon=True)
        listener.start()
        assert ready.wait(30)
        approval = ask(info, token, "live")
        decided = page.post(
            f"/ui/api/approvals/{approval}/approve",
            json={"reason": "looks right"},
        )
        listener.join(30)
        assert not listener.is_alive()
    changes = [(a["id"], a["status"]) for k, a in seen if k == "approval"]
    assert changes == [
        (approval, "pending"),
        (approval, "approved"),
        (approval, "running"),
        (approval, "succeeded"),
    ]
    first = next(a for k, a in seen if k == "approval")
    assert first["args"] == {"message": "live"} and first["agent"] == "codex"  # in full
    assert decided.status_code == 200, decided.text
    outcome = decided.json()
    assert outcome["status"] == "succeeded"
    assert outcome["decided_by"].startswith("web (local-user")
    assert outcome["result"] == {"echo": "live", "authorized": True}
    assert [json.loads(s.body)["message"] for s in echo.seen] == ["live"]
    approved = _audit(info, "approval.approved")
    assert [r["actor"]["id"] for r in approved] == [outcome["decided_by"]]


def test_deny_through_the_page_runs_nothing(armed: Armed) -> None:
    """Denying through the page records the reason and the web decider, and nothing runs."""
    info, echo, token = armed
    approval = ask(info, token, "no thanks")
    with logged_in(info) as (page, _):
        denied = page.post(
            f"/ui/api/approvals/{approval}/deny",
            json={"reason": "not today"},
        )
        assert denied.status_code == 200, denied.text
        assert page.get("/ui/api/approvals").json() == []
    assert denied.json()["status"] == "denied"
    assert denied.json()["reason"] == "not today"
    assert echo.seen == []
    [record] = _audit(info, "approval.denied")
    assert record["payload"]["reason"] == "not today"
    assert record["actor"] == {"type": "human", "id": denied.json()["decided_by"]}


def test_an_agent_session_token_cannot_mint_a_link(armed: Armed) -> None:
    """The agent's own token cannot mint a link over TCP (403), nor can the master token
    over TCP (403 master_token_needs_socket): only the human's socket can."""
    info, _, token = armed
    as_agent = httpx.post(
        f"{info.api_url}/ui/links", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    assert as_agent.status_code == 403
    master_tcp = httpx.post(
        f"{info.api_url}/ui/links", json={}, headers={"Authorization": f"Bearer {info.token}"}
    )
    assert master_tcp.status_code == 403
    assert master_tcp.json()["error"]["code"] == "master_token_needs_socket"
    assert _audit(info, "ui.link_created") == []


def test_the_sessions_audit_and_verification_are_shown(armed: Armed) -> None:
    """The page's sessions list names the agent session, the audit list is newest first and
    the verification state is the audit log's (ok)."""
    info, _, _ = armed
    with logged_in(info) as (page, _):
        sessions = page.get("/ui/api/sessions").json()
        records = page.get("/ui/api/audit", params={"limit": 5}).json()
        verified = page.get("/ui/api/audit/verify").json()
    assert [s["agent"] for s in sessions] == ["codex"]
    assert "token" not in json.dumps(sessions)
    assert len(records) == 5
    assert records[0]["type"] == "ui.login"
    assert [r["seq"] for r in records] == sorted((r["seq"] for r in records), reverse=True)
    assert verified["ok"] is True


def test_a_grant_made_on_the_page_approves_the_same_request_later(armed: Armed) -> None:
    """Approving on the page with a 5-minute grant runs the request and lets the same
    request run at once afterwards, while other arguments still wait; the grant names the
    web decider."""
    info, echo, token = armed
    approval = ask(info, token, "again and again")
    with logged_in(info) as (page, _):
        decided = page.post(
            f"/ui/api/approvals/{approval}/approve",
            json={"reason": "routine", "grant": {"for": "5m"}},
        )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "succeeded"
    run = f"{info.api_url}/actions/echo-careful/run"
    agent = {"Authorization": f"Bearer {token}"}
    same = httpx.post(run, json={"args": {"message": "again and again"}}, headers=agent)
    assert same.status_code == 200, same.text
    other = httpx.post(run, json={"args": {"message": "something else"}}, headers=agent)
    assert other.status_code == 202, other.text
    assert [json.loads(s.body)["message"] for s in echo.seen] == ["again and again"] * 2
    with admin_http(info) as admin:
        [grant] = admin.get("approvals/grants").json()
    assert grant["granted_by"] == decided.json()["decided_by"]


def test_aileron_open_prints_a_working_link(real_daemon: DaemonInfo) -> None:
    """`aileron open --no-browser` prints a one-time link that logs in; `aileron open
    approval ID` names an unknown approval's 404; a stray word is a usage error."""
    opened = aileron("open", "--no-browser")
    assert opened.returncode == 0, opened.stderr
    url = opened.stdout.strip()
    assert url.startswith(f"{real_daemon.url}/ui/login?t=")
    with browser(real_daemon) as page:
        assert page.get(_path(url)).status_code == 303
    missing = aileron("open", "approval", "apr_missing", "--no-browser")
    assert missing.returncode != 0
    assert "apr_missing" in missing.stderr
    stray = aileron("open", "approval", "a", "b", "--no-browser")
    assert stray.returncode != 0 and "usage" in stray.stderr
