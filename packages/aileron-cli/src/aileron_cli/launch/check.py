"""``aileron launch AGENT --check``: does the launched wiring actually work? (ADR 0007)

The check registers a short session as a launch does, builds the agent's invocation with
:meth:`~aileron_cli.launch.host.HostPlan.invocation` (so it follows whatever the wiring is),
and then tries the real thing, row by row:

- ``agent``: the agent's command is found and answers ``--version``;
- ``mcp``: ``aileron-mcp`` started exactly as the agent would start it (the command and
  environment read back out of the invocation) answers MCP ``initialize`` and ``tools/list``;
- ``listing``: where the agent's own MCP listing honours the launched configuration (codex,
  opencode), what it says (best effort: it never fails the check);
- ``route``: which provider the agent's model traffic goes to through the gateway, and a live
  ``GET …/v1/models`` through the gateway with the session token;
- ``key``: where the provider key comes from: a binding Aileron holds, the agent's own login
  (a key variable in the user's environment, or the agent's login file), or nowhere.

No row ever shows a secret: every token and key the check handles is redacted from what it
reports.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from aileron_cli.launch.agents import AGENTS, MCP_SERVER_NAME, Agent, Invocation
from aileron_cli.launch.errors import LaunchError
from aileron_cli.launch.host import (
    HostPlan,
    end_session,
    find_agent,
    find_mcp_adapter,
    gateway_routes,
)
from aileron_cli.launch.private import private_directory, write_private_files
from aileron_cli.launch.routing import KINDS, SESSION_TOKEN_HEADER, Kind, Routes
from aileron_core.convert import converter

if TYPE_CHECKING:
    from aileron_core.client import DaemonClient

TIMEOUT_S = 30.0
"""How long any one step (the agent's ``--version``, MCP, its listing, the probe) may take."""
REDACTED = "[REDACTED]"

# The provider(s) an agent talks to when nothing routes it through the gateway.
DEFAULT_PROVIDERS: Mapping[str, tuple[Kind, ...]] = {a.name: a.speaks for a in AGENTS.values()}
# The variables in which the user's own key for a provider is found (what the agents read).
KEY_VARIABLES: Mapping[Kind, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
    "openai": ("OPENAI_API_KEY",),
}
# Where each provider's SDK puts the model list under its base URL (see routing.py).
_MODELS_PATH: Mapping[Kind, str] = {"openai": "/models", "anthropic": "/v1/models"}
# The variables codex passes to every MCP server it starts, besides the server's env_vars.
_CODEX_DEFAULT_VARS = ("HOME", "LOGNAME", "PATH", "SHELL", "USER", "LANG", "LC_ALL", "TERM")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@attrs.frozen
class Finding:
    """One row of the check: ``ok`` is None for a row that is information only."""

    item: str
    ok: bool | None
    detail: str
    fix: str | None = None


@attrs.frozen
class Report:
    """Everything the check found about one agent."""

    agent: str
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """Whether everything the agent needs works (no row failed)."""
        return all(finding.ok is not False for finding in self.findings)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = converter.unstructure(self)
        return {**document, "ok": self.ok}

    def render(self) -> str:
        """A small table, then what to do about each row that failed."""
        marks = {True: "ok", False: "FAIL", None: "--"}
        lines = [f"aileron launch {self.agent} --check"]
        lines += [f"  {f.item:<8} {marks[f.ok]:<5} {f.detail}" for f in self.findings]
        fixes = [f"  - {f.item}: {f.fix}" for f in self.findings if f.fix]
        if fixes:
            lines += ["what to do:", *fixes]
        lines.append("all set" if self.ok else "not ready")
        return "\n".join(lines)


@attrs.frozen
class McpServer:
    """How the agent would start ``aileron-mcp``: command, arguments and full environment."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = attrs.field(factory=dict, repr=False)


class _Redactor:
    """Removes every secret the check handles from text it reports."""

    def __init__(self, secrets: Collection[str]) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


# --- reading aileron-mcp's start back out of an invocation -------------------------------------


def _claude_server(invocation: Invocation) -> McpServer | None:
    argv = invocation.argv
    for index, arg in enumerate(argv):
        if arg.startswith("--mcp-config="):
            path = arg.partition("=")[2]
        elif arg == "--mcp-config" and index + 1 < len(argv):
            path = argv[index + 1]
        else:
            continue
        text = invocation.files.get(path)
        if text is None:
            continue
        server = json.loads(text).get("mcpServers", {}).get(MCP_SERVER_NAME)
        if isinstance(server, dict):
            env = {**invocation.env, **server.get("env", {})}
            return McpServer(server["command"], tuple(server.get("args", ())), env)
    return None


def _codex_server(invocation: Invocation) -> McpServer | None:
    prefix = f"mcp_servers.{MCP_SERVER_NAME}."
    fields: dict[str, Any] = {}
    argv = invocation.argv
    for flag, override in zip(argv, argv[1:], strict=False):
        key, _, value = override.partition("=")
        if flag == "-c" and key.startswith(prefix):
            fields[key.removeprefix(prefix)] = tomllib.loads(f"v = {value}")["v"]
    if "command" not in fields:
        return None
    names = [*_CODEX_DEFAULT_VARS, *fields.get("env_vars", ())]
    env = {name: invocation.env[name] for name in names if name in invocation.env}
    env.update(fields.get("env", {}))
    return McpServer(fields["command"], tuple(fields.get("args", ())), env)


def _opencode_server(invocation: Invocation) -> McpServer | None:
    config = json.loads(invocation.env.get("OPENCODE_CONFIG_CONTENT") or "{}")
    server = config.get("mcp", {}).get(MCP_SERVER_NAME)
    if not isinstance(server, dict) or not server.get("command"):
        return None
    command, *args = server["command"]
    env = {**invocation.env, **server.get("environment", {})}
    return McpServer(command, tuple(args), env)


def _goose_server(invocation: Invocation) -> McpServer | None:
    argv = invocation.argv
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag == "--with-extension":
            words = shlex.split(value)
            env = dict(invocation.env)
            while words and "=" in words[0] and not words[0].startswith("/"):
                name, _, setting = words.pop(0).partition("=")
                env[name] = setting
            if words:
                return McpServer(words[0], tuple(words[1:]), env)
    return None


MCP_SERVERS: Mapping[str, Callable[[Invocation], McpServer | None]] = {
    "claude": _claude_server,
    "codex": _codex_server,
    "goose": _goose_server,
    "opencode": _opencode_server,
}
# The agent's own MCP listing, where it honours the launched configuration. (Claude Code's
# `claude mcp list` ignores --mcp-config, so it would list nothing.)
LISTINGS: Mapping[str, tuple[str, ...]] = {
    "codex": ("mcp", "list", "--json"),
    "opencode": ("mcp", "list"),
}


# --- the rows ---------------------------------------------------------------------------------


def check_agent(agent: Agent, env: Mapping[str, str]) -> tuple[str | None, Finding]:
    """The agent's command and its ``--version``."""
    try:
        path = find_agent(agent, env)
    except LaunchError:
        fix = f"install {agent.title}: {agent.install}"
        return None, Finding("agent", False, f"{agent.command} is not installed (not on PATH)", fix)
    try:
        done = "".join(_run([path, "--version"], env))
    except OSError as error:
        return path, Finding("agent", False, f"{path} does not run: {error}", "reinstall it")
    version = done.splitlines()[0].strip() if done.strip() else "(no version printed)"
    return path, Finding("agent", True, f"{version} ({path})")


def check_mcp(server: McpServer | None, redact: _Redactor) -> Finding:
    """Start ``aileron-mcp`` as the agent would and list its tools over MCP."""
    if server is None:
        return Finding("mcp", False, "the launch wiring names no aileron MCP server")
    import anyio

    with tempfile.TemporaryFile("w+") as errlog:
        try:
            count = anyio.run(_list_tools, server, errlog)
        except Exception as error:  # any failure to connect is the finding itself
            errlog.seek(0)
            said = [line for line in errlog.read().splitlines() if line.strip()]
            why = said[-1] if said else (str(error) or type(error).__name__)
            return Finding(
                "mcp",
                False,
                redact(f"aileron-mcp did not connect: {why}"),
                "check `aileron daemon status`; run `aileron-mcp` by hand to see its error",
            )
    return Finding("mcp", True, f"aileron-mcp connected, {count} tool{'s' * (count != 1)}")


async def _list_tools(server: McpServer, errlog: Any) -> int:
    import anyio
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=server.command, args=list(server.args), env=dict(server.env)
    )
    with anyio.fail_after(TIMEOUT_S):
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            listed = await client.list_tools()
    return len(listed.tools)


