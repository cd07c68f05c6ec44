"""One container run, as data: what ``aileron launch --sandbox`` mounts, sets and runs.

A :class:`ContainerSpec` is built once per launch; the pre-run check and the agent's run are
two uses of it that differ only in their command, network and terminal (SPEC §11 step 3: "with
the same mounts and env"). :func:`run_argv` spells a spec as the engine's ``run`` arguments —
docker and podman take the same ones — and :func:`check_spec` derives the check's spec.
Nothing here touches the engine; :mod:`aileron_cli.sandbox.launch` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

WORKSPACE = "/home/agent/workspace"
HOME = "/home/agent"
TOOLS_FILE = "/etc/aileron/tools.txt"
SHIM_DIR = "/opt/aileron/bin"
# The PATH of an image that declares none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The check runs with no network: it needs none, and starts faster without one.
CHECK_NETWORK = "none"
CHECK_OK = "aileron-check: ok"
# Hardening (ADR 0023): every capability dropped and none added back (an agent image needs none:
# it runs as an unprivileged user, on files that user owns), no privilege gain through setuid
# binaries, limits from `[sandbox]` in config.toml, and a read-only root file system where only
# /tmp, the home and the workspace are writable.
DEFAULT_PIDS_LIMIT = 512
DEFAULT_MEMORY = "4g"
# The container user when Aileron runs as root and root owns the workspace: never uid 0.
FALLBACK_USER = "1000:1000"
TMPFS_OPTIONS = "rw,exec,nosuid,nodev"
CHECK_FAILED = "aileron-check-failed:"

# The pre-run checks (SPEC §11 step 3), in the container with the run's mounts and env. Each
# failure prints one `aileron-check-failed: <check>: <why>` line; $1 is the agent's command.
CHECK_SCRIPT = """\
fail() { printf '%s %s: %s\\n' 'aileron-check-failed:' "$1" "$2"; exit 3; }
cd "$AILERON_WORKSPACE" 2>/dev/null || fail workspace "$AILERON_WORKSPACE is not a directory"
probe=".aileron-write-check.$$"
if (: > "$probe") 2>/dev/null; then rm -f "$probe"; else
  fail workspace "$AILERON_WORKSPACE is not writable by uid $(id -u)"
fi
command -v "$1" >/dev/null 2>&1 || fail agent "the agent command '$1' is not in the image"
command -v curl >/dev/null 2>&1 || command -v wget >/dev/null 2>&1 \\
  || fail http-client "neither curl nor wget is in the image (the Aileron shims need one)"
[ -r "$AILERON_TOOLS_FILE" ] || fail tools "$AILERON_TOOLS_FILE is not readable"
command -v node >/dev/null 2>&1 \\
  || fail node "node is not in the image (the bridge to Aileron, /opt/aileron/bridge.js, needs it)"
echo 'aileron-check: ok'
"""


@attrs.frozen
class Mount:
    """A bind mount from the host into the container."""

    source: str
    target: str
    read_only: bool = True

    @property
    def volume(self) -> str:
        return f"{self.source}:{self.target}:{'ro' if self.read_only else 'rw'}"


@attrs.frozen
class Tmpfs:
    """A writable in-memory file system in the (read-only) container."""

    target: str
    options: str

    @property
    def argument(self) -> str:
        return f"{self.target}:{self.options}"


@attrs.frozen
class ContainerSpec:
    """Everything about one container run but the engine that runs it."""

    image: str
    command: tuple[str, ...]
    env_file: str
    """A 0600 file on the host holding the container's environment (kept off argv)."""
    mounts: tuple[Mount, ...]
    network: str
    name: str
    user: str | None = None
    userns: str | None = None
    add_hosts: tuple[tuple[str, str], ...] = ()
    labels: Mapping[str, str] = attrs.field(factory=dict)
    tty: bool = False
    interactive: bool = True
    pids_limit: int = DEFAULT_PIDS_LIMIT
    memory: str = DEFAULT_MEMORY
    tmpfs: tuple[Tmpfs, ...] = ()
    """The writable places of the read-only root file system (see :func:`writable_tmpfs`)."""


