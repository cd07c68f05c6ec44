"""`aileron launch --sandbox=podman` end to end: real podman, a real daemon, a real action.

The agent in the image is a stand-in (tests/sandbox/images/standin-agent) that runs the
test's ``agent.sh`` from the workspace, so each test decides what "the agent" does inside the
container: call a tool through its shim, dump its environment and process table, exit with a
chosen code.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from actions.support import SECRET, echo_spec
from helpers import aileron, script
from launch.support import only_session

from aileron_cli.examples import ACTIONS
from aileron_cli.examples.echo_server import EchoServer
from aileron_cli.sandbox import bridge
from aileron_cli.sandbox.instructions import agent_arguments
from aileron_core.client import DaemonClient
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

pytestmark = pytest.mark.slow
PASSPHRASE = "sandbox test passphrase"

# What the stand-in agent does in the first test: everything it can see goes to out/.
AGENT_SCRIPT = """\
set -u
out="$AILERON_WORKSPACE/out"
mkdir -p "$out"
env > "$out/env.txt"
for p in /proc/[0-9]*; do tr '\\000' ' ' < "$p/cmdline"; echo; done \\
  > "$out/cmdlines.txt" 2>/dev/null
cp "$AILERON_TOOLS_FILE" "$out/tools.txt"
cat /opt/aileron/bin/* > "$out/shims.txt"
tool=$(cut -f1 "$AILERON_TOOLS_FILE" | head -n 1)
"$tool" --help > "$out/help.txt" 2>&1
"$tool" echo-say --args '{"message": "from the container"}' \\
  > "$out/result.json" 2> "$out/result.err"
echo $? > "$out/result.rc"
printf '%s\\000' "$@" > "$out/args.txt"
exit 7
"""


def _make_workspace(path: Path) -> Path:
    """Create the agent's workspace; as root, owned by uid 1000 (Aileron never runs the agent
    as root: a root launch runs it as the workspace's owner, or 1000 for a root-owned one)."""
    path.mkdir()
    if os.geteuid() == 0:
        os.chown(path, 1000, 1000)
    return path


def _prepare_daemon(echo: EchoServer, tmp_path: Path) -> dict[str, str]:
    """A vault with the echo binding, the echo connector and the echo-say action installed."""
    env = dict(os.environ, AILERON_VAULT_PASSPHRASE=PASSPHRASE)
    spec = tmp_path / "echo.json"
    spec.write_text(json.dumps(echo_spec(echo.host)))
    steps = [
        aileron("vault", "init", env=env),
        aileron("connector", "install", str(spec), env=env),
        aileron("action", "install", str(ACTIONS / "echo-say.md"), env=env),
        aileron("binding", "add", "token/echo/default", stdin=SECRET + "\n", env=env),
    ]
    assert [s.returncode for s in steps] == [0] * len(steps), [s.stderr for s in steps]
    return env


def _launch(workspace: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script("aileron"), "launch", *args],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text().splitlines() if "=" in line)
    return {name: value for name, _, value in pairs}


def test_agent_in_podman_runs_an_action_through_its_shim(
    layout: Layout,
    real_daemon: DaemonInfo,
    echo: EchoServer,
    codex_image: str,
    tmp_path: Path,
) -> None:
    """The shim in the container runs the action on the host daemon through the bridge, the
    output comes back, the audit log records it under the session, the agent gets its tools
    instructions before the user's arguments, and its exit code is propagated."""
    env = _prepare_daemon(echo, tmp_path)
    workspace = tmp_path / "workspace"
    _make_workspace(workspace)
    (workspace / "agent.sh").write_text(AGENT_SCRIPT)
    done = _launch(workspace, env, "--sandbox=podman", "codex", "--", "--flag", "two words")
    assert done.returncode == 7, done.stderr
    out = workspace / "out"
    assert (out / "result.rc").read_text().strip() == "0", (out / "result.err").read_text()
    result = json.loads((out / "result.json").read_text())
    assert result["result"]["echo"] == "from the container"
    args = (out / "args.txt").read_text().split("\0")[:-1]
    assert args == [*agent_arguments("codex"), "--flag", "two words"]
    assert [json.loads(s.body)["message"] for s in echo.seen] == ["from the container"]
    assert echo.seen[0].headers["Authorization"] == f"Bearer {SECRET}"
    tools = (out / "tools.txt").read_text()
    assert tools == (
        "aileron-echo\tlocal://echo -- installed Aileron connector used by actions: echo-say\n"
    )
    assert "echo-say" in (out / "help.txt").read_text()

    session = only_session(real_daemon)
    assert session["state"] == "ended" and session["exit_code"] == 7
    assert session["sandbox"] == {"runtime": "podman", "image": codex_image}
    container_env = _env_file(out / "env.txt")
    assert container_env["AILERON_SESSION_ID"] == session["id"]
    assert container_env["AILERON_API_URL"] == bridge.API_URL == "http://127.0.0.1:4000/v1"
    assert container_env["HTTPS_PROXY"] == bridge.PROXY_URL
    assert container_env["AILERON_TOOLS_FILE"] == "/etc/aileron/tools.txt"
    assert "/opt/aileron/bin" in container_env["PATH"].split(":")
    with DaemonClient.for_daemon(real_daemon) as client:
        records = client.get("audit", session=session["id"], limit=100)
    kinds = [r["type"] for r in records]
    assert "execution.started" in kinds and "execution.succeeded" in kinds
    succeeded = next(r for r in records if r["type"] == "execution.succeeded")
    assert succeeded["session_id"] == session["id"] and succeeded["id"] == result["audit_id"]
    assert succeeded["actor"]["id"] == f"session:{session['id']}"


def test_container_holds_no_master_token_or_secret_and_its_token_dies(
    layout: Layout,
    real_daemon: DaemonInfo,
    echo: EchoServer,
    codex_image: str,
    tmp_path: Path,
) -> None:
    """Neither the master token nor the vault secret is in the container's env, process
    table, mounted files or image; the session token stops working when the session ends, and
    its sockets' folder is gone."""
    env = _prepare_daemon(echo, tmp_path)
    workspace = tmp_path / "workspace"
    _make_workspace(workspace)
    (workspace / "agent.sh").write_text(AGENT_SCRIPT)
    done = _launch(workspace, env, "--sandbox=podman", "codex")
    assert done.returncode == 7, done.stderr
    out = workspace / "out"
    seen = {
        name: (out / name).read_bytes()
        for name in ("env.txt", "cmdlines.txt", "tools.txt", "shims.txt", "result.json")
    }
    assert b"aileron-check" not in seen["cmdlines.txt"]  # the check ran in its own container
    # PID 1 is the init process running the entry: the bridge, then the agent.
    assert f"-- sh -c {bridge.ENTRY} {bridge.BRIDGE_FILE} codex".encode() in seen["cmdlines.txt"]
    processes = [line.split() for line in seen["cmdlines.txt"].splitlines()]
    bridges = [
        p
        for p in processes
        if p[:1] and p[0].endswith(b"node") and p[1:2] == [bridge.BRIDGE_FILE.encode()]
    ]
    assert len(bridges) == 1, processes  # the bridge, left running in the background
    for secret in (real_daemon.token, SECRET):
        leaks = [name for name, data in seen.items() if secret.encode() in data]
        assert leaks == [], f"{secret[:6]}… found in {leaks}"
    image = tmp_path / "image.tar"
    saved = subprocess.run(
        ["podman", "image", "save", "--quiet", "-o", str(image), codex_image],
        capture_output=True,
        text=True,
        check=False,
    )
    assert saved.returncode == 0, saved.stderr
    data = image.read_bytes()
    assert real_daemon.token.encode() not in data and SECRET.encode() not in data

    container_env = _env_file(out / "env.txt")
    token = container_env["AILERON_TOKEN"]
    assert token.startswith("ais_") and token != real_daemon.token
    headers = {"Authorization": f"Bearer {token}"}
    answer = httpx.get(f"{real_daemon.api_url}/actions", headers=headers, timeout=10)
    assert answer.status_code == 401
    assert not layout.run_dir(container_env["AILERON_SESSION_ID"]).exists()


@pytest.mark.parametrize(
    ("image_fixture", "check"),
    [("no_http_client_image", "http-client"), ("bare_base_image", "agent")],
)
def test_failed_check_stops_the_launch_before_the_agent_runs(
    request: pytest.FixtureRequest,
    real_daemon: DaemonInfo,
    image_fixture: str,
    check: str,
    tmp_path: Path,
) -> None:
    """An image without an HTTP client or without the agent fails its named check: exit 1,
    the agent never ran, the session ended with a null exit code."""
    image: str = request.getfixturevalue(image_fixture)
    workspace = tmp_path / "workspace"
    _make_workspace(workspace)
    (workspace / "agent.sh").write_text('touch "$AILERON_WORKSPACE/agent-ran"\n')
    done = _launch(workspace, dict(os.environ), "--sandbox=podman", "--image", image, "codex")
    assert done.returncode == 1, done.stderr
    assert f"sandbox check '{check}' failed" in done.stderr
    assert done.stderr.startswith("aileron: error: ") and done.stderr.count("\n") == 1
    assert not (workspace / "agent-ran").exists()
    session = only_session(real_daemon)
    assert session["state"] == "ended" and session["exit_code"] is None


@pytest.fixture
def bare_base_image(podman: None) -> str:
    """The Debian test base: it has curl and wget but no agent."""
    from sandbox.support import TEST_BASE

    return TEST_BASE


def test_sandbox_build_shows_progress_and_check_passes(
    codex_image_build: subprocess.CompletedProcess[str], codex_image: str, tmp_path: Path
) -> None:
    """`aileron sandbox build` streams the build's steps and prints the tag; `aileron sandbox
    check` then passes every check in that image."""
    assert codex_image_build.stdout.strip() == codex_image
    assert "STEP" in codex_image_build.stderr and "building" in codex_image_build.stderr
    checked = subprocess.run(
        [script("aileron"), "sandbox", "check", "codex", "--engine", "podman", "--json"],
        cwd=_make_workspace(tmp_path / "project"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["result"] == "ok" and report["image"] == codex_image


def test_missing_image_is_a_clear_error_before_any_session(layout: Layout, podman: None) -> None:
    """An --image the engine lacks stops the launch before a daemon or session, naming it."""
    done = aileron(
        "launch",
        "--sandbox=podman",
        "--sandbox-build=never",
        "--image",
        "localhost/aileron-no-such-image:1",
        "opencode",
    )
    assert done.returncode == 1
    assert "localhost/aileron-no-such-image:1" in done.stderr
    assert not layout.daemon_json.exists()


def test_sigterm_reaches_the_agent_in_its_container(
    layout: Layout, real_daemon: DaemonInfo, codex_image: str, tmp_path: Path
) -> None:
    """SIGTERM sent to `aileron launch` reaches the agent inside the container (it exits 7
    from its trap), and that exit code is the launch's and the session's."""
    workspace = tmp_path / "workspace"
    _make_workspace(workspace)
    (workspace / "agent.sh").write_text(
        "trap 'exit 7' TERM\ntouch \"$AILERON_WORKSPACE/ready\"\nsleep 120 &\nwait $!\nexit 1\n"
    )
    proc = subprocess.Popen(
        [script("aileron"), "launch", "--sandbox=podman", "codex"],
        cwd=workspace,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (workspace / "ready").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the agent never started"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 7, stderr
    session = only_session(real_daemon)
    assert session["state"] == "ended" and session["exit_code"] == 7


def test_the_terminal_passes_into_the_container(
    layout: Layout, real_daemon: DaemonInfo, codex_image: str, tmp_path: Path
) -> None:
    """Launched from a terminal, the agent in the container has a terminal too (and TERM)."""
    workspace = tmp_path / "workspace"
    _make_workspace(workspace)
    (workspace / "agent.sh").write_text(
        'if [ -t 0 ] && [ -t 1 ]; then echo "tty $TERM" > "$AILERON_WORKSPACE/tty.txt";'
        ' else echo "no tty" > "$AILERON_WORKSPACE/tty.txt"; fi\n'
    )
    controller, terminal = pty.openpty()
    errors = tmp_path / "stderr.txt"
    try:
        with errors.open("wb") as stderr:
            proc = subprocess.Popen(
                [script("aileron"), "launch", "--sandbox=podman", "codex"],
                cwd=workspace,
                stdin=terminal,
                stdout=terminal,
                stderr=stderr,
                env=dict(os.environ, TERM="xterm-256color"),
                start_new_session=True,
            )
        os.close(terminal)
        output = b""
        while proc.poll() is None or select.select([controller], [], [], 0)[0]:
            if select.select([controller], [], [], 0.2)[0]:
                try:
                    output += os.read(controller, 65536)
                except OSError:
                    break
        assert proc.wait(timeout=120) == 0, (errors.read_text(), output)
    finally:
        os.close(controller)
    assert (workspace / "tty.txt").read_text() == "tty xterm-256color\n"
