"""`aileron launch --sandbox=docker|auto` and `aileron sandbox build|check --engine docker`,
through a recording stand-in `docker` (issue #7, acceptance 5) and a real daemon.

The stand-in (:mod:`sandbox.fake_docker`) records every argv it is started with and the env
file it was handed; these tests assert the build, check and run vectors, what the container's
environment holds, and how the session ends.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import script
from sandbox.fake_docker import (
    DAEMON_DOWN,
    DOCKER_VERSION,
    IMAGE_PATH,
    Call,
    FakeDocker,
    install,
)
from sandbox.support import CONTAINER_VARS, PROXY_VARS, TEST_REPOSITORY

from aileron_cli.__about__ import __version__
from aileron_cli.sandbox import bridge, images
from aileron_cli.sandbox.container import (
    CHECK_SCRIPT,
    SHIM_DIR,
    TOOLS_FILE,
    WORKSPACE,
    container_user,
)
from aileron_cli.sandbox.engine import detect
from aileron_cli.sandbox.instructions import PROFILE_FILE, agent_arguments
from aileron_core.client import DaemonClient
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

TAG = images.default_tag("codex", {images.REPOSITORY_VAR: TEST_REPOSITORY})
# The container user: the invoking user's, or (launched as root) the workspace's owner, which
# is root here too, so uid 1000 (never uid 0).
USER = container_user(os.getuid(), os.getgid(), (os.getuid(), os.getgid()))
TMPFS = [
    "/tmp:rw,exec,nosuid,nodev,mode=1777",
    f"/home/agent:rw,exec,nosuid,nodev,mode=0700,uid={USER.replace(':', ',gid=')}",
]
MARKER = "AILERON_TEST_HOST_MARKER"
MARKER_VALUE = "host-only-value-4f1c"
CUSTOM_IMAGE = "registry.example/custom-codex:7"


@pytest.fixture(autouse=True)
def default_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """No base-image override or proxy from the developer's environment."""
    monkeypatch.delenv(images.BASE_IMAGE_VAR, raising=False)
    for name in images.PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake(tmp_path: Path) -> FakeDocker:
    """The stand-in docker, installed in a bin directory of its own."""
    return install(tmp_path / "fakebin")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The directory `aileron` is run from: the container's workspace."""
    path = tmp_path / "work dir"
    path.mkdir()
    return path.resolve()


