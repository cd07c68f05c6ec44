"""The sandbox's container description, pure: ``ContainerSpec`` → engine argv, the check's spec,
the check script itself (run with the host's ``sh`` in a directory playing the container), the
container's environment and command, and the engine-detection errors."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import attrs
import pytest
from sandbox.support import CONTAINER_VARS

from aileron_cli.launch import agent_named
from aileron_cli.launch.errors import SandboxUnavailable
from aileron_cli.launch.routing import Kind, Routes
from aileron_cli.sandbox import images
from aileron_cli.sandbox.container import (
    CHECK_FAILED,
    CHECK_NETWORK,
    CHECK_OK,
    CHECK_SCRIPT,
    DEFAULT_PATH,
    SHIM_DIR,
    TOOLS_FILE,
    WORKSPACE,
    ContainerSpec,
    Mount,
    Tmpfs,
    check_spec,
    env_file_text,
    failed_check,
    image_path,
    run_argv,
)
from aileron_cli.sandbox.engine import Engine, detect
from aileron_cli.sandbox.instructions import agent_arguments
from aileron_cli.sandbox.launch import SandboxPlan, container_command, container_env

SH = "/bin/sh"
API_URL = "http://host.docker.internal:41234/v1"
TOKEN = "ais_session-token-for-the-test"  # noqa: S105 (a stand-in session token)


def _spec(**changes: Any) -> ContainerSpec:
    spec = ContainerSpec(
        image="aileron/sandbox-codex:1.2.3",
        command=("codex", "--help"),
        env_file="/tmp/scratch/env",
        mounts=(
            Mount("/home/u/project", WORKSPACE, read_only=False),
            Mount("/tmp/scratch/tools.txt", TOOLS_FILE),
            Mount("/tmp/scratch/bin", SHIM_DIR),
        ),
        network="bridge",
        name="aileron-codex-01abc",
        user="1000:1000",
        userns=None,
        add_hosts=(("host.docker.internal", "host-gateway"),),
        labels={"io.aileron.session": "01ABC", "io.aileron.agent": "codex"},
        tty=True,
        interactive=True,
        pids_limit=256,
        memory="2g",
        tmpfs=(Tmpfs("/tmp", "rw,mode=1777"), Tmpfs("/home/agent", "rw,mode=0700,uid=1000")),
    )
    return attrs.evolve(spec, **changes)


# --- run_argv -------------------------------------------------------------------------------


def test_run_argv_spells_every_part_of_the_spec() -> None:
    """run_argv spells every part of a spec, in a fixed order, image and command last."""
    assert run_argv(("/usr/bin/docker",), _spec()) == [
        "/usr/bin/docker",
        "run",
        "--rm",
        "--init",
        "--name",
        "aileron-codex-01abc",
        "--network",
        "bridge",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--pids-limit",
        "256",
        "--memory",
        "2g",
        "--read-only",
        "--tmpfs",
        "/tmp:rw,mode=1777",
        "--tmpfs",
        "/home/agent:rw,mode=0700,uid=1000",
        "--interactive",
        "--tty",
        "--user",
        "1000:1000",
        "--add-host",
        "host.docker.internal:host-gateway",
        "--env-file",
        "/tmp/scratch/env",
        "--volume",
        f"/home/u/project:{WORKSPACE}:rw",
        "--volume",
        f"/tmp/scratch/tools.txt:{TOOLS_FILE}:ro",
        "--volume",
        f"/tmp/scratch/bin:{SHIM_DIR}:ro",
        "--workdir",
        WORKSPACE,
        "--label",
        "io.aileron.agent=codex",
        "--label",
        "io.aileron.session=01ABC",
        "aileron/sandbox-codex:1.2.3",
        "codex",
        "--help",
    ]


def test_run_argv_leaves_out_what_the_spec_does_not_ask_for() -> None:
    """Options the spec does not ask for are absent; --userns appears when set."""
    spec = _spec(tty=False, interactive=False, user=None, userns="keep-id", add_hosts=(), labels={})
    argv = run_argv(("podman",), spec)
    for option in ("--tty", "--interactive", "--user", "--add-host", "--label"):
        assert option not in argv
    assert argv[:8] == [
        "podman",
        "run",
        "--rm",
        "--init",
        "--name",
        spec.name,
        "--network",
        "bridge",
    ]
    assert argv[argv.index("--userns") + 1] == "keep-id"
    assert argv[-3:] == [spec.image, "codex", "--help"]


def test_run_argv_puts_no_environment_on_the_command_line() -> None:
    """The environment goes through --env-file only: no --env/-e in the vector."""
    argv = run_argv(("docker",), _spec())
    assert "--env" not in argv
    assert "-e" not in argv
    assert argv.count("--env-file") == 1


def test_mount_volume_spelling() -> None:
    """A mount is `source:target:ro` by default and `:rw` when writable."""
    assert Mount("/a", "/b").volume == "/a:/b:ro"
    assert Mount("/a b", "/c", read_only=False).volume == "/a b:/c:rw"


# --- check_spec -----------------------------------------------------------------------------


def test_check_spec_changes_only_command_network_name_terminal_and_hosts() -> None:
    """check_spec changes only command, network, name, terminal, stdin and extra hosts."""
    spec = _spec(userns="keep-id")
    check = check_spec(spec, "codex")
    changed = {"command", "network", "name", "tty", "interactive", "add_hosts"}
    before, after = attrs.asdict(spec), attrs.asdict(check)
    assert {k: v for k, v in before.items() if k not in changed} == {
        k: v for k, v in after.items() if k not in changed
    }
    assert check.command == ("sh", "-c", CHECK_SCRIPT, "aileron-check", "codex")
    assert check.network == CHECK_NETWORK == "none"
    assert check.name == f"{spec.name}-check"
    assert (check.tty, check.interactive, check.add_hosts) == (False, False, ())


def test_check_argv_shares_env_file_and_volumes_with_the_run() -> None:
    """Spelled as argv, the check and the run have the same env file, volumes and user."""
    spec = _spec()
    run, check = run_argv(("docker",), spec), run_argv(("docker",), check_spec(spec, "codex"))

    def values(argv: list[str], option: str) -> list[str]:
        return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == option]

    for option in ("--env-file", "--volume", "--user", "--workdir"):
        assert values(run, option) == values(check, option), option
    assert values(check, "--network") == ["none"]
    assert check[-6:] == [spec.image, "sh", "-c", CHECK_SCRIPT, "aileron-check", "codex"]


# --- failed_check ---------------------------------------------------------------------------


def test_failed_check_reads_the_check_and_its_reason() -> None:
    """A failure line gives (check, reason); the reason may itself contain ': '."""
    output = "some noise\naileron-check-failed: agent: the agent command 'codex': missing\n"
    assert failed_check(output) == ("agent", "the agent command 'codex': missing")


def test_failed_check_takes_the_first_failure() -> None:
    """With several failure lines the first one counts."""
    output = f"{CHECK_FAILED} workspace: not writable\n{CHECK_FAILED} agent: missing\n"
    assert failed_check(output) == ("workspace", "not writable")


@pytest.mark.parametrize("output", ["", CHECK_OK, "aileron-check: ok\n", "error: no such image"])
def test_failed_check_is_none_without_a_failure_line(output: str) -> None:
    """Output without a failure line reports no failed check."""
    assert failed_check(output) is None


# --- env_file_text, image_path ----------------------------------------------------------------


def test_env_file_text_is_sorted_lines() -> None:
    """The env file is one `K=V` line per variable, sorted, values kept verbatim (even `=`)."""
    text = env_file_text({"B": "two words", "A": "x=y", "C": ""})
    assert text == "A=x=y\nB=two words\nC=\n"


@pytest.mark.parametrize(
    "env",
    [{"A": "line\nbreak"}, {"A": "carriage\rreturn"}, {"A=B": "v"}, {"": "v"}],
    ids=["newline", "carriage-return", "equals-in-name", "empty-name"],
)
def test_env_file_text_refuses_what_an_env_file_cannot_hold(env: dict[str, str]) -> None:
    """A value spanning lines, or a name that is empty or holds `=`, is refused."""
    with pytest.raises(ValueError, match="cannot go in an env file"):
        env_file_text(env)


def test_image_path_takes_the_images_path() -> None:
    """The image's PATH from Config.Env; the usual default when it declares none or an empty one."""
    assert image_path(["LANG=C", "PATH=/opt/node/bin:/usr/bin"]) == "/opt/node/bin:/usr/bin"
    assert image_path(["LANG=C"]) == DEFAULT_PATH
    assert image_path(["PATH="]) == DEFAULT_PATH
    assert image_path([]) == DEFAULT_PATH


