"""Per-session listeners: a sandboxed agent's own socket, which admits only its session's token."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from actions.support import SECRET, echo_spec, manifest
from fastapi.testclient import TestClient
from helpers import admin_http, aileron

from aileron_cli.daemon.daemon import DaemonConfig, create_app
from aileron_cli.examples.echo_server import EchoServer
from aileron_core.__about__ import __version__
from aileron_core.discovery import DaemonInfo, pid_alive
from aileron_core.paths import Layout


@dataclass
class Opened:
    """A real daemon with one running session that has a listener on 127.0.0.1."""

    info: DaemonInfo
    admin: httpx.Client
    session_id: str
    token: str
    listener: dict[str, object]

    @property
    def url(self) -> str:
        return str(self.listener["url"])

    def agent(self) -> httpx.Client:
        """A fresh client for the listener (its own connections), with no token."""
        return httpx.Client(base_url=self.url + "/", timeout=10)

    def new_session(self) -> dict[str, str]:
        created = self.admin.post("sessions", json={"agent": "codex", "working_dir": "/w"})
        assert created.status_code == 201, created.text
        session: dict[str, str] = created.json()
        return session


@pytest.fixture
def opened(real_daemon: DaemonInfo) -> Iterator[Opened]:
    """A real daemon, a running session, and its listener on 127.0.0.1."""
    with admin_http(real_daemon) as admin:
        created = admin.post("sessions", json={"agent": "codex", "working_dir": "/w"})
        session = created.json()
        answer = admin.post(f"sessions/{session['id']}/listener", json={"host": "127.0.0.1"})
        assert answer.status_code == 201, answer.text
        yield Opened(real_daemon, admin, session["id"], session["token"], answer.json())


def _connects(url: str) -> bool:
    """Whether a new connection to ``url`` is accepted (a fresh client, no pooling)."""
    try:
        with httpx.Client(timeout=5) as client:
            client.get(url + "/health")
    except httpx.ConnectError:
        return False
    return True


def _audit(layout: Layout) -> list[dict[str, object]]:
    return [json.loads(line) for line in layout.audit.read_text().splitlines()]


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def test_open_answers_its_own_url_and_is_audited(opened: Opened, layout: Layout) -> None:
    """Opening gives 201 with a new port on the host and `/v1` url, audited with host and port."""
    listener = opened.listener
    assert listener["session_id"] == opened.session_id
    assert listener["host"] == "127.0.0.1"
    assert isinstance(listener["port"], int) and listener["port"] > 0
    assert opened.url == f"http://127.0.0.1:{listener['port']}/v1"
    assert opened.url != opened.info.api_url
    shown = opened.admin.get(f"sessions/{opened.session_id}").json()
    assert shown["listener"] == {"host": "127.0.0.1", "port": listener["port"], "socket": None}
    records = [r for r in _audit(layout) if r["type"] == "session.listener_opened"]
    assert [(r["session_id"], r["payload"]) for r in records] == [
        (opened.session_id, {"host": "127.0.0.1", "port": listener["port"]})
    ]
    assert opened.token not in layout.audit.read_text()


def test_session_token_lists_and_runs_actions_through_the_listener(
    opened: Opened, layout: Layout
) -> None:
    """Health needs no token; the session's token lists and runs an action, audited as its own."""
    with EchoServer(SECRET) as echo:
        admin = opened.admin
        assert admin.post("vault/init", json={"passphrase": "pw"}).status_code == 201
        assert admin.post("connectors", json={"spec": echo_spec(echo.host)}).status_code == 201
        assert admin.post("actions", json={"manifest": manifest("echo-say")}).status_code == 201
        bound = admin.post("bindings", json={"name": "token/echo/default", "value": SECRET})
        assert bound.status_code == 201, bound.text
        with opened.agent() as agent:
            health = agent.get("health")
            assert health.status_code == 200 and health.json()["service"] == "aileron"
            mine = {"Authorization": f"Bearer {opened.token}"}
            listed = agent.get("actions", headers=mine)
            assert listed.status_code == 200, listed.text
            assert [a["name"] for a in listed.json()["actions"]] == ["echo-say"]
            ran = agent.post(
                "actions/echo-say/run",
                json={"args": {"message": "from the box"}},
                headers={**mine, "X-Aileron-Session-Id": opened.session_id},
            )
        assert ran.status_code == 200, ran.text
        assert ran.json()["result"] == {"echo": "from the box", "authorized": True}
        assert [json.loads(s.body) for s in echo.seen] == [{"message": "from the box"}]
    succeeded = [r for r in _audit(layout) if r["type"] == "execution.succeeded"]
    assert [(r["id"], r["session_id"]) for r in succeeded] == [
        (ran.json()["audit_id"], opened.session_id)
    ]


