"""Running an agent on the host (SPEC §11, ``--sandbox=off``).

:func:`prepare` finds the agent's command and ``aileron-mcp`` and builds the agent's wiring
once with stand-in session values, so everything that can be refused is refused before
anything starts. :func:`launch` then registers the session, runs the agent in the current
directory with the terminal passed through and signals forwarded, and always ends the session
with the agent's exit code (null when the agent never ran).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import attrs

from aileron_cli.launch.agents import Agent, Invocation, LaunchContext
from aileron_cli.launch.environment import agent_environment, session_variables
from aileron_cli.launch.errors import (
    AgentNotInstalled,
    AgentStartFailed,
    LaunchError,
    McpAdapterMissing,
)
from aileron_cli.launch.private import private_directory, write_private_files
from aileron_cli.launch.routing import KINDS, Kind, Routes, named_route
from aileron_core.errors import AileronError
from aileron_core.process_guard import become_subreaper, forbid_inspection
from aileron_core.processes import ProcessRef, descendants, end_processes

if TYPE_CHECKING:
    from aileron_core.client import DaemonClient

MCP_ADAPTER = "aileron-mcp"
# Signals forwarded to the agent. The terminal itself sends SIGINT/SIGQUIT (Ctrl-C, Ctrl-\) to
# the whole foreground process group, which the agent shares with us: those are forwarded only
# when they cannot have come from the terminal, or the agent would get each one twice.
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
TERMINAL_SIGNALS = frozenset({signal.SIGINT, signal.SIGQUIT})


@attrs.frozen
class HostPlan:
    """An agent ready to launch: its command and ``aileron-mcp`` found, its wiring buildable."""

    agent: Agent
    agent_path: str
    mcp_command: str
    args: tuple[str, ...]

    def invocation(
        self,
        *,
        api_url: str,
        session_id: str,
        token: str,
        inherited: Mapping[str, str],
        secrets: Collection[str] = (),
        routes: Routes | None = None,
        private_dir: str = "/nonexistent",
    ) -> Invocation:
        """The agent's command line, environment and private files for this session
        (``private_dir``: the session's own 0700 directory those files go in)."""
        env = agent_environment(
            inherited, session_variables(api_url, session_id, token), secrets=secrets
        )
        context = LaunchContext(
            agent_path=self.agent_path,
            mcp_command=self.mcp_command,
            api_url=api_url,
            session_id=session_id,
            session_token=token,
            args=self.args,
            env=env,
            routes=routes or Routes(),
            private_dir=private_dir,
        )
        return self.agent.wire(context)


def find_agent(agent: Agent, env: Mapping[str, str]) -> str:
    """Absolute path of the agent's command on ``env``'s PATH."""
    found = shutil.which(agent.command, path=env.get("PATH", os.defpath))
    if found is None:
        raise AgentNotInstalled(
            f"{agent.command} ({agent.title}) is not on PATH",
            hint=f"install it ({agent.install}), then run this again",
        )
    return os.path.abspath(found)


def find_mcp_adapter(env: Mapping[str, str], *, interpreter: str | None = None) -> str:
    """Absolute path of ``aileron-mcp``: beside the running interpreter (where pipx and
    virtualenvs put it), else on PATH."""
    python = interpreter or sys.executable
    beside = Path(python).parent / MCP_ADAPTER
    if beside.is_file() and os.access(beside, os.X_OK):
        return os.path.abspath(beside)
    found = shutil.which(MCP_ADAPTER, path=env.get("PATH", os.defpath))
    if found is None:
        raise McpAdapterMissing(
            f"{MCP_ADAPTER} was found neither beside {python} nor on PATH",
            hint="reinstall Aileron (`pipx install aileron-cli` installs aileron-mcp with it)",
        )
    return os.path.abspath(found)


def prepare(agent: Agent, args: tuple[str, ...], env: Mapping[str, str]) -> HostPlan:
    """Check everything that can be checked before the daemon or the agent is touched."""
    plan = HostPlan(agent, find_agent(agent, env), find_mcp_adapter(env), args)
    # A trial build with stand-in session values raises whatever the real one would.
    plan.invocation(
        api_url="http://127.0.0.1:1/v1",
        session_id="trial",
        token="ais_trial",  # noqa: S106 (a stand-in shaped like a session token)
        inherited=env,
    )
    return plan


def launch(
    plan: HostPlan,
    client: DaemonClient,
    *,
    cwd: str,
    inherited: Mapping[str, str],
    secrets: Collection[str],
    provider: str | None = None,
) -> int:
    """Register a session, run the agent, end the session; the agent's exit code.
    ``provider``: the gateway provider the agent's traffic of its kind goes to."""
    routes = gateway_routes(client, plan.agent, provider)
    session = client.post(
        "sessions", {"agent": plan.agent.name, "working_dir": cwd, "contain": True}
    )
    session_id = str(session["id"])
    exit_code: int | None = None
    try:
        with private_directory() as private_dir:
            invocation = plan.invocation(
                api_url=client.api_url,
                session_id=session_id,
                token=str(session["token"]),
                inherited=inherited,
                secrets=secrets,
                routes=routes,
                private_dir=str(private_dir),
            )
            refuse_secrets(
                [*invocation.argv, *invocation.env.values(), *invocation.files.values()], secrets
            )
            write_private_files(invocation.files)
            exit_code = run(
                invocation,
                cwd,
                on_start=lambda pid: register_agent(client, session_id, pid),
                contain=True,
            )
        return exit_code
    finally:
        end_session(client, session_id, exit_code)


def gateway_routes(client: DaemonClient, agent: Agent, provider: str | None) -> Routes:
    """Where ``agent``'s LLM traffic goes: the built-in providers whose key Aileron holds and,
    with ``provider``, that gateway provider (``GET /v1/providers``) for its kind instead."""
    routes = Routes.builtin(keyed_providers(client))
    if provider is None:
        return routes
    kind, route = named_route(agent.name, agent.speaks, client.get("providers"), provider)
    return routes.via(kind, route)


def keyed_providers(client: DaemonClient) -> frozenset[Kind]:
    """The LLM providers whose key Aileron holds (binding ``api_key/<provider>/default``);
    warns (stderr) about a provider key in the vault that no binding uses."""
    names = {str(binding["name"]) for binding in client.get("bindings")}
    for path in unbound_provider_keys(client, names):
        print(unbound_key_warning(path), file=sys.stderr)
    return frozenset(p for p in KINDS if f"api_key/{p}/default" in names)


def unbound_provider_keys(client: DaemonClient, bound: Collection[str]) -> list[str]:
    """Vault paths ``api_key/<provider>/…`` that no binding points at (none if the vault
    cannot be listed: the warning is a hint, never a reason not to launch)."""
    try:
        entries = client.get("vault/entries")
    except AileronError:
        return []
    prefixes = tuple(f"api_key/{p}/" for p in KINDS)
    paths = sorted(str(entry["path"]) for entry in entries)
    return [path for path in paths if path.startswith(prefixes) and path not in bound]


def unbound_key_warning(path: str) -> str:
    """The one line that says a provider key is stored but unused, and how to bind it."""
    return (
        f"aileron: warning: the vault holds {path} but no binding uses it, so the agent cannot"
        f" use it through the gateway; bind it with `aileron binding add {path}` (reads the key"
        " from stdin)"
    )


def refuse_secrets(values: Collection[str], secrets: Collection[str]) -> None:
    """The master token never goes to an agent, even when the user typed it as an argument."""
    if any(secret and secret in value for secret in secrets for value in values):
        raise LaunchError(
            "refusing to give the daemon's master token to the agent",
            hint="remove it from the agent's arguments; the agent gets a session token",
        )


def register_agent(client: DaemonClient, session_id: str, pid: int) -> None:
    """Tell the daemon the agent's pid, so it can end the agent if this launcher dies."""
    try:
        client.post(f"sessions/{session_id}/agent", {"pid": pid})
    except AileronError as error:
        print(f"aileron: warning: could not register the agent's process: {error}", file=sys.stderr)


def end_session(client: DaemonClient, session_id: str, exit_code: int | None) -> None:
    try:
        client.post(f"sessions/{session_id}/end", {"exit_code": exit_code})
    except AileronError as error:
        print(f"aileron: warning: could not end session {session_id}: {error}", file=sys.stderr)


def _foreground_on_terminal() -> bool:
    """Whether our process group (the agent's too) is its terminal's foreground job."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


class _Forwarder:
    """A signal handler that passes signals on to the agent (held until it exists)."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.pending: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if signum in TERMINAL_SIGNALS and _foreground_on_terminal():
            return  # the terminal sent it to the agent as well
        if self.child is None:
            self.pending.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            self.child.send_signal(signum)

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child
        for signum in self.pending:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)