# --- container_env, container_command --------------------------------------------------------


def _env(keyed: frozenset[Kind] = frozenset(), term: str | None = None) -> dict[str, str]:
    return container_env(
        api_url=API_URL,
        session_id="01SESSION",
        token=TOKEN,
        image_env=("PATH=/opt/node/bin:/usr/bin", "NODE_VERSION=22"),
        routes=Routes.builtin(keyed),
        term=term,
    )


def test_container_env_is_the_session_and_nothing_of_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The container env is exactly the session's variables, nothing of the host's."""
    monkeypatch.setenv("AILERON_TEST_HOST_ONLY", "host-only")
    env = _env()
    assert "AILERON_TEST_HOST_ONLY" not in env
    assert "host-only" not in env.values()
    assert env == {
        "HOME": "/home/agent",
        "PATH": f"/opt/node/bin:/usr/bin:{SHIM_DIR}",
        "AILERON_API_URL": API_URL,
        "AILERON_SESSION_ID": "01SESSION",
        "AILERON_TOKEN": TOKEN,
        "AILERON_TOOLS_FILE": TOOLS_FILE,
        "AILERON_WORKSPACE": WORKSPACE,
        "OPENAI_BASE_URL": f"{API_URL}/gateway/openai/v1",
        "ANTHROPIC_BASE_URL": f"{API_URL}/gateway/anthropic",
        "ANTHROPIC_CUSTOM_HEADERS": f"X-Aileron-Session-Token: {TOKEN}",
    }


@pytest.mark.parametrize(
    ("keyed", "keys"),
    [
        (frozenset({"openai"}), {"OPENAI_API_KEY"}),
        (frozenset({"anthropic"}), {"ANTHROPIC_API_KEY"}),
        (frozenset({"openai", "anthropic"}), {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}),
    ],
)
def test_container_env_sets_provider_keys_only_when_keyed(
    keyed: frozenset[Kind], keys: set[str]
) -> None:
    """A provider's key variable is set (to the session token) only when Aileron holds its key."""
    env = _env(keyed)
    assert set(env) == CONTAINER_VARS | keys
    assert all(env[key] == TOKEN for key in keys)