def test_master_token_is_refused_in_every_header(opened: Opened) -> None:
    """The master token is 403 master_token_refused as Bearer, x-api-key or the session header."""
    master = opened.info.token
    with opened.agent() as agent:
        for headers in (
            {"Authorization": f"Bearer {master}"},
            {"x-api-key": master},
            {"X-Aileron-Session-Token": master},
            # beside the session's own token, and on the unauthenticated route too
            {"Authorization": f"Bearer {opened.token}", "x-api-key": master},
        ):
            for path in ("actions", "status", "health"):
                answer = agent.get(path, headers=headers)
                assert answer.status_code == 403, (headers.keys(), path, answer.text)
                assert answer.json()["error"]["code"] == "master_token_refused"
                assert master not in answer.text
        # the master token cannot even ask for the listener of its own session here
        again = agent.post(
            f"sessions/{opened.session_id}/listener",
            json={"host": "127.0.0.1"},
            headers={"Authorization": f"Bearer {master}"},
        )
        assert again.status_code == 403
    assert opened.admin.get("status").status_code == 200  # the Unix socket still takes it


def test_other_sessions_token_is_refused_and_no_token_is_401(opened: Opened) -> None:
    """Another session's token is 403 forbidden; no token or an unknown one is the usual 401."""
    other = opened.new_session()
    with opened.agent() as agent:
        for headers in (
            {"Authorization": f"Bearer {other['token']}"},
            {"x-api-key": other["token"]},
            {"Authorization": f"Bearer {opened.token}", "X-Aileron-Session-Token": other["token"]},
        ):
            answer = agent.get("actions", headers=headers)
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"]["code"] == "forbidden"
            assert opened.session_id in answer.json()["error"]["message"]
        assert agent.get("actions").status_code == 401
        unknown = agent.get("actions", headers={"Authorization": "Bearer ais_not-a-token"})
        assert unknown.status_code == 401
        assert unknown.json()["error"]["code"] == "unauthorized"
    assert opened.admin.get("actions", headers={"Authorization": ""}).status_code == 401


def test_same_host_returns_the_open_listener_and_another_host_is_409(opened: Opened) -> None:
    """Asking again for the same host is 200 with the same port; another host is 409."""
    path = f"sessions/{opened.session_id}/listener"
    again = opened.admin.post(path, json={"host": "127.0.0.1"})
    assert again.status_code == 200
    assert again.json() == opened.listener
    elsewhere = opened.admin.post(path, json={"host": "127.0.0.2"})
    assert elsewhere.status_code == 409
    assert elsewhere.json()["error"]["code"] == "listener_exists"
    assert "127.0.0.1" in elsewhere.json()["error"]["message"]


