"""Acceptance 1 of #20 in a real browser: Debian's Chromium, headless, driven by Selenium through
the system chromedriver, against a real daemon on a real port, an agent's request made over HTTP
with its session token and a real local upstream. Screenshots go to test-artifacts/ui/."""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pytest
from actions.support import SECRET, echo_spec
from helpers import admin_http, aileron
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.wait import WebDriverWait
from ui.browser_support import chromium, need_browser, screenshot

from aileron_cli.examples import ACTIONS
from aileron_cli.examples.echo_server import EchoServer
from aileron_core.discovery import DaemonInfo

pytestmark = pytest.mark.slow

ACTION = "echo-careful"
WAIT_S = 30.0
"""An upper bound for anything the browser waits for (never a measure of speed)."""

# Keeps every EventSource the page opens, before its own script runs: the test waits until the
# live stream is open, so the approval can only reach the page through it.
RECORD_EVENT_SOURCES = """
window.aileronTestSources = [];
window.EventSource = class extends window.EventSource {
  constructor(...args) {
    super(...args);
    window.aileronTestSources.push(this);
  }
};
"""


def cli_env() -> dict[str, str]:
    """The test's (isolated) environment with a passphrase source; read at call time."""
    return dict(os.environ, AILERON_VAULT_PASSPHRASE="demo passphrase")


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    """A real local HTTP server that accepts only `Bearer SECRET` and records every request."""
    with EchoServer(SECRET) as server:
        yield server


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """Headless Chromium (skipped without it unless AILERON_REQUIRE_BROWSER=1)."""
    need_browser()
    with chromium() as driver:
        driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_EVENT_SOURCES}
        )
        yield driver


@pytest.fixture
def agent_token(real_daemon: DaemonInfo, echo: EchoServer, tmp_path: Path) -> str:
    """A vault, the echo connector, the approval-gated echo-careful action and its binding
    installed with the real CLI; the token of a new agent session."""
    spec_file = tmp_path / "echo.json"
    spec_file.write_text(json.dumps(echo_spec(echo.host)))
    steps = [
        aileron("vault", "init", env=cli_env()),
        aileron("connector", "install", str(spec_file), env=cli_env()),
        aileron("action", "install", str(ACTIONS / f"{ACTION}.md"), env=cli_env()),
        aileron("binding", "add", "token/echo/default", stdin=SECRET + "\n", env=cli_env()),
    ]
    assert [s.returncode for s in steps] == [0] * len(steps), [s.stderr for s in steps]
    with admin_http(real_daemon) as admin:
        session = admin.post("sessions", json={"agent": "codex", "working_dir": "/"})
    assert session.status_code == 201, session.text
    return str(session.json()["token"])


def login_link(info: DaemonInfo) -> str:
    """A one-time login link, minted through the admin API as `aileron open --no-browser` does."""
    with admin_http(info) as admin:
        minted = admin.post("ui/links", json={"approval": None})
    assert minted.status_code == 201, minted.text
    url = str(minted.json()["url"])
    assert url.startswith(f"{info.url}/ui/login?t="), url
    return url


def ask(info: DaemonInfo, token: str, message: str) -> str:
    """The agent asks for the gated action; the daemon answers 202 with the approval's id."""
    with httpx.Client(base_url=f"{info.url}/v1/", timeout=30) as http:
        asked = http.post(
            f"actions/{ACTION}/run",
            json={"args": {"message": message}},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert asked.status_code == 202, asked.text
    return str(asked.json()["approval_id"])


def agent_waits(
    info: DaemonInfo, token: str, message: str, asked: queue.Queue[str], done: Future[Any]
) -> None:
    """What an agent does, on its own thread: ask, then poll its approval until it is
    decided and run (or the bound passes); the last answer resolves ``done``."""
    try:
        approval_id = ask(info, token, message)
        asked.put(approval_id)
        deadline = time.monotonic() + WAIT_S
        with httpx.Client(base_url=f"{info.url}/v1/", timeout=30) as http:
            while True:
                polled = http.get(
                    f"approvals/{approval_id}", headers={"Authorization": f"Bearer {token}"}
                )
                polled.raise_for_status()
                status = polled.json()["status"]
                if status not in ("pending", "approved", "running") or (
                    time.monotonic() > deadline
                ):
                    done.set_result(polled.json())
                    return
                time.sleep(0.1)
    except BaseException as error:  # handed to the test's thread
        done.set_exception(error)


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, WAIT_S)


def page_key(driver: WebDriver) -> str:
    """The page key the page keeps in its origin's sessionStorage."""
    key = driver.execute_script("return sessionStorage.getItem('aileron.pageKey')")
    assert isinstance(key, str) and len(key) >= 43, key
    return key


def log_in(driver: WebDriver, link: str) -> None:
    """Open the link, land on the page (its key taken from the fragment, which leaves the
    address bar), and wait until its live stream is open."""
    driver.get(link)
    page = link.split("/ui/login")[0] + "/ui/"
    wait(driver).until(ec.url_to_be(page), f"not redirected to {page} (without a fragment)")
    assert page_key(driver) not in driver.current_url
    wait(driver).until(ec.visibility_of_element_located((By.ID, "app")), "the page is not shown")
    assert driver.find_elements(By.ID, "pending"), "the page has no #pending list"
    wait(driver).until(
        lambda d: d.execute_script(
            "return window.aileronTestSources.some(s => s.readyState === EventSource.OPEN)"
        ),
        "the page's event stream did not open",
    )


