"""`aileron launch` on the host, with recording stand-ins for the agents and a real daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import admin_http, aileron, script
from launch.support import (
    KILLS_ITSELF,
    TRAPS,
    launch_env,
    mentions,
    only_session,
    read_record,
    sessions,
    standin,
    start_launch,
    wait_for,
)

from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

EXTRA = ("--verbose", "hello world")


def _run(agent: str, tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run `aileron launch AGENT -- EXTRA…` from a work dir with a stand-in AGENT on PATH."""
    bindir, record, workdir = tmp_path / "bin", tmp_path / "record.json", tmp_path / "work dir"
    workdir.mkdir()
    standin(bindir, agent)
    done = subprocess.run(
        [script("aileron"), "launch", agent, "--", *EXTRA],
        env=launch_env(bindir, record, **env),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, record


def _mcp_env(info: DaemonInfo, record: dict[str, Any]) -> dict[str, str]:
    env = record["env"]
    return {
        "AILERON_URL": info.api_url,
        "AILERON_TOKEN": env["AILERON_TOKEN"],
        "AILERON_SESSION_ID": env["AILERON_SESSION_ID"],
    }


def _check_claude(info: DaemonInfo, record: dict[str, Any], mcp: str) -> None:
    flag, *rest = record["argv"][1:]
    config = Path(flag.removeprefix("--mcp-config="))
    # A file in the session's private directory (its content: test_agent_environment.py),
    # gone with the session.
    assert flag.startswith("--mcp-config=/")
    assert (config.name, config.parent.name[:16]) == ("claude-mcp.json", "aileron-session-")
    assert not config.parent.exists()
    assert rest == ["--allowedTools=mcp__aileron", *EXTRA]
    env = record["env"]
    assert env["ANTHROPIC_BASE_URL"] == f"{info.api_url}/gateway/anthropic"
    assert env["ANTHROPIC_CUSTOM_HEADERS"] == f"X-Aileron-Session-Token: {env['AILERON_TOKEN']}"


def _check_codex(info: DaemonInfo, record: dict[str, Any], mcp: str) -> None:
    overrides = [
        f'mcp_servers.aileron.command="{mcp}"',
        "mcp_servers.aileron.args=[]",
        "mcp_servers.aileron.env={}",
        'mcp_servers.aileron.env_vars=["AILERON_URL","AILERON_TOKEN","AILERON_SESSION_ID"]',
        'mcp_servers.aileron.default_tools_approval_mode="approve"',
        "mcp_servers.aileron.required=true",
    ]
    expected = [arg for override in overrides for arg in ("-c", override)]
    assert record["argv"][1:] == [*expected, *EXTRA]
    # No OpenAI key in the vault: codex's own LLM set-up is left alone.
    assert "OPENAI_BASE_URL" not in record["env"]
    assert not any("model_provider" in arg for arg in record["argv"])


def _check_goose(info: DaemonInfo, record: dict[str, Any], mcp: str) -> None:
    # goose passes its own environment (with the session variables) to the extension.
    assert record["argv"][1:] == ["session", "--with-extension", mcp, *EXTRA]


def _check_opencode(info: DaemonInfo, record: dict[str, Any], mcp: str) -> None:
    assert record["argv"][1:] == list(EXTRA)
    config = json.loads(record["env"]["OPENCODE_CONFIG_CONTENT"])
    assert config == {
        "mcp": {
            "aileron": {
                "type": "local",
                "command": [mcp],
                "environment": _mcp_env(info, record),
                "enabled": True,
            }
        },
        "permission": {"aileron_*": "allow"},
    }


CHECKS = {
    "claude": _check_claude,
    "codex": _check_codex,
    "goose": _check_goose,
    "opencode": _check_opencode,
}


@pytest.mark.parametrize("agent", sorted(CHECKS))
def test_agent_gets_session_wiring_and_exit_code(
    agent: str, real_daemon: DaemonInfo, tmp_path: Path
) -> None:
    """Each agent runs in the launch cwd with aileron-mcp wired in by its own flags, a session
    token (never the master token), its gateway URL; its exit code ends the session and is ours."""
    done, record_path = _run(agent, tmp_path)
    assert done.returncode == 42, done.stderr
    record = read_record(record_path)
    env = record["env"]
    session = only_session(real_daemon)
    assert env["AILERON_SESSION_ID"] == session["id"]
    assert env["AILERON_TOKEN"].startswith("ais_")
    assert env["AILERON_URL"] == real_daemon.api_url
    assert mentions(record, real_daemon.token) == []
    assert Path(record["argv"][0]) == tmp_path / "bin" / agent
    assert Path(record["cwd"]).resolve() == (tmp_path / "work dir").resolve()
    CHECKS[agent](real_daemon, record, script("aileron-mcp"))
    assert (session["agent"], session["state"], session["exit_code"]) == (agent, "ended", 42)
    assert Path(session["working_dir"]).resolve() == (tmp_path / "work dir").resolve()


def test_cli_override_with_master_token_stays_away_from_the_agent(
    real_daemon: DaemonInfo, tmp_path: Path
) -> None:
    """With AILERON_API_URL + AILERON_API_SOCKET + AILERON_TOKEN (the master token) set, launch
    uses them to reach the daemon, and the agent sees none: no AILERON_API_URL or
    AILERON_API_SOCKET, and AILERON_TOKEN is the session's."""
    done, record_path = _run(
        "codex",
        tmp_path,
        AILERON_API_URL=real_daemon.api_url,
        AILERON_API_SOCKET=str(real_daemon.socket),
        AILERON_TOKEN=real_daemon.token,
        MY_COPY=f"token={real_daemon.token}",
    )
    assert done.returncode == 42, done.stderr
    record = read_record(record_path)
    assert "AILERON_API_URL" not in record["env"]
    assert "AILERON_API_SOCKET" not in record["env"]
    assert "MY_COPY" not in record["env"]
    assert record["env"]["AILERON_TOKEN"].startswith("ais_")
    assert mentions(record, real_daemon.token) == []
    assert only_session(real_daemon)["exit_code"] == 42


def test_master_token_as_agent_argument_is_refused(real_daemon: DaemonInfo, tmp_path: Path) -> None:
    """A master token among the agent's arguments is refused: the agent never runs and the
    session ends with a null exit code."""
    bindir, record = tmp_path / "bin", tmp_path / "record.json"
    standin(bindir, "codex")
    done = aileron("launch", "codex", "--", real_daemon.token, env=launch_env(bindir, record))
    assert done.returncode == 1
    assert done.stderr.startswith("aileron: error: refusing to give the daemon's master token")
    assert real_daemon.token not in done.stderr
    assert not record.exists()
    session = only_session(real_daemon)
    assert (session["state"], session["exit_code"]) == ("ended", None)


def test_unknown_agent_fails_before_anything_starts(layout: Layout, tmp_path: Path) -> None:
    """An unknown agent is one `aileron: error:` line naming the known agents, exit 1, and no
    daemon is started."""
    done = aileron("launch", "cursor")
    assert done.returncode == 1
    assert done.stderr == (
        "aileron: error: unknown agent 'cursor' — known agents: claude, codex, goose, opencode\n"
    )
    assert not layout.daemon_json.exists()


def test_missing_agent_binary_says_how_to_install_it(layout: Layout, tmp_path: Path) -> None:
    """An agent whose command is not on PATH fails with how to install it, exit 1, before any
    daemon starts."""
    env = dict(os.environ, PATH=str(tmp_path))  # nothing there
    done = aileron("launch", "codex", env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("aileron: error: codex (Codex CLI) is not on PATH")
    assert "npm install -g @openai/codex" in done.stderr
    assert done.stderr.count("\n") == 1
    assert not layout.daemon_json.exists()


def test_sandbox_options_without_a_sandbox_are_a_usage_error(
    real_daemon: DaemonInfo, tmp_path: Path
) -> None:
    """--image or --sandbox-build on a host launch is a usage error (exit 2): no session, no
    agent."""
    bindir, record = tmp_path / "bin", tmp_path / "record.json"
    standin(bindir, "codex")
    for option in ("--image=some/image", "--sandbox-build=never"):
        done = aileron("launch", option, "codex", env=launch_env(bindir, record))
        assert done.returncode == 2, done.stderr
        assert "only apply to a sandboxed launch" in done.stderr
    assert not record.exists()
    assert sessions(real_daemon) == []


def test_bad_sandbox_value_is_a_usage_error(layout: Layout) -> None:
    """A `--sandbox` value outside off|auto|docker|podman is a usage error (exit 2)."""
    done = aileron("launch", "--sandbox=vm", "codex")
    assert done.returncode == 2
    assert "invalid choice: 'vm'" in done.stderr
    assert not layout.daemon_json.exists()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 7), (signal.SIGINT, 3)])