def run_argv(engine: Sequence[str], spec: ContainerSpec) -> list[str]:
    """``<engine> run …`` for ``spec``: removed on exit, with an init process that passes
    signals on, the terminal when there is one, and the engine proxying our signals; always
    hardened (no capabilities, no new privileges, limits, read-only root)."""
    argv = [*engine, "run", "--rm", "--init", "--name", spec.name, "--network", spec.network]
    argv += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    argv += ["--pids-limit", str(spec.pids_limit), "--memory", spec.memory, "--read-only"]
    for tmpfs in spec.tmpfs:
        argv += ["--tmpfs", tmpfs.argument]
    if spec.interactive:
        argv.append("--interactive")
    if spec.tty:
        argv.append("--tty")
    if spec.user is not None:
        argv += ["--user", spec.user]
    if spec.userns is not None:
        argv += ["--userns", spec.userns]
    for host, address in spec.add_hosts:
        argv += ["--add-host", f"{host}:{address}"]
    argv += ["--env-file", spec.env_file]
    for mount in spec.mounts:
        argv += ["--volume", mount.volume]
    argv += ["--workdir", WORKSPACE]
    for key, value in sorted(spec.labels.items()):
        argv += ["--label", f"{key}={value}"]
    return [*argv, spec.image, *spec.command]


def container_user(uid: int, gid: int, workspace_owner: tuple[int, int]) -> str:
    """``uid:gid`` for the container: the invoking user's, so what the agent writes in the
    workspace is theirs; when that is root, the workspace owner's, or :data:`FALLBACK_USER`
    when root owns it too. Never uid 0, and never gid 0 (the uid stands in for it)."""
    if uid == 0:
        uid, gid = workspace_owner
        if uid == 0:
            return FALLBACK_USER
    return f"{uid}:{gid or uid}"


def writable_tmpfs(engine_name: str, user: str | None) -> tuple[Tmpfs, ...]:
    """``/tmp`` and the home (``/home/agent``, the workspace mounted under it) as tmpfs, the
    home private to the container user. podman's ``U`` gives the tmpfs to the container's user
    (its ``--tmpfs`` refuses ``uid=``); docker takes the kernel's ``uid=``/``gid=``."""
    if engine_name == "podman":
        owner = "U"
    elif user is not None:
        uid, _, gid = user.partition(":")
        owner = f"uid={uid},gid={gid or uid}"
    else:
        raise ValueError(f"{engine_name} needs the container user to own the home")
    return (
        Tmpfs("/tmp", f"{TMPFS_OPTIONS},mode=1777"),  # noqa: S108 (the container's /tmp)
        Tmpfs(HOME, f"{TMPFS_OPTIONS},mode=0700,{owner}"),
    )


def hardening(spec: ContainerSpec) -> dict[str, str]:
    """The hardening of ``spec`` as ``aileron sandbox check`` shows it."""
    return {
        "user": spec.user or "the invoking user (rootless, --userns keep-id)",
        "capabilities": "all dropped, none added",
        "no-new-privileges": "on",
        "pids limit": str(spec.pids_limit),
        "memory": spec.memory,
        "root file system": "read-only; writable: "
        + ", ".join([*(tmpfs.target for tmpfs in spec.tmpfs), WORKSPACE]),
        "network": spec.network,
    }


def check_spec(spec: ContainerSpec, agent_command: str) -> ContainerSpec:
    """The pre-run check of ``spec``: same image, mounts, env and user; the check script as
    the command, no network, no terminal, no stdin."""
    return attrs.evolve(
        spec,
        command=("sh", "-c", CHECK_SCRIPT, "aileron-check", agent_command),
        network=CHECK_NETWORK,
        name=f"{spec.name}-check",
        add_hosts=(),
        tty=False,
        interactive=False,
    )


def failed_check(output: str) -> tuple[str, str] | None:
    """The ``(check, reason)`` a check's output reports, or ``None``."""
    for line in output.splitlines():
        if line.startswith(CHECK_FAILED):
            check, _, reason = line.removeprefix(CHECK_FAILED).strip().partition(": ")
            return check, reason
    return None


def env_file_text(env: Mapping[str, str]) -> str:
    """``env`` as an engine env file (``K=V`` lines). Values cannot span lines there, so a
    value with a newline is refused (nothing Aileron sets has one)."""
    lines = []
    for name, value in sorted(env.items()):
        if "\n" in value or "\r" in value or "=" in name or not name:
            raise ValueError(f"environment variable {name!r} cannot go in an env file")
        lines.append(f"{name}={value}\n")
    return "".join(lines)


def image_path(image_env: Sequence[str]) -> str:
    """The PATH an image declares (``Config.Env``), or the usual default."""
    for item in image_env:
        name, _, value = item.partition("=")
        if name == "PATH" and value:
            return value
    return DEFAULT_PATH
