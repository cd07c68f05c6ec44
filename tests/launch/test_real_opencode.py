"""The real OpenCode (npm `opencode-ai`, installed by scripts/bootstrap) runs under `aileron
launch` with its provider key only in Aileron's vault, offline."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway.support import REAL_KEY, Live, isolated_env, run_live
from helpers import script
from launch.support import (
    OFFLINE,
    OPENCODE_VERSION,
    REAL_OPENCODE,
    agent_config_files,
    assert_configs_untouched,
    seed_agent_config_files,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not REAL_OPENCODE.exists(),
        reason=f"the real opencode is not installed at {REAL_OPENCODE}; run scripts/bootstrap",
    ),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A real daemon (both provider keys bound) whose gateway points at the fake provider."""
    yield from run_live(tmp_path_factory.mktemp("opencode-live"))


def test_real_opencode_version_is_the_pinned_one(tmp_path: Path) -> None:
    """The cached opencode is the version ADR 0007 checked the wiring against."""
    env = dict(os.environ, HOME=str(tmp_path), **OFFLINE)
    done = subprocess.run(
        [str(REAL_OPENCODE), "--version"], capture_output=True, text=True, check=True, env=env
    )
    assert done.stdout.strip() == OPENCODE_VERSION


@pytest.mark.parametrize(
    ("model", "path", "header", "value"),
    [
        ("anthropic/claude-sonnet-4-5", "/v1/messages", "x-api-key", REAL_KEY),
        ("openai/gpt-5", "/v1/responses", "authorization", f"Bearer {REAL_KEY}"),
    ],
)
def test_opencode_reaches_the_model_through_the_gateway(
    live: Live, tmp_path: Path, model: str, path: str, header: str, value: str
) -> None:
    """`aileron launch opencode -- run -m MODEL …` with no key of the user's: opencode's bundled
    provider answers from the fake provider through the gateway, which sent the vault's key;
    the user's config files are byte-identical afterwards (opencode's own new
    .gitignore aside)."""
    seed_agent_config_files(live.home)
    before_files = agent_config_files(live.home)
    work = tmp_path / "work"
    work.mkdir()
    env = isolated_env(live.home)
    env = {k: v for k, v in env.items() if not k.startswith(("OPENAI", "ANTHROPIC", "OPENCODE"))}
    env.update(OFFLINE, PATH=f"{REAL_OPENCODE.parent}{os.pathsep}{env['PATH']}")
    before = len(live.fake.seen)
    done = subprocess.run(
        [script("aileron"), "launch", "opencode", "--", "run", "-m", model, "say hi"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Hello from the fake provider" in done.stdout
    requests = [s for s in live.fake.seen[before:] if s.path.startswith(path)]
    assert requests, "no request reached the fake provider"
    assert all(s.header(header) == value for s in requests)
    assert REAL_KEY not in done.stdout + done.stderr
    assert_configs_untouched(before_files, agent_config_files(live.home))