def test_container_env_passes_term_only_when_given() -> None:
    """TERM is set from the caller's terminal, and only when there is one."""
    assert _env(term="xterm-256color")["TERM"] == "xterm-256color"
    assert "TERM" not in _env(term=None)
    assert "TERM" not in _env(term="")


def test_container_env_fits_an_env_file() -> None:
    """The container's environment always goes into an env file without refusal."""
    text = env_file_text(_env(frozenset({"openai", "anthropic"}), "xterm"))
    assert text.count("\n") == len(CONTAINER_VARS) + 3


def _plan(agent: str, args: tuple[str, ...] = ("--help",)) -> SandboxPlan:
    engine = Engine(
        name="docker",
        path="/usr/bin/docker",
        version="27.3.1",
    )
    return SandboxPlan(
        agent=agent_named(agent),
        engine=engine,
        image=images.Image(ref=images.default_tag(agent), env=()),
        args=args,
    )


def test_codex_gets_the_gateway_provider_when_openai_is_keyed() -> None:
    """With the OpenAI key in Aileron, codex gets -c gateway overrides before its args."""
    command = container_command(_plan("codex", ("exec", "hi")), API_URL, Routes.builtin({"openai"}))
    assert command[0] == "codex"
    assert command[-2:] == ("exec", "hi")
    overrides = command[1:-2]
    assert overrides[::2] == ("-c",) * (len(overrides) // 2)
    values = overrides[1::2]
    assert 'model_provider="aileron"' in values
    assert f'model_providers.aileron.base_url="{API_URL}/gateway/openai/v1"' in values
    assert 'model_providers.aileron.env_key="AILERON_TOKEN"' in values
    assert not [value for value in values if TOKEN in value]


@pytest.mark.parametrize("keyed", [frozenset(), frozenset({"anthropic"})])
def test_codex_gets_no_gateway_provider_without_an_openai_key(keyed: frozenset[Kind]) -> None:
    """Without the OpenAI key in Aileron, codex runs with its sandbox arguments and its own."""
    command = container_command(_plan("codex"), API_URL, Routes.builtin(keyed))
    assert command == ("codex", *agent_arguments("codex"), "--help")


@pytest.mark.parametrize("agent", ["claude", "goose", "opencode"])
def test_other_agents_get_no_gateway_overrides(agent: str) -> None:
    """Only codex gets gateway overrides; the others run as `<command> [instructions] ARGS`."""
    plan = _plan(agent, ("a", "b"))
    command = container_command(plan, API_URL, Routes.builtin({"openai", "anthropic"}))
    assert command == (plan.agent.command, *agent_arguments(agent), "a", "b")


# --- images (pure parts) ---------------------------------------------------------------------


def test_default_tag_and_base_image_precedence() -> None:
    """Tag is sandbox-<agent>:<version>; base is --base-image, then the env var, then default."""
    assert images.default_tag("goose").startswith("aileron/sandbox-goose:")
    env = {images.BASE_IMAGE_VAR: "localhost/from-env:1"}
    assert images.base_image("codex", env, "localhost/flag:1") == "localhost/flag:1"
    assert images.base_image("codex", env) == "localhost/from-env:1"
    assert images.base_image("codex", {}) == images.NODE_BASE
    assert images.base_image("goose", {}) == "docker.io/library/debian:bookworm-slim"


# --- engine.detect --------------------------------------------------------------------------


def test_detect_auto_without_engines_explains_both(tmp_path: Path) -> None:
    """auto with neither docker nor podman on PATH names both as not installed."""
    with pytest.raises(SandboxUnavailable) as raised:
        detect("auto", {"PATH": str(tmp_path)})
    message = str(raised.value)
    assert message.startswith("no container engine works here (")
    assert "docker: not installed (no `docker` on PATH)" in message
    assert "podman: not installed (no `podman` on PATH)" in message
    assert "--sandbox=off" in message
    assert raised.value.code == "sandbox_unavailable"


@pytest.mark.parametrize("mode", ["docker", "podman"])
def test_detect_named_engine_missing(tmp_path: Path, mode: str) -> None:
    """A named engine that is not installed is refused naming only that engine."""
    with pytest.raises(SandboxUnavailable) as raised:
        detect(mode, {"PATH": str(tmp_path)})
    message = str(raised.value)
    assert message.startswith(
        f"the {mode} engine does not work here ({mode}: not installed (no `{mode}` on PATH))"
    )
    other = "podman" if mode == "docker" else "docker"
    assert f"{other}: not installed" not in message


def test_detect_unknown_mode() -> None:
    """An unknown engine name is refused listing the modes."""
    with pytest.raises(SandboxUnavailable, match="unknown sandbox engine 'bogus'"):
        detect("bogus", {"PATH": ""})


# --- the check script ------------------------------------------------------------------------


def test_check_script_is_valid_sh() -> None:
    """`sh -n` accepts the check script."""
    done = subprocess.run([SH, "-n", "-c", CHECK_SCRIPT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


class Container:
    """A temp directory playing the container for the check script: a workspace, a tools
    file, and a PATH made of symlinks to chosen host tools."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.workspace = root / "workspace"
        self.workspace.mkdir()
        self.tools = root / "tools.txt"
        self.tools.write_text("", encoding="utf-8")
        self.bin = root / "bin"
        self.bin.mkdir()
        for tool in ("rm", "id"):  # what the script needs besides shell builtins
            self.link(tool)

    def link(self, name: str, target: str | None = None) -> None:
        found = shutil.which(target or name)
        assert found is not None, f"{target or name} is not on this host"
        (self.bin / name).symlink_to(found)

    def run(self, agent: str = "codex", **env: str) -> subprocess.CompletedProcess[str]:
        variables = {
            "PATH": str(self.bin),
            "AILERON_WORKSPACE": str(self.workspace),
            "AILERON_TOOLS_FILE": str(self.tools),
            **env,
        }
        return subprocess.run(
            [SH, "-c", CHECK_SCRIPT, "aileron-check", agent],
            capture_output=True,
            text=True,
            env=variables,
            cwd=self.root,
            timeout=30,
        )


@pytest.fixture
def container(tmp_path: Path) -> Container:
    """A container stand-in with the agent (`codex`), curl and node present."""
    box = Container(tmp_path)
    box.link("codex", "true")
    box.link("curl", "true")
    box.link("node", "true")
    return box


def _failure(done: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert len(done.stdout.splitlines()) == 1, done.stdout
    failed = failed_check(done.stdout)
    assert failed is not None, done.stdout
    return failed


def test_check_script_passes_in_a_good_container(container: Container) -> None:
    """In a good container the script prints ok, exits 0 and leaves no probe file."""
    done = container.run()
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{CHECK_OK}\n", "")
    assert list(container.workspace.iterdir()) == []


def test_check_script_accepts_wget_instead_of_curl(container: Container) -> None:
    """wget alone is an HTTP client the shims can use."""
    (container.bin / "curl").unlink()
    container.link("wget", "true")
    assert container.run().stdout == f"{CHECK_OK}\n"


def test_check_script_missing_node(container: Container) -> None:
    """An image without node fails the `node` check: the bridge to Aileron needs it."""
    (container.bin / "node").unlink()
    check, reason = _failure(container.run())
    assert check == "node"
    assert "node is not in the image" in reason


def test_check_script_missing_workspace(container: Container) -> None:
    """A workspace that is not a directory fails the `workspace` check."""
    done = container.run(AILERON_WORKSPACE=str(container.root / "absent"))
    check, reason = _failure(done)
    assert check == "workspace"
    assert reason == f"{container.root / 'absent'} is not a directory"


def test_check_script_unwritable_workspace(container: Container) -> None:
    """A workspace no file can be created in (/proc) fails `workspace`, naming the uid."""
    check, reason = _failure(container.run(AILERON_WORKSPACE="/proc"))
    assert check == "workspace"
    assert reason == f"/proc is not writable by uid {os.getuid()}"


def test_check_script_missing_agent(container: Container) -> None:
    """An agent command not on PATH fails the `agent` check naming the command."""
    check, reason = _failure(container.run(agent="claude"))
    assert check == "agent"
    assert reason == "the agent command 'claude' is not in the image"


def test_check_script_missing_http_client(container: Container) -> None:
    """Neither curl nor wget fails the `http-client` check."""
    (container.bin / "curl").unlink()
    check, reason = _failure(container.run())
    assert check == "http-client"
    assert "neither curl nor wget" in reason


def test_check_script_unreadable_tools_file(container: Container) -> None:
    """A tools file that cannot be read fails the `tools` check naming the file."""
    absent = container.root / "no-tools.txt"
    check, reason = _failure(container.run(AILERON_TOOLS_FILE=str(absent)))
    assert (check, reason) == ("tools", f"{absent} is not readable")


def test_check_script_reports_the_first_failure_only(container: Container) -> None:
    """With the agent and the HTTP client both missing, only the `agent` check is reported."""
    (container.bin / "curl").unlink()
    check, _ = _failure(container.run(agent="claude"))
    assert check == "agent"
