"""The four agents ``aileron launch`` knows, and how each one is wired to Aileron.

Each agent is one :class:`Agent` row: its command, how to install it, and a *wiring* — a pure
function from a :class:`LaunchContext` (the session, the paths, the user's own arguments and
environment) to the :class:`Invocation` to run. Every wiring adds ``aileron-mcp`` as an MCP
server named ``aileron`` through per-invocation flags, environment or a file in the session's
private directory, so the user's own config files stay untouched. The session token never goes
in an argument (any local user reads those with ``ps``): ``aileron-mcp`` gets it from the
agent's environment or from a 0600 file. ADR 0007 records, per agent, the flags used and the
version they were checked against.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping

import attrs

from aileron_cli.launch.environment import session_variables
from aileron_cli.launch.errors import AgentSetupInvalid, UnknownAgent
from aileron_cli.launch.routing import SESSION_TOKEN_HEADER, Kind, Routes

MCP_SERVER_NAME = "aileron"
CODEX_PROVIDER = "aileron"  # the model provider codex is given when its traffic is routed


@attrs.frozen
class LaunchContext:
    """What an agent's wiring is built from."""

    agent_path: str
    """Absolute path of the agent's command."""
    mcp_command: str
    """Absolute path of ``aileron-mcp``."""
    api_url: str
    """The daemon's API base, ending in ``/v1``."""
    session_id: str
    session_token: str = attrs.field(repr=False)
    args: tuple[str, ...] = ()
    """The user's own arguments for the agent (what followed ``--``)."""
    env: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    """The agent's environment so far: the user's, scrubbed, plus the session variables."""
    routes: Routes = attrs.field(factory=Routes)
    """Per kind of LLM API, the gateway provider whose key Aileron holds and to which the
    agent's traffic of that kind goes, with the session token as its key."""
    private_dir: str = "/nonexistent"
    """A directory (0700) of this session's own, removed when it ends: where files holding the
    session token go."""

    @property
    def mcp_env(self) -> dict[str, str]:
        """The environment ``aileron-mcp`` needs: ``AILERON_URL``/``_TOKEN``/``_SESSION_ID``."""
        return session_variables(self.api_url, self.session_id, self.session_token)