def test_a_session_token_cannot_open_a_listener(opened: Opened) -> None:
    """Opening a listener takes the master token: a session token gets 403 on the main socket."""
    other = opened.new_session()
    answer = opened.admin.post(
        f"sessions/{other['id']}/listener",
        json={"host": "127.0.0.1"},
        headers={"Authorization": f"Bearer {other['token']}"},
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"


def test_ending_the_session_closes_its_listener(opened: Opened) -> None:
    """After the session ends, its port refuses connections and the session shows no listener."""
    assert _connects(opened.url)
    ended = opened.admin.post(f"sessions/{opened.session_id}/end", json={"exit_code": 0})
    assert ended.status_code == 200
    assert ended.json()["listener"] is None
    assert not _connects(opened.url)
    reopen = opened.admin.post(f"sessions/{opened.session_id}/listener", json={"host": "127.0.0.1"})
    assert reopen.status_code == 409
    assert reopen.json()["error"]["code"] == "session_ended"
    assert opened.admin.get(f"sessions/{opened.session_id}").json()["listener"] is None


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:80", "300.1.1.1", "0.0.0.0", "::"])
def test_host_that_is_not_one_ip_address_is_422(opened: Opened, host: str) -> None:
    """A name, an address with a port, a bad literal or a wildcard is 422 invalid_request."""
    other = opened.new_session()
    answer = opened.admin.post(f"sessions/{other['id']}/listener", json={"host": host})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"]["fields"][0]["location"] == ["body", "host"]
    assert opened.admin.get(f"sessions/{other['id']}").json()["listener"] is None


def test_address_not_on_this_machine_is_a_bind_error(opened: Opened) -> None:
    """An address this machine does not have is 422 listener_bind_failed naming it and why."""
    other = opened.new_session()
    answer = opened.admin.post(f"sessions/{other['id']}/listener", json={"host": "192.0.2.1"})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "listener_bind_failed"
    assert "192.0.2.1" in error["message"]
    assert error["details"]["reason"] in error["message"]  # the errno's text
    # nothing was left half-open: the session can still get a listener
    retry = opened.admin.post(f"sessions/{other['id']}/listener", json={"host": "127.0.0.1"})
    assert retry.status_code == 201


def test_unknown_and_ended_sessions_get_no_listener(opened: Opened) -> None:
    """An unknown session is 404 session_not_found; an ended one is 409 session_ended."""
    unknown = opened.admin.post("sessions/01NOPE/listener", json={"host": "127.0.0.1"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "session_not_found"
    other = opened.new_session()
    opened.admin.post(f"sessions/{other['id']}/end", json={"exit_code": None})
    ended = opened.admin.post(f"sessions/{other['id']}/listener", json={"host": "127.0.0.1"})
    assert ended.status_code == 409
    assert ended.json()["error"]["code"] == "session_ended"


def test_daemon_stops_cleanly_with_an_open_listener(opened: Opened, layout: Layout) -> None:
    """`daemon stop` with a listener and a kept-alive connection on it exits and cleans up."""
    with opened.agent() as agent:
        assert agent.get("health").status_code == 200  # leaves a keep-alive connection open
        stopped = aileron("daemon", "stop", timeout=30)
        assert stopped.returncode == 0, stopped.stderr
        assert f"pid {opened.info.pid}" in stopped.stdout
    assert not layout.daemon_json.exists()
    assert not pid_alive(opened.info.pid) or _is_zombie(opened.info.pid)
    assert not _connects(opened.url)
    types = [r["type"] for r in _audit(layout)]
    assert types[-1] == "daemon.stopped"


def test_in_process_listener_serves_the_app_and_closes_with_it(layout: Layout) -> None:
    """In-process: the listener answers on a real port, gates tokens, and closes at shutdown."""
    master = "aim_listener-test-master-token"
    config = DaemonConfig(layout=layout, version=__version__, master_token=master)
    with TestClient(
        create_app(config),
        base_url="http://testserver/v1/",
        headers={"Authorization": f"Bearer {master}"},
    ) as api:
        session = api.post("sessions", json={"agent": "goose", "working_dir": "/"}).json()
        opened = api.post(f"sessions/{session['id']}/listener", json={"host": "127.0.0.1"})
        assert opened.status_code == 201, opened.text
        url = opened.json()["url"]
        with httpx.Client(base_url=url + "/", timeout=10) as agent:
            mine = agent.get("actions", headers={"Authorization": f"Bearer {session['token']}"})
            assert mine.status_code == 200, mine.text
            # any scheme: the gateway would forward a non-Bearer Authorization upstream
            basic = agent.get("health", headers={"Authorization": f"Basic {master}"})
            assert basic.status_code == 403
            assert basic.json()["error"]["code"] == "master_token_refused"
    assert not _connects(url)  # the app's lifespan ended: its listeners closed


def _unix_agent(path: str) -> httpx.Client:
    """A client that talks HTTP to the daemon over the Unix socket ``path``."""
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=path), base_url="http://aileron/v1/", timeout=10
    )


def test_unix_listener_is_a_private_socket_in_the_run_dir(
    real_daemon: DaemonInfo, layout: Layout
) -> None:
    """`unix: true` serves the session on run/<id>/api.sock (0600, folder 0700), audited."""
    with admin_http(real_daemon) as admin:
        session = admin.post("sessions", json={"agent": "codex", "working_dir": "/w"}).json()
        answer = admin.post(f"sessions/{session['id']}/listener", json={"unix": True})
        assert answer.status_code == 201, answer.text
        run_dir = layout.run_dir(session["id"])
        assert answer.json() == {
            "session_id": session["id"],
            "socket": str(run_dir / "api.sock"),
            "dir": str(run_dir),
        }
        sock = (run_dir / "api.sock").lstat()
        assert stat.S_ISSOCK(sock.st_mode) and stat.S_IMODE(sock.st_mode) == 0o600
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(run_dir.parent.stat().st_mode) == 0o700
        again = admin.post(f"sessions/{session['id']}/listener", json={"unix": True})
        assert again.status_code == 200 and again.json() == answer.json()
        tcp = admin.post(f"sessions/{session['id']}/listener", json={"host": "127.0.0.1"})
        assert tcp.status_code == 409 and tcp.json()["error"]["code"] == "listener_exists"
        shown = admin.get(f"sessions/{session['id']}").json()["listener"]
        assert shown == {"host": None, "port": None, "socket": str(run_dir / "api.sock")}
    records = [r for r in _audit(layout) if r["type"] == "session.listener_opened"]
    assert [r["payload"] for r in records] == [{"socket": str(run_dir / "api.sock")}]


def test_unix_listener_gates_tokens_and_runs_actions(real_daemon: DaemonInfo) -> None:
    """Over the Unix socket the session's token lists actions; master and other tokens are 403."""
    with admin_http(real_daemon) as admin:
        session = admin.post("sessions", json={"agent": "codex", "working_dir": "/w"}).json()
        other = admin.post("sessions", json={"agent": "codex", "working_dir": "/w"}).json()
        path = admin.post(f"sessions/{session['id']}/listener", json={"unix": True}).json()
        with _unix_agent(path["socket"]) as agent:
            assert agent.get("health").status_code == 200
            mine = agent.get("actions", headers={"Authorization": f"Bearer {session['token']}"})
            assert mine.status_code == 200, mine.text
            master = agent.get("actions", headers={"Authorization": f"Bearer {real_daemon.token}"})
            assert master.status_code == 403
            assert master.json()["error"]["code"] == "master_token_refused"
            foreign = agent.get("actions", headers={"Authorization": f"Bearer {other['token']}"})
            assert foreign.status_code == 403
            assert agent.get("actions").status_code == 401


def test_ending_the_session_removes_its_socket_and_folder(
    real_daemon: DaemonInfo, layout: Layout
) -> None:
    """When the session ends its socket is unlinked and its empty run folder removed."""
    with admin_http(real_daemon) as admin:
        session = admin.post("sessions", json={"agent": "codex", "working_dir": "/w"}).json()
        path = admin.post(f"sessions/{session['id']}/listener", json={"unix": True}).json()
        assert os.path.exists(path["socket"])
        ended = admin.post(f"sessions/{session['id']}/end", json={"exit_code": 0})
        assert ended.status_code == 200 and ended.json()["listener"] is None
    assert not os.path.exists(path["socket"])
    assert not layout.run_dir(session["id"]).exists()  # nothing left to connect to


@pytest.mark.parametrize("body", [{}, {"unix": False}, {"unix": True, "host": "127.0.0.1"}])
def test_listener_needs_exactly_one_of_host_and_unix(
    opened: Opened, body: dict[str, object]
) -> None:
    """Neither `host` nor `unix`, or both, is 422 invalid_request and opens nothing."""
    other = opened.new_session()
    answer = opened.admin.post(f"sessions/{other['id']}/listener", json=body)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_request"
    assert opened.admin.get(f"sessions/{other['id']}").json()["listener"] is None


def test_unix_listener_binds_in_a_home_too_deep_for_a_socket_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process: a run folder past sun_path's limit still gets its socket, which answers."""
    deep = tmp_path.joinpath(*(["d" * 30] * 4), "home")
    layout = Layout(deep)
    master = "aim_listener-test-master-token"
    config = DaemonConfig(layout=layout, version=__version__, master_token=master)
    with TestClient(
        create_app(config),
        base_url="http://testserver/v1/",
        headers={"Authorization": f"Bearer {master}"},
    ) as api:
        session = api.post("sessions", json={"agent": "goose", "working_dir": "/"}).json()
        opened = api.post(f"sessions/{session['id']}/listener", json={"unix": True})
        assert opened.status_code == 201, opened.text
        socket_path = opened.json()["socket"]
        assert len(os.fsencode(socket_path)) > 108
        assert stat.S_IMODE(os.lstat(socket_path).st_mode) == 0o600
        monkeypatch.chdir(layout.run_dir(session["id"]))  # a client needs a short path to connect
        with _unix_agent("api.sock") as agent:
            assert agent.get("health").status_code == 200
    assert not os.path.exists(socket_path)  # the app's lifespan ended: its listeners closed