def _aileron(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script("aileron"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _sessions(info: DaemonInfo) -> list[dict[str, Any]]:
    with DaemonClient.for_daemon(info) as client:
        found: list[dict[str, Any]] = client.get("sessions")
    return found


def _only_session(info: DaemonInfo) -> dict[str, Any]:
    found = _sessions(info)
    assert len(found) == 1, found
    return found[0]


def _values(args: list[str], option: str) -> list[str]:
    """Every value given to ``option`` in ``args``."""
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == option]


def _one(fake: FakeDocker, kind: str) -> Call:
    found = fake.of_kind(kind)
    assert len(found) == 1, [call.args for call in fake.calls()]
    return found[0]


def _kinds(fake: FakeDocker) -> list[str]:
    return [call.kind for call in fake.calls()]


@dataclass(frozen=True)
class Launched:
    done: subprocess.CompletedProcess[str]
    fake: FakeDocker
    info: DaemonInfo
    workdir: Path


@pytest.fixture
def launched(real_daemon: DaemonInfo, fake: FakeDocker, workdir: Path, layout: Layout) -> Launched:
    """`aileron launch --sandbox=docker codex -- --help` with the image missing, the agent
    exiting 9, and the stand-in probing the session's sockets while the agent "runs"."""
    env = fake.env(
        os.environ,
        missing=TAG,
        exit="9",
        daemon_json=str(layout.daemon_json),
    )
    env[MARKER] = MARKER_VALUE
    done = _aileron("launch", "--sandbox=docker", "codex", "--", "--help", env=env, cwd=workdir)
    return Launched(done, fake, real_daemon, workdir)


def test_launch_builds_checks_and_runs_in_that_order(launched: Launched) -> None:
    """A missing image is built, then checked, then the agent runs; the CLI exits with its code."""
    assert launched.done.returncode == 9, launched.done.stderr
    kinds = _kinds(launched.fake)
    assert kinds[0] == "version"
    assert kinds.count("build") == kinds.count("check") == kinds.count("run") == 1
    assert kinds.index("build") < kinds.index("check") < kinds.index("run") == len(kinds) - 1
    assert f"building {TAG} with docker from {images.NODE_BASE}" in launched.done.stderr
    assert "  #1 [internal] load build definition from Containerfile" in launched.done.stderr
    assert f"built {TAG}" in launched.done.stderr


def test_launch_build_argv(launched: Launched) -> None:
    """The build uses a context holding the shipped Containerfile, the versioned test-only tag
    and the codex build args (no refresh token: nothing to refresh)."""
    build = _one(launched.fake, "build")
    args = build.args
    assert build.argv[0] == str(launched.fake.path)
    assert args[:2] == ["buildx", "build"]
    (file,) = _values(args, "--file")
    assert Path(file).name == "Containerfile" and str(Path(file).parent) == args[-1]
    assert _values(args, "--tag") == [TAG] == [f"{TEST_REPOSITORY}/sandbox-codex:{__version__}"]
    build_args = dict(a.partition("=")[::2] for a in _values(args, "--build-arg"))
    assert build_args == {
        "BASE_IMAGE": images.NODE_BASE,
        "AGENT_INSTALL": images.RECIPES["codex"].install,
        "AGENT_COMMAND": "codex",
        "AGENT_REFRESH": "",
    }
    assert set(_values(args, "--label")) == {
        f"{images.LABEL_AGENT}=codex",
        f"{images.LABEL_VERSION}={__version__}",
        f"{images.LABEL_AGENT_VERSION}={images.UNPINNED}",
        f"{images.LABEL_REFRESH}=",
    }


def test_launch_check_and_run_argv(launched: Launched, layout: Layout) -> None:
    """Check and run share image, env file, volumes, user and hardening; the run is the exact
    docker vector: no network, the session's run folder mounted, the agent behind the bridge."""
    check, run = _one(launched.fake, "check"), _one(launched.fake, "run")
    session_id = _only_session(launched.info)["id"]
    env_file = run.run.one("--env-file")
    scratch = Path(env_file).parent
    volumes = [
        f"{launched.workdir}:{WORKSPACE}:rw",
        f"{scratch / 'tools.txt'}:{TOOLS_FILE}:ro",
        f"{scratch / 'bin'}:{SHIM_DIR}:ro",
        f"{scratch / 'profile.sh'}:{PROFILE_FILE}:ro",
        f"{layout.run_dir(session_id)}:{bridge.RUN_DIR}:rw",
        f"{scratch / 'bridge.js'}:{bridge.BRIDGE_FILE}:ro",
    ]
    assert run.argv[0] == check.argv[0] == str(launched.fake.path)
    assert run.args == [
        "run",
        "--rm",
        "--init",
        "--name",
        f"aileron-codex-{session_id.lower()}",
        "--network",
        "none",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--pids-limit",
        "512",
        "--memory",
        "4g",
        "--read-only",
        *(arg for tmpfs in TMPFS for arg in ("--tmpfs", tmpfs)),
        "--interactive",
        "--user",
        USER,
        "--env-file",
        env_file,
        *(arg for volume in volumes for arg in ("--volume", volume)),
        "--workdir",
        WORKSPACE,
        "--label",
        "io.aileron.agent=codex",
        "--label",
        f"io.aileron.session={session_id}",
        TAG,
        "sh",
        "-c",
        bridge.ENTRY,
        bridge.BRIDGE_FILE,
        "codex",
        *agent_arguments("codex"),
        "--help",
    ]
    validate = check.run
    assert {"--rm", "--init", "--read-only"} <= validate.flags
    assert not {"--interactive", "--tty"} & validate.flags
    assert "--add-host" not in validate.options
    assert validate.one("--network") == "none"
    assert validate.options["--tmpfs"] == TMPFS
    assert validate.one("--cap-drop") == "ALL"
    assert validate.one("--name") == f"aileron-codex-{session_id.lower()}-check"
    assert validate.one("--env-file") == env_file
    assert validate.options["--volume"] == volumes
    assert validate.one("--workdir") == WORKSPACE
    assert validate.one("--user") == USER
    assert validate.image == TAG
    assert validate.command == ["sh", "-c", CHECK_SCRIPT, "aileron-check", "codex"]


def test_launch_container_env_holds_the_session_and_nothing_of_the_host(
    launched: Launched,
) -> None:
    """The 0600 env file holds the session's coordinates and no host variable, then is removed."""
    check, run = _one(launched.fake, "check"), _one(launched.fake, "run")
    session_id = _only_session(launched.info)["id"]
    env = run.env()
    assert set(env) == CONTAINER_VARS | PROXY_VARS
    assert env["AILERON_API_URL"] == "http://127.0.0.1:4000/v1"
    assert env["HTTPS_PROXY"] == env["http_proxy"] == "http://127.0.0.1:3128"
    assert env["NO_PROXY"] == "127.0.0.1,localhost"
    assert env["AILERON_SESSION_ID"] == session_id
    assert env["AILERON_TOKEN"].startswith("ais_")
    assert env["AILERON_TOKEN"] != launched.info.token
    assert env["AILERON_TOOLS_FILE"] == TOOLS_FILE
    assert env["AILERON_WORKSPACE"] == WORKSPACE
    assert env["HOME"] == "/home/agent"
    assert env["PATH"] == f"{IMAGE_PATH}:{SHIM_DIR}"
    assert env["OPENAI_BASE_URL"] == f"{env['AILERON_API_URL']}/gateway/openai/v1"
    assert MARKER not in env
    assert run.env_file is not None and MARKER_VALUE not in run.env_file
    assert check.env_file == run.env_file
    assert run.extra["env_file_mode"] == 0o600
    assert not Path(run.run.one("--env-file")).parent.exists()


def test_launch_never_hands_out_the_master_token(launched: Launched) -> None:
    """No argv or env file holds the master token, the listener's socket refuses it, and the
    egress socket refuses a host nobody allowed."""
    master = launched.info.token
    for call in launched.fake.calls():
        assert not [arg for arg in call.argv if master in arg], call.kind
        assert master not in (call.env_file or ""), call.kind
    assert _one(launched.fake, "run").extra["probe"] == {
        "session": 200,
        "master": 403,
        "egress": 403,
    }


def test_launch_ends_the_session_with_the_agents_exit_code(launched: Launched) -> None:
    """The session is recorded with its sandbox and ended with the agent's code; its token dies."""
    session = _only_session(launched.info)
    assert session["agent"] == "codex"
    assert session["working_dir"] == str(launched.workdir)
    assert session["sandbox"] == {"runtime": "docker", "image": TAG}
    assert session["state"] == "ended"
    assert session["exit_code"] == 9
    assert session["listener"] is None
    token = _one(launched.fake, "run").env()["AILERON_TOKEN"]
    answer = httpx.get(
        f"{launched.info.api_url}/actions", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 401


def test_build_never_with_the_image_missing_stops_before_a_session(
    real_daemon: DaemonInfo, fake: FakeDocker, workdir: Path
) -> None:
    """--sandbox-build=never and no image: exit 1 naming the image and `aileron sandbox build`."""
    env = fake.env(os.environ, missing=TAG)
    done = _aileron(
        "launch", "--sandbox=docker", "--sandbox-build=never", "codex", env=env, cwd=workdir
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("aileron: error: ")
    assert TAG in done.stderr
    assert "aileron sandbox build codex" in done.stderr
    assert not {"build", "check", "run"} & set(_kinds(fake))
    assert _sessions(real_daemon) == []


@pytest.mark.parametrize("check", ["agent", "http-client"])
def test_failing_check_stops_before_the_agent(
    real_daemon: DaemonInfo, fake: FakeDocker, workdir: Path, check: str
) -> None:
    """A failed check exits 1 naming it; the agent never runs; the session ends with null."""
    env = fake.env(os.environ, check_fail=check, exit="9")
    done = _aileron("launch", "--sandbox=docker", "codex", env=env, cwd=workdir)
    assert done.returncode == 1, done.stderr
    assert f"aileron: error: sandbox check '{check}' failed: the stand-in fails" in done.stderr
    kinds = _kinds(fake)
    assert "check" in kinds
    assert "run" not in kinds
    assert "build" not in kinds
    session = _only_session(real_daemon)
    assert session["state"] == "ended"
    assert session["exit_code"] is None


def test_image_option_is_used_without_a_build(
    real_daemon: DaemonInfo, fake: FakeDocker, workdir: Path
) -> None:
    """--image X: nothing is built and X is the image of both the check and the run."""
    env = fake.env(os.environ, missing=TAG, exit="0")
    done = _aileron(
        "launch", "--sandbox=docker", "--image", CUSTOM_IMAGE, "codex", env=env, cwd=workdir
    )
    assert done.returncode == 0, done.stderr
    assert "build" not in _kinds(fake)
    assert _one(fake, "check").run.image == CUSTOM_IMAGE
    run = _one(fake, "run").run
    assert run.image == CUSTOM_IMAGE
    assert run.command[:5] == ["sh", "-c", bridge.ENTRY, bridge.BRIDGE_FILE, "codex"]
    assert _only_session(real_daemon)["sandbox"] == {"runtime": "docker", "image": CUSTOM_IMAGE}


def test_image_option_missing_stops_before_a_session(
    real_daemon: DaemonInfo, fake: FakeDocker, workdir: Path
) -> None:
    """--image naming an image docker does not have: exit 1 naming it, no session."""
    env = fake.env(os.environ, missing=CUSTOM_IMAGE)
    done = _aileron(
        "launch", "--sandbox=docker", "--image", CUSTOM_IMAGE, "codex", env=env, cwd=workdir
    )
    assert done.returncode == 1, done.stderr
    assert f"docker has no image {CUSTOM_IMAGE}" in done.stderr
    assert not {"build", "check", "run"} & set(_kinds(fake))
    assert _sessions(real_daemon) == []


def test_build_always_rebuilds_on_the_configured_base(
    real_daemon: DaemonInfo, fake: FakeDocker, workdir: Path
) -> None:
    """--sandbox-build=always rebuilds a present image, on $AILERON_SANDBOX_BASE_IMAGE."""
    env = fake.env(os.environ, exit="0")
    env[images.BASE_IMAGE_VAR] = "localhost/aileron-test-base:1"
    done = _aileron(
        "launch", "--sandbox=docker", "--sandbox-build=always", "codex", env=env, cwd=workdir
    )
    assert done.returncode == 0, done.stderr
    build = _one(fake, "build")
    assert "BASE_IMAGE=localhost/aileron-test-base:1" in _values(build.args, "--build-arg")
    assert _one(fake, "run").run.image == TAG


def test_auto_picks_a_working_docker(
    real_daemon: DaemonInfo, fake: FakeDocker, workdir: Path
) -> None:
    """--sandbox=auto with only a working docker on PATH runs the agent with docker."""
    env = fake.env(os.environ, path=str(fake.bindir), exit="9")
    done = _aileron("launch", "--sandbox=auto", "codex", env=env, cwd=workdir)
    assert done.returncode == 9, done.stderr
    kinds = _kinds(fake)
    assert kinds[0] == "version"
    assert "build" not in kinds
    assert kinds[-2:] == ["check", "run"]
    assert _one(fake, "run").run.one("--network") == "none"
    assert _only_session(real_daemon)["sandbox"] == {"runtime": "docker", "image": TAG}


def test_auto_with_no_working_engine_explains_both(
    real_daemon: DaemonInfo, fake: FakeDocker, workdir: Path
) -> None:
    """--sandbox=auto with no working engine exits 1 explaining both, before any session."""
    env = fake.env(os.environ, path=str(fake.bindir), broken="1")
    done = _aileron("launch", "--sandbox=auto", "codex", env=env, cwd=workdir)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("aileron: error: no container engine works here")
    assert f"docker: {DAEMON_DOWN}" in done.stderr
    assert "podman: not installed" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert _kinds(fake) == ["version"]
    assert _sessions(real_daemon) == []


def test_docker_that_does_not_answer_is_a_clear_error(
    real_daemon: DaemonInfo, fake: FakeDocker, workdir: Path
) -> None:
    """--sandbox=docker with a docker CLI but no engine: exit 1 saying why, no session."""
    env = fake.env(os.environ, broken="1")
    done = _aileron("launch", "--sandbox=docker", "codex", env=env, cwd=workdir)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(
        f"aileron: error: the docker engine does not work here (docker: {DAEMON_DOWN})"
    )
    assert "--sandbox=off" in done.stderr
    assert _kinds(fake) == ["version"]
    assert _sessions(real_daemon) == []


def test_detect_reads_the_engines_version(
    fake: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe finds docker on the given PATH and takes the server's version."""
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(fake.log))  # the probe passes os.environ on
    engine = detect("docker", fake.env(os.environ, path=str(fake.bindir)))
    assert (engine.name, engine.path, engine.version) == ("docker", str(fake.path), DOCKER_VERSION)
    assert engine.call == (str(fake.path),)
    assert not engine.rootless
    assert [call.args for call in fake.calls()] == [["version", "--format", "{{json .}}"]]


def test_sandbox_build_shows_progress_and_prints_the_tag(
    fake: FakeDocker, workdir: Path, layout: Layout
) -> None:
    """`sandbox build --base-image B` builds on B, streams progress, prints the tag."""
    env = fake.env(os.environ, missing=TAG)
    base = "localhost/debian-base:offline"
    done = _aileron(
        "sandbox",
        "build",
        "codex",
        "--engine",
        "docker",
        "--base-image",
        base,
        env=env,
        cwd=workdir,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{TAG}\n"
    build = _one(fake, "build")
    assert f"BASE_IMAGE={base}" in _values(build.args, "--build-arg")
    assert _values(build.args, "--tag") == [TAG]
    lines = done.stderr.splitlines()
    assert lines[0] == f"building {TAG} with docker from {base} …"
    assert f"  #2 [1/3] FROM {base}" in lines
    assert f"  #3 naming to docker.io/{TAG} done" in lines
    assert lines[-1] == f"built {TAG}"
    assert not layout.daemon_json.exists()


def test_sandbox_build_failure_says_what_failed(fake: FakeDocker, workdir: Path) -> None:
    """A failing build exits 1 naming the tag and base, after showing the build's output."""
    env = fake.env(os.environ, build_fail="1")
    done = _aileron("sandbox", "build", "codex", "--engine", "docker", env=env, cwd=workdir)
    assert done.returncode == 1, done.stderr
    assert "  ERROR: failed to solve" in done.stderr
    assert (
        f"aileron: error: building {TAG} from {images.NODE_BASE} failed (docker exited 1)"
        in done.stderr
    )


def test_docker_without_buildx_says_so_before_building(fake: FakeDocker, workdir: Path) -> None:
    """A docker with no buildx plugin cannot build: exit 1 naming the plugin, no build run."""
    env = fake.env(os.environ, no_buildx="1")
    done = _aileron("sandbox", "build", "codex", "--engine", "docker", env=env, cwd=workdir)
    assert done.returncode == 1, done.stderr
    assert "its buildx plugin is not installed" in done.stderr
    assert not [c for c in fake.calls() if c.argv[1:3] == ["buildx", "build"]]


def test_sandbox_check_reports_ok(fake: FakeDocker, workdir: Path, layout: Layout) -> None:
    """`sandbox check` runs the check container on the cwd and reports ok, with no daemon."""
    env = fake.env(os.environ)
    done = _aileron(
        "sandbox", "check", "codex", "--engine", "docker", "--json", env=env, cwd=workdir
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == {
        "engine": f"docker {DOCKER_VERSION}",
        "image": TAG,
        "workspace": f"{workdir} (writable)",
        "agent": "codex found",
        "http client": "curl or wget found",
        "user": USER,
        "capabilities": "all dropped, none added",
        "no-new-privileges": "on",
        "pids limit": "512",
        "memory": "4g",
        "root file system": f"read-only; writable: /tmp, /home/agent, {WORKSPACE}",
        "network": "none",
        "result": "ok",
    }
    check = _one(fake, "check").run
    assert check.image == TAG
    assert check.one("--network") == "none"
    assert check.options["--volume"][0] == f"{workdir}:{WORKSPACE}:rw"
    assert check.command == ["sh", "-c", CHECK_SCRIPT, "aileron-check", "codex"]
    assert "run" not in _kinds(fake)
    assert not layout.daemon_json.exists()


def test_sandbox_check_human_output(fake: FakeDocker, workdir: Path) -> None:
    """Without --json the report is printed as aligned fields, `result: ok` among them."""
    done = _aileron(
        "sandbox", "check", "codex", "--engine", "docker", env=fake.env(os.environ), cwd=workdir
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^result:\s+ok$", done.stdout, re.MULTILINE), done.stdout


def test_sandbox_check_failure_names_the_check(fake: FakeDocker, workdir: Path) -> None:
    """A failing check makes `aileron sandbox check` exit 1 naming the check."""
    env = fake.env(os.environ, check_fail="http-client")
    done = _aileron("sandbox", "check", "codex", "--engine", "docker", env=env, cwd=workdir)
    assert done.returncode == 1, done.stderr
    assert "aileron: error: sandbox check 'http-client' failed" in done.stderr
    assert "curl or wget" in done.stderr  # the check's hint


def test_sandbox_check_without_the_image_says_how_to_build_it(
    fake: FakeDocker, workdir: Path
) -> None:
    """`aileron sandbox check` never builds: a missing image is exit 1 pointing at the build."""
    env = fake.env(os.environ, missing=TAG)
    done = _aileron("sandbox", "check", "codex", "--engine", "docker", env=env, cwd=workdir)
    assert done.returncode == 1, done.stderr
    assert f"docker has no image {TAG}" in done.stderr
    assert "aileron sandbox build codex" in done.stderr
    assert not {"build", "check"} & set(_kinds(fake))


@pytest.mark.parametrize(
    "args",
    [
        ["launch", "--image", "X", "codex"],
        ["launch", "--sandbox-build=never", "codex"],
        ["launch", "--sandbox=bogus", "codex"],
        ["sandbox", "build", "codex", "--engine", "bogus"],
    ],
)
def test_usage_errors_exit_2(
    fake: FakeDocker, workdir: Path, layout: Layout, args: list[str]
) -> None:
    """Sandbox options that do not fit are usage errors (exit 2); nothing is started."""
    done = _aileron(*args, env=fake.env(os.environ), cwd=workdir)
    assert done.returncode == 2, done.stderr
    assert fake.calls() == []
    assert not layout.daemon_json.exists()