@attrs.frozen
class Invocation:
    """The exact command line and complete environment of one agent run."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = attrs.field(repr=False)
    files: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    """Files to write (absolute path in the private directory → text), 0600, before the run."""


Wiring = Callable[[LaunchContext], Invocation]


@attrs.frozen
class Agent:
    """One agent ``aileron launch`` can run."""

    name: str
    command: str
    title: str
    install: str
    """How to install it, for the error when ``command`` is not on PATH."""
    wire: Wiring
    speaks: tuple[Kind, ...]
    """The kinds of LLM API the agent can be routed through the gateway with, preferred first."""


# --- Claude Code ------------------------------------------------------------------------------


def _with_header(existing: str | None, name: str, value: str) -> str:
    """``ANTHROPIC_CUSTOM_HEADERS`` (``Name: value`` lines) with ``name`` set to ``value``."""
    lines = [
        line
        for line in (existing or "").splitlines()
        if line.strip() and line.partition(":")[0].strip().lower() != name.lower()
    ]
    return "\n".join([*lines, f"{name}: {value}"])


CLAUDE_MCP_CONFIG = "claude-mcp.json"
# Every tool of the MCP server named ``aileron``, and nothing else (claude names MCP tools
# ``mcp__<server>__<tool>``; a bare ``mcp__<server>`` rule matches all of that server's).
CLAUDE_ALLOWED_TOOLS = f"mcp__{MCP_SERVER_NAME}"


def wire_claude(ctx: LaunchContext) -> Invocation:
    """``claude --mcp-config=<private dir>/claude-mcp.json --allowedTools=mcp__aileron ARGS…``;
    LLM traffic to the gateway.

    The config file (0600, in the session's private directory) holds the session variables for
    ``aileron-mcp``, so the token is in no argument. The ``=`` forms matter: both options take
    several values, so a separate argument would swallow the user's prompt. Claude adds the
    values of a repeated ``--allowedTools`` together, so the user's own list still applies;
    ``mcp__aileron`` allows Aileron's tools and nothing else, for this run only.

    The session token reaches the gateway as a custom header. When Aileron holds the Anthropic
    key it is also claude's key (``ANTHROPIC_AUTH_TOKEN``, which claude prefers to the user's
    API key and stored login and sends as ``Authorization: Bearer``), so claude needs no key or
    login of its own; otherwise the user's own API key or login stays in place.
    """
    server = {"command": ctx.mcp_command, "args": [], "env": ctx.mcp_env}
    config = json.dumps({"mcpServers": {MCP_SERVER_NAME: server}}, separators=(",", ":"))
    path = os.path.join(ctx.private_dir, CLAUDE_MCP_CONFIG)
    env = dict(ctx.env)
    env["ANTHROPIC_BASE_URL"] = ctx.routes.base_url(ctx.api_url, "anthropic")
    env["ANTHROPIC_CUSTOM_HEADERS"] = _with_header(
        ctx.env.get("ANTHROPIC_CUSTOM_HEADERS"), SESSION_TOKEN_HEADER, ctx.session_token
    )
    if "anthropic" in ctx.routes:
        env["ANTHROPIC_AUTH_TOKEN"] = ctx.session_token
        env.pop("ANTHROPIC_API_KEY", None)  # two keys: claude warns, and ours must win
    argv = (
        ctx.agent_path,
        f"--mcp-config={path}",
        f"--allowedTools={CLAUDE_ALLOWED_TOOLS}",
        *ctx.args,
    )
    return Invocation(argv, env, {path: config})


# --- Codex CLI --------------------------------------------------------------------------------


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string (what ``codex -c key=value`` parses the value as)."""
    out = ['"']
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif char < " " or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def codex_gateway_overrides(gateway: str) -> list[str]:
    """``-c`` overrides that make codex use the gateway at ``gateway`` as a Responses API
    provider authenticating with ``$AILERON_TOKEN`` (the session token)."""
    return [
        f"model_provider={toml_string(CODEX_PROVIDER)}",
        f"model_providers.{CODEX_PROVIDER}.name={toml_string('Aileron gateway')}",
        f"model_providers.{CODEX_PROVIDER}.base_url={toml_string(gateway)}",
        f"model_providers.{CODEX_PROVIDER}.env_key={toml_string('AILERON_TOKEN')}",
        f"model_providers.{CODEX_PROVIDER}.wire_api={toml_string('responses')}",
    ]


def wire_codex(ctx: LaunchContext) -> Invocation:
    """``codex -c mcp_servers.aileron.command="…" -c …env_vars=["AILERON_URL", …] ARGS…``.

    Codex starts MCP servers with a restricted environment; ``env_vars`` names the variables it
    forwards from its own, so only the *names* of the session variables are in codex's argv.
    ``-c`` is a global option, so it may precede any subcommand the user names (``exec``,
    ``mcp list`` …). ``args = []`` and ``env = {}`` are set too, so a same-named server in the
    user's ``config.toml`` cannot lend its arguments or values to ours.
    """
    prefix = f"mcp_servers.{MCP_SERVER_NAME}"
    names = ",".join(toml_string(name) for name in ctx.mcp_env)
    overrides = [
        f"{prefix}.command={toml_string(ctx.mcp_command)}",
        f"{prefix}.args=[]",
        f"{prefix}.env={{}}",
        f"{prefix}.env_vars=[{names}]",
        # Aileron's tools run without codex asking (Aileron applies its own approvals); codex
        # 0.171 otherwise fails them under approval policy "never". This server only.
        f"{prefix}.default_tools_approval_mode={toml_string('approve')}",
        # Codex starts MCP servers beside the first turn and sends the first model request
        # without the tools of a server not yet up; a required server is waited for (and one
        # that cannot start is an error rather than a session silently without Aileron).
        f"{prefix}.required=true",
    ]
    env = dict(ctx.env)
    if "openai" in ctx.routes:
        # Aileron holds the OpenAI key: codex talks to the gateway as a Responses API provider
        # that authenticates with the session token (the gateway swaps in the real key). Codex
        # ignores OPENAI_BASE_URL and its built-in provider wants a WebSocket the gateway does
        # not proxy, hence a custom provider. The two variables serve scripts the agent runs.
        gateway = ctx.routes.base_url(ctx.api_url, "openai")
        overrides += codex_gateway_overrides(gateway)
        env["OPENAI_BASE_URL"] = gateway
        env["OPENAI_API_KEY"] = ctx.session_token
    argv = [ctx.agent_path]
    for override in overrides:
        argv += ["-c", override]
    return Invocation((*argv, *ctx.args), env)


