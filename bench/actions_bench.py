"""B4 and B5 of BENCHMARKS.md: actions through a real daemon against a local HTTP connector.

B4  one client, >= 2000 sequential runs with distinct args: p50/p99 of
    POST /v1/actions/echo-say/run  vs  the same request sent straight to the echo server
B5  32 concurrent clients for N seconds: runs/s and p99; afterwards the audit chain must
    verify and hold one execution.succeeded per acknowledged run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from aileron_cli.examples import ACTIONS, CONNECTORS
from aileron_cli.examples.echo_server import EchoServer
from aileron_core.__about__ import __version__
from aileron_core.discovery import read_daemon_info

TOKEN = "bench-echo-token"  # noqa: S105 (a throw-away credential for a local server)
BIN = Path(sys.executable).parent


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _setup(home: Path, echo: EchoServer) -> tuple[str, dict[str, str]]:
    env = dict(os.environ, AILERON_HOME=str(home))
    subprocess.run(
        [str(BIN / "aileron"), "daemon", "start"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    info = read_daemon_info(home / "daemon.json")
    assert info is not None
    headers = {"Authorization": f"Bearer {info.token}", "X-Aileron-Version": __version__}
    spec = json.loads(
        (CONNECTORS / "local-echo.json").read_text().replace("127.0.0.1:8765", echo.host)
    )
    with httpx.Client(base_url=info.api_url + "/", headers=headers, timeout=30) as client:
        for path, body in (
            ("vault/init", {"passphrase": "bench"}),
            ("connectors", {"spec": spec}),
            ("actions", {"manifest": (ACTIONS / "echo-say.md").read_text()}),
            ("bindings", {"name": "token/echo/default", "value": TOKEN}),
        ):
            client.post(path, json=body).raise_for_status()
    return info.api_url, headers


def b4(api: str, headers: dict[str, str], echo: EchoServer, runs: int) -> dict[str, Any]:
    through: list[float] = []
    direct: list[float] = []
    with (
        httpx.Client(base_url=api + "/", headers=headers, timeout=30) as client,
        httpx.Client(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as plain,
    ):
        for i in range(50):  # warm both paths
            client.post("actions/echo-say/run", json={"args": {"message": f"w{i}"}})
            plain.post(f"http://{echo.host}/echo", json={"message": f"w{i}"})
        for i in range(runs):
            start = time.perf_counter()
            plain.post(f"http://{echo.host}/echo", json={"message": f"m{i}"}).raise_for_status()
            direct.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            client.post(
                "actions/echo-say/run", json={"args": {"message": f"m{i}"}}
            ).raise_for_status()
            through.append((time.perf_counter() - start) * 1000)
    p50 = statistics.median(through) - statistics.median(direct)
    p99 = _pct(through, 0.99) - _pct(direct, 0.99)
    return {
        "figure": "B4",
        "what": f"action run via daemon, {runs} runs (p50 / p99 overhead)",
        "value": f"{p50:.2f} / {p99:.2f}",
        "reference": f"{statistics.median(direct):.2f} / {_pct(direct, 0.99):.2f}",
        "unit": "ms",
        "detail": {"through_p50": statistics.median(through), "through_p99": _pct(through, 0.99)},
        "budget": "overhead <= 2 ms p50, <= 6 ms p99",
        "pass": p50 <= 2 and p99 <= 6,
    }


async def _load(
    api: str, headers: dict[str, str], clients: int, seconds: float
) -> tuple[int, list[float]]:
    latencies: list[float] = []
    done = 0
    deadline = time.monotonic() + seconds

    async def worker(index: int, client: httpx.AsyncClient) -> None:
        nonlocal done
        n = 0
        while time.monotonic() < deadline:
            start = time.perf_counter()
            answer = await client.post(
                "actions/echo-say/run", json={"args": {"message": f"c{index}-{n}"}}
            )
            answer.raise_for_status()
            latencies.append((time.perf_counter() - start) * 1000)
            done += 1
            n += 1

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(
        base_url=api + "/", headers=headers, timeout=60, limits=limits
    ) as client:
        await asyncio.gather(*(worker(i, client) for i in range(clients)))
    return done, latencies


def b5(api: str, headers: dict[str, str], clients: int, seconds: float) -> dict[str, Any]:
    with httpx.Client(base_url=api + "/", headers=headers, timeout=120) as client:
        before = len(client.get("audit", params={"type": "execution.succeeded"}).json())
    start = time.perf_counter()
    done, latencies = asyncio.run(_load(api, headers, clients, seconds))
    elapsed = time.perf_counter() - start
    with httpx.Client(base_url=api + "/", headers=headers, timeout=120) as client:
        verify = client.get("audit/verify").json()
        after = len(client.get("audit", params={"type": "execution.succeeded"}).json())
    rate = done / elapsed
    p99 = _pct(latencies, 0.99)
    lost = done - (after - before)
    return {
        "figure": "B5",
        "what": f"{clients} concurrent clients for {seconds:.0f} s (runs/s, p99)",
        "value": f"{rate:.0f} runs/s, p99 {p99:.1f} ms",
        "reference": f"{done} runs; chain ok={verify['ok']}; lost events={lost}",
        "unit": "",
        "budget": ">= 400 runs/s, p99 <= 150 ms, zero lost audit events",
        "pass": rate >= 400 and p99 <= 150 and verify["ok"] and lost == 0,
    }


@contextlib.contextmanager
def running_daemon() -> Iterator[tuple[str, dict[str, str], EchoServer]]:
    """A real daemon in a throw-away AILERON_HOME, set up with the echo action; stopped after."""
    with tempfile.TemporaryDirectory(prefix="aileron-bench-") as tmp, EchoServer(TOKEN) as echo:
        home = Path(tmp) / "home"
        api, headers = _setup(home, echo)
        try:
            yield api, headers, echo
        finally:
            subprocess.run(
                [str(BIN / "aileron"), "daemon", "stop"],
                env=dict(os.environ, AILERON_HOME=str(home)),
                stdout=subprocess.DEVNULL,
            )


def report(figures: list[dict[str, Any]], json_path: Path | None) -> None:
    """Print one line per figure and write the JSON list that bench/all.py collects."""
    for f in figures:
        verdict = "PASS" if f["pass"] else "FAIL"
        print(
            f"{f['figure']:<4} {f['what']:<58} {f['value']:>24} {f['unit']:<3}"
            f" ref {f['reference']}  {verdict} ({f['budget']})"
        )
    if json_path:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with running_daemon() as (api, headers, echo):
        figures = [
            b4(api, headers, echo, args.runs),
            b5(api, headers, args.clients, args.seconds),
        ]
    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
