"""A passed pre-launch check is remembered (``aileron_cli.sandbox.check_cache``): the key that
names what the check proved, the cache file that is never trusted blindly, and the launches
through the recording stand-in docker (:mod:`sandbox.fake_docker`) with a real daemon.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import attrs
import pytest
from helpers import script
from sandbox.fake_docker import FakeDocker, install
from sandbox.support import TEST_REPOSITORY

from aileron_cli.sandbox import images
from aileron_cli.sandbox.check_cache import CheckCache, CheckKey, cache_path, check_key
from aileron_cli.sandbox.container import WORKSPACE, ContainerSpec, Mount, Tmpfs
from aileron_cli.sandbox.engine import Engine
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

TAG = images.default_tag("codex", {images.REPOSITORY_VAR: TEST_REPOSITORY})
ENGINE = Engine(name="docker", path="/usr/bin/docker", version="27.3.1")
IMAGE_ID = "sha256:" + "ab" * 32


def _spec(workspace: Path, scratch: str = "/tmp/aileron-sandbox-1") -> ContainerSpec:
    return ContainerSpec(
        image=TAG,
        command=("codex",),
        env_file=f"{scratch}/env",
        mounts=(
            Mount(str(workspace), WORKSPACE, read_only=False),
            Mount(f"{scratch}/tools.txt", "/etc/aileron/tools.txt"),
            Mount(f"{scratch}/bin", "/opt/aileron/bin"),
        ),
        network="none",
        name=f"aileron-codex-{scratch[-1]}",
        user="1000:1000",
        tmpfs=(Tmpfs("/tmp", "rw"),),  # noqa: S108 (the container's /tmp)
    )


def _key(workspace: Path, scratch: str = "/tmp/aileron-sandbox-1") -> CheckKey:
    key = check_key(ENGINE, IMAGE_ID, _spec(workspace, scratch), "codex")
    assert key is not None
    return key


def test_key_ignores_what_changes_on_every_launch(tmp_path: Path) -> None:
    """Two launches from one workspace differ only in their temporary files, container name
    and env file: the same key."""
    first = _key(tmp_path, scratch="/tmp/aileron-sandbox-1")
    second = _key(tmp_path, scratch="/tmp/aileron-sandbox-2")
    assert first == second and first.digest == second.digest


@pytest.mark.parametrize(
    "change",
    ["image", "engine", "workspace", "workspace-mode", "user", "mounts", "memory", "aileron"],
)
def test_key_changes_with_what_the_check_proved(tmp_path: Path, change: str) -> None:
    """Another image ID, engine version, workspace (or its mode), user, set of mounts, limit or
    Aileron version is another key: the check runs again."""
    workspace = tmp_path / "workspace"
    workspace.mkdir(mode=0o755)
    base = _key(workspace)
    spec = _spec(workspace)
    engine, image_id = ENGINE, IMAGE_ID
    if change == "image":
        image_id = "sha256:" + "cd" * 32
    elif change == "engine":
        engine = attrs.evolve(ENGINE, version="28.0.0")
    elif change == "workspace":
        other = tmp_path / "other"
        other.mkdir(mode=0o755)
        spec = _spec(other)
    elif change == "workspace-mode":
        workspace.chmod(0o555)
    elif change == "user":
        spec = attrs.evolve(spec, user="1001:1001")
    elif change == "mounts":
        spec = attrs.evolve(spec, mounts=(*spec.mounts, Mount("/srv/x", "/run/aileron")))
    elif change == "memory":
        spec = attrs.evolve(spec, memory="1g")
    key = check_key(engine, image_id, spec, "codex")
    if change == "aileron":
        key = attrs.evolve(base, aileron="0.0.0-other")
    assert key is not None and key.digest != base.digest


def test_no_key_without_an_image_id(tmp_path: Path) -> None:
    """An image the engine gave no ID for is never cached: its check always runs."""
    assert check_key(ENGINE, "", _spec(tmp_path), "codex") is None


def test_a_recorded_pass_is_found_again_from_a_fresh_read(tmp_path: Path) -> None:
    """A pass recorded in one process is found by the next read; the file is 0600 in a 0700
    folder; forgetting the image's passes removes it."""
    key = _key(tmp_path)
    CheckCache.load(tmp_path).record(key, TAG)
    path = cache_path(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    again = CheckCache.load(tmp_path)
    assert again.passed(key)
    again.forget(image_id=IMAGE_ID)
    assert not CheckCache.load(tmp_path).passed(key)


@pytest.mark.parametrize("damage", ["garbage", "wrong-format", "group-writable", "symlink"])
def test_a_file_not_to_trust_is_ignored_with_a_warning_and_rewritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """A cache file that is not JSON, not this format, writable by others or a symbolic link
    holds no pass (even one that matches), says so once, and the next pass replaces it."""
    key = _key(tmp_path)
    CheckCache.load(tmp_path).record(key, TAG)
    path = cache_path(tmp_path)
    if damage == "garbage":
        path.write_text("{not json")
    elif damage == "wrong-format":
        path.write_text(json.dumps({"format": 99, "passes": {key.digest: {}}}))
    elif damage == "group-writable":
        path.chmod(0o660)
    else:
        real = tmp_path / "elsewhere.json"
        real.write_bytes(path.read_bytes())
        real.chmod(0o600)
        path.unlink()
        path.symlink_to(real)
    checks = CheckCache.load(tmp_path)
    assert not checks.passed(key)
    assert capsys.readouterr().err.count(f"aileron: warning: ignoring {path}") == 1
    checks.record(key, TAG)
    assert not path.is_symlink() and path.stat().st_mode & 0o777 == 0o600
    assert CheckCache.load(tmp_path).passed(key)
    assert capsys.readouterr().err == ""


# --- launches through the stand-in docker ---


@pytest.fixture
def fake(tmp_path: Path) -> FakeDocker:
    """The stand-in docker, installed in a bin directory of its own."""
    return install(tmp_path / "fakebin")


def _workspace(path: Path) -> Path:
    path.mkdir()
    return path.resolve()


def _launch(
    fake: FakeDocker, workspace: Path, *, exit_code: str = "0"
) -> subprocess.CompletedProcess[str]:
    env = fake.env(os.environ, exit=exit_code)
    env.pop(images.BASE_IMAGE_VAR, None)
    return subprocess.run(
        [script("aileron"), "launch", "--sandbox=docker", "codex"],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _containers(fake: FakeDocker) -> list[str]:
    """``check`` or ``run`` for every container the stand-in was asked to run, in order."""
    return [call.kind for call in fake.calls() if call.kind in ("check", "run")]


def test_second_launch_of_the_same_image_runs_only_the_agent(
    real_daemon: DaemonInfo, fake: FakeDocker, tmp_path: Path, layout: Layout
) -> None:
    """The first launch runs the check container and the agent's; the second, same image and
    workspace, only the agent's."""
    workspace = _workspace(tmp_path / "work")
    assert _launch(fake, workspace).returncode == 0
    assert _containers(fake) == ["check", "run"]
    done = _launch(fake, workspace)
    assert done.returncode == 0, done.stderr
    assert _containers(fake) == ["check", "run", "run"]
    assert cache_path(layout.home).stat().st_mode & 0o777 == 0o600


def test_another_workspace_is_checked_again(
    real_daemon: DaemonInfo, fake: FakeDocker, tmp_path: Path
) -> None:
    """A pass recorded for one workspace mount does not skip the check of another."""
    assert _launch(fake, _workspace(tmp_path / "one")).returncode == 0
    assert _launch(fake, _workspace(tmp_path / "two")).returncode == 0
    assert _containers(fake) == ["check", "run", "check", "run"]


def test_sandbox_check_makes_the_next_launch_check_again(
    real_daemon: DaemonInfo, fake: FakeDocker, tmp_path: Path
) -> None:
    """`aileron sandbox check` runs the check and forgets the image's recorded passes."""
    workspace = _workspace(tmp_path / "work")
    assert _launch(fake, workspace).returncode == 0
    checked = subprocess.run(
        [script("aileron"), "sandbox", "check", "codex", "--engine", "docker"],
        cwd=workspace,
        env=fake.env(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert _launch(fake, workspace).returncode == 0
    assert _containers(fake) == ["check", "run", "check", "check", "run"]


def test_an_agent_that_cannot_start_after_a_skipped_check_is_checked_next_time(
    real_daemon: DaemonInfo, fake: FakeDocker, tmp_path: Path
) -> None:
    """When the check was skipped and the container exits 127 (command not found), the launch
    says so and the pass is forgotten: the next launch checks again."""
    workspace = _workspace(tmp_path / "work")
    assert _launch(fake, workspace).returncode == 0
    failed = _launch(fake, workspace, exit_code="127")
    assert failed.returncode == 127
    assert "the next launch runs it again" in failed.stderr
    assert _launch(fake, workspace).returncode == 0
    assert _containers(fake) == ["check", "run", "run", "check", "run"]


def test_corrupted_cache_is_ignored_with_a_warning_and_rewritten(
    real_daemon: DaemonInfo, fake: FakeDocker, tmp_path: Path, layout: Layout
) -> None:
    """A cache file overwritten with garbage: the launch warns, runs the check, and rewrites
    the file, so the launch after it skips the check again."""
    workspace = _workspace(tmp_path / "work")
    assert _launch(fake, workspace).returncode == 0
    path = cache_path(layout.home)
    path.write_text("\x00garbage")
    done = _launch(fake, workspace)
    assert done.returncode == 0
    assert f"aileron: warning: ignoring {path} (not valid JSON)" in done.stderr
    assert json.loads(path.read_text())["format"] == 1
    quiet = _launch(fake, workspace)
    assert "warning" not in quiet.stderr
    assert _containers(fake) == ["check", "run", "check", "run", "run"]
