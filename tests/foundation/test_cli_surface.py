"""The console scripts exist, agree on the set version, and report errors the house way."""

from __future__ import annotations

import subprocess

import pytest
from helpers import script


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("aileron", ["--version"]),
        ("aileron", ["version"]),
        ("aileron-mcp", ["--version"]),
        ("aileron-enclave", ["--version"]),
    ],
)
def test_every_script_prints_the_set_version(
    command: str, args: list[str], set_version: str
) -> None:
    """Each console script prints its name and the one version of the release set."""
    done = subprocess.run([script(command), *args], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"{command} {set_version}"


def test_help_lists_the_command_groups() -> None:
    """`aileron --help` shows the command groups of the product."""
    done = subprocess.run([script("aileron"), "--help"], capture_output=True, text=True, check=True)
    groups = (
        "version",
        "launch",
        "action",
        "connector",
        "binding",
        "approval",
        "sandbox",
        "enclave",
        "vault",
    )
    for group in groups:
        assert f"\n    {group}" in done.stdout


def test_unknown_command_is_a_usage_error() -> None:
    """An unknown command is a usage error (exit 2) that names it."""
    done = subprocess.run([script("aileron"), "frobnicate"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "frobnicate" in done.stderr
