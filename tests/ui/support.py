"""A real daemon for the approvals page's tests, and a browser-like client of it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from actions.support import SECRET, echo_spec
from helpers import admin_http, aileron

from aileron_cli.daemon.http.routes.ui_api import PAGE_KEY_HEADER
from aileron_cli.examples import ACTIONS
from aileron_cli.examples.echo_server import EchoServer
from aileron_core.discovery import DaemonInfo

PASSPHRASE = "passphrase of the page's human 91d2"


def mint(info: DaemonInfo, approval: str | None = None) -> dict[str, Any]:
    """A login link, minted by the human (the master token over the Unix socket)."""
    with admin_http(info) as admin:
        answer = admin.post("ui/links", json={"approval": approval})
    assert answer.status_code == 201, answer.text
    link: dict[str, Any] = answer.json()
    return link


def browser(info: DaemonInfo, host: str = "127.0.0.1") -> httpx.Client:
    """A client that behaves as the page does: same-origin, cookies kept, no redirects
    followed (the tests look at them)."""
    port = httpx.URL(info.url).port
    return httpx.Client(
        base_url=f"http://{host}:{port}",
        headers={"Origin": f"http://{host}:{port}"},
        follow_redirects=False,
        timeout=30,
    )


def page_key(login: httpx.Response) -> str:
    """The page key a login hands over: the redirect's fragment ``#k=KEY``."""
    location = login.headers["location"]
    _, _, fragment = location.partition("#")
    assert fragment.startswith("k="), location
    return fragment.removeprefix("k=")


@contextmanager
def logged_in(info: DaemonInfo) -> Iterator[tuple[httpx.Client, str]]:
    """A browser logged in through a fresh link that sends the page key with every request,
    as the page does, and that key."""
    with browser(info) as page:
        login = page.get(httpx.URL(mint(info)["url"]).raw_path.decode())
        assert login.status_code == 303, login.text
        key = page_key(login)
        page.headers[PAGE_KEY_HEADER] = key
        yield page, key


@contextmanager
def armed_daemon(tmp_path: Path) -> Iterator[tuple[DaemonInfo, EchoServer, str]]:
    """A daemon (auto-spawned by `vault init`) with an echo connector, the approval-gated
    action echo-careful, its binding and an agent session; yields the daemon, the upstream
    and the session's token. The caller stops the daemon."""
    import os

    from aileron_core.discovery import read_daemon_info
    from aileron_core.paths import Layout

    env = dict(os.environ, AILERON_VAULT_PASSPHRASE=PASSPHRASE)
    with EchoServer(SECRET) as echo:
        spec = tmp_path / "echo.json"
        spec.write_text(json.dumps(echo_spec(echo.host)))
        steps = [
            aileron("vault", "init", env=env),  # auto-spawns the daemon
            aileron("connector", "install", str(spec)),
            aileron("action", "install", str(ACTIONS / "echo-careful.md")),
            aileron("binding", "add", "token/echo/default", stdin=SECRET),
        ]
        assert [s.returncode for s in steps] == [0] * 4, [s.stderr for s in steps]
        info = read_daemon_info(Layout(Path(os.environ["AILERON_HOME"])).daemon_json)
        assert info is not None
        with admin_http(info) as admin:
            session = admin.post("sessions", json={"agent": "codex", "working_dir": "/"})
        assert session.status_code == 201, session.text
        yield info, echo, session.json()["token"]


def ask(info: DaemonInfo, token: str, message: str) -> str:
    """The agent asks to run echo-careful: a pending approval's id."""
    answer = httpx.post(
        f"{info.api_url}/actions/echo-careful/run",
        json={"args": {"message": message}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    approval: str = answer.json()["approval_id"]
    return approval