def check_listing(agent: Agent, invocation: Invocation, redact: _Redactor) -> Finding:
    """What the agent's own MCP listing (``invocation``) says about Aileron's server."""
    shown = " ".join([agent.command, *LISTINGS[agent.name]])
    try:
        output, errors = _run(list(invocation.argv), invocation.env)
    except (OSError, subprocess.TimeoutExpired) as error:
        return Finding("listing", None, redact(f"`{shown}` did not answer: {error}"))
    return Finding("listing", None, redact(f"`{shown}`: {_summarise(agent.name, output, errors)}"))


def _summarise(agent: str, output: str, errors: str) -> str:
    """What the agent's listing says about the ``aileron`` server."""
    if agent == "codex":
        with contextlib.suppress(ValueError):
            for server in json.loads(output):
                if isinstance(server, dict) and server.get("name") == MCP_SERVER_NAME:
                    state = "enabled" if server.get("enabled") else "disabled"
                    return f"{MCP_SERVER_NAME} {state}"
    clean = (_ANSI.sub("", line).strip(" │┌└●\t") for line in (output + errors).splitlines())
    for line in clean:
        if MCP_SERVER_NAME in line:
            return line
    return f"no {MCP_SERVER_NAME} server listed"


def routed_providers(invocation: Invocation, api_url: str, routes: Routes) -> tuple[Kind, ...]:
    """The kinds whose gateway URL (per ``routes``) the invocation hands the agent (in argv,
    environment or a private file)."""
    texts = [*invocation.argv, *invocation.env.values(), *invocation.files.values()]
    found = []
    for provider in KINDS:
        # OpenAI's base ends in /v1, which some agents (goose) add themselves.
        gateway = routes.base_url(api_url, provider).removesuffix("/v1")
        if any(gateway in text for text in texts):
            found.append(provider)
    return tuple(found)


