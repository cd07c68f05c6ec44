"""B16 of BENCHMARKS.md: the sandbox egress proxy, through the bridge, vs the proxy bypassed.

Measured on the host, without a container: the parts a sandboxed agent's traffic crosses are
all real and run as shipped — a real daemon (``aileron daemon start`` in a throw-away
AILERON_HOME, vault initialized so audit heads are signed), the session's egress proxy opened
with ``POST /v1/sessions/{id}/egress`` on its Unix socket (and the listener, as a launch opens
both: :func:`aileron_cli.sandbox.bridge.open_endpoints`), and the shipped ``bridge.js`` run by
the host's ``node`` on a free loopback port, as the container's entry runs it on 127.0.0.1:3128.
What the container adds (its network namespace, the engine's socket mount) is not measured.

The outside world is a local HTTPS server in its own process (http.server on TLS, HTTP/1.1
keep-alive, a self-signed P-256 certificate generated at start with ``cryptography``), allowed
as the IP literal ``127.0.0.1:PORT``. The client is plain sockets + ``ssl`` (verifying the
generated certificate), so the client's own overhead does not dilute the ratio.

B16-small  --requests (500) sequential HTTPS GETs of a tiny body, each on a NEW connection, so
           each one through the proxy is a CONNECT (bridge → egress.sock → upstream) with its
           own TLS handshake inside the tunnel and its own ``egress.allowed`` audit record;
           total time through the proxy vs straight to the upstream; budget <= 1.5x.
B16-bulk   one 50 MiB HTTPS GET: MB/s through the proxy vs straight; budget >= 70 %.

Each is run --rounds times, interleaved (direct, through), and the median round is reported.
Details add the same traffic to egress.sock without the bridge (splits bridge vs proxy), CPU
seconds of the daemon, node and the upstream per phase, and the check that every proxied
connection was audited (an ``egress.allowed`` record each; a lost record fails the figure).

Usage: python bench/egress_bench.py [--requests 500] [--mib 50] [--rounds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchlib import as_installed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from sandbox.support import self_signed  # noqa: E402

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
SMALL_BUDGET = 1.5
BULK_BUDGET = 0.70
SMALL_BODY = b"ok\n"
BLOCK = 1 << 20
TICKS = os.sysconf("SC_CLK_TCK")


# --- the outside world: a local HTTPS server (its own process) ------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # as servers do: the head and body are separate writes
    big_bytes = 50 * BLOCK

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/small":
            self.send_response(200)
            self.send_header("Content-Length", str(len(SMALL_BODY)))
            self.end_headers()
            self.wfile.write(SMALL_BODY)
        elif self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(self.big_bytes))
            self.end_headers()
            block = bytes(BLOCK)
            for _ in range(self.big_bytes // BLOCK):
                self.wfile.write(block)
        else:
            self.send_error(404)

    def log_message(self, *args: Any) -> None:
        pass


def serve_upstream(cert: Path, key: Path, mib: int) -> None:
    """Serve /small and /big (``mib`` MiB) on HTTPS; print the port once listening."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    _Handler.big_bytes = mib * BLOCK
    server = ThreadingHTTPServer((HOST, 0), _Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


@dataclass(frozen=True)
class Process:
    pid: int
    port: int


@contextlib.contextmanager
def upstream(cert: Path, key: Path, mib: int) -> Iterator[Process]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--upstream", str(cert), str(key), "--mib", str(mib)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield Process(process.pid, int(process.stdout.readline()))
    finally:
        process.terminate()
        process.wait(10)


# --- the client: plain sockets and ssl -------------------------------------------------------

Connect = Callable[[], socket.socket]
"""Opens a TCP path to the upstream: straight, or a tunnel through a proxy."""


def _tcp(port: int) -> socket.socket:
    """A TCP connection to ``port`` with TCP_NODELAY, as HTTP clients set it."""
    sock = socket.create_connection((HOST, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def direct(port: int) -> Connect:
    return lambda: _tcp(port)


def _tunnel(sock: socket.socket, port: int) -> socket.socket:
    """Ask for a CONNECT tunnel to the upstream on ``sock``; the socket once it is open."""
    sock.sendall(f"CONNECT {HOST}:{port} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:  # nothing follows the head before our ClientHello
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"the proxy closed the CONNECT: {head!r}")
        head += chunk
    if not head.startswith(b"HTTP/1.1 200 "):
        raise ConnectionError(f"the proxy refused the CONNECT: {head!r}")
    return sock


def via_bridge(bridge_port: int, port: int) -> Connect:
    return lambda: _tunnel(_tcp(bridge_port), port)


def via_socket(path: str, port: int) -> Connect:
    def connect() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        return _tunnel(sock, port)

    return connect


def get(context: ssl.SSLContext, connect: Connect, path: str, buffer: bytearray) -> int:
    """GET ``path`` over TLS on a new connection; the body's length (checked)."""
    with context.wrap_socket(connect(), server_hostname=HOST) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = tls.recv(65536)
            if not chunk:
                raise ConnectionError(f"no answer to GET {path}")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        got = len(body)
        view = memoryview(buffer)
        while got < length:
            n = tls.recv_into(view)
            if not n:
                raise ConnectionError(f"GET {path}: {got} of {length} bytes")
            got += n
        assert got == length, (got, length)
        return length


def small(context: ssl.SSLContext, connect: Connect, requests: int) -> float:
    """Seconds for ``requests`` sequential GET /small, each on a new connection."""
    buffer = bytearray(65536)
    start = time.perf_counter()
    for _ in range(requests):
        get(context, connect, "/small", buffer)
    return time.perf_counter() - start


def bulk(context: ssl.SSLContext, connect: Connect) -> tuple[float, int]:
    """(seconds, bytes) of one GET /big."""
    buffer = bytearray(BLOCK)
    start = time.perf_counter()
    length = get(context, connect, "/big", buffer)
    return time.perf_counter() - start, length


# --- the daemon, its session's egress proxy and the bridge -----------------------------------


def cpu_seconds(pid: int) -> float:
    """CPU (user + system) a process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / TICKS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Proxy:
    home: Path
    daemon_pid: int
    session_id: str
    socket: str
    bridge: Process


@contextlib.contextmanager
def egress_proxy(home: Path, upstream_port: int, bridge_js: Path | None) -> Iterator[Proxy]:
    """A real daemon, a session with its listener and egress proxy allowing the upstream, and
    ``bridge.js`` forwarding a free loopback port to the proxy's socket."""
    from aileron_cli.sandbox.bridge import open_endpoints, stage_bridge
    from aileron_core.client import DaemonClient
    from aileron_core.discovery import read_daemon_info

    env = dict(os.environ, AILERON_HOME=str(home))
    subprocess.run(
        [str(BIN / "aileron"), "daemon", "start"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    bridge: subprocess.Popen[bytes] | None = None
    try:
        info = read_daemon_info(home / "daemon.json")
        assert info is not None
        with DaemonClient.for_daemon(info, timeout=120) as admin:
            admin.post("vault/init", {"passphrase": "bench"})
            session = admin.post("sessions", {"agent": "bench", "working_dir": "/"})
            endpoints = open_endpoints(admin, session["id"], [f"{HOST}:{upstream_port}"])
        api_socket, egress_socket = endpoints.sockets
        script = str(bridge_js) if bridge_js else stage_bridge(home).source
        port = free_port()
        bridge = subprocess.Popen(
            [
                "node",
                script,
                "--api",
                f"{free_port()}:{api_socket}",
                "--egress",
                f"{port}:{egress_socket}",
            ]
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, port)).close()
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline or bridge.poll() is not None:
                    raise RuntimeError("bridge.js did not start") from None
                time.sleep(0.02)
        yield Proxy(home, info.pid, session["id"], egress_socket, Process(bridge.pid, port))
    finally:
        if bridge is not None:
            bridge.terminate()
            bridge.wait(10)
        subprocess.run([str(BIN / "aileron"), "daemon", "stop"], env=env, stdout=subprocess.DEVNULL)


def egress_records(home: Path, session_id: str) -> int:
    """How many ``egress.allowed`` records the session has in the audit log."""
    from aileron_core.paths import Layout

    count = 0
    for path in Layout(home).audit_segments():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["type"] == "egress.allowed" and record.get("session_id") == session_id:
                count += 1
    return count


def wait_records(home: Path, session_id: str, expected: int) -> int:
    """The session's ``egress.allowed`` count, waiting up to 10 s for ``expected``."""
    deadline = time.monotonic() + 10
    while (found := egress_records(home, session_id)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


# --- the figures ----------------------------------------------------------------------------


class Cpu:
    """CPU seconds the measured processes use, per phase."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.used: dict[str, dict[str, float]] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        before = {who: cpu_seconds(pid) for who, pid in self.pids.items()}
        yield
        used = self.used.setdefault(name, dict.fromkeys(self.pids, 0.0))
        for who, pid in self.pids.items():
            used[who] += cpu_seconds(pid) - before[who]


def measure(
    requests: int, mib: int, rounds: int, bridge_js: Path | None = None
) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="aileron-egress-bench-") as tmp:
        cert, key = self_signed(Path(tmp))
        context = ssl.create_default_context(cafile=str(cert))
        with (
            upstream(cert, key, mib) as server,
            egress_proxy(Path(tmp) / "home", server.port, bridge_js) as proxy,
        ):
            paths = {
                "direct": direct(server.port),
                "bridge": via_bridge(proxy.bridge.port, server.port),
                "socket": via_socket(proxy.socket, server.port),
            }
            cpu = Cpu(
                {
                    "daemon": proxy.daemon_pid,
                    "node": proxy.bridge.pid,
                    "upstream": server.pid,
                    "client": os.getpid(),
                }
            )
            connections = 0
            for connect in paths.values():  # warm up every path (and count the tunnels)
                small(context, connect, 20)
            connections += 40
            times: dict[str, list[float]] = {name: [] for name in paths}
            rates: dict[str, list[float]] = {name: [] for name in paths}
            for _ in range(rounds):
                for name, connect in paths.items():
                    with cpu.phase(f"small/{name}"):
                        times[name].append(small(context, connect, requests))
                connections += 2 * requests
            for _ in range(rounds):
                for name, connect in paths.items():
                    with cpu.phase(f"bulk/{name}"):
                        seconds, length = bulk(context, connect)
                    rates[name].append(length / seconds / 1e6)
                connections += 2
            audited = wait_records(proxy.home, proxy.session_id, connections)
    ms = {name: statistics.median(values) * 1000 for name, values in times.items()}
    mbps = {name: statistics.median(values) for name, values in rates.items()}
    small_ratio = ms["bridge"] / ms["direct"]
    bulk_ratio = mbps["bridge"] / mbps["direct"]
    audit_ok = audited == connections

    def per_request(phase: str, count: int) -> dict[str, float]:
        """CPU ms of each process per request of ``phase``."""
        return {who: round(s / count * 1000, 3) for who, s in cpu.used[phase].items()}

    def per_download(phase: str) -> dict[str, float]:
        """CPU s of each process per download of ``phase``."""
        return {who: round(s / rounds, 3) for who, s in cpu.used[phase].items()}

    small_details = {
        "requests": requests,
        "rounds": rounds,
        "total_ms_direct_per_round": [round(t * 1000, 1) for t in times["direct"]],
        "total_ms_bridge_per_round": [round(t * 1000, 1) for t in times["bridge"]],
        "total_ms_socket_per_round": [round(t * 1000, 1) for t in times["socket"]],
        "ms_per_request_direct": round(ms["direct"] / requests, 3),
        "ms_per_request_bridge": round(ms["bridge"] / requests, 3),
        "ms_per_request_socket_no_bridge": round(ms["socket"] / requests, 3),
        "ratio_socket_no_bridge": round(ms["socket"] / ms["direct"], 2),
        "cpu_ms_per_request_direct": per_request("small/direct", requests * rounds),
        "cpu_ms_per_request_bridge": per_request("small/bridge", requests * rounds),
        "cpu_ms_per_request_socket": per_request("small/socket", requests * rounds),
        "egress_connections": connections,
        "egress_allowed_records": audited,
    }
    bulk_details = {
        "mib": mib,
        "rounds": rounds,
        "mb_s_direct_per_round": [round(r, 1) for r in rates["direct"]],
        "mb_s_bridge_per_round": [round(r, 1) for r in rates["bridge"]],
        "mb_s_socket_per_round": [round(r, 1) for r in rates["socket"]],
        "mb_s_socket_no_bridge": round(mbps["socket"], 1),
        "percent_socket_no_bridge": round(100 * mbps["socket"] / mbps["direct"], 1),
        "cpu_s_per_download_direct": per_download("bulk/direct"),
        "cpu_s_per_download_bridge": per_download("bulk/bridge"),
        "cpu_s_per_download_socket": per_download("bulk/socket"),
    }
    return [
        {
            "figure": "B16-small",
            "what": f"{requests} HTTPS GETs, new connection each (CONNECT via bridge)",
            "value": round(ms["bridge"], 1),
            "reference": round(ms["direct"], 1),
            "unit": "ms",
            "ratio": round(small_ratio, 2),
            "budget": f"<= {SMALL_BUDGET}x direct",
            "pass": small_ratio <= SMALL_BUDGET and audit_ok,
            "details": small_details,
        },
        {
            "figure": "B16-bulk",
            "what": f"one {mib} MiB HTTPS GET through bridge + egress proxy",
            "value": round(mbps["bridge"], 1),
            "reference": round(mbps["direct"], 1),
            "unit": "MB/s",
            "ratio": round(bulk_ratio, 2),
            "percent": round(100 * bulk_ratio, 1),
            "budget": f">= {BULK_BUDGET:.0%} of direct",
            "pass": bulk_ratio >= BULK_BUDGET and audit_ok,
            "details": bulk_details,
        },
    ]


def report(figures: list[dict[str, Any]], json_path: Path | None) -> None:
    """One line per figure (and its details), and the JSON list bench/all.py collects."""
    for f in figures:
        verdict = "PASS" if f["pass"] else "FAIL"
        print(
            f"{f['figure']:<10} {f['what']:<62} {f['value']:>9} {f['unit']:<5}"
            f" ref {f['reference']} {f['unit']}  x{f['ratio']}  {verdict} ({f['budget']})"
        )
        for key, value in f["details"].items():
            print(f"           {key:<36} {value}")
    if json_path:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--mib", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--bridge-js",
        type=Path,
        help="measure this bridge.js (e.g. a candidate change) instead of the shipped one",
    )
    parser.add_argument("--upstream", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream:
        cert, key = args.upstream
        serve_upstream(cert, key, args.mib)
        return 0
    as_installed()
    figures = measure(args.requests, args.mib, args.rounds, args.bridge_js)
    if args.bridge_js:
        for figure in figures:
            figure["what"] += f" [bridge: {args.bridge_js}]"
    report(figures, args.json)
    return 0 if all(f["pass"] for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
