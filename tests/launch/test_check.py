"""`aileron launch AGENT --check`: a real daemon, real aileron-mcp, a fake provider behind the
gateway, and stand-ins for the agents' commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.provider import FakeProvider
from gateway.support import REAL_KEY, write_config
from helpers import script
from launch.support import OFFLINE, REAL_CODEX, REAL_OPENCODE, sessions, standin

from aileron_core.client import DaemonClient
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

VERSION = "print('stand-in 9.9.9')\n"


@pytest.fixture
def fake(layout: Layout) -> Iterator[FakeProvider]:
    """A fake provider that accepts only REAL_KEY; the daemon's config points both providers
    at it (written before the daemon starts)."""
    with FakeProvider(REAL_KEY) as provider:
        write_config(layout.home, provider.url)
        yield provider


@pytest.fixture
def daemon(fake: FakeProvider, real_daemon: DaemonInfo) -> DaemonInfo:
    """A real daemon with an initialised vault and no binding."""
    with DaemonClient.for_daemon(real_daemon) as admin:
        admin.post("vault/init", {"passphrase": "check tests"})
    return real_daemon


def bind(info: DaemonInfo, *providers: str) -> None:
    with DaemonClient.for_daemon(info) as admin:
        for provider in providers:
            admin.post("bindings", {"name": f"api_key/{provider}/default", "value": REAL_KEY})


def run_check(
    agent: str, tmp_path: Path, *, path: str | None = None, **extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`aileron launch AGENT --check --json` with a stand-in AGENT on PATH; (run, report)."""
    bindir = tmp_path / "bin"
    standin(bindir, agent, VERSION)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env.update(PATH=path or f"{bindir}{os.pathsep}{os.environ['PATH']}", **extra)
    done = subprocess.run(
        [script("aileron"), "launch", agent, "--check", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return done, report


def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["item"]: row for row in report["findings"]}


@pytest.mark.parametrize("agent", ["claude", "codex", "goose", "opencode"])
def test_each_agent_reports_mcp_connected_and_its_route(
    agent: str, daemon: DaemonInfo, fake: FakeProvider, tmp_path: Path
) -> None:
    """With both keys bound, every agent's aileron-mcp connects (tool count); a routed agent's
    probe answers 200 with the bound key, an unrouted one is told the bound keys are no use."""
    bind(daemon, "openai", "anthropic")
    done, report = run_check(agent, tmp_path)
    found = rows(report)
    assert found["agent"]["ok"] is True
    assert "stand-in 9.9.9" in found["agent"]["detail"]
    assert found["mcp"] == {
        "item": "mcp",
        "ok": True,
        "detail": "aileron-mcp connected, 1 tool",
        "fix": None,
    }
    if found["route"]["ok"] is None:
        # This agent's launch does not route its model traffic: the bound keys are no use to
        # it, and with no login of its own it is not ready.
        assert (
            found["route"]["detail"]
            == f"not through the gateway: {agent} talks to its provider directly"
        )
        assert found["key"]["ok"] is False
        assert "does not go through the gateway" in found["key"]["detail"]
    else:
        assert done.returncode == 0, done.stdout
        assert report["ok"] is True
        assert found["route"]["ok"] is True
        assert found["route"]["detail"].endswith("→ HTTP 200")
        assert any(seen.path == "/v1/models" for seen in fake.seen)
        assert found["key"]["detail"].startswith("binding api_key/")


@pytest.mark.parametrize(("agent", "provider"), [("claude", "anthropic"), ("codex", "openai")])
def test_a_bound_key_routes_through_the_gateway(
    agent: str, provider: str, daemon: DaemonInfo, fake: FakeProvider, tmp_path: Path
) -> None:
    """A bound key: key source "binding", and a live GET /v1/models through the gateway
    reaches the provider with the bound key."""
    bind(daemon, provider)
    done, report = run_check(agent, tmp_path)
    found = rows(report)
    assert done.returncode == 0, done.stdout
    assert found["key"]["detail"] == f"binding api_key/{provider}/default"
    assert found["route"]["ok"] is True
    assert found["route"]["detail"] == (
        f"{provider} through the gateway: GET /v1/gateway/{provider}/v1/models → HTTP 200"
    )
    [probe] = [seen for seen in fake.seen if seen.path == "/v1/models"]
    assert REAL_KEY in str(probe.headers)


def test_no_key_anywhere_fails_with_the_fix(daemon: DaemonInfo, tmp_path: Path) -> None:
    """No binding, no key variable, no login file: key "none", exit 1, and the command that
    binds a key."""
    done, report = run_check("claude", tmp_path)
    found = rows(report)
    assert done.returncode == 1
    assert report["ok"] is False
    assert found["key"]["ok"] is False
    assert found["key"]["detail"] == "no anthropic key found"
    assert "aileron binding add api_key/anthropic/default" in found["key"]["fix"]
    assert found["mcp"]["ok"] is True  # the rest is still checked
    assert found["route"]["ok"] is None
    assert found["route"]["detail"].endswith("(no key to send)")
    # The check's session is ended, with no exit code (no agent ran).
    [session] = sessions(daemon)
    assert (session["agent"], session["exit_code"]) == ("claude", None)
    assert session["ended_at"] is not None


def test_a_missing_agent_is_reported(daemon: DaemonInfo, tmp_path: Path) -> None:
    """The agent's command not on PATH: reported with how to install it, exit 1."""
    bind(daemon, "openai", "anthropic")
    path = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    done, report = run_check("goose", tmp_path, path=path)
    found = rows(report)
    assert done.returncode == 1
    assert found["agent"]["ok"] is False
    assert found["agent"]["detail"] == "goose is not installed (not on PATH)"
    assert "install Goose" in found["agent"]["fix"]
    assert found["mcp"]["ok"] is True


def test_the_users_own_key_variable_is_the_agents_own_login(
    daemon: DaemonInfo, fake: FakeProvider, tmp_path: Path
) -> None:
    """No binding but ANTHROPIC_API_KEY in the user's environment: "agent's own login", the
    probe goes through the gateway with that key, and the key is never printed."""
    done, report = run_check("claude", tmp_path, ANTHROPIC_API_KEY=REAL_KEY)
    found = rows(report)
    assert done.returncode == 0, done.stdout
    assert found["key"]["detail"] == (
        "agent's own login: $ANTHROPIC_API_KEY in your environment (anthropic)"
    )
    assert found["route"]["ok"] is True
    assert REAL_KEY not in done.stdout + done.stderr
    assert "ais_" not in done.stdout + done.stderr


def test_a_login_file_is_the_agents_own_login(
    daemon: DaemonInfo, isolated_home: Path, tmp_path: Path
) -> None:
    """No binding, no key variable, but ~/.codex/auth.json: "agent's own login" naming it."""
    login = isolated_home / ".codex" / "auth.json"
    login.parent.mkdir()
    login.write_text("{}")
    done, report = run_check("codex", tmp_path)
    found = rows(report)
    assert done.returncode == 0, done.stdout
    assert found["key"]["detail"] == f"agent's own login: {login}"
    assert found["route"]["ok"] is None  # codex then talks to its own provider


def test_the_table_says_what_to_do(daemon: DaemonInfo, tmp_path: Path) -> None:
    """Without --json: a table with a FAIL row and a "what to do" line, exit 1."""
    bindir = tmp_path / "bin"
    standin(bindir, "codex", VERSION)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["PATH"] = f"{bindir}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(
        [script("aileron"), "launch", "codex", "--check"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == "aileron launch codex --check"
    assert any(line.split()[:2] == ["key", "FAIL"] for line in lines)
    assert "  - key: store the key where only Aileron reads it" in done.stdout
    assert lines[-1] == "not ready"


REAL_AGENTS = {"codex": REAL_CODEX, "opencode": REAL_OPENCODE}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("agent", "listed"),
    [("codex", "`codex mcp list --json`: aileron enabled"), ("opencode", "aileron")],
)
def test_the_real_agents_own_listing_sees_aileron(
    agent: str, listed: str, daemon: DaemonInfo, tmp_path: Path
) -> None:
    """The real codex and opencode list Aileron's MCP server in the launched configuration
    (opencode connects to it)."""
    real = REAL_AGENTS[agent]
    if not real.exists():
        pytest.skip(f"the real {agent} is not installed at {real}; run scripts/bootstrap")
    bind(daemon, "openai", "anthropic")
    path = f"{real.parent}{os.pathsep}{os.environ['PATH']}"
    done, report = run_check(agent, tmp_path, path=path, **OFFLINE)
    found = rows(report)
    assert found["agent"]["ok"] is True
    assert str(real.parent) in found["agent"]["detail"]
    assert found["mcp"]["detail"] == "aileron-mcp connected, 1 tool"
    assert found["listing"]["ok"] is None
    if agent == "codex":
        assert found["listing"]["detail"] == listed
    else:
        assert found["listing"]["detail"].startswith("`opencode mcp list`: ")
        assert "aileron" in found["listing"]["detail"]
        assert "connected" in found["listing"]["detail"]
    assert "ais_" not in done.stdout


@pytest.mark.parametrize(
    ("argv", "check", "as_json", "agent_args"),
    [
        (["claude", "--check"], True, False, []),
        (["--check", "claude", "--", "-p", "hi"], True, False, ["-p", "hi"]),
        (["codex", "--check", "--json", "--", "exec", "hi"], True, True, ["exec", "hi"]),
        (["codex", "exec", "--check"], False, False, ["exec", "--check"]),
        (["claude", "--", "-p", "hi"], False, False, ["-p", "hi"]),
    ],
)
def test_check_flags_after_the_agent_are_aileron_s(
    argv: list[str], check: bool, as_json: bool, agent_args: list[str]
) -> None:
    """--check/--json right after AGENT are Aileron's; words after the agent's own are its."""
    import argparse

    from aileron_cli.cli import launch

    parser = argparse.ArgumentParser()
    launch.register(parser.add_subparsers())
    args = parser.parse_args(["launch", *argv])
    launch._take_own_flags(args)
    assert (args.check, args.json, args.agent_args) == (check, as_json, agent_args)