# --- Goose ------------------------------------------------------------------------------------

# goose subcommands that start an agent session and take --with-extension.
_GOOSE_SESSION_COMMANDS = ("session", "s", "run")
# Top-level flags that must stay top-level (``goose session --version`` is not a thing).
_GOOSE_TOP_LEVEL_FLAGS = ("-h", "--help", "-V", "--version")
# goose splits the extension string on whitespace (older releases) or shell-style (newer), so
# a word with whitespace, quotes or backslashes would be read differently by different goose
# versions; such words are refused rather than guessed at.
_GOOSE_UNSAFE = frozenset(" \t\n\r\v\f'\"\\")


def _goose_extension(ctx: LaunchContext) -> str:
    if _GOOSE_UNSAFE.intersection(ctx.mcp_command):
        raise AgentSetupInvalid(
            f"goose cannot be given {ctx.mcp_command!r} in --with-extension"
            " (it contains whitespace, a quote or a backslash)",
            hint="install Aileron under a path without spaces or quotes",
        )
    return ctx.mcp_command


def wire_goose(ctx: LaunchContext) -> Invocation:
    """``goose session --with-extension /path/aileron-mcp ARGS…``.

    Goose starts a stdio extension with its own environment (plus the extension's ``K=V``
    words, which would put the token in goose's argv), so ``aileron-mcp`` finds the session
    variables that launch set for goose. With a provider key in Aileron, goose's own
    provider of that name (``ANTHROPIC_HOST``/``OPENAI_HOST`` + ``…_API_KEY``) goes through
    the gateway.

    With no arguments, or arguments that start with an option, the session is ``goose
    session``; ``session``/``s``/``run`` named by the user get the flag right after them; any
    other subcommand (``configure``, ``info`` …) starts no agent session and runs as given.
    """
    extension = ["--with-extension", _goose_extension(ctx)]
    args = ctx.args
    if args and args[0] in _GOOSE_SESSION_COMMANDS:
        argv = (ctx.agent_path, args[0], *extension, *args[1:])
    elif not args or (args[0].startswith("-") and args[0] not in _GOOSE_TOP_LEVEL_FLAGS):
        argv = (ctx.agent_path, "session", *extension, *args)
    else:
        argv = (ctx.agent_path, *args)
    env = dict(ctx.env)
    # Aileron holds the key: goose's built-in provider talks to the gateway with the session
    # token as its key. Goose reads these from its environment before its config file.
    if "anthropic" in ctx.routes:
        env["ANTHROPIC_HOST"] = ctx.routes.root_url(ctx.api_url, "anthropic")
        env["ANTHROPIC_API_KEY"] = ctx.session_token
    if "openai" in ctx.routes:
        env["OPENAI_HOST"] = ctx.routes.root_url(ctx.api_url, "openai")
        env["OPENAI_API_KEY"] = ctx.session_token
    return Invocation(argv, env)


# --- OpenCode ---------------------------------------------------------------------------------

OPENCODE_CONFIG_VAR = "OPENCODE_CONFIG_CONTENT"


