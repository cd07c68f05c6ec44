"""The real Claude Code (npm `@anthropic-ai/claude-code`, installed by scripts/bootstrap) runs
under `aileron launch` with its key only in Aileron's vault."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.provider import FakeProvider
from gateway.support import REAL_KEY, Live, isolated_env, run_live
from helpers import script
from launch.support import (
    CLAUDE_VERSION,
    OFFLINE,
    REAL_CLAUDE,
    agent_config_files,
    assert_configs_untouched,
    claude_state_has_no_aileron,
    seed_agent_config_files,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not REAL_CLAUDE.exists(),
        reason=f"the real claude is not installed at {REAL_CLAUDE}; run scripts/bootstrap",
    ),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A real daemon (both provider keys bound) whose gateway points at the fake provider."""
    yield from run_live(tmp_path_factory.mktemp("claude-live"))


def _env(live: Live) -> dict[str, str]:
    env = isolated_env(live.home)
    env = {k: v for k, v in env.items() if not k.startswith(("ANTHROPIC", "CLAUDE"))}
    return dict(env, PATH=f"{REAL_CLAUDE.parent}{os.pathsep}{env['PATH']}", **OFFLINE)


def test_real_claude_version_is_the_pinned_one() -> None:
    """The cached claude is the version ADR 0007 checked the wiring against."""
    done = subprocess.run(
        [str(REAL_CLAUDE), "--version"], capture_output=True, text=True, check=True, env=OFFLINE
    )
    assert done.stdout.strip() == f"{CLAUDE_VERSION} (Claude Code)"


def test_claude_with_no_login_reaches_the_model_through_the_gateway(
    live: Live, tmp_path: Path
) -> None:
    """`aileron launch claude -- -p …` with no key or login of the user's: claude answers from
    the fake provider, which saw the vault's key; claude started aileron-mcp and offers its
    tools; the user's config files are byte-identical afterwards (claude's own state file
    keeps the user's keys and gains nothing of Aileron's)."""
    seed_agent_config_files(live.home)
    before_files = agent_config_files(live.home)
    work = tmp_path / "work"
    work.mkdir()
    before = len(live.fake.seen)
    done = subprocess.run(
        [script("aileron"), "launch", "claude", "--"]
        + ["-p", "say hi", "--output-format", "stream-json", "--verbose"],
        cwd=work,
        env=_env(live),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    [init] = [e for e in events if e.get("type") == "system" and e.get("subtype") == "init"]
    servers = {server["name"]: server["status"] for server in init["mcp_servers"]}
    assert servers == {"aileron": "connected"}
    assert any(tool.startswith("mcp__aileron__") for tool in init["tools"])
    [result] = [e for e in events if e.get("type") == "result"]
    assert "Hello from the fake provider" in result["result"]
    requests = [s for s in live.fake.seen[before:] if s.path.startswith("/v1/messages")]
    assert requests, "no request reached the fake provider"
    assert all(s.header("x-api-key") == REAL_KEY for s in requests)
    assert REAL_KEY not in done.stdout + done.stderr
    assert_configs_untouched(before_files, agent_config_files(live.home))
    claude_state_has_no_aileron(live.home, {"hasCompletedOnboarding": True, "mine": 1})


def test_claude_prefers_the_auth_token_to_a_stored_claude_ai_login(tmp_path: Path) -> None:
    """With a claude.ai login stored in ~/.claude/.credentials.json, claude 2.1 still sends
    ANTHROPIC_AUTH_TOKEN (what launch sets to the session token) as its bearer credential, so
    a launched claude reaches the gateway as the session, not as the user's login."""
    login = tmp_path / ".claude" / ".credentials.json"
    login.parent.mkdir()
    oauth: dict[str, object] = {"accessToken": "sk-ant-oat01-users-login", "refreshToken": "r"}
    oauth |= {"expiresAt": 9_999_999_999_999, "scopes": ["user:inference"]}
    login.write_text(json.dumps({"claudeAiOauth": oauth}))
    with FakeProvider("ais_stands-for-the-session-token") as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC", "CLAUDE"))}
        env.update(OFFLINE, HOME=str(tmp_path), ANTHROPIC_BASE_URL=fake.url)
        env["ANTHROPIC_AUTH_TOKEN"] = "ais_stands-for-the-session-token"  # noqa: S105
        done = subprocess.run(
            [str(REAL_CLAUDE), "-p", "say hi"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Hello from the fake provider" in done.stdout
        [request] = [s for s in fake.seen if s.path.startswith("/v1/messages")]
    assert request.header("authorization") == "Bearer ais_stands-for-the-session-token"
    assert "sk-ant-oat01" not in json.dumps(request.headers)
