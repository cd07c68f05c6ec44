"""B17 of BENCHMARKS.md: brokered credentials (TLS interception for exposed hosts) vs plain CONNECT.

Measured on the host, without a container, with the parts an agent's traffic crosses all real
and run as shipped: a real daemon (``aileron daemon start`` in a throw-away AILERON_HOME; vault
initialized; ``[network] ca_bundle`` = the stand-ins' private CA; ``[sandbox.resolve]`` pins
of their names to 127.0.0.1), a binding exposed with ``aileron binding expose``, a session's
egress proxy opened as a launch opens it (:func:`aileron_cli.sandbox.bridge.open_endpoints`
with ``expose``), and the shipped ``bridge.js`` run by the host's ``node`` on a free loopback
port, as the container's entry runs it on 127.0.0.1:3128. The clients are the host's real
``git`` and ``curl`` with ``http.proxy``/``--proxy`` pointing at the bridge.

The stand-ins (tests/fakes/tls_upstreams.py, threads of this process) answer each under two
names: ``*.github.test`` (exposed: the proxy terminates TLS with the session CA and swaps the
sentinel for the token) and ``*.plain.test`` (allowed, not exposed: a plain CONNECT tunnel, the
client sending the real token itself). Same server, same work; only the path differs.

B17-small   --requests (500) GETs of a tiny JSON answer (``/-/whoami``, Bearer token checked)
            in ONE curl process, each on a NEW connection (``Connection: close``): a CONNECT,
            a TLS handshake (two through the broker: the session CA's and the upstream's) and
            a ``binding.used`` record each; total time brokered vs plain; budget <= 2x.
B17-reuse   the same requests on ONE kept-alive connection: the broker's per-request cost
            (parse, swap, relay, redact, audit) against bytes relayed; reported.
B17-push    a ``git push`` of a commit with a 1 MiB random file (a new one each round):
            brokered vs plain; reported.

Each is run --rounds times, interleaved (plain, brokered), and the median round is reported.
Details add the same traffic straight to the stand-in (no proxy), the daemon's and node's CPU
per request, and the check that every brokered curl request was audited (``binding.used``).

Usage: python bench/broker_bench.py [--requests 500] [--rounds 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import as_installed
from egress_bench import Cpu, free_port

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fakes.tls_upstreams import GitHttp, NpmRegistry, TlsUpstream  # noqa: E402
from network_support import PrivateCA  # noqa: E402

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
SMALL_BUDGET = 2.0
TOKEN = "ghp_benchRealToken0123456789abcdefABCDEF"  # noqa: S105 - the stand-in's own
GIT_USER = "x-access-token"
BINDING = "token/github/default"
MIB = 1 << 20
NAMES = ("git.github.test", "git.plain.test", "api.github.test", "api.plain.test")


@dataclass(frozen=True)
class Session:
    home: Path
    daemon_pid: int
    session_id: str
    sentinel: str
    bundle: Path
    """The stand-ins' CA and the session CA: what a container's tools trust."""
    bridge_pid: int
    bridge_port: int


def _aileron(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    done = subprocess.run(
        [str(BIN / "aileron"), *args], env=env, input=stdin, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"aileron {' '.join(args)}: {done.stderr.strip()}")


@contextlib.contextmanager
def brokering_session(tmp: Path, ca: PrivateCA, git_port: int, api_port: int) -> Iterator[Session]:
    """A real daemon, the binding exposed for the ``.github.test`` names, a session's egress
    proxy brokering it (``.plain.test`` allowed), and ``bridge.js`` in front of its socket."""
    from aileron_cli.sandbox.bridge import open_endpoints, stage_bridge
    from aileron_core.client import DaemonClient
    from aileron_core.discovery import read_daemon_info

    home = tmp / "home"
    home.mkdir()
    pins = "\n".join(f'"{name}" = "{HOST}"' for name in NAMES)
    (home / "config.toml").write_text(
        f'[network]\nca_bundle = "{ca.pem}"\n\n[sandbox.resolve]\n{pins}\n'
    )
    env = dict(os.environ, AILERON_HOME=str(home), AILERON_VAULT_PASSPHRASE="bench")  # noqa: S106
    _aileron(env, "daemon", "start")
    bridge: subprocess.Popen[bytes] | None = None
    try:
        info = read_daemon_info(home / "daemon.json")
        assert info is not None
        _aileron(env, "vault", "init")
        _aileron(env, "binding", "add", BINDING, stdin=TOKEN + "\n")
        exposed = ("--host", f"git.github.test:{git_port}", "--host", f"api.github.test:{api_port}")
        _aileron(env, "binding", "expose", BINDING, *exposed, "--as", "GH_TOKEN")
        with DaemonClient.for_daemon(info, timeout=120) as admin:
            session = admin.post("sessions", {"agent": "bench", "working_dir": "/"})
            allow = [f"git.plain.test:{git_port}", f"api.plain.test:{api_port}"]
            endpoints = open_endpoints(admin, session["id"], allow, [BINDING])
        assert endpoints.ca_file is not None
        bundle = tmp / "bundle.pem"
        bundle.write_bytes(ca.pem.read_bytes() + Path(endpoints.ca_file).read_bytes())
        api_socket, egress_socket = endpoints.sockets
        port = free_port()
        bridge = subprocess.Popen(
            [
                "node",
                stage_bridge(home).source,
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
        yield Session(
            home,
            info.pid,
            session["id"],
            endpoints.exposed[0].sentinel,
            bundle,
            bridge.pid,
            port,
        )
    finally:
        if bridge is not None:
            bridge.terminate()
            bridge.wait(10)
        _aileron(env, "daemon", "stop")


# --- the clients ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One way to the stand-ins: its name suffix, the token the client sends, the proxy."""

    name: str
    domain: str
    token: str
    proxy: str | None


