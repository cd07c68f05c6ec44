"""Never mount the vault: which working directories a sandboxed launch refuses, and that it
refuses them before anything starts (no engine probed, no daemon spawned)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import script

from aileron_cli.launch.errors import UnsafeWorkspace
from aileron_cli.sandbox.workspace import refuse_unsafe_workspace, unsafe_workspace
from aileron_core.paths import Layout


@pytest.fixture
def home(tmp_path: Path) -> Layout:
    """An AILERON_HOME at <tmp>/users/me/.aileron holding a vault and daemon.json."""
    layout = Layout(tmp_path / "users" / "me" / ".aileron")
    layout.ensure()
    layout.vault.write_text("{}")
    layout.daemon_json.write_text("{}")
    return layout


def test_the_home_itself_is_refused(home: Layout) -> None:
    """A workspace that is AILERON_HOME is refused, saying so."""
    reason = unsafe_workspace(home.home, home)
    assert reason is not None and "is AILERON_HOME" in reason


def test_a_folder_inside_the_home_is_refused(home: Layout) -> None:
    """A workspace inside AILERON_HOME (e.g. its store) is refused."""
    inside = home.home / "store" / "connectors"
    inside.mkdir(parents=True)
    reason = unsafe_workspace(inside, home)
    assert reason is not None and "inside AILERON_HOME" in reason


@pytest.mark.parametrize("levels", [1, 3])
def test_a_folder_containing_the_home_is_refused(home: Layout, levels: int) -> None:
    """A workspace that contains AILERON_HOME at any depth (`cd ~`, `cd /`-like) is refused."""
    outer = home.home.parents[levels - 1]
    reason = unsafe_workspace(outer, home)
    assert reason is not None and "contains AILERON_HOME" in reason


def test_the_home_is_found_through_a_symlink(home: Layout, tmp_path: Path) -> None:
    """A symlink to the home's parent is still the home's parent."""
    link = tmp_path / "link"
    link.symlink_to(home.home.parent)
    reason = unsafe_workspace(link, home)
    assert reason is not None and "contains AILERON_HOME" in reason


@pytest.mark.parametrize("marker", ["vault.json", "daemon.json"])
def test_another_aileron_home_is_refused(home: Layout, tmp_path: Path, marker: str) -> None:
    """A folder holding vault.json or daemon.json (another home) is refused, as are folders
    inside it and its parent."""
    other = tmp_path / "elsewhere" / "old-home"
    (other / "sub").mkdir(parents=True)
    (other / marker).write_text("{}")
    for cwd, phrase in [
        (other, "is an Aileron home"),
        (other / "sub", "is inside an Aileron home"),
        (other.parent, "contains an Aileron home"),
    ]:
        reason = unsafe_workspace(cwd, home)
        assert reason is not None and phrase in reason, (cwd, reason)
        assert str(other / marker) in reason


def test_a_normal_project_is_allowed(home: Layout, tmp_path: Path) -> None:
    """A project folder beside the home, with ordinary files and subfolders, is allowed, even
    when AILERON_HOME does not exist yet."""
    project = tmp_path / "users" / "me" / "src" / "project"
    (project / "src" / "deep" / "config").mkdir(parents=True)
    (project / "package.json").write_text("{}")
    (project / "src" / "deep" / "config" / "vault.json").write_text("{}")  # too deep to scan
    assert unsafe_workspace(project, home) is None
    assert unsafe_workspace(project, Layout(tmp_path / "absent" / ".aileron")) is None
    refuse_unsafe_workspace(project, home)


def test_refusal_is_one_line_with_what_to_do(home: Layout) -> None:
    """The refusal names the folder and why in one line, and its hint says to `cd` into the
    project."""
    with pytest.raises(UnsafeWorkspace) as raised:
        refuse_unsafe_workspace(home.home.parent, home)
    error = raised.value
    assert error.code == "unsafe_workspace"
    assert "\n" not in error.message
    assert str(home.home.parent) in error.message and "vault" in error.message
    assert error.hint is not None and "cd" in error.hint


@pytest.mark.parametrize(
    "command", [["launch", "--sandbox=podman", "codex"], ["sandbox", "check", "codex"]]
)
def test_launch_and_check_refuse_before_any_engine_or_daemon(
    layout: Layout, command: list[str]
) -> None:
    """`aileron launch --sandbox` and `aileron sandbox check` from AILERON_HOME's parent are
    refused before an engine is probed (none is on PATH) or a daemon spawned."""
    layout.ensure()
    layout.vault.write_text("{}")
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    done = subprocess.run(
        [script("aileron"), *command],
        cwd=layout.home.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "refusing to mount" in done.stderr and "AILERON_HOME" in done.stderr, done.stderr
    assert "podman" not in done.stderr and "docker" not in done.stderr
    assert not layout.daemon_json.exists()
