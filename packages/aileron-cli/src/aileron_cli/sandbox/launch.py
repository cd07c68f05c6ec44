"""``aileron launch --sandbox=auto|docker|podman``: the agent in a container (SPEC §11).

Before anything starts: the engine is probed (podman's answer is remembered,
:mod:`aileron_cli.sandbox.probe_cache`), the image prepared, the agent's tools generated
(``aileron-shims``). Then a session is registered with its own listener (the only way the
container reaches the daemon; it refuses the master token), the tools and an env file are
written to a private temporary directory, the pre-run check runs in a container with the same
image, mounts and environment (unless that check passed before: a pass is remembered per
engine, image ID, workspace, user and mounts, :mod:`aileron_cli.sandbox.check_cache`), and the
agent runs with the terminal and signals passed through. The session always ends with the
agent's exit code (null when it never ran).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from aileron_cli.launch.agents import Agent, Invocation, codex_gateway_overrides
from aileron_cli.launch.environment import agent_environment
from aileron_cli.launch.errors import SandboxCheckFailed, ToolsUnavailable
from aileron_cli.launch.host import end_session, gateway_routes, refuse_secrets, run
from aileron_cli.launch.routing import SESSION_TOKEN_HEADER, Routes
from aileron_cli.sandbox import bridge, images, probe_cache
from aileron_cli.sandbox.check_cache import CheckCache, CheckKey, check_key
from aileron_cli.sandbox.config import SandboxConfig, load_sandbox_config
from aileron_cli.sandbox.container import (
    CHECK_OK,
    HOME,
    SHIM_DIR,
    TOOLS_FILE,
    WORKSPACE,
    ContainerSpec,
    Mount,
    check_spec,
    container_user,
    env_file_text,
    failed_check,
    image_path,
    run_argv,
    writable_tmpfs,
)
from aileron_cli.sandbox.engine import Engine, first_line
from aileron_cli.sandbox.instructions import (
    PROFILE_FILE,
    agent_arguments,
    profile_script,
    tools_text,
)
from aileron_core.paths import Layout

if TYPE_CHECKING:
    from aileron_core.client import DaemonClient
    from aileron_shims import ShimSet

CHECK_TIMEOUT = 300  # seconds; a first run may have to set up the engine's storage
CANNOT_START = frozenset({125, 126, 127})
"""Exit codes of a container whose entry could not start: the engine's own failure (or the
bridge's), a command that cannot run, a command not found. After one, a skipped check runs
again on the next launch."""


@attrs.frozen
class SandboxPlan:
    """An agent ready to run in a container: engine found, image present."""

    agent: Agent
    engine: Engine
    image: images.Image
    args: tuple[str, ...]
    settings: SandboxConfig = attrs.field(factory=SandboxConfig)
    """``[sandbox]`` of config.toml, read before anything starts."""


def prepare(
    agent: Agent,
    args: tuple[str, ...],
    env: Mapping[str, str],
    *,
    mode: str,
    policy: images.BuildPolicy,
    image: str | None,
) -> SandboxPlan:
    """Everything that can be refused before the daemon is asked for a session. The engine's
    probe is remembered for podman (:mod:`aileron_cli.sandbox.probe_cache`)."""
    layout = Layout()
    settings = load_sandbox_config(layout.config)
    options = images.build_options(agent.name, env, pins=settings.pins)
    engine, prepared = probe_cache.prepare_with_engine(
        mode,
        env,
        layout.home,
        lambda engine: images.prepare(
            engine, agent.name, agent.command, image=image, policy=policy, options=options
        ),
    )
    return SandboxPlan(agent=agent, engine=engine, image=prepared, args=args, settings=settings)


def generate_tools(client: DaemonClient, agent_command: str) -> ShimSet:
    """The shims and ``tools.txt`` for the actions and connectors installed now."""
    from aileron_shims import ShimError, from_api, generate

    connectors = client.get("connectors")
    actions = client.get("actions")["actions"]
    try:
        shims = generate(*from_api(connectors, actions), agent_command=agent_command)
    except ShimError as error:
        raise ToolsUnavailable(
            f"cannot give the agent its tools: {error.message}",
            hint=error.hint or "remove the connector named above (`aileron connector remove FQN`)",
        ) from error
    for skipped in shims.skipped:
        print(f"aileron: warning: no shim for {skipped.name}: {skipped.reason}", file=sys.stderr)
    return shims


def staged_spec(
    directory: Path,
    engine: Engine,
    *,
    tools_txt: str,
    shims: Mapping[str, str],
    env: Mapping[str, str],
    image: str,
    command: tuple[str, ...],
    cwd: str,
    network: str,
    name: str,
    settings: SandboxConfig,
    add_hosts: tuple[tuple[str, str], ...] = (),
    labels: Mapping[str, str] | None = None,
    tty: bool = False,
) -> ContainerSpec:
    """Write ``tools.txt``, ``bin/<tool>`` and the 0600 env file under ``directory`` and
    describe the container that mounts them, with ``cwd`` as its workspace, hardened with
    ``settings``' limits."""
    directory.chmod(0o755)  # a rootless container user must read the tools
    tools = directory / "tools.txt"
    tools.write_text(tools_txt, encoding="utf-8")
    tools.chmod(0o644)
    bindir = directory / "bin"
    bindir.mkdir(mode=0o755)
    for tool, text in shims.items():
        shim = bindir / tool
        shim.write_text(text, encoding="utf-8")
        shim.chmod(0o755)
    profile = directory / "profile.sh"
    profile.write_text(profile_script(), encoding="utf-8")
    profile.chmod(0o644)
    env_file = directory / "env"
    env_file.touch(mode=stat.S_IRUSR | stat.S_IWUSR)
    env_file.write_text(env_file_text(env), encoding="utf-8")
    user, userns = user_options(engine, cwd)
    return ContainerSpec(
        image=image,
        command=command,
        env_file=str(env_file),
        mounts=(
            Mount(cwd, WORKSPACE, read_only=False),
            Mount(str(tools), TOOLS_FILE),
            Mount(str(bindir), SHIM_DIR),
            Mount(str(profile), PROFILE_FILE),
        ),
        network=network,
        name=name,
        user=user,
        userns=userns,
        add_hosts=add_hosts,
        labels=dict(labels or {}),
        tty=tty,
        pids_limit=settings.pids_limit,
        memory=settings.memory,
        tmpfs=writable_tmpfs(engine.name, user),
    )


