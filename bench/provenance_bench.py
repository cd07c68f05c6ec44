"""B13 of BENCHMARKS.md: what the process-provenance check adds to a request (ADR 0014).

The daemon admits the master token only from a process outside every live agent session's
tree: it reads the caller's executable and terminal and walks its parents in /proc. Measured
on the daemon's own :class:`~aileron_cli.daemon.access.tokens.Gate`, in this process, with one live
contained session whose launcher is a process outside our ancestry (so the walk goes all the
way up, as it does for a human's CLI):

  B13        p50 of admitting the master token with the caller named (the check) minus the
             same admission without a caller (the token half only); budget <= 0.3 ms
  B13-session the same difference for a session token: the check must not run (budget 0)
  info       p50 of GET /v1/status through a real daemon's Unix socket, whole request, for
             scale (the B2 request without process start-up)

Usage: python bench/provenance_bench.py [--runs 5000] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import as_installed

BUDGET_MS = 0.3


async def _noop_audit(*_: object) -> None:
    return None


def _p50_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


async def gate_figures(runs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    from aileron_cli.daemon.access.peers import ConnectionPeer
    from aileron_cli.daemon.access.tokens import Gate, TokenRegistry
    from aileron_core.processes import ProcessRef, ancestry

    tokens = TokenRegistry()
    session_token = tokens.mint_session_token("bench-session")
    gate = Gate(tokens, audit=_noop_audit)
    launcher = subprocess.Popen(["sleep", "600"])
    try:
        ref = ProcessRef.of(launcher.pid)
        assert ref is not None
        gate.trees.add(ref, "bench-session")
        me = ConnectionPeer("unix", os.getpid(), os.getuid())
        master = f"Bearer {tokens.master_token}"
        session = f"Bearer {session_token}"

        async def timed(authorization: str, capability: str, peer: ConnectionPeer | None) -> float:
            start = time.perf_counter()
            await gate.admit(authorization, capability, peer)
            return time.perf_counter() - start

        # Interleaved, so a change of machine load touches both halves alike.
        checked, bare, s_checked, s_bare = [], [], [], []
        for _ in range(runs):
            checked.append(await timed(master, "admin", me))
            bare.append(await timed(master, "admin", None))
            s_checked.append(await timed(session, "actions:run", me))
            s_bare.append(await timed(session, "actions:run", None))
    finally:
        launcher.kill()
        launcher.wait()
    added = (_p50_us(checked) - _p50_us(bare)) / 1000
    s_added = (_p50_us(s_checked) - _p50_us(s_bare)) / 1000
    depth = len(ancestry(os.getpid()))
    b13 = {
        "figure": "B13",
        "what": f"master-token admission: + peer check (p50, {runs} runs, ancestry {depth} deep)",
        "value_ms": round(added, 4),
        "reference_ms": round(_p50_us(bare) / 1000, 4),
        "unit": "ms added",
        "budget": f"<= {BUDGET_MS} ms",
        "pass": added <= BUDGET_MS,
        "details": {
            "with_check_p50_us": round(_p50_us(checked), 2),
            "without_check_p50_us": round(_p50_us(bare), 2),
        },
    }
    b13s = {
        "figure": "B13-session",
        "what": "session-token admission: + peer named (p50)",
        "value_ms": round(s_added, 4),
        "reference_ms": round(_p50_us(s_bare) / 1000, 4),
        "unit": "ms added",
        "budget": "0 (no check runs)",
        # A difference within timer noise (a microsecond) is no check at all.
        "pass": abs(s_added) < 0.001,
        "details": {
            "with_peer_p50_us": round(_p50_us(s_checked), 2),
            "without_peer_p50_us": round(_p50_us(s_bare), 2),
        },
    }
    return b13, b13s


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def socket_status_p50(runs: int) -> dict[str, Any]:
    """GET /v1/status over a real daemon's Unix socket, keep-alive, p50 and p99."""
    from aileron_core.__about__ import __version__
    from aileron_core.discovery import read_daemon_info
    from aileron_core.paths import Layout

    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, AILERON_HOME=home)
        aileron = str(Path(sys.executable).parent / "aileron")
        subprocess.run([aileron, "daemon", "start"], env=env, check=True, capture_output=True)
        try:
            info = read_daemon_info(Layout(Path(home)).daemon_json)
            assert info is not None and info.socket is not None
            connection = _Unix(info.socket)
            headers = {"Authorization": f"Bearer {info.token}", "X-Aileron-Version": __version__}
            samples = []
            for _ in range(runs):
                start = time.perf_counter()
                connection.request("GET", "/v1/status", headers=headers)
                answer = connection.getresponse()
                answer.read()
                samples.append(time.perf_counter() - start)
                assert answer.status == 200, answer.status
            connection.close()
        finally:
            subprocess.run([aileron, "daemon", "stop"], env=env, capture_output=True)
    samples.sort()
    return {
        "figure": "B13-info",
        "what": f"GET /v1/status over daemon.sock with the master token ({runs} runs)",
        "value_ms": round(statistics.median(samples) * 1000, 3),
        "unit": "ms p50",
        "budget": "none",
        "pass": True,
        "details": {"p99_ms": round(samples[int(len(samples) * 0.99) - 1] * 1000, 3)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    as_installed()
    b13, b13s = asyncio.run(gate_figures(args.runs))
    figures = [b13, b13s, socket_status_p50(min(args.runs, 2000))]
    for figure in figures:
        print(
            f"{figure['figure']:<12} {figure['what']}: {figure['value_ms']} ms"
            f" (reference {figure.get('reference_ms', '-')} ms) budget {figure['budget']}"
            f" {'PASS' if figure['pass'] else 'FAIL'}"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if all(f["pass"] for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
