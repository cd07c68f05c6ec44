"""The remembered pre-launch check on the real engines: containers are counted by a wrapper
that logs each ``run`` (the check's or the agent's) and then runs the real engine's CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox.test_podman_launch import _launch, _make_workspace
from sandbox.test_real_engines import docker_codex_image, docker_engine  # noqa: F401 (fixtures)

from aileron_cli.sandbox.check_cache import cache_path
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

pytestmark = pytest.mark.slow
REBUILT = "localhost/aileron-test-check-cache:latest"
"""A test-only tag, rebuilt by one test to get a new image ID under the same tag."""

WRAPPER = """#!/bin/sh
if [ "$1" = run ]; then
  case "$*" in
    *aileron-check*) echo check >> "{log}" ;;
    *) echo run >> "{log}" ;;
  esac
fi
exec "{real}" "$@"
"""


class Counted:
    """An engine CLI behind a wrapper that logs every container it runs."""

    def __init__(self, engine: str, directory: Path) -> None:
        real = shutil.which(engine)
        assert real is not None
        self.log = directory / "runs.log"
        bindir = directory / "bin"
        bindir.mkdir()
        wrapper = bindir / engine
        wrapper.write_text(WRAPPER.format(log=self.log, real=real))
        wrapper.chmod(0o755)
        self.env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}")

    def containers(self) -> list[str]:
        """``check`` or ``run`` per container, in order."""
        return self.log.read_text().split() if self.log.exists() else []


AGENT = 'touch "$AILERON_WORKSPACE/agent-ran"\n'


def _workspace(path: Path) -> Path:
    workspace = _make_workspace(path)
    (workspace / "agent.sh").write_text(AGENT)
    return workspace


@pytest.fixture(params=["podman", "docker"])
def engine_image(request: pytest.FixtureRequest) -> tuple[str, str]:
    """``(engine, image)``: podman with its codex image, docker with the same one loaded."""
    fixture = "codex_image" if request.param == "podman" else "docker_codex_image"
    image: str = request.getfixturevalue(fixture)
    return request.param, image


def test_second_launch_of_the_same_image_runs_one_container(
    real_daemon: DaemonInfo, engine_image: tuple[str, str], tmp_path: Path, layout: Layout
) -> None:
    """On each real engine: the first launch runs the check and the agent; the second, same
    image and workspace, only the agent (and the agent ran both times)."""
    engine, image = engine_image
    counted = Counted(engine, tmp_path)
    workspace = _workspace(tmp_path / "workspace")
    for _ in range(2):
        done = _launch(workspace, counted.env, f"--sandbox={engine}", "--image", image, "codex")
        assert done.returncode == 0, done.stderr
        assert (workspace / "agent-ran").exists()
        (workspace / "agent-ran").unlink()
    assert counted.containers() == ["check", "run", "run"]
    assert cache_path(layout.home).stat().st_mode & 0o777 == 0o600


def _build_tagged(base: str, generation: str, directory: Path) -> None:
    """``REBUILT``: ``base`` with a label, so each generation has its own image ID."""
    containerfile = directory / f"Containerfile.{generation}"
    containerfile.write_text(f"FROM {base}\nLABEL io.aileron.test-generation={generation}\n")
    subprocess.run(
        ["podman", "build", "--quiet", "-f", str(containerfile), "-t", REBUILT, str(directory)],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def rebuilt_tag(codex_image: str) -> Iterator[None]:
    """Removes ``REBUILT`` after the test."""
    yield
    subprocess.run(["podman", "rmi", "--force", REBUILT], check=False, capture_output=True)


def test_rebuilt_image_is_checked_again(
    real_daemon: DaemonInfo, codex_image: str, rebuilt_tag: None, tmp_path: Path
) -> None:
    """The same tag rebuilt (a new image ID) misses the recorded pass: the check runs again."""
    counted = Counted("podman", tmp_path)
    workspace = _workspace(tmp_path / "workspace")
    launch = ("--sandbox=podman", "--image", REBUILT, "codex")
    _build_tagged(codex_image, "1", tmp_path)
    assert _launch(workspace, counted.env, *launch).returncode == 0
    assert _launch(workspace, counted.env, *launch).returncode == 0
    _build_tagged(codex_image, "2", tmp_path)
    done = _launch(workspace, counted.env, *launch)
    assert done.returncode == 0, done.stderr
    assert counted.containers() == ["check", "run", "run", "check", "run"]


def test_corrupted_cache_file_is_ignored_with_a_warning_and_rewritten(
    real_daemon: DaemonInfo, codex_image: str, tmp_path: Path, layout: Layout
) -> None:
    """A cache file overwritten with garbage is ignored with a warning, the check runs, and
    the file is rewritten so the next launch skips the check again."""
    counted = Counted("podman", tmp_path)
    workspace = _workspace(tmp_path / "workspace")
    assert _launch(workspace, counted.env, "--sandbox=podman", "codex").returncode == 0
    path = cache_path(layout.home)
    path.write_text("[not a cache")
    done = _launch(workspace, counted.env, "--sandbox=podman", "codex")
    assert done.returncode == 0, done.stderr
    assert f"aileron: warning: ignoring {path} (not valid JSON)" in done.stderr
    quiet = _launch(workspace, counted.env, "--sandbox=podman", "codex")
    assert quiet.returncode == 0 and "warning" not in quiet.stderr
    assert counted.containers() == ["check", "run", "check", "run", "run"]


def test_a_pass_for_other_mounts_does_not_skip_the_check(
    real_daemon: DaemonInfo, codex_image: str, tmp_path: Path
) -> None:
    """A pass recorded for one workspace mount does not skip the check of another, and a
    workspace the container user cannot write fails its check even after a pass elsewhere."""
    counted = Counted("podman", tmp_path)
    first = _workspace(tmp_path / "first")
    assert _launch(first, counted.env, "--sandbox=podman", "codex").returncode == 0
    second = _workspace(tmp_path / "second")
    second.chmod(0o555)
    done = _launch(second, counted.env, "--sandbox=podman", "codex")
    assert done.returncode == 1
    assert "sandbox check 'workspace' failed" in done.stderr
    assert counted.containers() == ["check", "run", "check"]
