"""An agent's process tree cannot get a login link (issue #20 acceptance 4, ADR 0014): the
master token from a process inside a live session's tree is refused on ``POST /v1/ui/links``,
audited, and mints nothing; and the page's own endpoints take no token at all."""

from __future__ import annotations

import os
from typing import Any

from fastapi.testclient import TestClient

from aileron_cli.daemon.access.peers import PEER_SCOPE_KEY, ConnectionPeer
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
