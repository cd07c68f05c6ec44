"""Helpers for launch tests (imported as ``launch.support``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from helpers import script

from aileron_core.client import DaemonClient
from aileron_core.discovery import DaemonInfo


def _pinned_versions() -> dict[str, str]:
    """``scripts/agent-versions``: the agent CLI versions scripts/bootstrap installs."""
    text = (Path(__file__).parents[2] / "scripts" / "agent-versions").read_text()
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


_PINS = _pinned_versions()
CODEX_VERSION = _PINS["CODEX_VERSION"]
CLAUDE_VERSION = _PINS["CLAUDE_VERSION"]
OPENCODE_VERSION = _PINS["OPENCODE_VERSION"]
# Where scripts/bootstrap caches the real Codex CLI. Read when this module is imported (at
# collection), before the autouse fixture points HOME and XDG_CACHE_HOME at a temp dir.
NPM_PREFIX = Path(
    os.environ.get("AILERON_TEST_NPM_PREFIX")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aileron-tests" / "npm"
)
REAL_CODEX = NPM_PREFIX / "node_modules" / ".bin" / "codex"
REAL_CLAUDE = NPM_PREFIX / "node_modules" / ".bin" / "claude"
REAL_OPENCODE = NPM_PREFIX / "node_modules" / ".bin" / "opencode"
NPM_BIN = NPM_PREFIX / "node_modules" / ".bin"
# Keeps the real agent CLIs from phoning home (updates, telemetry, model lists).
OFFLINE = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "NO_UPDATE_NOTIFIER": "1",
}

# What every stand-in does first: write down how it was started.
_RECORD = """\
import json, os, signal, sys, time
def record():
    with open(os.environ["STANDIN_RECORD"] + ".tmp", "w") as f:
        json.dump({"argv": sys.argv, "env": dict(os.environ), "cwd": os.getcwd()}, f)
    os.replace(os.environ["STANDIN_RECORD"] + ".tmp", os.environ["STANDIN_RECORD"])
"""

EXIT_42 = "record()\nsys.exit(42)\n"
# Traps TERM (exit 7) and INT (exit 3); records only once the traps are set.
TRAPS = """\
signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
signal.signal(signal.SIGINT, lambda *_: sys.exit(3))
record()
while True:
    time.sleep(0.05)
"""
KILLS_ITSELF = "record()\nos.kill(os.getpid(), signal.SIGKILL)\n"


def standin(bindir: Path, name: str, body: str = EXIT_42) -> Path:
    """An executable ``bindir/name`` that records its argv, env and cwd, then runs ``body``."""
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / name
    path.write_text(f"#!{sys.executable}\n{_RECORD}{body}")
    path.chmod(0o755)
    return path


def launch_env(bindir: Path, record: Path, **extra: str) -> dict[str, str]:
    """The test's environment with ``bindir`` first on PATH and the record file named."""
    return dict(
        os.environ,
        PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}",
        STANDIN_RECORD=str(record),
        **extra,
    )


def read_record(record: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(record.read_text())
    return data


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    """Wait until ``path`` exists (the stand-in is ready), failing early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"aileron exited early: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def start_launch(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start `aileron launch ARGS` in a session of its own (no controlling terminal)."""
    return subprocess.Popen(
        [script("aileron"), "launch", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def sessions(info: DaemonInfo) -> list[dict[str, Any]]:
    """Every session the daemon knows, asked with the master token."""
    with DaemonClient.for_daemon(info) as client:
        found: list[dict[str, Any]] = client.get("sessions")
    return found


def only_session(info: DaemonInfo) -> dict[str, Any]:
    found = sessions(info)
    assert len(found) == 1, found
    return found[0]


def mentions(record: dict[str, Any], secret: str) -> list[str]:
    """Where ``secret`` appears in a stand-in's argv or environment."""
    places = [f"argv[{i}]" for i, arg in enumerate(record["argv"]) if secret in arg]
    places += [f"env {k}" for k, v in record["env"].items() if secret in v]
    return places


def agent_config_files(home: Path) -> dict[str, bytes]:
    """The agents' user config files under ``home``, path → bytes: compare a snapshot taken
    before a launch with one taken after. Claude Code's settings and login
    (``~/.claude/settings*.json``, ``~/.claude/.credentials.json``), codex's
    ``~/.codex/config.toml``, opencode's ``~/.config/opencode/*``. Not ``~/.claude.json``:
    claude itself rewrites that state file on every run (start-up counts, caches) —
    :func:`claude_state_has_no_aileron` checks it instead."""
    found = [
        *(home / ".claude").glob("settings*.json"),
        home / ".claude" / ".credentials.json",
        home / ".codex" / "config.toml",
    ]
    opencode = home / ".config" / "opencode"
    found += sorted(opencode.rglob("*")) if opencode.is_dir() else []
    return {str(f): f.read_bytes() for f in found if f.is_file()}


def assert_configs_untouched(before: dict[str, bytes], after: dict[str, bytes]) -> None:
    """Every config file the user had is byte-identical; a file the agent created itself
    (opencode writes a ``.gitignore`` into its config directory on every run) holds nothing
    of Aileron's."""
    assert {path: after.get(path) for path in before} == before
    for path in after.keys() - before.keys():
        assert b"aileron" not in after[path].lower(), path
        assert b"ais_" not in after[path], path


def claude_state_has_no_aileron(home: Path, before: dict[str, Any]) -> None:
    """``~/.claude.json`` still holds every key the user had, unchanged, and nothing of
    Aileron's (no MCP server, no allowed tool, no token)."""
    after = json.loads((home / ".claude.json").read_text())
    assert {key: after.get(key) for key in before} == before
    text = json.dumps(after)
    assert "aileron" not in text.lower()
    assert "ais_" not in text


def seed_agent_config_files(home: Path) -> None:
    """The user's own settings for each agent, for launch to leave byte for byte alone."""
    files = {
        ".claude.json": '{"hasCompletedOnboarding": true, "mine": 1}\n',
        ".claude/settings.json": '{"permissions": {"allow": ["Bash(ls)"]}}\n',
        ".codex/config.toml": 'model = "o3"\n',
        ".config/opencode/opencode.json": '{"$schema": "https://opencode.ai/config.json"}\n',
    }
    for name, text in files.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
