"""Authority by process (SPEC §16, ADR 0014): a host-launched agent cannot act as the human.

A real `aileron launch` runs a hostile stand-in agent against a real daemon (auto-spawned by a
CLI that had the passphrase in its environment) and a real upstream server. The agent tries
what an agent running as the user can: the CLI, the master token from daemon.json over TCP
and over the Unix socket, and a detached grandchild that tries again later.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from actions.support import SECRET, echo_spec
from helpers import aileron, kill_daemon, script
from launch.support import TRAPS, launch_env, read_record, standin, start_launch, wait_for

from aileron_cli.examples import ACTIONS
from aileron_cli.examples.echo_server import EchoServer
from aileron_core.client import DaemonClient
from aileron_core.discovery import DaemonInfo, pid_alive, read_daemon_info
from aileron_core.paths import Layout

pytestmark = pytest.mark.slow

PASSPHRASE = "passphrase of the human 7c1e"

# The hostile agent. It knows what any process of the user knows: $HOME, and so daemon.json.
HOSTILE = r"""
record()
import http.client, socket, subprocess, urllib.error, urllib.request
out = {"sid": os.getsid(0)}
home = os.path.join(os.environ["HOME"], ".aileron")
info = json.load(open(os.path.join(home, "daemon.json")))
token = os.environ["AILERON_TOKEN"]

def call(url, method="POST", body=None, bearer=token):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": "Bearer " + bearer, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")

class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(info["socket"])

def over_socket(path, body):
    connection = Unix("localhost", timeout=10)
    connection.request("POST", "/v1" + path, body=json.dumps(body), headers={
        "Authorization": "Bearer " + info["token"], "Content-Type": "application/json"})
    answer = connection.getresponse()
    return answer.status, json.loads(answer.read() or b"null")

status, pending = call(os.environ["AILERON_URL"] + "/actions/echo-careful/run",
                       body={"args": {"message": "from the agent"}})
out["run"] = [status, pending]
approval = pending["approval_id"]
decide = "/approvals/" + approval + "/decide"

cli = subprocess.run([os.environ["STANDIN_CLI"], "approval", "approve", approval, "--yes"],
                     env=dict(os.environ, AILERON_HOME=home), capture_output=True, text=True)
out["cli"] = [cli.returncode, cli.stderr]
out["tcp"] = call(info["url"] + "/v1" + decide, body={"approved": True}, bearer=info["token"])
out["socket"] = over_socket(decide, {"approved": True})

