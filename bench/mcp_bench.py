"""B6 of BENCHMARKS.md: an MCP ``tools/call`` through ``aileron-mcp`` (stdio) → daemon → action.

A real daemon (``aileron daemon start`` in a temporary AILERON_HOME, set up by
``actions_bench._setup``), a session minted for the agent, and the real ``aileron-mcp`` console
script spoken to over stdio by the MCP SDK's client (handshake era, as agent hosts speak it).
The reference is B4's direct daemon call, measured in the same run with the same session:
``POST /v1/actions/echo-say/run`` sent with httpx. The two are interleaved call by call, each
with distinct arguments, so drift on a noisy machine hits both alike.

Budget: ``tools/call`` adds <= 1 ms p50 over the direct call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client, StdioServerParameters, types

sys.path.insert(0, str(Path(__file__).resolve().parent))
from actions_bench import (  # noqa: E402 (the bench dir, just added)
    BIN,
    Daemon,
    _pct,
    report,
    running_daemon,
)
from benchlib import as_installed  # noqa: E402

from aileron_core.client import SESSION_HEADER  # noqa: E402

WARMUP = 50
TICKS = os.sysconf("SC_CLK_TCK")


def _child_cpu(name: str) -> float:
    """CPU seconds used so far by this process's child whose command line holds ``name``."""
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(stat[1]) == os.getpid() and name.encode() in command:
            return (int(stat[11]) + int(stat[12])) / TICKS
    raise LookupError(f"no child process {name}")


def _session(daemon: Daemon) -> dict[str, Any]:
    with daemon.admin() as admin:
        session: dict[str, Any] = admin.post("sessions", {"agent": "bench", "working_dir": "/"})
    return session


async def _measure(
    api: str, headers: dict[str, str], session: dict[str, Any], runs: int, mode: str
) -> tuple[list[float], list[float], float]:
    env = {
        "AILERON_URL": api,
        "AILERON_TOKEN": session["token"],
        "AILERON_SESSION_ID": session["id"],
        "PATH": os.environ.get("PATH", ""),
    }
    server = StdioServerParameters(command=str(BIN / "aileron-mcp"), env=env)
    agent = {
        "Authorization": f"Bearer {session['token']}",
        "X-Aileron-Version": headers["X-Aileron-Version"],
        SESSION_HEADER: session["id"],
    }
    through: list[float] = []
    direct: list[float] = []
    with httpx.Client(base_url=api + "/", headers=agent, timeout=30) as plain:
        async with Client(server, mode=mode) as client:
            listed = await client.list_tools()
            assert "echo_say" in {t.name for t in listed.tools}, listed
            for i in range(WARMUP):
                await client.call_tool("echo_say", {"message": f"w{i}"})
                plain.post("actions/echo-say/run", json={"args": {"message": f"w{i}"}})
            cpu_before = _child_cpu("aileron-mcp")
            for i in range(runs):
                start = time.perf_counter()
                answer = plain.post("actions/echo-say/run", json={"args": {"message": f"d{i}"}})
                answer.raise_for_status()
                direct.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                result = await client.call_tool("echo_say", {"message": f"m{i}"})
                through.append((time.perf_counter() - start) * 1000)
                assert not result.is_error, result
                [block] = result.content
                assert isinstance(block, types.TextContent) and f'"m{i}"' in block.text
            cpu_per_call = (_child_cpu("aileron-mcp") - cpu_before) * 1000 / runs
    return through, direct, cpu_per_call


def b6(daemon: Daemon, runs: int, mode: str) -> dict[str, Any]:
    session = _session(daemon)
    through, direct, cpu_per_call = anyio.run(
        _measure, daemon.api, daemon.agent, session, runs, mode
    )
    p50 = statistics.median(through) - statistics.median(direct)
    p99 = _pct(through, 0.99) - _pct(direct, 0.99)
    return {
        "figure": "B6",
        "what": f"MCP tools/call via aileron-mcp (stdio), {runs} calls (p50 / p99 overhead)",
        "value": f"{p50:.2f} / {p99:.2f}",
        "reference": f"direct {statistics.median(direct):.2f} / {_pct(direct, 0.99):.2f}",
        "unit": "ms",
        "ratio": round(statistics.median(through) / statistics.median(direct), 2),
        "detail": {
            "mode": mode,
            "through_p50": statistics.median(through),
            "through_p99": _pct(through, 0.99),
            "direct_p50": statistics.median(direct),
            "direct_p99": _pct(direct, 0.99),
            # Load-independent: what aileron-mcp itself burns per call (clock-tick resolution).
            "aileron_mcp_cpu_ms_per_call": round(cpu_per_call, 3),
            "load_average": os.getloadavg()[0],
        },
        "budget": "adds <= 1 ms p50 over B4's direct daemon call",
        "pass": p50 <= 1,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument(
        "--mode", default="legacy", help="the client's protocol era: legacy (default) or auto"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    as_installed()
    with running_daemon() as (daemon, _echo):
        figures = [b6(daemon, args.runs, args.mode)]
    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