def test_a_pending_approval_appears_live_is_approved_and_shows_the_result(
    browser: WebDriver, real_daemon: DaemonInfo, agent_token: str, echo: EchoServer
) -> None:
    """Logged in with the one-time link, the page shows an agent's new request without a
    reload, approves it with a reason, shows the action's result (screenshots of both states),
    the agent gets the result, the upstream got one call; the link fails the second time."""
    link = login_link(real_daemon)
    log_in(browser, link)
    browser.execute_script("window.aileronTestNoReload = 'same document';")

    message = "hello from the browser test"
    asked: queue.Queue[str] = queue.Queue()
    done: Future[Any] = Future()
    agent = threading.Thread(
        target=agent_waits, args=(real_daemon, agent_token, message, asked, done), daemon=True
    )
    agent.start()
    approval_id = asked.get(timeout=WAIT_S)

    item = (By.CSS_SELECTOR, f"#pending li.approval[data-id='{approval_id}']")
    shown = wait(browser).until(ec.visibility_of_element_located(item))
    assert browser.execute_script("return window.aileronTestNoReload") == "same document"
    assert ACTION in shown.text and message in shown.text, shown.text
    assert echo.seen == []
    screenshot(browser, "pending")

    shown.find_element(By.CSS_SELECTOR, "input.reason").send_keys("looks right")
    shown.find_element(By.CSS_SELECTOR, "button.approve").click()
    wait(browser).until(ec.text_to_be_present_in_element((By.ID, "result"), message))
    wait(browser).until(ec.invisibility_of_element_located(item))
    assert browser.execute_script("return window.aileronTestNoReload") == "same document"
    screenshot(browser, "approved")

    final = done.result(timeout=WAIT_S)
    agent.join(timeout=WAIT_S)
    assert final["status"] == "succeeded", final
    assert final["reason"] == "looks right"
    assert str(final["decided_by"]).startswith("web ("), final["decided_by"]
    assert message in json.dumps(final["result"])
    assert [json.loads(s.body)["message"] for s in echo.seen] == [message]

    again = httpx.get(link, timeout=30, follow_redirects=False)
    assert again.status_code == 403, again.text
    assert "aileron_ui" not in again.headers.get("set-cookie", "")


def test_the_logged_in_session_refuses_a_wrong_host_origin_or_missing_page_key(
    browser: WebDriver, real_daemon: DaemonInfo, agent_token: str, echo: EchoServer
) -> None:
    """With the browser's own session cookie, reading or deciding without the page's key (what
    a server on another port of 127.0.0.1 gets from the browser), with a wrong one, from
    another Origin or none, or to another Host (DNS rebinding) is refused and nothing runs;
    reading under another Host is refused too; the same decision sent as the page sends it
    (cookie, key, Origin) works. A reload keeps the page logged in (the key stays in the
    tab's sessionStorage)."""
    log_in(browser, login_link(real_daemon))
    cookie = browser.get_cookie("aileron_ui")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
    approval_id = ask(real_daemon, agent_token, "must not run")
    port = real_daemon.url.rsplit(":", 1)[1]
    key = page_key(browser)
    own = {"Host": f"127.0.0.1:{port}", "Cookie": f"aileron_ui={cookie['value']}"}
    with httpx.Client(base_url=real_daemon.url, timeout=30) as http:
        assert http.get("/ui/api/me", headers=own).status_code == 401
        assert http.get("/ui/api/approvals", headers=own).status_code == 401
        assert http.get("/ui/api/events", headers=own).status_code == 401
        me = http.get("/ui/api/me", headers={**own, "X-Aileron-Page-Key": key})
        assert me.status_code == 200, me.text
        assert key not in me.text
        page_sends = {**own, "Origin": f"http://127.0.0.1:{port}", "X-Aileron-Page-Key": key}
        approve = f"/ui/api/approvals/{approval_id}/approve"
        refused = {
            "no page key": {k: v for k, v in page_sends.items() if k != "X-Aileron-Page-Key"},
            "a wrong page key": {**page_sends, "X-Aileron-Page-Key": key[::-1]},
            "another Origin": {**page_sends, "Origin": "http://evil.example"},
            "no Origin": {k: v for k, v in page_sends.items() if k != "Origin"},
            "another Host": {
                **page_sends,
                "Host": f"evil.example:{port}",
                "Origin": f"http://evil.example:{port}",
            },
        }
        answers = {
            why: http.post(approve, json={"reason": why}, headers=headers).status_code
            for why, headers in refused.items()
        }
        assert answers == {
            "no page key": 401,
            "a wrong page key": 401,
            "another Origin": 403,
            "no Origin": 403,
            "another Host": 421,
        }
        read = http.get("/ui/api/approvals", headers={**own, "Host": f"evil.example:{port}"})
        assert read.status_code == 421, read.text
        with admin_http(real_daemon) as admin:
            assert admin.get(f"approvals/{approval_id}").json()["status"] == "pending"
        assert echo.seen == []

        browser.refresh()
        item = (By.CSS_SELECTOR, f"#pending li.approval[data-id='{approval_id}']")
        wait(browser).until(ec.visibility_of_element_located(item), "a reload logged out")
        assert page_key(browser) == key

        denied = http.post(
            f"/ui/api/approvals/{approval_id}/deny", json={"reason": "test"}, headers=page_sends
        )
        assert denied.status_code == 200, denied.text
        assert denied.json()["status"] == "denied"
    assert echo.seen == []