child = os.fork()
if child == 0:
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    time.sleep(2)
    result = {"pid": os.getpid(), "sid": os.getsid(0)}
    try:
        result["socket"] = over_socket(decide, {"approved": True})
    except Exception as error:
        result["socket"] = repr(error)
    with open(os.environ["STANDIN_GRANDCHILD"] + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(os.environ["STANDIN_GRANDCHILD"] + ".tmp", os.environ["STANDIN_GRANDCHILD"])
    time.sleep(300)
    os._exit(0)
os.waitpid(child, 0)
deadline = time.monotonic() + 20
while not os.path.exists(os.environ["STANDIN_GRANDCHILD"]) and time.monotonic() < deadline:
    time.sleep(0.05)

holders = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            if token.encode() in open(f"/proc/{pid}/cmdline", "rb").read():
                holders.append(int(pid))
        except OSError:
            pass
out["cmdline_holders"] = holders
with open(os.environ["STANDIN_OUT"], "w") as f:
    json.dump(out, f)
sys.exit(0)
"""


@pytest.fixture
def armed(
    layout: Layout, tmp_path: Path
) -> Iterator[tuple[DaemonInfo, EchoServer, dict[str, str]]]:
    """A daemon auto-spawned by a CLI holding the passphrase, an echo connector, the
    approval-gated action echo-careful and its binding."""
    env = dict(os.environ, AILERON_VAULT_PASSPHRASE=PASSPHRASE)
    with EchoServer(SECRET) as echo:
        spec = tmp_path / "echo.json"
        spec.write_text(json.dumps(echo_spec(echo.host)))
        try:
            steps = [
                aileron("vault", "init", env=env),  # auto-spawns the daemon
                aileron("connector", "install", str(spec)),
                aileron("action", "install", str(ACTIONS / "echo-careful.md")),
                aileron("binding", "add", "token/echo/default", stdin=SECRET),
            ]
            assert [s.returncode for s in steps] == [0] * 4, [s.stderr for s in steps]
            info = read_daemon_info(layout.daemon_json)
            assert info is not None
            yield info, echo, env
        finally:
            kill_daemon(layout)


def test_agent_cannot_approve_its_own_request(
    armed: tuple[DaemonInfo, EchoServer, dict[str, str]], layout: Layout, tmp_path: Path
) -> None:
    """The agent's CLI approval, its raw master-token calls (TCP and the socket) and a
    detached setsid grandchild's later call are all refused: the approval stays pending,
    the upstream gets nothing, the grandchild dies with the session, and the human's own
    `approval approve --yes` then works. No passphrase or master token in the agent's
    environment or the daemon's, and no session token in any process's command line."""
    info, echo, env = armed
    bindir, record = tmp_path / "bin", tmp_path / "record.json"
    standin(bindir, "codex", HOSTILE)
    out, grandchild = tmp_path / "out.json", tmp_path / "grandchild.json"
    launch = subprocess.run(
        [script("aileron"), "launch", "codex"],
        env=launch_env(
            bindir,
            record,
            AILERON_VAULT_PASSPHRASE=PASSPHRASE,
            STANDIN_CLI=script("aileron"),
            STANDIN_OUT=str(out),
            STANDIN_GRANDCHILD=str(grandchild),
        ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert launch.returncode == 0, launch.stderr
    seen: dict[str, Any] = json.loads(out.read_text())
    assert seen["run"][0] == 202
    approval_id = seen["run"][1]["approval_id"]
    assert seen["cli"][0] == 1 and "belongs to an agent session" in seen["cli"][1]
    assert seen["tcp"][0] == 403
    assert seen["tcp"][1]["error"]["code"] == "master_token_needs_socket"
    assert seen["socket"][0] == 403
    assert seen["socket"][1]["error"]["code"] == "agent_process_refused"
    late: dict[str, Any] = json.loads(grandchild.read_text())
    assert late["sid"] != seen["sid"]  # it really left the agent's session (setsid)
    assert late["socket"][0] == 403
    assert late["socket"][1]["error"]["code"] == "agent_process_refused"
    assert not pid_alive(late["pid"])  # ended with the session
    assert "ended 1 process(es) the agent left running" in launch.stderr
    assert seen["cmdline_holders"] == []
    assert echo.seen == []

    with DaemonClient.for_daemon(info) as client:
        assert client.get(f"approvals/{approval_id}")["status"] == "pending"
    refusals = [
        r for r in _audit(layout) if r["type"] == "auth.refused" and r["payload"].get("process")
    ]
    assert len(refusals) >= 3
    agent_env = read_record(record)["env"]
    assert {r["session_id"] for r in refusals} == {agent_env["AILERON_SESSION_ID"]}
    assert late["pid"] in {r["payload"]["process"]["pid"] for r in refusals}

    approved = aileron("approval", "approve", approval_id, "--yes")
    assert approved.returncode == 0, approved.stderr
    assert [json.loads(s.body)["message"] for s in echo.seen] == ["from the agent"]

    daemon_env = Path(f"/proc/{info.pid}/environ").read_bytes()
    for secret in (PASSPHRASE, info.token):
        assert not any(secret in value for value in agent_env.values())
        assert secret.encode() not in daemon_env
    assert not any(
        name.startswith("AILERON_")
        for name in agent_env
        if name not in {"AILERON_URL", "AILERON_TOKEN", "AILERON_SESSION_ID"}
    )


def test_killing_the_launcher_ends_the_session(
    armed: tuple[DaemonInfo, EchoServer, dict[str, str]], tmp_path: Path
) -> None:
    """kill -9 of `aileron launch` while its agent runs: within 2 s the session token gets 401
    on actions and on the gateway, the session shows as ended with the reason, and the
    orphaned agent is ended by the daemon."""
    info, _echo, _env = armed
    bindir, record = tmp_path / "bin", tmp_path / "record.json"
    standin(bindir, "codex", TRAPS)
    launcher = start_launch("codex", env=launch_env(bindir, record), cwd=tmp_path)
    try:
        wait_for(record, launcher)
        agent_env = read_record(record)["env"]
        token, url = agent_env["AILERON_TOKEN"], agent_env["AILERON_URL"]
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{url}/actions", headers=headers).status_code == 200
        agent_pid = _child_of(launcher.pid)
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait(timeout=10)
        killed_at = time.monotonic()
        while httpx.get(f"{url}/actions", headers=headers).status_code != 401:
            assert time.monotonic() - killed_at < 2.0, "the session token still works"
            time.sleep(0.02)
        gateway = httpx.post(
            f"{url}/gateway/openai/v1/chat/completions", headers=headers, json={"model": "m"}
        )
        assert gateway.status_code == 401
        assert time.monotonic() - killed_at < 2.0
        shown = aileron("sessions", "show", agent_env["AILERON_SESSION_ID"], "--json")
        session = json.loads(shown.stdout)
        assert (session["state"], session["end_reason"]) == ("ended", "launcher exited")
        deadline = time.monotonic() + 5
        while pid_alive(agent_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(agent_pid)
    finally:
        if launcher.poll() is None:
            launcher.kill()
        launcher.communicate(timeout=10)


REGISTER_AND_EXIT = """
import json, sys
from pathlib import Path
from aileron_core.client import DaemonClient
from aileron_core.discovery import read_daemon_info
info = read_daemon_info(Path(sys.argv[1]))
print(json.dumps(DaemonClient.for_daemon(info).post("sessions", json.loads(sys.argv[2]))))
"""


def _child_of(pid: int) -> int:
    """The one child process of ``pid`` (the agent the launcher started)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def _audit(layout: Layout) -> list[dict[str, Any]]:
    return [json.loads(line) for line in layout.audit.read_text().splitlines()]


def test_a_launcher_that_exits_without_ending_its_session_ends_it(layout: Layout) -> None:
    """A contained session whose launcher exits right after registering it (never calling
    `end`) is ended by the daemon with the reason, not left running."""
    done = aileron("status")
    assert done.returncode == 0, done.stderr
    info = read_daemon_info(layout.daemon_json)
    assert info is not None
    try:
        body = json.dumps({"agent": "codex", "working_dir": "/tmp", "contain": True})
        created = subprocess.run(
            [script("python"), "-c", REGISTER_AND_EXIT, str(layout.daemon_json), body],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        session_id = json.loads(created.stdout)["id"]
        deadline = time.monotonic() + 5
        with DaemonClient.for_daemon(info) as client:
            while client.get(f"sessions/{session_id}")["state"] == "running":
                assert time.monotonic() < deadline, "the session outlived its launcher"
                time.sleep(0.05)
            session = client.get(f"sessions/{session_id}")
        assert (session["state"], session["end_reason"]) == ("ended", "launcher exited")
    finally:
        kill_daemon(layout)
