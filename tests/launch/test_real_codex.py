"""The real Codex CLI (npm `@openai/codex`, installed by scripts/bootstrap) accepts the wiring."""

from __future__ import annotations

import json
import os
import subprocess
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