def curl_batch(path: Route, session: Session, port: int, requests: int, fresh: bool) -> float:
    """Seconds for one curl process making ``requests`` GETs of /-/whoami (all checked 200)."""
    with tempfile.NamedTemporaryFile("w", suffix=".curlrc", delete=False) as config:
        url = f"https://api.{path.domain}:{port}/-/whoami"
        config.write(f'header = "Authorization: Bearer {path.token}"\n')
        if fresh:
            config.write('header = "Connection: close"\n')
        for _ in range(requests):
            config.write(f'url = "{url}"\noutput = "/dev/null"\n')
    argv = ["curl", "-sS", "--cacert", str(session.bundle), "-K", config.name]
    argv += ["-w", "%{http_code}\n"]
    if path.proxy:
        argv += ["--proxy", path.proxy]
    else:
        argv += ["--resolve", f"api.{path.domain}:{port}:{HOST}"]
    try:
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
    finally:
        os.unlink(config.name)
    codes = done.stdout.split()
    if done.returncode != 0 or codes != ["200"] * requests:
        raise RuntimeError(f"{path.name}: curl {done.returncode} {set(codes)} {done.stderr}")
    return seconds


def _git(env: dict[str, str], *args: str, cwd: Path | None = None) -> None:
    done = subprocess.run(["git", *args], env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")


class Pusher:
    """A clone of its own repository through ``path``; each :meth:`push` pushes a new commit
    of a 1 MiB random file."""

    def __init__(self, path: Route, session: Session, port: int, work: Path) -> None:
        self.path = path
        self.work = work
        work.parent.mkdir(parents=True)
        self.env = dict(
            os.environ,
            HOME=str(work.parent),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_SSL_CAINFO=str(session.bundle),
            GIT_TERMINAL_PROMPT="0",
        )
        host = f"git.{path.domain}:{port}"
        self.options = ["-c", "user.name=Bench", "-c", "user.email=bench@example.test"]
        if path.proxy:
            self.options += ["-c", f"http.proxy={path.proxy}"]
        else:
            self.options += ["-c", f"http.curloptResolve={host}:{HOST}"]
        url = f"https://{GIT_USER}:{path.token}@{host}/{path.name}.git"
        _git(self.env, *self.options, "clone", "-q", url, str(work))
        self.count = 0

    def push(self) -> float:
        self.count += 1
        (self.work / f"blob-{self.count}.bin").write_bytes(os.urandom(MIB))
        _git(self.env, "add", "-A", cwd=self.work)
        _git(self.env, *self.options, "commit", "-q", "-m", f"push {self.count}", cwd=self.work)
        start = time.perf_counter()
        _git(self.env, *self.options, "push", "-q", "origin", "main", cwd=self.work)
        return time.perf_counter() - start


# --- the figures ------------------------------------------------------------------------------


def used_records(home: Path, session_id: str) -> int:
    """How many ``binding.used`` records of /-/whoami the session has in the audit log."""
    from aileron_core.paths import Layout

    count = 0
    for segment in Layout(home).audit_segments():
        for line in segment.read_text().splitlines():
            record = json.loads(line)
            if (
                record["type"] == "binding.used"
                and record.get("session_id") == session_id
                and record["payload"].get("path") == "/-/whoami"
            ):
                count += 1
    return count


def wait_used(home: Path, session_id: str, expected: int) -> int:
    deadline = time.monotonic() + 20
    while (found := used_records(home, session_id)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def measure(requests: int, rounds: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="aileron-broker-bench-") as name:
        tmp = Path(name)
        ca = PrivateCA(tmp, "Bench Stand-in Root")
        git = GitHttp(tmp / "repos", GIT_USER, TOKEN)
        for repo in ("direct", "plain", "brokered"):
            git.create(f"{repo}.git")
        registry = NpmRegistry(TOKEN)
        with (
            TlsUpstream(ca, ["git.github.test", "git.plain.test"], git) as git_server,
            TlsUpstream(ca, ["api.github.test", "api.plain.test"], registry) as api,
            brokering_session(tmp, ca, git_server.port, api.port) as session,
        ):
            proxy = f"http://{HOST}:{session.bridge_port}"
            paths = {
                "direct": Route("direct", "plain.test", TOKEN, None),
                "plain": Route("plain", "plain.test", TOKEN, proxy),
                "brokered": Route("brokered", "github.test", session.sentinel, proxy),
            }
            cpu = Cpu({"daemon": session.daemon_pid, "node": session.bridge_pid})
            pushers = {
                key: Pusher(path, session, git_server.port, tmp / "clones" / key / "work")
                for key, path in paths.items()
            }
            brokered_requests = 0
            for path in paths.values():  # warm up every path
                curl_batch(path, session, api.port, 20, fresh=True)
                brokered_requests += 20 if path.name == "brokered" else 0
            timing: dict[str, dict[str, list[float]]] = {
                kind: {key: [] for key in paths} for kind in ("small", "reuse", "push")
            }
            for _ in range(rounds):
                for kind, fresh in (("small", True), ("reuse", False)):
                    for key, path in paths.items():
                        with cpu.phase(f"{kind}/{key}"):
                            seconds = curl_batch(path, session, api.port, requests, fresh)
                        timing[kind][key].append(seconds)
                    brokered_requests += requests
                for key, pusher in pushers.items():
                    with cpu.phase(f"push/{key}"):
                        timing["push"][key].append(pusher.push())
            audited = wait_used(session.home, session.session_id, brokered_requests)
            seen_sentinel = session.sentinel in registry.tokens
    assert not seen_sentinel, "the stand-in saw the sentinel: nothing was swapped"
    ms = {
        kind: {key: statistics.median(values) * 1000 for key, values in by_path.items()}
        for kind, by_path in timing.items()
    }
    audit_ok = audited == brokered_requests

    def cpu_per(kind: str, key: str, count: int) -> dict[str, float]:
        return {who: round(s / count * 1000, 3) for who, s in cpu.used[f"{kind}/{key}"].items()}

    def details(kind: str, count: int) -> dict[str, Any]:
        out: dict[str, Any] = {"rounds": rounds}
        for key in paths:
            out[f"ms_per_round_{key}"] = [round(t * 1000, 1) for t in timing[kind][key]]
        for key in paths:
            out[f"ms_per_item_{key}"] = round(ms[kind][key] / count, 3)
            out[f"cpu_ms_per_item_{key}"] = cpu_per(kind, key, count * rounds)
        out["ratio_plain_vs_direct"] = round(ms[kind]["plain"] / ms[kind]["direct"], 2)
        out["ratio_brokered_vs_direct"] = round(ms[kind]["brokered"] / ms[kind]["direct"], 2)
        return out

    def figure(kind: str, what: str, count: int, budget: float | None) -> dict[str, Any]:
        factor = ms[kind]["brokered"] / ms[kind]["plain"]
        extra = details(kind, count)
        if kind != "push":
            extra["requests"] = count
            extra["binding_used_records"] = audited
            extra["brokered_requests"] = brokered_requests
        return {
            "figure": f"B17-{kind}",
            "what": what,
            "value": round(ms[kind]["brokered"], 1),
            "reference": round(ms[kind]["plain"], 1),
            "unit": "ms",
            "ratio": round(factor, 2),
            "budget": f"<= {budget}x plain CONNECT" if budget else "(reported; no budget)",
            "pass": (factor <= budget if budget else True) and audit_ok,
            "details": extra,
        }

    return [
        figure(
            "small", f"{requests} curl GETs, new connection each, brokered", requests, SMALL_BUDGET
        ),
        figure("reuse", f"{requests} curl GETs on one connection, brokered", requests, None),
        figure("push", "git push of a 1 MiB commit, brokered", 1, None),
    ]


def report(figures: list[dict[str, Any]], json_path: Path | None) -> None:
    """One line per figure (and its details), and the JSON list bench/all.py collects."""
    for f in figures:
        verdict = "PASS" if f["pass"] else "FAIL"
        print(
            f"{f['figure']:<10} {f['what']:<52} {f['value']:>9} {f['unit']:<3}"
            f" ref {f['reference']} {f['unit']}  x{f['ratio']}  {verdict} ({f['budget']})"
        )
        for key, value in f["details"].items():
            print(f"           {key:<30} {value}")
    if json_path:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    missing = [tool for tool in ("git", "curl", "node") if shutil.which(tool) is None]
    if missing:
        skipped = [{"figure": "B17", "skipped": f"not installed: {', '.join(missing)}"}]
        if args.json:
            args.json.write_text(json.dumps(skipped) + "\n")
        print(skipped[0]["skipped"])
        return 0
    as_installed()
    figures = measure(args.requests, args.rounds)
    report(figures, args.json)
    return 0 if all(f["pass"] for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
