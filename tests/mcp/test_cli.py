"""The `aileron-mcp` command's surface, its settings, and `mcp:setup`'s config snippets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

import pytest
import yaml  # type: ignore[import-untyped]
from helpers import script

from aileron_core.errors import ConfigError
from aileron_mcp.__about__ import __version__
from aileron_mcp.config import api_url, settings_from_env
from aileron_mcp.setup import AGENTS, snippet

GOOD_ENV = {
    "AILERON_URL": "http://127.0.0.1:8123",
    "AILERON_TOKEN": "ais_session-token",
    "AILERON_SESSION_ID": "01SESSION",
}


def run_mcp(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AILERON_")}
    return subprocess.run(
        [script("aileron-mcp"), *args],
        env=base | env,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_and_help() -> None:
    """--version prints the version; --help documents the environment; both exit 0."""
    version = run_mcp("--version", env={})
    assert (version.returncode, version.stdout.strip()) == (0, f"aileron-mcp {__version__}")
    shown = run_mcp("--help", env={})
    assert shown.returncode == 0
    for name in ("AILERON_URL", "AILERON_TOKEN", "AILERON_SESSION_ID", "session token"):
        assert name in shown.stdout


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "AILERON_URL, AILERON_TOKEN, AILERON_SESSION_ID are not set"),
        (GOOD_ENV | {"AILERON_SESSION_ID": " "}, "AILERON_SESSION_ID is not set"),
        (GOOD_ENV | {"AILERON_TOKEN": "aim_master"}, "is the daemon's master token"),
        (GOOD_ENV | {"AILERON_URL": "127.0.0.1:8123"}, "AILERON_URL must be an http(s) URL"),
    ],
)
def test_bad_environment_is_one_line_on_stderr_and_exit_1(
    env: dict[str, str], expected: str
) -> None:
    """Missing or wrong settings: one `aileron-mcp: error:` line, exit 1, no MCP on stdout."""
    done = run_mcp(env=env)
    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("aileron-mcp: error: ")
    assert expected in line


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8123",
        "http://127.0.0.1:8123/",
        "http://127.0.0.1:8123/v1",
        "http://127.0.0.1:8123/v1/",
    ],
)
def test_the_daemon_url_is_accepted_with_or_without_v1(url: str) -> None:
    """AILERON_URL is normalised to the API base ending in /v1."""
    assert api_url(url) == "http://127.0.0.1:8123/v1"


def test_settings_come_from_the_environment() -> None:
    """The settings hold the URL, session token and id; the poll interval is optional."""
    settings = settings_from_env(GOOD_ENV | {"AILERON_MCP_POLL_SECONDS": "0"})
    assert settings.api_url == "http://127.0.0.1:8123/v1"
    assert (settings.token, settings.session_id, settings.poll_seconds) == (
        "ais_session-token",
        "01SESSION",
        0.0,
    )
    assert "ais_session-token" not in repr(settings)
    assert settings_from_env(GOOD_ENV).poll_seconds == 2.0
    for bad in ("soon", "-1", "nan"):
        with pytest.raises(ConfigError, match="AILERON_MCP_POLL_SECONDS"):
            settings_from_env(GOOD_ENV | {"AILERON_MCP_POLL_SECONDS": bad})


def env_placeholders(agent: str, text: str) -> dict[str, str]:
    """The command the host starts and the environment it hands over, per host format."""
    if agent == "claude":
        entry = json.loads(text)["mcpServers"]["aileron"]
        return {"command": entry["command"], **entry["env"]}
    if agent == "codex":
        entry = tomllib.loads(text)["mcp_servers"]["aileron"]
        return {"command": entry["command"], **{n: "(forwarded)" for n in entry["env_vars"]}}
    if agent == "goose":
        entry = yaml.safe_load(text)["extensions"]["aileron"]
        assert entry["type"] == "stdio" and entry["enabled"] is True
        return {"command": entry["cmd"], **{n: "(forwarded)" for n in entry["env_keys"]}}
    entry = json.loads(text)["mcp"]["aileron"]
    assert entry["type"] == "local"
    return {"command": entry["command"][0], **entry["environment"]}


@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_setup_snippets_start_aileron_mcp_with_env_placeholders(agent: str) -> None:
    """Each host's snippet parses, starts the given aileron-mcp and passes the three variables."""
    command = "/opt/with space/aileron-mcp"
    wired = env_placeholders(agent, snippet(agent, command))
    assert wired.pop("command") == command
    assert set(wired) == {"AILERON_URL", "AILERON_TOKEN", "AILERON_SESSION_ID"}
    for name, value in wired.items():
        assert value in ("(forwarded)", "${" + name + "}", "{env:" + name + "}")


def test_setup_module_prints_the_snippet_and_where_it_goes() -> None:
    """`python -m aileron_mcp.setup codex` prints the snippet on stdout, the advice on stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "aileron_mcp.setup", "codex"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    entry = tomllib.loads(done.stdout)["mcp_servers"]["aileron"]
    assert entry["command"] == script("aileron-mcp")
    assert "~/.codex/config.toml" in done.stderr and "session token" in done.stderr
    refused = subprocess.run(
        [sys.executable, "-m", "aileron_mcp.setup", "cursor"], capture_output=True, text=True
    )
    assert refused.returncode == 2
