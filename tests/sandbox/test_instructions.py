"""What the agent in a container is told and how its shell finds its tools (issue #18): the
argv each agent gets, the profile script run by a real ``sh``, and the mount that carries it."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from aileron_cli.launch import agent_named
from aileron_cli.launch.routing import Routes
from aileron_cli.sandbox import images
from aileron_cli.sandbox.config import SandboxConfig
from aileron_cli.sandbox.container import SHIM_DIR, TOOLS_FILE, Mount
from aileron_cli.sandbox.engine import Engine
from aileron_cli.sandbox.instructions import (
    PROFILE_FILE,
    TOOLS_INSTRUCTIONS,
    agent_arguments,
    profile_script,
)
from aileron_cli.sandbox.launch import SandboxPlan, container_command, staged_spec

API_URL = "http://127.0.0.1:4000/v1"
LOGIN_PATH = "/usr/local/bin:/usr/bin:/bin"  # what Debian's /etc/profile sets for a user


def _overrides(argv: tuple[str, ...]) -> dict[str, object]:
    """The ``-c key=value`` pairs of a codex argv, each value parsed as codex parses it."""
    assert argv[::2] == ("-c",) * (len(argv) // 2)
    found: dict[str, object] = {}
    for override in argv[1::2]:
        found.update(tomllib.loads(override))
    return found


def test_instructions_name_the_tools_file_and_the_usage() -> None:
    """The text names /etc/aileron/tools.txt, `--help` and the `--args` JSON form."""
    assert TOOLS_FILE in TOOLS_INSTRUCTIONS
    assert "`<tool> --help`" in TOOLS_INSTRUCTIONS
    assert "`<tool> <action> --args '<JSON object>'`" in TOOLS_INSTRUCTIONS
    assert "\n" not in TOOLS_INSTRUCTIONS


def test_codex_is_told_and_its_inner_sandbox_relaxed() -> None:
    """codex gets the text as developer_instructions, no sandbox of its own and no prompts."""
    assert _overrides(agent_arguments("codex")) == {
        "developer_instructions": TOOLS_INSTRUCTIONS,
        "sandbox_mode": "danger-full-access",
        "approval_policy": "never",
    }


def test_claude_is_told_through_its_system_prompt() -> None:
    """claude gets the text with --append-system-prompt and nothing else."""
    assert agent_arguments("claude") == ("--append-system-prompt", TOOLS_INSTRUCTIONS)


@pytest.mark.parametrize("agent", ["opencode", "goose"])
def test_agents_without_a_way_in_get_nothing(agent: str) -> None:
    """opencode and goose are not told yet: no arguments are added for them."""
    assert agent_arguments(agent) == ()


def _plan(agent: str, args: tuple[str, ...]) -> SandboxPlan:
    return SandboxPlan(
        agent=agent_named(agent),
        engine=Engine(name="podman", path="/usr/bin/podman", version="4.3.1"),
        image=images.Image(ref=images.default_tag(agent), env=()),
        args=args,
    )


def test_codex_command_puts_every_override_before_the_users_subcommand() -> None:
    """codex's -c overrides (gateway and sandbox) all precede `exec …`, so they apply to it."""
    command = container_command(_plan("codex", ("exec", "hi")), API_URL, Routes.builtin({"openai"}))
    assert command[0] == "codex" and command[-2:] == ("exec", "hi")
    overrides = _overrides(command[1:-2])
    assert overrides["model_provider"] == "aileron"
    assert overrides["developer_instructions"] == TOOLS_INSTRUCTIONS
    assert overrides["sandbox_mode"] == "danger-full-access"
    assert overrides["approval_policy"] == "never"


def test_claude_command_puts_the_prompt_before_the_users_arguments() -> None:
    """claude's --append-system-prompt precedes the user's own `-p …`."""
    command = container_command(_plan("claude", ("-p", "hello")), API_URL, Routes())
    assert command == ("claude", "--append-system-prompt", TOOLS_INSTRUCTIONS, "-p", "hello")


def _login_path(tmp_path: Path, times: int) -> str:
    """$PATH after a real ``sh`` with /etc/profile's reset PATH sources the script ``times``."""
    script = tmp_path / "aileron.sh"
    script.write_text(profile_script())
    sources = "; ".join([f". {script}"] * times)
    done = subprocess.run(
        ["/bin/sh", "-c", f'{sources}; printf %s "$PATH"'],
        env={"PATH": LOGIN_PATH},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_profile_script_puts_the_shims_back_on_a_login_path(tmp_path: Path) -> None:
    """Sourced after /etc/profile reset PATH, the script appends the shim directory once."""
    assert _login_path(tmp_path, 1) == f"{LOGIN_PATH}:{SHIM_DIR}"
    assert _login_path(tmp_path, 2) == f"{LOGIN_PATH}:{SHIM_DIR}"


def test_staged_spec_mounts_the_profile_script_read_only(tmp_path: Path) -> None:
    """The container gets the profile script read-only at /etc/profile.d/aileron.sh."""
    scratch, workspace = tmp_path / "scratch", tmp_path / "work"
    scratch.mkdir()
    workspace.mkdir()
    spec = staged_spec(
        scratch,
        Engine(name="podman", path="/usr/bin/podman", version="4.3.1"),
        tools_txt="aileron-echo\tthe echo\n",
        shims={"aileron-echo": "#!/bin/sh\n"},
        env={"HOME": "/home/agent"},
        image="localhost/img:1",
        command=("codex",),
        cwd=str(workspace),
        network="none",
        name="aileron-codex-test",
        settings=SandboxConfig(),
    )
    mount = next(m for m in spec.mounts if m.target == PROFILE_FILE)
    assert mount == Mount(str(scratch / "profile.sh"), PROFILE_FILE, read_only=True)
    assert Path(mount.source).read_text() == profile_script()
    assert Path(mount.source).stat().st_mode & 0o777 == 0o644