def container_command(
    plan: SandboxPlan,
    api_url: str,
    routes: Routes,
    exposed: Sequence[bridge.Exposed] = (),
) -> tuple[str, ...]:
    """The agent's command line in the container: its own arguments, after its tools
    instructions (:mod:`aileron_cli.sandbox.instructions`, naming the brokered variables) and,
    for codex, the gateway provider when Aileron holds the key of the OpenAI-kind provider it
    is routed to (codex ignores OPENAI_BASE_URL)."""
    argv = [plan.agent.command]
    if plan.agent.name == "codex" and "openai" in routes:
        for override in codex_gateway_overrides(routes.base_url(api_url, "openai")):
            argv += ["-c", override]
    return (*argv, *agent_arguments(plan.agent.name, exposed), *plan.args)


def container_env(
    *,
    api_url: str,
    session_id: str,
    token: str,
    image_env: tuple[str, ...],
    routes: Routes,
    term: str | None,
) -> dict[str, str]:
    """The container's whole environment (SPEC §11 step 4); nothing from the host's."""
    env = {
        "HOME": HOME,
        "PATH": f"{image_path(image_env)}:{SHIM_DIR}",
        "AILERON_API_URL": api_url,
        "AILERON_SESSION_ID": session_id,
        "AILERON_TOKEN": token,
        "AILERON_TOOLS_FILE": TOOLS_FILE,
        "AILERON_WORKSPACE": WORKSPACE,
        "OPENAI_BASE_URL": routes.base_url(api_url, "openai"),
        "ANTHROPIC_BASE_URL": routes.base_url(api_url, "anthropic"),
        "ANTHROPIC_CUSTOM_HEADERS": f"{SESSION_TOKEN_HEADER}: {token}",
    }
    # Where Aileron holds the provider's key, the session token is the agent's key: the gateway
    # swaps in the real one.
    if "openai" in routes:
        env["OPENAI_API_KEY"] = token
    if "anthropic" in routes:
        env["ANTHROPIC_API_KEY"] = token
    if term:
        env["TERM"] = term
    return env


def user_options(engine: Engine, cwd: str) -> tuple[str | None, str | None]:
    """``(--user, --userns)``: the agent runs as the invoking user, so what it writes in the
    workspace is the user's; never as root (see :func:`container_user`)."""
    if engine.rootless:
        return None, "keep-id"
    owner = os.stat(cwd)
    return container_user(os.getuid(), os.getgid(), (owner.st_uid, owner.st_gid)), None


