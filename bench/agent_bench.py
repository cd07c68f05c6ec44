"""B18 of BENCHMARKS.md: what ``aileron launch`` adds to one real agent run, end to end.

One non-interactive prompt, answered by the local fake provider (the same streamed text for
every request), run two ways, interleaved so machine load touches both alike:

  launched  ``aileron launch AGENT -- <prompt>``: a session, aileron-mcp started and connected
            as the agent's MCP server, the provider key in the vault and the agent's model
            traffic through the daemon's gateway
  bare      the same agent binary pointed straight at the fake (base URL and key), no Aileron

  B18-claude  median(launched) - median(bare) for ``claude -p PROMPT --output-format text``
  B18-codex   the same for ``codex exec --skip-git-repo-check PROMPT``

Budget: <= +300 ms each. The agents are the CLIs scripts/bootstrap installs (the npm cache
under ~/.cache/aileron-tests/npm, or AILERON_TEST_NPM_PREFIX); an agent that is absent is
reported as skipped.

Usage: python bench/agent_bench.py [--runs 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from benchlib import as_installed

BUDGET_S = 0.3
KEY = "sk-bench-provider-key-0123456789"
PROMPT = "Say hello."
NPM_BIN = (
    Path(
        os.environ.get("AILERON_TEST_NPM_PREFIX")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aileron-tests/npm"
    )
    / "node_modules/.bin"
)
OFFLINE = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
}
BIN = Path(sys.executable).parent


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AILERON", "OPENAI", "ANTHROPIC", "CODEX", "CLAUDE"))
    }
    env.update(OFFLINE, HOME=str(home), AILERON_HOME=str(home / ".aileron"), **extra)
    env["PATH"] = f"{NPM_BIN}{os.pathsep}{env['PATH']}"
    return env


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or "Hello from the fake provider" not in done.stdout:
        raise RuntimeError(f"{argv[:3]} failed ({done.returncode}): {done.stderr[-1500:]}")
    return elapsed


def _start_daemon(home: Path, fake_url: str) -> Any:
    from aileron_core.client import DaemonClient
    from aileron_core.discovery import read_daemon_info

    aileron_home = home / ".aileron"
    aileron_home.mkdir(mode=0o700, parents=True)
    tables = (f'[gateway.{name}]\nbase_url = "{fake_url}"\n' for name in ("openai", "anthropic"))
    (aileron_home / "config.toml").write_text("\n".join(tables))
    subprocess.run([str(BIN / "aileron"), "daemon", "start"], env=_env(home), check=True,
                   capture_output=True)  # fmt: skip
    info = read_daemon_info(aileron_home / "daemon.json")
    assert info is not None
    with DaemonClient.for_daemon(info) as client:
        client.post("vault/init", {"passphrase": "agent bench"})
        for provider in ("openai", "anthropic"):
            client.post("bindings", {"name": f"api_key/{provider}/default", "value": KEY})
    return info


def _figure(agent: str, launched: list[float], bare: list[float]) -> dict[str, Any]:
    added = statistics.median(launched) - statistics.median(bare)
    return {
        "figure": f"B18-{agent}",
        "what": f"aileron launch {agent} -- PROMPT vs {agent} bare (median, {len(bare)} runs)",
        "value_ms": round(added * 1000, 1),
        "reference_ms": round(statistics.median(bare) * 1000, 1),
        "unit": "ms added",
        "budget": f"<= +{BUDGET_S * 1000:.0f} ms",
        "pass": added <= BUDGET_S,
        "details": {
            "launched_s": [round(x, 3) for x in launched],
            "bare_s": [round(x, 3) for x in bare],
        },
    }


def measure(runs: int) -> list[dict[str, Any]]:
    from fakes.provider import FakeProvider

    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aileron-agent-bench-") as tmp:
        home, work = Path(tmp), Path(tmp) / "work"
        work.mkdir()
        with FakeProvider(KEY) as fake:
            info = _start_daemon(home, fake.url)
            try:
                claude_bare = _env(home, ANTHROPIC_BASE_URL=fake.url, ANTHROPIC_API_KEY=KEY)
                codex_direct = [
                    "-c", 'model_provider="fake"', "-c", 'model_providers.fake.name="fake"',
                    "-c", f'model_providers.fake.base_url="{fake.url}/v1"',
                    "-c", 'model_providers.fake.env_key="OPENAI_API_KEY"',
                    "-c", 'model_providers.fake.wire_api="responses"',
                ]  # fmt: skip
                cases: dict[str, tuple[Callable[[], float], Callable[[], float]]] = {
                    "claude": (
                        lambda: _timed(
                            [str(BIN / "aileron"), "launch", "claude", "--", "-p", PROMPT,
                             "--output-format", "text", "--model", "claude-fake"],
                            _env(home), work,
                        ),
                        lambda: _timed(
                            [str(NPM_BIN / "claude"), "-p", PROMPT, "--output-format", "text",
                             "--model", "claude-fake"],
                            claude_bare, work,
                        ),
                    ),
                    "codex": (
                        lambda: _timed(
                            [str(BIN / "aileron"), "launch", "codex", "--", "exec",
                             "--skip-git-repo-check", "-m", "gpt-fake", PROMPT],
                            _env(home), work,
                        ),
                        lambda: _timed(
                            [str(NPM_BIN / "codex"), *codex_direct, "exec",
                             "--skip-git-repo-check", "-m", "gpt-fake", PROMPT],
                            _env(home, OPENAI_API_KEY=KEY), work,
                        ),
                    ),
                }  # fmt: skip
                for agent, (launched_run, bare_run) in cases.items():
                    if not (NPM_BIN / agent).exists():
                        figures.append(
                            {"figure": f"B18-{agent}", "skipped": f"{agent} not installed"}
                        )
                        continue
                    launched_run(), bare_run()  # warm caches (node, the agent's files)
                    launched, bare = [], []
                    for _ in range(runs):
                        launched.append(launched_run())
                        bare.append(bare_run())
                    figures.append(_figure(agent, launched, bare))
            finally:
                subprocess.run([str(BIN / "aileron"), "daemon", "stop"], env=_env(home),
                               capture_output=True)  # fmt: skip
                with suppress(ProcessLookupError):
                    os.kill(info.pid, signal.SIGKILL)
        shutil.rmtree(home / ".aileron", ignore_errors=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    as_installed()
    figures = measure(args.runs)
    for figure in figures:
        if "skipped" in figure:
            print(f"{figure['figure']:<12} skipped: {figure['skipped']}")
            continue
        print(
            f"{figure['figure']:<12} {figure['what']}: {figure['value_ms']} ms"
            f" (reference {figure['reference_ms']} ms) budget {figure['budget']}"
            f" {'PASS' if figure['pass'] else 'FAIL'}"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if all(f.get("pass", True) for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
