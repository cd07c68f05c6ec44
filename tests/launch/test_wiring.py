"""The per-agent wiring and the launch environment, in-process."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aileron_cli.cli.launch import AGENT_NAMES
from aileron_cli.launch import (
    AGENTS,
    AgentSetupInvalid,
    LaunchContext,
    McpAdapterMissing,
    UnknownAgent,
    agent_named,
    llm_base_url,
)
from aileron_cli.launch.agents import (
    toml_string,
    wire_claude,
    wire_codex,
    wire_goose,
    wire_opencode,
)
from aileron_cli.launch.environment import agent_environment, session_variables
from aileron_cli.launch.host import find_mcp_adapter, unbound_key_warning
from aileron_cli.launch.routing import Kind, Routes, llm_root_url

API = "http://127.0.0.1:4321/v1"
MCP = "/opt/aileron/bin/aileron-mcp"
TOKEN = "ais_session-token"  # noqa: S105
PRIVATE = "/run/user/1000/aileron-session-x"


def context(
    *args: str,
    env: dict[str, str] | None = None,
    mcp: str = MCP,
    keyed: frozenset[Kind] = frozenset(),
) -> LaunchContext:
    return LaunchContext(
        agent_path="/usr/bin/agent",
        mcp_command=mcp,
        api_url=API,
        session_id="01SESSION",
        session_token=TOKEN,
        args=args,
        env=env or {},
        private_dir=PRIVATE,
        routes=Routes.builtin(keyed),
    )


def test_cli_lists_exactly_the_declared_agents() -> None:
    """The agent names in `aileron launch --help` are the agents the launch table declares."""
    assert AGENT_NAMES == tuple(sorted(AGENTS))


def test_unknown_agent_names_the_known_ones() -> None:
    """Looking up an unknown agent raises UnknownAgent listing every known agent."""
    with pytest.raises(UnknownAgent) as caught:
        agent_named("aider")
    assert (
        str(caught.value) == "unknown agent 'aider' — known agents: claude, codex, goose, opencode"
    )


def test_gateway_base_urls() -> None:
    """OpenAI's base URL keeps the SDK's /v1; Anthropic's SDK adds /v1 itself."""
    assert llm_base_url(API, "openai") == f"{API}/gateway/openai/v1"
    assert llm_base_url(API + "/", "anthropic") == f"{API}/gateway/anthropic"


@given(st.text())
def test_toml_string_round_trips(value: str) -> None:
    """Any text quoted by toml_string parses back to itself as a TOML value (codex -c syntax)."""
    assert tomllib.loads(f"v = {toml_string(value)}")["v"] == value


def test_claude_keeps_user_headers_and_replaces_a_stale_session_header() -> None:
    """ANTHROPIC_CUSTOM_HEADERS keeps the user's own headers and carries exactly one session
    token header; the user's prompt stays a separate argument after --mcp-config=…"""
    env = {"ANTHROPIC_CUSTOM_HEADERS": "X-Team: blue\nx-aileron-session-token: ais_old"}
    invocation = wire_claude(context("-p", "hi", env=env))
    assert invocation.env["ANTHROPIC_CUSTOM_HEADERS"] == (
        f"X-Team: blue\nX-Aileron-Session-Token: {TOKEN}"
    )
    assert invocation.argv[1] == f"--mcp-config={PRIVATE}/claude-mcp.json"
    assert invocation.argv[2:] == ("--allowedTools=mcp__aileron", "-p", "hi")


def test_claude_mcp_config_is_a_private_file_with_the_session_variables() -> None:
    """Claude's MCP config is a file in the session's private directory naming aileron-mcp with
    the session's URL, token and id; nothing else is written."""
    invocation = wire_claude(context())
    assert list(invocation.files) == [f"{PRIVATE}/claude-mcp.json"]
    config = json.loads(invocation.files[f"{PRIVATE}/claude-mcp.json"])
    assert config == {
        "mcpServers": {
            "aileron": {
                "command": MCP,
                "args": [],
                "env": {
                    "AILERON_URL": API,
                    "AILERON_TOKEN": TOKEN,
                    "AILERON_SESSION_ID": "01SESSION",
                },
            }
        }
    }