def run_check(engine: Engine, spec: ContainerSpec, agent_command: str) -> None:
    """Run the pre-run check; :class:`SandboxCheckFailed` naming the failed check."""
    check = check_spec(spec, agent_command)
    try:
        done = subprocess.run(
            run_argv(engine.call, check),
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SandboxCheckFailed(
            f"the sandbox check could not run in {check.image}: {error}",
            hint=f"check that `{engine.name} run --rm {check.image} sh -c true` works",
        ) from error
    output = f"{done.stdout}\n{done.stderr}"
    failed = failed_check(output)
    if failed is not None:
        name, reason = failed
        raise SandboxCheckFailed(
            f"sandbox check '{name}' failed: {reason}", hint=_CHECK_HINTS.get(name)
        )
    if done.returncode != 0:
        raise SandboxCheckFailed(
            f"the sandbox check could not run in {check.image} ({engine.name} exited"
            f" {done.returncode}: {first_line(done.stderr) or first_line(done.stdout)})",
            hint=f"check that `{engine.name} run --rm {check.image} sh -c true` works",
        )
    if CHECK_OK not in done.stdout.splitlines():
        # Exit 0 without the verdict: the image's ENTRYPOINT did not run our command.
        raise SandboxCheckFailed(
            f"the sandbox check did not run in {check.image} (no verdict in its output)",
            hint="use an image whose ENTRYPOINT runs the command it is given (or has none)",
        )


def check_once(
    engine: Engine,
    spec: ContainerSpec,
    image: images.Image,
    agent_command: str,
    checks: CheckCache,
) -> CheckKey | None:
    """Run the pre-run check of ``spec`` unless ``checks`` holds a pass of the same check
    (:mod:`aileron_cli.sandbox.check_cache`), and record a new pass; the key of a skipped
    check, else ``None``."""
    key = check_key(engine, image.id, spec, agent_command)
    if key is not None and checks.passed(key):
        return key
    run_check(engine, spec, agent_command)
    if key is not None:
        checks.record(key, image.ref)
    return None


_CHECK_HINTS = {
    "workspace": "run from a directory the container user can write, or fix its permissions"
    " (launched as root, the agent runs as the directory's owner, or uid 1000 if that is root)",
    "agent": "use an image that has the agent (`aileron sandbox build AGENT`) or pass --image",
    "http-client": "install curl or wget in the image",
    "node": "use an image with node (every image `aileron sandbox build` makes has it)",
    "tools": "report this: Aileron wrote the tools file itself",
}


def launch(
    plan: SandboxPlan,
    client: DaemonClient,
    *,
    cwd: str,
    inherited: Mapping[str, str],
    secrets: Collection[str],
    tty: bool,
    allow_hosts: Sequence[str] = (),
    expose: Sequence[str] = (),
    provider: str | None = None,
) -> int:
    """Register a session, check and run the agent's container, end the session. The
    container has no network: the session's listener and egress proxy (which also allows
    ``allow_hosts`` and brokers the bindings ``expose`` names, ADR 0028) are its only ways
    out, through the bridge (ADR 0023). ``provider``: the gateway provider the agent's traffic
    of its kind goes to."""
    routes = gateway_routes(client, plan.agent, provider)
    shims = generate_tools(client, plan.agent.command)
    engine = plan.engine
    session = client.post(
        "sessions",
        {
            "agent": plan.agent.name,
            "working_dir": cwd,
            "sandbox": {"runtime": engine.name, "image": plan.image.ref},
            "contain": True,
        },
    )
    session_id = str(session["id"])
    exit_code: int | None = None
    try:
        endpoints = bridge.open_endpoints(client, session_id, allow_hosts, expose)
        api_url = bridge.API_URL
        env = container_env(
            api_url=api_url,
            session_id=session_id,
            token=str(session["token"]),
            image_env=plan.image.env,
            routes=routes,
            term=inherited.get("TERM") if tty else None,
        )
        env.update(bridge.proxy_env())
        env.update(bridge.broker_env(endpoints))
        command = bridge.entry_command(container_command(plan, api_url, routes, endpoints.exposed))
        refuse_secrets([*command, *env.values()], secrets)
        with tempfile.TemporaryDirectory(prefix="aileron-sandbox-") as scratch:
            spec = staged_spec(
                Path(scratch),
                engine,
                tools_txt=tools_text(shims.tools_txt, endpoints.exposed),
                shims=shims.shims,
                env=env,
                image=plan.image.ref,
                command=command,
                cwd=cwd,
                network=bridge.NETWORK,
                name=f"aileron-{plan.agent.name}-{session_id.lower()}",
                settings=plan.settings,
                labels={"io.aileron.session": session_id, "io.aileron.agent": plan.agent.name},
                tty=tty,
            )
            mounts = (*spec.mounts, endpoints.mount, bridge.stage_bridge(Path(scratch)))
            spec = attrs.evolve(spec, mounts=mounts)
            endpoints.give_to(spec.user)
            checks = CheckCache.load(Layout().home)
            skipped = check_once(engine, spec, plan.image, plan.agent.command, checks)
            host_env = agent_environment(inherited, {}, secrets=secrets)
            exit_code = run(Invocation(tuple(run_argv(engine.call, spec)), host_env), cwd)
            if skipped is not None and exit_code in CANNOT_START:
                checks.forget(key=skipped)
                print(
                    "aileron: the sandbox check was skipped (this image passed it before);"
                    " the next launch runs it again",
                    file=sys.stderr,
                )
        return exit_code
    finally:
        end_session(client, session_id, exit_code)
