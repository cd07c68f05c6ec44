"""Acceptance 1 of #15: real agents complete a tool loop with the provider key only in the vault.

The scripted fake provider answers the agent's first request with a call of Aileron's
``echo_say`` tool; the agent calls it through ``aileron-mcp`` (no flag from the user); the
daemon runs the action against the local echo server with the vault's credential; the fake's
final text is printed. One real agent run per test (the machine has two cores).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from actions.support import SECRET
from agents.support import FINAL, MESSAGE, Rig, agent_binary, rig, wait_until
from gateway.support import REAL_KEY
from launch.support import (
    agent_config_files,
    assert_configs_untouched,
    claude_state_has_no_aileron,
    seed_agent_config_files,
)

from aileron_cli.launch.routing import SESSION_TOKEN_HEADER

pytestmark = pytest.mark.slow


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Rig]:
    """A fresh daemon, fake and echo server for one agent run; the user's own agent config
    files, seeded first, are byte-identical after it (acceptance 5)."""
    home = tmp_path / "home"
    home.mkdir()
    seed_agent_config_files(home)
    before = agent_config_files(home)
    claude_state = json.loads((home / ".claude.json").read_text())
    with rig(home) as set_up:
        yield set_up
    assert_configs_untouched(before, agent_config_files(home))
    claude_state_has_no_aileron(home, claude_state)


def assert_loop_ran(loop: Rig, work: Path, stdout: str, called: str) -> None:
    """The tool ran with the vault's credential, in the launched session, and the agent
    printed the fake's final text; only the gateway ever held the real key."""
    assert FINAL in stdout
    assert loop.fake.script is not None and loop.fake.script.calls == [called]
    assert [(e.headers.get("Authorization"), json.loads(e.body)) for e in loop.echo.seen] == [
        (f"Bearer {SECRET}", {"message": MESSAGE})
    ]
    session = loop.session_in(work)
    assert (session["state"], session["exit_code"]) == ("ended", 0)
    succeeded = wait_until(lambda: loop.audit("execution.succeeded", session["id"]))
    assert len(succeeded) == 1, succeeded
    # The agent presented its session token (the gateway attributed its requests to the
    # session); the fake saw the real key from the gateway and never the session token.
    assert wait_until(lambda: loop.audit("gateway.request", session["id"]))
    model_requests = [s for s in loop.fake.seen if s.method == "POST"]
    assert len(model_requests) >= 2
    for seen in model_requests:
        keys = {seen.header("authorization"), seen.header("x-api-key")}
        assert keys & {f"Bearer {REAL_KEY}", REAL_KEY}, seen.headers
        assert SESSION_TOKEN_HEADER.lower() not in seen.header_names()
    assert REAL_KEY not in stdout


def test_claude_code_calls_the_aileron_tool_and_prints_the_answer(
    loop: Rig, tmp_path: Path
) -> None:
    """`aileron launch claude -- -p …` with only the vault's Anthropic key: claude calls
    mcp__aileron__echo_say, the action runs with the echo credential, the final text prints."""
    agent_binary("claude")
    work = tmp_path / "work"
    work.mkdir()
    done = loop.launch(
        "claude", "-p", "Say hello through the echo tool.", "--output-format", "text",
        "--model", "claude-fake", cwd=work,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert_loop_ran(loop, work, done.stdout, "mcp__aileron__echo_say")


def test_codex_calls_the_aileron_tool_and_prints_the_answer(loop: Rig, tmp_path: Path) -> None:
    """`aileron launch codex -- exec …` with only the vault's OpenAI key: codex calls the
    namespaced MCP tool (mcp__aileron / echo_say) without asking, the action runs, the final
    text prints."""
    agent_binary("codex")
    work = tmp_path / "work"
    work.mkdir()
    done = loop.launch(
        "codex", "exec", "--skip-git-repo-check", "-m", "gpt-fake",
        "Say hello through the echo tool.", cwd=work,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert_loop_ran(loop, work, done.stdout, "mcp__aileron/echo_say")


def test_opencode_calls_the_aileron_tool_and_prints_the_answer(loop: Rig, tmp_path: Path) -> None:
    """`aileron launch opencode -- run -m anthropic/…` with no config of the user's: opencode's
    bundled Anthropic provider goes through the gateway (the launch routes it), calls
    aileron_echo_say without asking, the action runs, the final text prints."""
    agent_binary("opencode")
    work = tmp_path / "work"
    work.mkdir()
    done = loop.launch(
        "opencode", "run", "--model", "anthropic/claude-sonnet-4-5",
        "Say hello through the echo tool.", cwd=work,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert_loop_ran(loop, work, done.stdout, "aileron_echo_say")
