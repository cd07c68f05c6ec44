"""The in-container bridge (ADR 0023): the entry, the env, the mounts, and bridge.js itself run
with the host's node against real Unix sockets."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from aileron_cli.sandbox import bridge
from aileron_cli.sandbox.container import CHECK_SCRIPT, ContainerSpec, Mount, run_argv

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed on this host")


def test_entry_starts_the_bridge_then_execs_the_agent() -> None:
    """The container command is `sh -c ENTRY bridge.js AGENT ARGS`: the CA bundle (with a
    session CA), then the bridge, then the agent exec'd."""
    command = bridge.entry_command(("codex", "-c", "x=1", "hello world"))
    assert command == (
        "sh",
        "-c",
        "[ -r /run/aileron/ca.pem ] && { for f in /etc/ssl/certs/ca-certificates.crt"
        " /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do"
        ' [ -r "$f" ] && cat "$f" && break; done; cat /run/aileron/ca.pem; }'
        " 2>/dev/null >/tmp/aileron-ca.pem;"
        ' r=$(node "$0" --ready-fd 3 3>&1 >/dev/null </dev/null &); [ "$r" = ready ] || exit 125;'
        ' exec "$@"',
        "/opt/aileron/bridge.js",
        "codex",
        "-c",
        "x=1",
        "hello world",
    )


