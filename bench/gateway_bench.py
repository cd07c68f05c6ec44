"""B9 and B10 of BENCHMARKS.md: the LLM gateway of a real daemon against a local fake provider.

B9   one client, streamed chat completions of 1,000 SSE events: time to first byte (first body
     chunk) and total, p50 over --runs requests through the gateway vs straight to the fake.
     Then the no-buffering evidence: with the fake pacing its events (--pace-ms apart), TTFB
     through the gateway must be a small fraction of the whole stream's time.
B10  16 concurrent streams of large events: MB/s through the gateway vs straight to the fake.

The fake provider runs as its own process (``python -m fakes.provider``),
the daemon is started with ``aileron daemon start`` in a temporary AILERON_HOME whose
config.toml points both providers at the fake; the real key is a binding, the client holds
only a session token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from benchlib import as_installed, with_tests_path

from aileron_core.client import DaemonClient
from aileron_core.discovery import read_daemon_info

KEY = "sk-bench-real-key-0123456789"  # noqa: S105 (a throw-away credential for a local fake)
BIN = Path(sys.executable).parent
CHAT = {"model": "gpt-bench", "messages": [{"role": "user", "content": "hi"}], "stream": True}


@contextmanager
def _fake_provider() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "fakes.provider", "--port", "0", "--key", KEY],
        env=with_tests_path(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        yield line.strip().rsplit(" ", 1)[-1]
    finally:
        process.terminate()
        process.wait(10)


def _setup(home: Path, fake_url: str) -> tuple[str, str]:
    """Start the daemon under ``home``; return its gateway URL and a session token."""
    (home / ".aileron").mkdir(parents=True, mode=0o700)
    (home / ".aileron" / "config.toml").write_text(
        f'[gateway.openai]\nbase_url = "{fake_url}"\n[gateway.anthropic]\nbase_url = "{fake_url}"\n'
    )
    env = dict(os.environ, HOME=str(home), AILERON_HOME=str(home / ".aileron"))
    subprocess.run(
        [str(BIN / "aileron"), "daemon", "start"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    info = read_daemon_info(home / ".aileron" / "daemon.json")
    assert info is not None
    with DaemonClient.for_daemon(info) as admin:  # the master token: through the Unix socket
        admin.post("vault/init", {"passphrase": "bench"})
        admin.post("bindings", {"name": "api_key/openai/default", "value": KEY})
        session = admin.post("sessions", {"agent": "bench", "working_dir": str(home)})
    return info.api_url + "/gateway/openai", session["token"]


def _one(
    client: httpx.Client, url: str, token: str, extra: dict[str, str]
) -> tuple[float, float, int]:
    """(TTFB ms, total ms, body bytes) of one streamed completion."""
    headers = {"Authorization": f"Bearer {token}", **extra}
    start = time.perf_counter()
    with client.stream("POST", url + "/v1/chat/completions", json=CHAT, headers=headers) as answer:
        answer.raise_for_status()
        ttfb = 0.0
        size = 0
        for chunk in answer.iter_raw():
            if not size:
                ttfb = time.perf_counter() - start
            size += len(chunk)
    total = time.perf_counter() - start
    return ttfb * 1000, total * 1000, size


def b9(fake: str, gateway: str, token: str, runs: int, pace_ms: float) -> list[dict[str, Any]]:
    knobs = {"x-fake-chunks": "1000"}
    direct: list[tuple[float, float, int]] = []
    through: list[tuple[float, float, int]] = []
    with httpx.Client(timeout=60) as client:
        for _ in range(5):  # warm both paths (connections, imports, caches)
            _one(client, fake, KEY, knobs)
            _one(client, gateway, token, knobs)
        for _ in range(runs):
            direct.append(_one(client, fake, KEY, knobs))
            through.append(_one(client, gateway, token, knobs))
        paced_knobs = {**knobs, "x-fake-delay-ms": str(pace_ms)}
        paced = [_one(client, gateway, token, paced_knobs) for _ in range(5)]
    assert {size for *_, size in direct} == {size for *_, size in through}
    ttfb_d = statistics.median(t for t, _, _ in direct)
    ttfb_t = statistics.median(t for t, _, _ in through)
    total_d = statistics.median(t for _, t, _ in direct)
    total_t = statistics.median(t for _, t, _ in through)
    paced_ttfb = statistics.median(t for t, _, _ in paced)
    paced_total = statistics.median(t for _, t, _ in paced)
    overhead = ttfb_t - ttfb_d
    return [
        {
            "figure": "B9",
            "what": f"gateway TTFB, 1000-event SSE stream, {runs} runs (p50 overhead)",
            "value": f"{overhead:.2f}",
            "reference": f"direct TTFB p50 {ttfb_d:.2f} ms, through {ttfb_t:.2f} ms",
            "unit": "ms",
            "ratio": round(ttfb_t / ttfb_d, 2),
            "detail": {"load_average": os.getloadavg()[0]},
            "budget": "TTFB overhead <= 1.5 ms p50",
            "pass": overhead <= 1.5,
        },
        {
            "figure": "B9",
            "what": f"gateway total, 1000-event SSE stream, {runs} runs (p50 through)",
            "value": f"{total_t:.2f}",
            "reference": f"direct total p50 {total_d:.2f} ms",
            "unit": "ms",
            "ratio": round(total_t / total_d, 2),
            "budget": "(reported; no budget)",
            "pass": True,
        },
        {
            "figure": "B9",
            "what": f"no buffering: paced stream ({pace_ms} ms apart), TTFB / total p50",
            "value": f"{paced_ttfb:.2f} / {paced_total:.0f}",
            "reference": f"TTFB is {100 * paced_ttfb / paced_total:.2f} % of the stream time",
            "unit": "ms",
            "ratio": round(paced_ttfb / paced_total, 4),
            "budget": "TTFB <= 5 % of the paced stream's total",
            "pass": paced_ttfb <= 0.05 * paced_total,
        },
    ]


async def _throughput(
    url: str, token: str, streams: int, rounds: int, knobs: dict[str, str]
) -> float:
    """MB/s of ``streams`` concurrent streamed completions, ``rounds`` times over."""
    headers = {"Authorization": f"Bearer {token}", **knobs}
    limits = httpx.Limits(max_connections=streams)

    async def one(client: httpx.AsyncClient) -> int:
        size = 0
        async with client.stream(
            "POST", url + "/v1/chat/completions", json=CHAT, headers=headers
        ) as answer:
            answer.raise_for_status()
            async for chunk in answer.aiter_raw():
                size += len(chunk)
        return size

    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(*(one(client) for _ in range(streams)))  # warm up
        start = time.perf_counter()
        total = 0
        for _ in range(rounds):
            total += sum(await asyncio.gather(*(one(client) for _ in range(streams))))
        elapsed = time.perf_counter() - start
    return total / elapsed / 1e6


def b10(fake: str, gateway: str, token: str, streams: int, rounds: int) -> dict[str, Any]:
    knobs = {"x-fake-chunks": "1000", "x-fake-chunk-bytes": "4096"}
    direct = asyncio.run(_throughput(fake, KEY, streams, rounds, knobs))
    through = asyncio.run(_throughput(gateway, token, streams, rounds, knobs))
    share = through / direct
    return {
        "figure": "B10",
        "what": f"gateway throughput, {streams} concurrent streams of ~4 MB",
        "value": f"{through:.1f}",
        "reference": f"direct {direct:.1f} MB/s; through = {100 * share:.0f} % of direct",
        "unit": "MB/s",
        "ratio": round(share, 2),
        "budget": ">= 70 % of direct",
        "pass": share >= 0.7,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--pace-ms", type=float, default=1.0)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    as_installed()
    with tempfile.TemporaryDirectory(prefix="aileron-bench-") as tmp, _fake_provider() as fake:
        home = Path(tmp) / "home"
        gateway, token = _setup(home, fake)
        try:
            figures = [
                *b9(fake, gateway, token, args.runs, args.pace_ms),
                b10(fake, gateway, token, args.streams, args.rounds),
            ]
        finally:
            subprocess.run(
                [str(BIN / "aileron"), "daemon", "stop"],
                env=dict(os.environ, HOME=str(home), AILERON_HOME=str(home / ".aileron")),
                stdout=subprocess.DEVNULL,
            )
    for f in figures:
        verdict = "PASS" if f["pass"] else "FAIL"
        print(
            f"{f['figure']:<4} {f['what']:<66} {f['value']:>16} {f['unit']:<4}"
            f" ref {f['reference']}  {verdict} ({f['budget']})"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0  # budgets are reported per figure (bench/all.py reads the JSON of a 0 exit)


if __name__ == "__main__":
    sys.exit(main())