KeySource = Literal["binding", "own", "none"]


@attrs.frozen
class KeyFinding:
    source: KeySource
    provider: Kind
    finding: Finding
    own_headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    """The user's own key as the agent would send it (``own`` from a variable only)."""


def login_files(agent: str, env: Mapping[str, str]) -> tuple[Path, ...]:
    """The files in which ``agent`` keeps its own login."""
    home = Path(env.get("HOME") or Path.home())
    if agent == "claude":
        return (Path(env.get("CLAUDE_CONFIG_DIR") or home / ".claude") / ".credentials.json",)
    if agent == "codex":
        return (Path(env.get("CODEX_HOME") or home / ".codex") / "auth.json",)
    if agent == "opencode":
        data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
        return (data / "opencode" / "auth.json",)
    return ()


def check_key(
    agent: str, routed: tuple[Kind, ...], routes: Routes, env: Mapping[str, str]
) -> KeyFinding:
    """Where the key for the agent's provider comes from: a binding (used only when the
    agent's traffic goes through the gateway), the agent's own login, or nowhere."""
    for provider in routed:
        route = routes.routes.get(provider)
        if route is not None:
            detail = f"binding {route.binding}"
            return KeyFinding("binding", provider, Finding("key", True, detail))
    providers = routed or DEFAULT_PROVIDERS[agent]
    for provider in providers:
        for variable in KEY_VARIABLES[provider]:
            if env.get(variable):
                headers = _own_headers(variable, env[variable])
                detail = f"agent's own login: ${variable} in your environment ({provider})"
                return KeyFinding("own", provider, Finding("key", True, detail), headers)
    for path in login_files(agent, env):
        if path.is_file():
            detail = f"agent's own login: {path}"
            return KeyFinding("own", providers[0], Finding("key", True, detail))
    provider = providers[0]
    unused = sorted(set(providers) & set(routes))
    if unused:
        # Aileron holds a key, but this agent's launch does not send its traffic to the gateway.
        detail = (
            f"no key {agent} can use: Aileron holds api_key/{unused[0]}/default, but {agent}'s"
            " model traffic does not go through the gateway"
        )
        variables = " or ".join(f"${v}" for p in providers for v in KEY_VARIABLES[p])
        fix = f"log in to {agent} itself, or set {variables}"
        return KeyFinding("none", provider, Finding("key", False, detail, fix))
    fix = (
        f"store the key where only Aileron reads it: "
        f"`echo -n KEY | aileron binding add api_key/{provider}/default`, or log in to"
        f" {agent} itself"
    )
    return KeyFinding("none", provider, Finding("key", False, f"no {provider} key found", fix))


def _own_headers(variable: str, value: str) -> dict[str, str]:
    if variable == "ANTHROPIC_API_KEY":
        return {"x-api-key": value}
    return {"Authorization": f"Bearer {value}"}


