"""The real Codex CLI (npm `@openai/codex`, installed by scripts/bootstrap) accepts the wiring."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import aileron, script
from launch.support import CODEX_VERSION, REAL_CODEX, only_session, sessions

from aileron_core.discovery import DaemonInfo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not REAL_CODEX.exists(),
        reason=f"the real codex is not installed at {REAL_CODEX}; run scripts/bootstrap",
    ),
]

USER_CONFIG = b"""\
# the user's own codex settings: launch must leave this file byte for byte as it is
model = "o3"

[mcp_servers.mine]
command = "/bin/true"
args = ["--quiet"]
"""


def _env() -> dict[str, str]:
    return dict(os.environ, PATH=f"{REAL_CODEX.parent}{os.pathsep}{os.environ['PATH']}")


def test_real_codex_version_is_the_pinned_one() -> None:
    """The cached codex is the version ADR 0007 checked the wiring against."""
    done = subprocess.run(
        [str(REAL_CODEX), "--version"], capture_output=True, text=True, check=True, env=_env()
    )
    assert done.stdout.strip() == f"codex-cli {CODEX_VERSION}"


def test_real_codex_lists_aileron_with_the_session_env(
    real_daemon: DaemonInfo, isolated_home: Path
) -> None:
    """`aileron launch codex -- mcp list --json`: codex shows the user's server and `aileron`
    (aileron-mcp, forwarding the session's three variables by name: no token in its config);
    config.toml is untouched; exit 0 ends the session with 0."""
    config = isolated_home / ".codex" / "config.toml"
    config.parent.mkdir()
    config.write_bytes(USER_CONFIG)
    done = aileron("launch", "codex", "--", "mcp", "list", "--json", env=_env())
    assert done.returncode == 0, done.stderr
    servers = {server["name"]: server for server in json.loads(done.stdout)}
    assert sorted(servers) == ["aileron", "mine"]
    transport = servers["aileron"]["transport"]
    session = only_session(real_daemon)
    assert transport["type"] == "stdio"
    assert transport["command"] == script("aileron-mcp")
    assert transport["args"] == []
    assert transport["env"] in (None, {})
    assert transport["env_vars"] == ["AILERON_URL", "AILERON_TOKEN", "AILERON_SESSION_ID"]
    assert "ais_" not in done.stdout
    assert real_daemon.token not in done.stdout
    assert config.read_bytes() == USER_CONFIG
    assert (session["agent"], session["state"], session["exit_code"]) == ("codex", "ended", 0)


def test_real_codex_failure_code_ends_the_session(
    real_daemon: DaemonInfo, isolated_home: Path
) -> None:
    """A codex command that fails (`mcp get` of an unknown server, exit 1) makes launch exit 1
    and ends the session with 1."""
    done = aileron("launch", "codex", "--", "mcp", "get", "no-such-server", env=_env())
    assert done.returncode == 1
    assert "No MCP server named 'no-such-server'" in done.stderr
    [session] = sessions(real_daemon)
    assert (session["state"], session["exit_code"]) == ("ended", 1)


PASSPHRASE = "correct horse battery staple"  # noqa: S105 (a test passphrase)
# A model provider nobody listens on: codex starts its MCP servers, then retries the model.
NO_MODEL = {
    "model_provider": '"nowhere"',
    "model_providers.nowhere.name": '"nowhere"',
    "model_providers.nowhere.base_url": '"http://127.0.0.1:1/v1"',
    "model_providers.nowhere.env_key": '"OPENAI_API_KEY"',
    "model_providers.nowhere.wire_api": '"responses"',
}


def _proc(pid: str, what: str) -> list[str]:
    raw = Path(f"/proc/{pid}/{what}").read_bytes().decode("utf-8", "replace")
    return [part for part in raw.split("\0") if part]


def _mcp_servers(mcp: str) -> list[str]:
    """The pids of running aileron-mcp processes (the console script's interpreter)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if mcp in _proc(pid, "cmdline"):
                found.append(pid)
        except OSError:
            continue
    return found


def test_real_codex_starts_aileron_mcp_with_the_session_from_its_env(
    real_daemon: DaemonInfo, isolated_home: Path
) -> None:
    """Under `aileron launch codex -- exec …` the aileron-mcp codex starts gets the session's
    three variables through env_vars (no other Aileron variable, no passphrase), and no
    process's cmdline holds the session token or the master token."""
    mcp = script("aileron-mcp")
    before = set(_mcp_servers(mcp))
    overrides = [arg for key, value in NO_MODEL.items() for arg in ("-c", f"{key}={value}")]
    env = dict(_env(), AILERON_VAULT_PASSPHRASE=PASSPHRASE, OPENAI_API_KEY="sk-unused")
    proc = subprocess.Popen(
        [script("aileron"), "launch", "codex", "--", "exec", "--skip-git-repo-check"]
        + ["-s", "read-only", *overrides, "-m", "m", "say hi"],
        env=env,
        cwd=isolated_home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        server = None
        while server is None:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "codex never started aileron-mcp"
            started = [pid for pid in _mcp_servers(mcp) if pid not in before]
            server = started[0] if started else None
            time.sleep(0.1)
        time.sleep(0.5)  # let the tree settle: every process of the session is up
        session = only_session(real_daemon)
        server_env = dict(e.split("=", 1) for e in _proc(server, "environ") if "=" in e)
        token = server_env["AILERON_TOKEN"]
        assert sorted(k for k in server_env if k.startswith("AILERON_")) == [
            "AILERON_SESSION_ID",
            "AILERON_TOKEN",
            "AILERON_URL",
        ]
        assert server_env["AILERON_SESSION_ID"] == session["id"]
        assert server_env["AILERON_URL"] == real_daemon.api_url
        assert token.startswith("ais_")
        assert PASSPHRASE not in "\0".join(server_env.values())
        leaks = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                line = " ".join(_proc(pid, "cmdline"))
            except OSError:
                continue
            if token in line or real_daemon.token in line:
                leaks.append(line)
        assert leaks == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert only_session(real_daemon)["state"] == "ended"