def run(
    invocation: Invocation,
    cwd: str,
    *,
    on_start: Callable[[int], None] | None = None,
    contain: bool = False,
) -> int:
    """Run the agent with our terminal, forwarding signals; its exit code (128+N for a death
    by signal N, as a shell reports it).

    ``contain``: this process is the agent's child subreaper for the run, so whatever the
    agent starts, even detached (``setsid``, a double fork), stays below us, where the daemon
    refuses it the human's authority; it is ended when the agent exits (SPEC §16). A sandbox
    launch does not contain (its container engine's own helpers must outlive the run)."""
    me = ProcessRef.of(os.getpid()) if contain else None
    # Children we already have (a daemon this command auto-spawned) are not the agent's.
    ours = frozenset(descendants(me)) if me is not None else frozenset()
    if me is not None:
        become_subreaper()
        forbid_inspection()  # the agent must not ptrace its way into the human's launcher
    forwarder = _Forwarder()
    previous = {}
    for signum in FORWARDED_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_IGN:
            continue  # whoever started us ignores it; the agent inherits that
        previous[signum] = signal.signal(signum, forwarder)
    try:
        try:
            child = subprocess.Popen(list(invocation.argv), env=dict(invocation.env), cwd=cwd)
        except OSError as error:
            raise AgentStartFailed(
                f"could not start {invocation.argv[0]}: {error.strerror or error}",
                hint="check that the agent is installed correctly",
            ) from error
        forwarder.attach(child)
        if on_start is not None:
            on_start(child.pid)
        returncode = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if me is not None:
            end_leftovers(me, ours)
    return 128 - returncode if returncode < 0 else returncode


LEFTOVER_GRACE_S = 0.3
"""How long processes the agent left get to exit by themselves (an MCP server whose stdin the
agent closed is usually on its way out) before they are ended."""


def end_leftovers(me: ProcessRef, ours: frozenset[ProcessRef]) -> None:
    """End every process the agent left in our tree, and reap them."""
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    while True:
        _reap()
        left = descendants(me, skip=ours)
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    if left:
        ended = end_processes(left)
        if ended:
            print(
                f"aileron: ended {len(ended)} process(es) the agent left running",
                file=sys.stderr,
            )
    _reap()


def _reap() -> None:
    """Collect the exit status of every child that has exited (orphans we adopted too)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