def check_route(
    agent: str,
    routed: tuple[Kind, ...],
    key: KeyFinding,
    *,
    routes: Routes,
    api_url: str,
    token: str,
    redact: _Redactor,
) -> Finding:
    """Which provider the agent's model traffic goes to, and a live probe through the gateway."""
    if not routed:
        if key.source == "binding":
            return Finding(
                "route", False, f"{agent}'s model traffic does not go through the gateway"
            )
        detail = f"not through the gateway: {agent} talks to its provider directly"
        return Finding("route", None, detail)
    provider = key.provider if key.provider in routed else routed[0]
    url = routes.base_url(api_url, provider) + _MODELS_PATH[provider]
    headers = {SESSION_TOKEN_HEADER: token, **key.own_headers}
    if provider == "anthropic":
        headers["anthropic-version"] = "2023-06-01"
    import httpx

    name = routes.name(provider)
    shown = provider if name == provider else f"provider {name} ({provider})"
    where = f"{shown} through the gateway: GET {httpx.URL(url).path}"
    try:
        answer = httpx.get(url, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as error:
        detail = redact(f"{where} failed: {error}")
        return Finding("route", False, detail, "check `aileron daemon status`")
    if answer.status_code == 200:
        return Finding("route", True, f"{where} → HTTP 200")
    message = redact(_error_message(answer))
    if key.source == "none":
        # The route is there; with no key to send, the provider's refusal says nothing more.
        return Finding("route", None, f"{where} → HTTP {answer.status_code} (no key to send)")
    if answer.status_code == 401 and key.source == "own" and not key.own_headers:
        detail = f"{where} → HTTP 401 (reached the provider; the agent's own login is not sent)"
        return Finding("route", None, detail)
    fix = "see the provider's message; the gateway's audit record of the request has more"
    return Finding("route", False, f"{where} → HTTP {answer.status_code}: {message}", fix)


def _error_message(answer: Any) -> str:
    """The message of an error answer in either provider's shape, or Aileron's."""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        error = answer.json().get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:200]
    return str(answer.text)[:200]


def _run(argv: list[str], env: Mapping[str, str]) -> tuple[str, str]:
    """Run a short command (in a process group of its own, ended on time-out); its standard
    output and error."""
    with subprocess.Popen(
        argv,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as child:
        try:
            output, errors = child.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            raise
    return output, errors


# --- the whole check --------------------------------------------------------------------------


def check(
    agent: Agent,
    args: tuple[str, ...],
    client: DaemonClient,
    *,
    cwd: str,
    inherited: Mapping[str, str],
    secrets: Collection[str],
    provider: str | None = None,
) -> Report:
    """Register a session, check the agent's launched wiring row by row (``provider``: the
    gateway provider its traffic of that kind goes to), end the session."""
    agent_path, agent_row = check_agent(agent, inherited)
    findings = [agent_row]
    try:
        mcp_command = find_mcp_adapter(inherited)
    except LaunchError as error:
        mcp_command = None
        findings.append(Finding("mcp", False, error.message, error.hint))
    plan = HostPlan(agent, agent_path or agent.command, mcp_command or "aileron-mcp", args)
    routes = gateway_routes(client, agent, provider)
    session = client.post("sessions", {"agent": agent.name, "working_dir": cwd, "contain": True})
    session_id, token = str(session["id"]), str(session["token"])
    try:
        with private_directory() as private_dir:

            def invocation_for(which: HostPlan) -> Invocation:
                return which.invocation(
                    api_url=client.api_url,
                    session_id=session_id,
                    token=token,
                    inherited=inherited,
                    secrets=secrets,
                    routes=routes,
                    private_dir=str(private_dir),
                )

            invocation = invocation_for(plan)
            own_keys = [inherited[v] for vs in KEY_VARIABLES.values() for v in vs if v in inherited]
            redact = _Redactor([token, *secrets, *own_keys])
            if mcp_command is not None:
                findings.append(check_mcp(MCP_SERVERS[agent.name](invocation), redact))
            if agent_path is not None and agent.name in LISTINGS:
                listing = invocation_for(attrs.evolve(plan, args=LISTINGS[agent.name]))
                write_private_files(listing.files)
                findings.append(check_listing(agent, listing, redact))
            routed = routed_providers(invocation, client.api_url, routes)
            key = check_key(agent.name, routed, routes, inherited)
            findings.append(
                check_route(
                    agent.name,
                    routed,
                    key,
                    routes=routes,
                    api_url=client.api_url,
                    token=token,
                    redact=redact,
                )
            )
            findings.append(key.finding)
    finally:
        end_session(client, session_id, None)
    return Report(agent.name, tuple(findings))
