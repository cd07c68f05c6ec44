"""`aileron launch --sandbox=podman|docker` on the real engines (issue #18): the stand-in agent
runs as the workspace's owner (never root), runs its tool through a login shell (`bash -lc`,
the way codex runs commands, where Debian's /etc/profile resets PATH), and the action works.

docker is the real engine scripts/sandbox-setup starts (tests/sandbox/README.md); it cannot
build here (no buildx), so the image podman built is loaded into it under a test-only tag.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from actions.support import SECRET
from launch.support import only_session
from sandbox.support import REQUIRE_VAR, TEST_BASE
from sandbox.test_podman_launch import _launch, _prepare_daemon

from aileron_cli.examples.echo_server import EchoServer
from aileron_cli.sandbox.container import container_user
from aileron_core.client import DaemonClient
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

pytestmark = pytest.mark.slow
DOCKER_CODEX = "localhost/aileron-test-codex-docker:latest"
# The owner of the workspace: Aileron runs as root here, so the container user is this one.
OWNER = (4321, 4321)

# The stand-in agent: who it is, what a login shell's PATH holds, and the action run the way
# codex runs a command (`bash -lc`).
AGENT_SCRIPT = """\
set -u
out="$AILERON_WORKSPACE/out"
mkdir -p "$out"
id -u > "$out/uid"
id -g > "$out/gid"
bash -lc 'printf %s "$PATH"' > "$out/login-path"
tool=$(cut -f1 "$AILERON_TOOLS_FILE" | head -n 1)
bash -lc "$tool echo-say --args '{\\"message\\": \\"from a login shell\\"}'" \\
  > "$out/result.json" 2> "$out/result.err"
echo $? > "$out/result.rc"
exit 7
"""


def _docker_unavailable() -> str | None:
    """Why the real-docker tests cannot run here, or ``None``."""
    if shutil.which("docker") is None:
        return "docker is not installed (scripts/sandbox-setup installs docker.io)"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        return "dockerd does not answer (scripts/sandbox-setup starts it)"
    found = subprocess.run(
        ["docker", "image", "inspect", TEST_BASE], capture_output=True, text=True, check=False
    )
    if found.returncode != 0:
        return f"docker has no {TEST_BASE} (scripts/sandbox-setup loads it)"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """The real docker engine with the test base; skipped without it (failed under
    scripts/test, whose set-up starts it)."""
    reason = _docker_unavailable()
    if reason is None:
        return
    if os.environ.get(REQUIRE_VAR) == "1":
        pytest.fail(f"{REQUIRE_VAR}=1 but {reason}")
    pytest.skip(reason)


def _podman_id(image: str) -> str:
    done = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _docker_id(image: str) -> str:
    done = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip().removeprefix("sha256:")


@pytest.fixture(scope="session")
def docker_codex_image(docker_engine: None, codex_image: str) -> str:
    """The codex image podman built, in docker under a test-only tag (loaded only when docker
    does not hold that very image yet)."""
    wanted = _podman_id(codex_image)
    if _docker_id(DOCKER_CODEX) != wanted:
        with subprocess.Popen(["podman", "save", codex_image], stdout=subprocess.PIPE) as save:
            load = subprocess.run(
                ["docker", "load", "--quiet"], stdin=save.stdout, capture_output=True, text=True
            )
        assert save.returncode == 0 and load.returncode == 0, load.stderr
        loaded = load.stdout.strip().rpartition("Loaded image: ")[2]
        tagged = subprocess.run(
            ["docker", "tag", loaded, DOCKER_CODEX], capture_output=True, text=True
        )
        assert tagged.returncode == 0, tagged.stderr
        if loaded != DOCKER_CODEX:
            subprocess.run(["docker", "rmi", loaded], capture_output=True, check=False)
    assert _docker_id(DOCKER_CODEX) == wanted
    return DOCKER_CODEX


@pytest.fixture(params=["podman", "docker"])
def engine_image(request: pytest.FixtureRequest) -> tuple[str, str]:
    """``(engine, image)``: podman with its codex image, docker with the same one loaded."""
    fixture = "codex_image" if request.param == "podman" else "docker_codex_image"
    image: str = request.getfixturevalue(fixture)
    return request.param, image


def test_agent_runs_its_tool_from_a_login_shell_as_the_workspace_owner(
    layout: Layout,
    real_daemon: DaemonInfo,
    echo: EchoServer,
    engine_image: tuple[str, str],
    tmp_path: Path,
) -> None:
    """On each real engine: the agent is the workspace's owner (not root), a `bash -lc` finds
    the shim on PATH, the action runs on the host daemon and is audited under the session."""
    engine, image = engine_image
    env = _prepare_daemon(echo, tmp_path)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "agent.sh").write_text(AGENT_SCRIPT)
    os.chown(workspace, *OWNER)
    done = _launch(workspace, env, f"--sandbox={engine}", "--image", image, "codex")
    assert done.returncode == 7, done.stderr
    out = workspace / "out"

    expected = container_user(os.getuid(), os.getgid(), OWNER)
    assert f"{(out / 'uid').read_text().strip()}:{(out / 'gid').read_text().strip()}" == expected
    assert (out / "uid").read_text().strip() != "0"
    assert (out / "result.json").stat().st_uid == int(expected.partition(":")[0])
    assert "/opt/aileron/bin" in (out / "login-path").read_text().split(":")
    assert (out / "result.rc").read_text().strip() == "0", (out / "result.err").read_text()
    result = json.loads((out / "result.json").read_text())
    assert result["result"]["echo"] == "from a login shell"
    assert [json.loads(s.body)["message"] for s in echo.seen] == ["from a login shell"]
    assert echo.seen[0].headers["Authorization"] == f"Bearer {SECRET}"

    session = only_session(real_daemon)
    assert session["sandbox"] == {"runtime": engine, "image": image}
    assert session["state"] == "ended" and session["exit_code"] == 7
    with DaemonClient.for_daemon(real_daemon) as client:
        records = client.get("audit", session=session["id"], limit=100)
    succeeded = [r for r in records if r["type"] == "execution.succeeded"]
    assert [r["id"] for r in succeeded] == [result["audit_id"]]
    assert succeeded[0]["actor"]["id"] == f"session:{session['id']}"
