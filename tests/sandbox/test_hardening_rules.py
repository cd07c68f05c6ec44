"""Hardening by default, as data: every container run drops all capabilities, sets
no-new-privileges, limits and a read-only root; the container user is never root; the limits
come from ``[sandbox]`` in config.toml."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
import pytest

from aileron_cli.sandbox.config import SandboxConfig, load_sandbox_config, parse_sandbox_config
from aileron_cli.sandbox.container import (
    FALLBACK_USER,
    HOME,
    WORKSPACE,
    ContainerSpec,
    Mount,
    check_spec,
    container_user,
    hardening,
    run_argv,
    writable_tmpfs,
)
from aileron_cli.sandbox.engine import Engine
from aileron_cli.sandbox.launch import staged_spec
from aileron_core.errors import ConfigError


def _bare() -> ContainerSpec:
    return ContainerSpec(
        image="img",
        command=("agent",),
        env_file="/e",
        mounts=(Mount("/w", WORKSPACE, read_only=False),),
        network="none",
        name="n",
    )


def _value(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == option]


def test_every_run_is_hardened_even_from_a_bare_spec() -> None:
    """A spec that asks for nothing still runs with no capabilities, no new privileges, the
    default limits and a read-only root."""
    argv = run_argv(("podman",), _bare())
    assert _value(argv, "--cap-drop") == ["ALL"]
    assert "--cap-add" not in argv and "--privileged" not in argv
    assert _value(argv, "--security-opt") == ["no-new-privileges"]
    assert _value(argv, "--pids-limit") == ["512"]
    assert _value(argv, "--memory") == ["4g"]
    assert "--read-only" in argv
    assert argv.index("--read-only") < argv.index("img")


def test_the_check_runs_as_hardened_as_the_agent() -> None:
    """The pre-run check keeps the run's hardening: same limits, tmpfs and user."""
    spec = staged_like(pids_limit=64, memory="256m")
    run, check = run_argv(("docker",), spec), run_argv(("docker",), check_spec(spec, "agent"))
    for option in ("--cap-drop", "--security-opt", "--pids-limit", "--memory", "--tmpfs", "--user"):
        assert _value(run, option) == _value(check, option), option
    assert "--read-only" in check


def staged_like(**changes: Any) -> ContainerSpec:
    """A bare spec with the docker user and tmpfs staged_spec would give it."""
    spec = attrs.evolve(_bare(), user="1000:1000", tmpfs=writable_tmpfs("docker", "1000:1000"))
    return attrs.evolve(spec, **changes)


@pytest.mark.parametrize(
    ("uid", "gid", "owner", "expected"),
    [
        (1000, 1000, (0, 0), "1000:1000"),  # the invoking user, whoever owns the workspace
        (1234, 50, (1000, 1000), "1234:50"),
        (1234, 0, (1000, 1000), "1234:1234"),  # never gid 0
        (0, 0, (1500, 1600), "1500:1600"),  # root: the workspace owner
        (0, 0, (1500, 0), "1500:1500"),
        (0, 0, (0, 0), FALLBACK_USER),  # root-owned workspace: never root
    ],
)
def test_the_container_user_is_never_root(
    uid: int, gid: int, owner: tuple[int, int], expected: str
) -> None:
    """The invoking user's uid:gid, else the workspace owner's, else 1000:1000; never 0."""
    assert container_user(uid, gid, owner) == expected
    assert not expected.startswith("0:") and not expected.endswith(":0")


def test_writable_tmpfs_per_engine() -> None:
    """/tmp (sticky, world-writable) and a 0700 home owned by the container user: podman's
    `U`, docker's uid=/gid=; both writable and executable, never setuid or devices."""
    podman = writable_tmpfs("podman", None)
    docker = writable_tmpfs("docker", "1500:1600")
    assert [t.target for t in podman] == [t.target for t in docker] == ["/tmp", HOME]
    assert podman[1].options.endswith("mode=0700,U")
    assert docker[1].options.endswith("mode=0700,uid=1500,gid=1600")
    for tmpfs in (*podman, *docker):
        assert {"rw", "exec", "nosuid", "nodev"} <= set(tmpfs.options.split(","))
    assert "mode=1777" in podman[0].options.split(",")
    with pytest.raises(ValueError, match="docker"):
        writable_tmpfs("docker", None)


def test_staged_spec_applies_config_limits_user_and_tmpfs(tmp_path: Path) -> None:
    """staged_spec takes the limits from [sandbox], the never-root user and the writable
    tmpfs for its engine."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    spec = staged_spec(
        scratch,
        Engine(name="docker", path="/usr/bin/docker", version="27"),
        tools_txt="",
        shims={},
        env={"HOME": HOME},
        image="img",
        command=("agent",),
        cwd=str(tmp_path),
        network="none",
        name="n",
        settings=SandboxConfig(pids_limit=99, memory="1g"),
    )
    expected_user = container_user(
        os.getuid(), os.getgid(), (tmp_path.stat().st_uid, tmp_path.stat().st_gid)
    )
    assert (spec.pids_limit, spec.memory, spec.user) == (99, "1g", expected_user)
    assert spec.tmpfs == writable_tmpfs("docker", expected_user)


def test_hardening_summary_names_every_setting() -> None:
    """`aileron sandbox check`'s hardening fields: user, caps, no-new-privileges, pids,
    memory, read-only root with its writable places, network."""
    shown = hardening(staged_like(pids_limit=77, memory="3g"))
    assert shown == {
        "user": "1000:1000",
        "capabilities": "all dropped, none added",
        "no-new-privileges": "on",
        "pids limit": "77",
        "memory": "3g",
        "root file system": f"read-only; writable: /tmp, {HOME}, {WORKSPACE}",
        "network": "none",
    }


# --- [sandbox] pids_limit and memory ---------------------------------------------------------


def test_limits_default_when_config_toml_is_absent_or_silent(tmp_path: Path) -> None:
    """No config.toml, or one without the settings: pids_limit 512, memory 4g."""
    assert load_sandbox_config(tmp_path / "absent.toml") == SandboxConfig()
    (tmp_path / "config.toml").write_text("[sandbox]\nallow = []\n")
    loaded = load_sandbox_config(tmp_path / "config.toml")
    assert (loaded.pids_limit, loaded.memory) == (512, "4g")


def test_limits_are_read_from_config_toml(tmp_path: Path) -> None:
    """pids_limit and memory set in [sandbox] are used, memory in lower case."""
    (tmp_path / "config.toml").write_text('[sandbox]\npids_limit = 2048\nmemory = "8G"\n')
    loaded = load_sandbox_config(tmp_path / "config.toml")
    assert (loaded.pids_limit, loaded.memory) == (2048, "8g")


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("pids_limit", 0),
        ("pids_limit", -1),
        ("pids_limit", True),
        ("pids_limit", "512"),
        ("memory", "4 gigs"),
        ("memory", "0"),
        ("memory", "-4g"),
        ("memory", 4),
        ("memory", "4t"),
    ],
)
def test_bad_limits_are_config_errors(setting: str, value: object) -> None:
    """A limit of the wrong type or form is a ConfigError naming the setting and the file."""
    with pytest.raises(ConfigError) as raised:
        parse_sandbox_config({"sandbox": {setting: value}}, "config.toml")
    assert f"sandbox.{setting}" in raised.value.message
    assert "config.toml" in raised.value.message
