"""Every generated shim is valid POSIX sh, and its help prints exactly the generated text."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from shims.strategies import rich_inputs
from shims.support import BASH, DASH, SH, generate_from, golden_input, write_shims

from aileron_shims import Action, Connector, ShimError, generate
from aileron_shims.plan import build_plan
from aileron_shims.render import subcommand_help, tool_help

CHECKERS = [shell for shell in (SH, DASH, BASH) if shell is not None]
FEW = settings(
    deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def syntax_errors(path: Path) -> list[str]:
    """What ``-n`` says for each available shell (sh, dash, bash); empty when all accept it."""
    problems = []
    for shell in CHECKERS:
        done = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
        if done.returncode != 0 or done.stderr:
            problems.append(f"{shell}: {done.stderr.strip()}")
    return problems


def test_the_checkers_are_there_and_catch_errors(tmp_path: Path) -> None:
    """sh and dash are installed, and a broken script is reported (the check can fail)."""
    assert DASH is not None, "dash is expected on the test host"
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\ncase $1 in\n")
    assert len(syntax_errors(broken)) == len(CHECKERS)


def test_golden_shims_pass_sh_n_and_dash_n(tmp_path: Path) -> None:
    """Every shim of the golden input passes `sh -n`, `dash -n` and `bash -n`."""
    directory = write_shims(generate_from(golden_input()), tmp_path / "bin")
    paths = sorted(directory.iterdir())
    assert [p.name for p in paths] == ["aileron-echo", "aileron-echo-2", "issues"]
    for path in paths:
        assert syntax_errors(path) == [], path.name
        assert path.read_text().startswith("#!/bin/sh\n# ")


def run_help(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SH, str(path), *args], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}
    )


@FEW
@given(case=rich_inputs())
def test_generated_shims_are_valid_and_print_their_help_exactly(
    case: tuple[list[Connector], list[Action], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """For generated inputs, every shim passes -n and its --help output is the exact text."""
    connectors, actions, agent = case
    try:
        shims = generate(connectors, actions, agent_command=agent)
    except ShimError:
        event("ShimError")
        return
    event(f"{len(shims.shims)} tools")
    plan = build_plan(connectors, actions, agent_command=agent)
    directory = write_shims(shims, tmp_path_factory.mktemp("bin"))
    for tool in plan.tools:
        path = directory / tool.name
        assert syntax_errors(path) == [], shims.shims[tool.name]
        shown = run_help(path, "--help")
        assert (shown.returncode, shown.stderr) == (0, "")
        assert shown.stdout == "".join(f"{line}\n" for line in tool_help(tool))
        sub = tool.subcommands[0]
        detail = run_help(path, sub.name, "--help")
        assert (detail.returncode, detail.stderr) == (0, "")
        assert detail.stdout == "".join(f"{line}\n" for line in subcommand_help(tool, sub))
