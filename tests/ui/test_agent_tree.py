"""An agent's process tree cannot get a login link (issue #20 acceptance 4, ADR 0014): the
master token from a process inside a live session's tree is refused on ``POST /v1/ui/links``,
audited, and mints nothing; and the page's own endpoints take no token at all."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

import httpx
from fastapi.testclient import TestClient
from helpers import admin_http, master_headers
from ui.support import browser, mint

from aileron_cli.daemon.access.peers import PEER_SCOPE_KEY, ConnectionPeer
from aileron_cli.examples.echo_server import EchoServer
from aileron_core.discovery import DaemonInfo
from aileron_core.processes import ProcessRef


def _with_peer(app: Any, peer: ConnectionPeer) -> Any:
    """The app as the daemon's socket protocol serves it: every request names ``peer``."""

    async def named(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope[PEER_SCOPE_KEY] = peer
        await app(scope, receive, send)

    return named


def test_a_process_of_an_agents_tree_cannot_mint_a_link(api: TestClient) -> None:
    """The master token over the socket from below a session's launcher is 403
    agent_process_refused (audited with the process), and no link exists afterwards; the
    same request from outside every tree mints one."""
    session = api.post("sessions", json={"agent": "codex", "working_dir": "/"}).json()
    daemon = api.app.state.daemon  # type: ignore[attr-defined]
    launcher = ProcessRef.of(os.getppid())  # this test runs "below the launcher", as an agent
    assert launcher is not None
    daemon.gate.trees.add(launcher, session["id"])
    peer = ConnectionPeer("unix", os.getpid(), os.getuid())
    # Not entered: the api fixture's client runs the app's lifespan (the daemon) already.
    named = TestClient(_with_peer(api.app, peer), base_url=str(api.base_url))
    refused = named.post("ui/links", json={}, headers=api.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "agent_process_refused"
    assert daemon.ui_sessions.open_sessions == 0
    assert daemon.ui_sessions.unused_links == 0  # nothing minted
    records = api.get("audit").json()
    assert [r["type"] for r in records if r["type"].startswith("ui.")] == []
    [refusal] = [r for r in records if r["type"] == "auth.refused"]
    assert refusal["payload"]["process"]["pid"] == os.getpid()

    daemon.gate.trees = type(daemon.gate.trees)()  # the session's tree is gone
    minted = named.post("ui/links", json={}, headers=api.headers)
    assert minted.status_code == 201, minted.text
    assert [r["type"] for r in api.get("audit").json() if r["type"].startswith("ui.")] == [
        "ui.link_created"
    ]


def test_the_page_api_takes_no_token(api: TestClient) -> None:
    """A bearer token (the master's or a session's) opens nothing under /ui/api: only the
    page's cookie with its page key does."""
    session = api.post("sessions", json={"agent": "codex", "working_dir": "/"}).json()
    for token in (api.headers["Authorization"], f"Bearer {session['token']}"):
        answer = api.get(
            "http://testserver/ui/api/approvals",
            headers={"Authorization": token, "Host": "127.0.0.1:80"},
        )
        assert answer.status_code == 401


# A launcher of a contained session (over the Unix socket, as `aileron launch` registers
# itself), whose child — a process of the agent's tree — tries the one-time login link over
# TCP, as an agent that read it from the browser's command line would; the launcher keeps the
# session alive until the test says so on stdin.
LAUNCHER = r"""
import json, subprocess, sys
import httpx
socket_path, headers, api_url, login = sys.argv[1], json.loads(sys.argv[2]), *sys.argv[3:5]
admin = httpx.Client(base_url=api_url + "/", headers=headers,
                     transport=httpx.HTTPTransport(uds=socket_path), timeout=30)
created = admin.post("sessions", json={"agent": "codex", "working_dir": "/", "contain": True})
assert created.status_code == 201, created.text
session = created.json()["id"]
agent = subprocess.run(
    [sys.executable, "-c",
     "import sys, httpx; r = httpx.get(sys.argv[1], timeout=30); print(r.status_code, r.text)",
     login], capture_output=True, text=True, check=True)
print(json.dumps({"session": session, "agent": agent.stdout}), flush=True)
sys.stdin.readline()
admin.post(f"sessions/{session}/end", json={"exit_code": 0})
"""


def test_a_process_of_an_agents_tree_cannot_use_the_login_link(
    armed: tuple[DaemonInfo, EchoServer, str],
) -> None:
    """While a contained session lives, a process of its tree that has the one-time link (an
    agent reading the browser's command line) is refused at the page, audited, and the link
    stays good; the human's own process, outside every tree, then logs in with it."""
    info, _, _ = armed
    link = mint(info)
    argv = [sys.executable, "-c", LAUNCHER, str(info.socket), json.dumps(master_headers(info))]
    argv += [info.api_url, link["url"]]
    with subprocess.Popen(  # noqa: S603 - this interpreter with the test's own script
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as launcher:
        assert launcher.stdout is not None and launcher.stdin is not None
        try:
            report = json.loads(launcher.stdout.readline())
            assert report["agent"].startswith("403 agent_process_refused"), report
            with browser(info) as page:
                login = page.get(httpx.URL(link["url"]).raw_path.decode())
            assert login.status_code == 303, login.text  # not used up by the refused attempt
            assert "aileron_ui" in login.cookies
            with admin_http(info) as admin:
                records = admin.get("audit", params={"type": "auth.refused"}).json()
            [refusal] = [r for r in records if r["payload"].get("capability") == "ui"]
            assert refusal["session_id"] == report["session"]
            assert refusal["payload"]["process"]["pid"] != os.getpid()
            launcher.stdin.write("done\n")
            launcher.stdin.flush()
            assert launcher.wait(timeout=30) == 0
        finally:
            if launcher.poll() is None:
                launcher.kill()


def test_tcp_peer_pid_names_the_process_holding_the_client_end() -> None:
    """The caller of a loopback TCP connection is found through /proc: a child process that
    connects is named by its own pid, not this one's; an address that is not IPv4 is
    unknown."""
    from aileron_cli.daemon.access.peers import tcp_peer_pid

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = (
            "import socket, sys; s = socket.create_connection(('127.0.0.1', int(sys.argv[1])));"
            " sys.stdin.read()"
        )
        with subprocess.Popen(  # noqa: S603 - this interpreter with the test's own script
            [sys.executable, "-c", code, str(port)], stdin=subprocess.PIPE
        ) as child:
            connection, client = server.accept()
            with connection:
                assert tcp_peer_pid(client, ("127.0.0.1", port)) == child.pid
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=30)
    assert tcp_peer_pid(("::1", 5), ("::1", 6)) is None