def wire_opencode(ctx: LaunchContext) -> Invocation:
    """``opencode ARGS…`` with ``OPENCODE_CONFIG_CONTENT`` adding ``mcp.aileron``.

    OpenCode merges that inline config over the user's own config files; an inline config the
    user already set is kept and extended. The session variables for ``aileron-mcp`` travel in
    that environment variable, never in an argument.
    """
    raw = ctx.env.get(OPENCODE_CONFIG_VAR, "").strip()
    try:
        config = json.loads(raw) if raw else {}
    except ValueError:
        config = None
    if not isinstance(config, dict) or not isinstance(config.get("mcp", {}), dict):
        raise AgentSetupInvalid(
            f"{OPENCODE_CONFIG_VAR} is set but is not a JSON config object",
            hint=f"fix or unset {OPENCODE_CONFIG_VAR}; Aileron adds its MCP server to it",
        )
    servers = dict(config.get("mcp", {}))
    servers[MCP_SERVER_NAME] = {
        "type": "local",
        "command": [ctx.mcp_command],
        "environment": ctx.mcp_env,
        "enabled": True,
    }
    config = {**config, "mcp": servers, "permission": _opencode_permission(config)}
    providers = config.get("provider", {})
    if ctx.routes and isinstance(providers, dict):
        # Aileron holds the key: opencode's bundled provider of that id talks to the gateway
        # with the session token as its key (the gateway swaps in the real one).
        providers = dict(providers)
        for provider in sorted(ctx.routes):
            entry = providers.get(provider)
            entry = dict(entry) if isinstance(entry, dict) else {}
            options = entry.get("options")
            entry["options"] = {
                **(options if isinstance(options, dict) else {}),
                # opencode's bundled providers (the AI SDK's) want a base that ends in /v1.
                "baseURL": f"{ctx.routes.root_url(ctx.api_url, provider)}/v1",
                "apiKey": ctx.session_token,
            }
            providers[provider] = entry
        config["provider"] = providers
    env = dict(ctx.env)
    env[OPENCODE_CONFIG_VAR] = json.dumps(config, separators=(",", ":"))
    return Invocation((ctx.agent_path, *ctx.args), env)


# opencode names an MCP tool ``<server>_<tool>``; its ``permission`` keys are tool patterns.
OPENCODE_AILERON_TOOLS = f"{MCP_SERVER_NAME}_*"


def _opencode_permission(config: Mapping[str, object]) -> object:
    """The inline config's ``permission`` with Aileron's tools allowed (and nothing else
    changed): a single permission the user set for everything stays theirs for ``*``."""
    permission = config.get("permission")
    if isinstance(permission, dict):
        return {**permission, OPENCODE_AILERON_TOOLS: "allow"}
    if isinstance(permission, str):
        return {"*": permission, OPENCODE_AILERON_TOOLS: "allow"}
    return {OPENCODE_AILERON_TOOLS: "allow"}


AGENTS: Mapping[str, Agent] = {
    agent.name: agent
    for agent in (
        Agent(
            name="claude",
            command="claude",
            title="Claude Code",
            install="`npm install -g @anthropic-ai/claude-code`",
            wire=wire_claude,
            speaks=("anthropic",),
        ),
        Agent(
            name="codex",
            command="codex",
            title="Codex CLI",
            install="`npm install -g @openai/codex`",
            wire=wire_codex,
            speaks=("openai",),
        ),
        Agent(
            name="goose",
            command="goose",
            title="Goose",
            install="`brew install block-goose-cli`, or the installer from goose's releases page",
            wire=wire_goose,
            speaks=("openai", "anthropic"),
        ),
        Agent(
            name="opencode",
            command="opencode",
            title="OpenCode",
            install="`npm install -g opencode-ai`",
            wire=wire_opencode,
            speaks=("anthropic", "openai"),
        ),
    )
}


def agent_named(name: str) -> Agent:
    """The agent called ``name``, or :class:`UnknownAgent` listing the known ones."""
    try:
        return AGENTS[name]
    except KeyError:
        raise UnknownAgent(
            f"unknown agent {name!r}", hint=f"known agents: {', '.join(sorted(AGENTS))}"
        ) from None