def test_codex_forwards_the_session_variables_by_name() -> None:
    """Codex gets aileron-mcp with `env_vars` naming the three session variables (and an empty
    `env`, so a same-named server of the user's lends no values)."""
    invocation = AGENTS["codex"].wire(context("exec", "hi"))
    overrides = [invocation.argv[i + 1] for i, arg in enumerate(invocation.argv) if arg == "-c"]
    assert overrides == [
        f'mcp_servers.aileron.command="{MCP}"',
        "mcp_servers.aileron.args=[]",
        "mcp_servers.aileron.env={}",
        'mcp_servers.aileron.env_vars=["AILERON_URL","AILERON_TOKEN","AILERON_SESSION_ID"]',
        'mcp_servers.aileron.default_tools_approval_mode="approve"',
        "mcp_servers.aileron.required=true",
    ]
    assert invocation.argv[-2:] == ("exec", "hi")


@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_no_agent_gets_the_session_token_as_an_argument(agent: str) -> None:
    """No wiring puts the session token in the agent's argv, codex routed through the gateway
    included."""
    ctx = attrs.evolve(context("--x"), routes=Routes.builtin({"openai", "anthropic"}))
    invocation = AGENTS[agent].wire(ctx)
    assert not [arg for arg in invocation.argv if TOKEN in arg]