def test_proxy_env_sends_everything_but_loopback_to_the_egress_port() -> None:
    """HTTP(S)_PROXY in both cases point at 127.0.0.1:3128; NO_PROXY keeps the API port direct."""
    env = bridge.proxy_env()
    assert env == {
        "HTTPS_PROXY": "http://127.0.0.1:3128",
        "HTTP_PROXY": "http://127.0.0.1:3128",
        "https_proxy": "http://127.0.0.1:3128",
        "http_proxy": "http://127.0.0.1:3128",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    assert bridge.API_URL == "http://127.0.0.1:4000/v1"


def test_run_dir_is_mounted_rw_and_the_bridge_ro(tmp_path: Path) -> None:
    """The run folder goes to /run/aileron read-write; bridge.js is copied and mounted read-only."""
    endpoints = bridge.Endpoints(str(tmp_path / "run"), ())
    staged = bridge.stage_bridge(tmp_path)
    assert endpoints.mount == Mount(str(tmp_path / "run"), "/run/aileron", read_only=False)
    assert staged == Mount(str(tmp_path / "bridge.js"), "/opt/aileron/bridge.js", read_only=True)
    assert (tmp_path / "bridge.js").read_bytes() == bridge.bridge_source()
    assert (tmp_path / "bridge.js").stat().st_mode & 0o777 == 0o644
    spec = ContainerSpec(
        image="img",
        command=bridge.entry_command(("codex",)),
        env_file="/e",
        mounts=(endpoints.mount, staged),
        network=bridge.NETWORK,
        name="n",
    )
    argv = run_argv(["podman"], spec)
    assert argv[argv.index("--network") + 1] == "none"
    assert "--add-host" not in argv
    assert f"{tmp_path}/run:/run/aileron:rw" in argv
    assert f"{tmp_path}/bridge.js:/opt/aileron/bridge.js:ro" in argv


def test_sockets_are_given_to_another_container_user_only(tmp_path: Path) -> None:
    """give_to chowns the run folder and sockets to a different container uid, else nothing."""
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    sock = folder / "api.sock"
    sock.touch(mode=0o600)
    endpoints = bridge.Endpoints(str(folder), (str(sock),))
    endpoints.give_to(None)
    endpoints.give_to(f"{os.getuid()}:{os.getgid()}")
    assert (folder.stat().st_uid, sock.stat().st_uid) == (os.getuid(), os.getuid())
    if os.geteuid() != 0:
        return
    endpoints.give_to("1000:1001")
    assert [(p.stat().st_uid, p.stat().st_gid) for p in (folder, sock)] == [(1000, 1001)] * 2
    assert (folder.stat().st_mode & 0o777, sock.stat().st_mode & 0o777) == (0o700, 0o600)


def test_pre_run_check_requires_node() -> None:
    """The pre-run check fails as `node` when the image has no node."""
    assert 'command -v node >/dev/null 2>&1 \\\n  || fail node "node is not in the image' in (
        CHECK_SCRIPT
    )


class UnixEcho:
    """A Unix-socket server that reads until the client's half-close, then answers
    ``got:<bytes>`` and closes: only a bridge that forwards half-close gets the answer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                conn.sendall(b"got:" + data)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a path short enough for Unix sockets."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="brg-", dir="/tmp") as name:  # noqa: S108
        yield Path(name)


def _start(*args: str) -> subprocess.CompletedProcess[str]:
    """``bridge.js --background ARGS``; its stderr through a file, which the detached bridge
    keeps open (a pipe would never reach EOF)."""
    import tempfile

    assert NODE is not None
    source = Path(bridge.__file__).with_name("bridge.js")
    with tempfile.TemporaryFile("w+") as stderr:
        done = subprocess.run(
            [NODE, str(source), "--background", *args],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            timeout=30,
            check=False,
        )
        stderr.seek(0)
        return subprocess.CompletedProcess(done.args, done.returncode, "", stderr.read())


def _exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        return answer


def _stop_bridge(port: int) -> None:
    """End the background bridge listening on ``port`` (found by its command line)."""
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bridge.js" in b" ".join(cmdline) and f"{port}:".encode() in b" ".join(cmdline):
            os.kill(int(proc.name), 15)


@needs_node
def test_bridge_forwards_both_ways_with_half_close(short_dir: Path) -> None:
    """Bytes go through both ways, the client's half-close reaches the socket, answers return."""
    api = UnixEcho(short_dir / "api.sock")
    port = _free_port()
    try:
        started = _start("--api", f"{port}:{api.path}", "--egress", f"{_free_port()}:/nope")
        assert started.returncode == 0, started.stderr
        payload = os.urandom(300_000)
        assert _exchange(port, payload) == b"got:" + payload
        assert _exchange(port, b"again") == b"got:again"  # one failing peer never stops it
    finally:
        _stop_bridge(port)
        api.close()


@needs_node
def test_bridge_skips_a_missing_egress_socket_and_serves_a_present_one(short_dir: Path) -> None:
    """Without egress.sock only the API port listens; with it both ports forward."""
    api = UnixEcho(short_dir / "api.sock")
    api_port, egress_port = _free_port(), _free_port()
    try:
        started = _start("--api", f"{api_port}:{api.path}", "--egress", f"{egress_port}:/no.sock")
        assert started.returncode == 0, started.stderr
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", egress_port), timeout=5).close()
    finally:
        _stop_bridge(api_port)
    egress = UnixEcho(short_dir / "egress.sock")
    try:
        started = _start(
            "--api", f"{api_port}:{api.path}", "--egress", f"{egress_port}:{egress.path}"
        )
        assert started.returncode == 0, started.stderr
        assert _exchange(egress_port, b"proxy") == b"got:proxy"
        assert _exchange(api_port, b"api") == b"got:api"
    finally:
        _stop_bridge(api_port)
        api.close()
        egress.close()


@needs_node
def test_bridge_refuses_to_start_without_the_api_socket_or_a_free_port(short_dir: Path) -> None:
    """A missing api.sock or a taken port: exit 1 with the reason, so the entry never runs the
    agent without its way to Aileron."""
    missing = _start("--api", f"{_free_port()}:{short_dir / 'api.sock'}")
    assert missing.returncode == 1
    assert "api.sock does not exist" in missing.stderr
    api = UnixEcho(short_dir / "api.sock")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = _start("--api", f"{taken.getsockname()[1]}:{api.path}")
    api.close()
    assert busy.returncode == 1
    assert "cannot listen" in busy.stderr


def _run_entry(agent: list[str], api: str, egress: str) -> subprocess.CompletedProcess[str]:
    """The container's entry on this host: ``sh -c ENTRY bridge.js AGENT…`` with the bridge's
    routes from the environment (as in a container, where they are the defaults); stderr
    through a file, which the bridge left running keeps open."""
    import tempfile

    source = Path(bridge.__file__).with_name("bridge.js")
    env = dict(os.environ, AILERON_BRIDGE_API=api, AILERON_BRIDGE_EGRESS=egress)
    with tempfile.TemporaryFile("w+") as stderr:
        done = subprocess.run(
            [*bridge.entry_command(agent)[:3], str(source), *agent],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=30,
            check=False,
        )
        stderr.seek(0)
        return subprocess.CompletedProcess(done.args, done.returncode, done.stdout, stderr.read())


def _bridge_pids(api: str) -> list[int]:
    """The bridges an entry started with ``AILERON_BRIDGE_API=api`` (found by their env)."""
    marker = f"AILERON_BRIDGE_API={api}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bridge.js" in cmdline and marker in environ:
            found.append(int(proc.name))
    return found


def _stop_entry_bridge(api: str) -> None:
    """End the bridge an entry started with ``AILERON_BRIDGE_API=api``."""
    for pid in _bridge_pids(api):
        os.kill(pid, 15)


def _bridge_pid(api: str) -> int:
    pids = _bridge_pids(api)
    assert pids, f"no bridge with AILERON_BRIDGE_API={api}"
    return pids[0]


# The agent of the entry tests: connects to the API port at once (no retry) and prints what
# the Unix socket behind it answered.
FIRST_REQUEST = """
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as conn:
    conn.sendall(b"first")
    conn.shutdown(socket.SHUT_WR)
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
print(answer.decode())
"""


@needs_node
def test_entry_execs_the_agent_only_once_the_bridge_listens(short_dir: Path) -> None:
    """The agent's very first connection, made at once, reaches the socket: the entry waited
    for the bridge's ports before exec'ing it."""
    api = UnixEcho(short_dir / "api.sock")
    route = f"{_free_port()}:{api.path}"
    port = route.partition(":")[0]
    try:
        done = _run_entry(
            [sys.executable, "-c", FIRST_REQUEST, port], route, f"{_free_port()}:/no.sock"
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == "got:first\n"
    finally:
        _stop_entry_bridge(route)
        api.close()


@needs_node
def test_entry_exits_125_without_the_agent_when_the_bridge_cannot_start(
    short_dir: Path,
) -> None:
    """No api.sock: the bridge says why, the entry exits 125 and the agent never runs."""
    ran = short_dir / "agent-ran"
    done = _run_entry(
        ["sh", "-c", f"touch {ran}"],
        f"{_free_port()}:{short_dir / 'api.sock'}",
        f"{_free_port()}:/no.sock",
    )
    assert done.returncode == 125
    assert "api.sock does not exist" in done.stderr
    assert not ran.exists()


@needs_node
def test_entry_bridge_ignores_the_terminal_signals(short_dir: Path) -> None:
    """Ctrl-C, Ctrl-\\, Ctrl-Z and a hang-up are the agent's: the bridge, in the agent's
    process group, neither stops nor ends on them and keeps forwarding."""
    api = UnixEcho(short_dir / "api.sock")
    route = f"{_free_port()}:{api.path}"
    try:
        done = _run_entry(["true"], route, f"{_free_port()}:/no.sock")
        assert done.returncode == 0, done.stderr
        pid = _bridge_pid(route)
        for number in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGHUP):
            os.kill(pid, number)
        assert _exchange(int(route.partition(":")[0]), b"still") == b"got:still"
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        assert state != "T"
    finally:
        _stop_entry_bridge(route)
        api.close()
