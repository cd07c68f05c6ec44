"""The built set installs with pipx on a clean PIPX_HOME and gives a working `aileron`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import aileron_release
import pytest
from helpers import REPO


@pytest.mark.slow
def test_pipx_install_of_the_cli_wheel(tmp_path: Path, set_version: str) -> None:
    """pipx installs the CLI wheel from the built set, with `aileron-mcp` in the same venv."""
    pipx = shutil.which("pipx")
    assert pipx is not None, "pipx must be installed to run the release install test"
    dist = tmp_path / "dist"
    aileron_release.build(dist, REPO)
    wheel = next(dist.glob(f"aileron_cli-{set_version}-py3-none-any.whl"))
    env = dict(
        os.environ,
        PIPX_HOME=str(tmp_path / "pipx-home"),
        PIPX_BIN_DIR=str(tmp_path / "pipx-bin"),
        PIPX_MAN_DIR=str(tmp_path / "pipx-man"),
    )
    subprocess.run(
        [pipx, "install", str(wheel), f"--pip-args=--find-links {dist}"],
        env=env,
        check=True,
        capture_output=True,
    )
    aileron = tmp_path / "pipx-bin" / "aileron"
    done = subprocess.run([aileron, "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"aileron {set_version}"
    venv_bin = tmp_path / "pipx-home" / "venvs" / "aileron-cli" / "bin"
    assert (venv_bin / "aileron").exists()
    mcp = subprocess.run(
        [venv_bin / "aileron-mcp", "--version"], capture_output=True, text=True, check=True
    )
    assert mcp.stdout.strip() == f"aileron-mcp {set_version}"