EXTENSION = MCP


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ("session", "--with-extension", EXTENSION)),
        (("--name", "x"), ("session", "--with-extension", EXTENSION, "--name", "x")),
        (("session", "-r"), ("session", "--with-extension", EXTENSION, "-r")),
        (("s",), ("s", "--with-extension", EXTENSION)),
        (("run", "-t", "hi"), ("run", "--with-extension", EXTENSION, "-t", "hi")),
        (("info", "-v"), ("info", "-v")),
        (("--version",), ("--version",)),
    ],
)
def test_goose_extension_goes_where_goose_starts_a_session(
    args: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    """--with-extension follows session/s/run (`session` when none is named); other goose
    subcommands and top-level flags run as given."""
    assert wire_goose(context(*args)).argv[1:] == expected


def test_goose_refuses_words_it_would_split() -> None:
    """An aileron-mcp path with a space cannot be put in goose's --with-extension; the error
    says so instead of launching a goose that cannot start the server."""
    with pytest.raises(AgentSetupInvalid, match="install Aileron under a path without spaces"):
        wire_goose(context(mcp="/home/J Doe/bin/aileron-mcp"))


def test_opencode_extends_an_inline_config_the_user_already_set() -> None:
    """A user's OPENCODE_CONFIG_CONTENT keeps its settings and MCP servers; mcp.aileron is added."""
    mine = {"model": "x/y", "mcp": {"mine": {"type": "local", "command": ["/bin/true"]}}}
    invocation = wire_opencode(context(env={"OPENCODE_CONFIG_CONTENT": json.dumps(mine)}))
    config = json.loads(invocation.env["OPENCODE_CONFIG_CONTENT"])
    assert config["model"] == "x/y"
    assert sorted(config["mcp"]) == ["aileron", "mine"]
    assert config["mcp"]["aileron"]["command"] == [MCP]


@pytest.mark.parametrize("bad", ["{not json", "[1, 2]", '{"mcp": []}'])
def test_opencode_refuses_an_inline_config_it_cannot_extend(bad: str) -> None:
    """An OPENCODE_CONFIG_CONTENT that is not a JSON config object is reported, not overwritten."""
    with pytest.raises(AgentSetupInvalid, match="OPENCODE_CONFIG_CONTENT"):
        wire_opencode(context(env={"OPENCODE_CONFIG_CONTENT": bad}))


def test_agent_environment_drops_every_aileron_variable_and_any_master_token() -> None:
    """The agent keeps the user's variables but no AILERON_* one (passphrase, home, API URL,
    inherited token, debug switch) and no value containing the master token; the session
    variables are set."""
    master = "aim_master"  # noqa: S105
    inherited = {
        "HOME": "/home/u",
        "AILERON_API_URL": "http://127.0.0.1:9/v1",
        "AILERON_TOKEN": master,
        "STASHED": f"x{master}y",
        "AILERON_SESSION_ID": "stale",
        "AILERON_VAULT_PASSPHRASE": "correct horse",
        "AILERON_VAULT_NEW_PASSPHRASE": "battery staple",
        "AILERON_HOME": "/home/u/.aileron",
        "AILERON_DEBUG": "1",
        "AILERON_MCP_POLL_SECONDS": "0",
        "aileron_home": "lower case is not ours",
    }
    env = agent_environment(
        inherited, session_variables(API, "01SESSION", TOKEN), secrets=[master, ""]
    )
    assert env == {
        "HOME": "/home/u",
        "aileron_home": "lower case is not ours",
        "AILERON_URL": API,
        "AILERON_TOKEN": TOKEN,
        "AILERON_SESSION_ID": "01SESSION",
    }


def test_mcp_adapter_is_found_beside_the_interpreter_first(tmp_path: Path) -> None:
    """aileron-mcp beside the running interpreter wins over one on PATH."""
    (tmp_path / "venv").mkdir()
    (tmp_path / "path").mkdir()
    for where in ("venv", "path"):
        adapter = tmp_path / where / "aileron-mcp"
        adapter.write_text("#!/bin/sh\n")
        adapter.chmod(0o755)
    env = {"PATH": str(tmp_path / "path")}
    found = find_mcp_adapter(env, interpreter=str(tmp_path / "venv" / "python"))
    assert found == str(tmp_path / "venv" / "aileron-mcp")
    found = find_mcp_adapter(env, interpreter=str(tmp_path / "elsewhere" / "python"))
    assert found == str(tmp_path / "path" / "aileron-mcp")


def test_missing_mcp_adapter_is_a_clear_error(tmp_path: Path) -> None:
    """With aileron-mcp neither beside the interpreter nor on PATH, launch names the fix."""
    with pytest.raises(McpAdapterMissing) as caught:
        find_mcp_adapter({"PATH": str(tmp_path)}, interpreter=str(tmp_path / "python"))
    assert "pipx install aileron-cli" in str(caught.value)
    assert str(tmp_path / "python") in str(caught.value)


def test_claude_with_the_anthropic_key_in_aileron_uses_the_session_token_as_its_key() -> None:
    """Aileron holding the Anthropic key: claude's ANTHROPIC_AUTH_TOKEN is the session token
    and the user's own ANTHROPIC_API_KEY is dropped; without it, neither is set or touched."""
    env = {"ANTHROPIC_API_KEY": "sk-users-own"}
    keyed = wire_claude(context(env=env, keyed=frozenset({"anthropic"}))).env
    assert keyed["ANTHROPIC_AUTH_TOKEN"] == TOKEN
    assert "ANTHROPIC_API_KEY" not in keyed
    unkeyed = wire_claude(context(env=env, keyed=frozenset({"openai"}))).env
    assert "ANTHROPIC_AUTH_TOKEN" not in unkeyed
    assert unkeyed["ANTHROPIC_API_KEY"] == "sk-users-own"


def test_claude_allows_aileron_tools_beside_the_users_own_list() -> None:
    """--allowedTools=mcp__aileron is added as one `=` argument before the user's; the user's
    own --allowedTools and prompt follow unchanged (claude adds repeated lists together)."""
    argv = wire_claude(context("--allowedTools", "Bash(git *)", "Edit", "-p", "hi")).argv
    assert argv[2:] == (
        "--allowedTools=mcp__aileron",
        *("--allowedTools", "Bash(git *)", "Edit", "-p", "hi"),
    )
    assert [a for a in argv if "mcp__" in a] == ["--allowedTools=mcp__aileron"]


def test_codex_approves_only_aileron_tools() -> None:
    """Codex gets default_tools_approval_mode="approve" for the aileron server, and no other
    approval or sandbox setting."""
    argv = wire_codex(context("exec", "hi")).argv
    overrides = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-c"]
    approvals = [o for o in overrides if "approv" in o or "sandbox" in o]
    assert approvals == ['mcp_servers.aileron.default_tools_approval_mode="approve"']


def test_unbound_key_warning_is_one_line_naming_the_command() -> None:
    """The unbound-key warning is a single line naming the path and `aileron binding add`."""
    line = unbound_key_warning("api_key/openai/default")
    assert "\n" not in line
    assert line.startswith("aileron: warning: the vault holds api_key/openai/default")
    assert "`aileron binding add api_key/openai/default`" in line


def test_opencode_allows_only_aileron_tools_and_keeps_the_users_permissions() -> None:
    """permission gains "aileron_*": "allow" and nothing else: a user's per-tool rules stay,
    a user's single permission stays theirs for every other tool."""

    def permission(mine: object) -> object:
        env = {"OPENCODE_CONFIG_CONTENT": json.dumps({"permission": mine})}
        return json.loads(wire_opencode(context(env=env)).env["OPENCODE_CONFIG_CONTENT"])[
            "permission"
        ]

    assert permission({"bash": "ask"}) == {"bash": "ask", "aileron_*": "allow"}
    assert permission("ask") == {"*": "ask", "aileron_*": "allow"}
    assert json.loads(wire_opencode(context()).env["OPENCODE_CONFIG_CONTENT"])["permission"] == {
        "aileron_*": "allow"
    }


def test_opencode_sends_keyed_providers_through_the_gateway() -> None:
    """With Aileron holding the Anthropic key, opencode's anthropic provider gets the gateway's
    /v1 base URL and the session token as its key (the user's other options kept); a provider
    whose key Aileron does not hold is left alone."""
    mine = {"provider": {"anthropic": {"options": {"timeout": 5}}, "openai": {"name": "o"}}}
    env = {"OPENCODE_CONFIG_CONTENT": json.dumps(mine)}
    ctx = context(env=env, keyed=frozenset({"anthropic"}))
    config = json.loads(wire_opencode(ctx).env["OPENCODE_CONFIG_CONTENT"])
    assert config["provider"]["anthropic"]["options"] == {
        "timeout": 5,
        "baseURL": f"{API}/gateway/anthropic/v1",
        "apiKey": TOKEN,
    }
    assert config["provider"]["openai"] == {"name": "o"}
    unkeyed = json.loads(wire_opencode(context()).env["OPENCODE_CONFIG_CONTENT"])
    assert "provider" not in unkeyed


def test_goose_with_keys_in_aileron_talks_to_the_gateway() -> None:
    """Goose's built-in providers get the gateway as host (goose appends v1/messages or
    v1/chat/completions) and the session token as key, only for providers Aileron keys."""
    env = wire_goose(context(keyed=frozenset({"anthropic"}))).env
    assert env["ANTHROPIC_HOST"] == f"{API}/gateway/anthropic"
    assert env["ANTHROPIC_API_KEY"] == TOKEN
    assert "OPENAI_HOST" not in env and "OPENAI_API_KEY" not in env
    env = wire_goose(context(env={"OPENAI_API_KEY": "sk-own"}, keyed=frozenset({"openai"}))).env
    assert (env["OPENAI_HOST"], env["OPENAI_API_KEY"]) == (f"{API}/gateway/openai", TOKEN)
    assert "ANTHROPIC_HOST" not in wire_goose(context()).env


def test_gateway_root_and_base_urls_agree() -> None:
    """A client that appends the provider's own v1/… paths to the root reaches the same URLs as
    an SDK given the base URL."""
    assert llm_root_url(API, "openai") + "/v1" == llm_base_url(API, "openai")
    assert llm_root_url(API, "anthropic") == llm_base_url(API, "anthropic")