def test_signals_are_forwarded_to_the_agent(
    signum: signal.Signals, code: int, real_daemon: DaemonInfo, tmp_path: Path
) -> None:
    """SIGTERM/SIGINT sent to aileron reach the agent; its exit code is ours and the session's."""
    bindir, record, workdir = tmp_path / "bin", tmp_path / "record.json", tmp_path
    standin(bindir, "claude", TRAPS)
    proc = start_launch("claude", env=launch_env(bindir, record), cwd=workdir)
    wait_for(record, proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    session = only_session(real_daemon)
    assert (session["state"], session["exit_code"]) == ("ended", code)


def test_agent_killed_by_a_signal_exits_128_plus_n(real_daemon: DaemonInfo, tmp_path: Path) -> None:
    """An agent that dies by SIGKILL makes aileron exit 137 (128+9), recorded in the session."""
    bindir, record = tmp_path / "bin", tmp_path / "record.json"
    standin(bindir, "opencode", KILLS_ITSELF)
    done = aileron("launch", "opencode", env=launch_env(bindir, record))
    assert done.returncode == 128 + signal.SIGKILL, done.stderr
    assert only_session(real_daemon)["exit_code"] == 128 + signal.SIGKILL


def test_agent_that_cannot_be_executed_ends_the_session_with_null(
    real_daemon: DaemonInfo, tmp_path: Path
) -> None:
    """An agent command that cannot be executed is an error (exit 1) and its session is ended
    with a null exit code."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    broken = bindir / "goose"
    broken.write_text("#!/nonexistent/interpreter\n")
    broken.chmod(0o755)
    done = aileron("launch", "goose", env=launch_env(bindir, tmp_path / "record.json"))
    assert done.returncode == 1
    assert done.stderr.startswith(f"aileron: error: could not start {broken}")
    session = only_session(real_daemon)
    assert (session["state"], session["exit_code"]) == ("ended", None)


def test_a_provider_key_no_binding_uses_is_warned_about(
    real_daemon: DaemonInfo, tmp_path: Path
) -> None:
    """An OpenAI key stored with `vault put` (no binding): launch warns in one stderr line
    naming `aileron binding add`, and codex is not routed; once bound, no warning and routed."""
    with admin_http(real_daemon) as admin:
        admin.post("vault/init", json={"passphrase": "launch tests"}).raise_for_status()
        body = {"value": "sk-stored-by-vault-put", "metadata": {}}
        admin.put("vault/entries/api_key/openai/default", json=body).raise_for_status()
    done, record_path = _run("codex", tmp_path)
    assert done.returncode == 42, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "api_key/openai/default" in line]
    assert warnings == [
        "aileron: warning: the vault holds api_key/openai/default but no binding uses it, so"
        " the agent cannot use it through the gateway; bind it with"
        " `aileron binding add api_key/openai/default` (reads the key from stdin)"
    ]
    assert not any("model_provider" in arg for arg in read_record(record_path)["argv"])
    with admin_http(real_daemon) as admin:
        body = {"name": "api_key/openai/default", "value": "sk-bound"}
        admin.post("bindings", json=body).raise_for_status()
    record_path.unlink()
    (tmp_path / "work dir").rmdir()
    done, record_path = _run("codex", tmp_path)
    assert done.returncode == 42, done.stderr
    assert "warning" not in done.stderr
    assert 'model_provider="aileron"' in read_record(record_path)["argv"]
