"""B1, B2, B3 of BENCHMARKS.md: whole-process timings of the real `aileron` command.

Each figure is printed with its reference, measured in the same run:
  B1  `aileron --version`, median of N runs  vs  `python -c pass` (same interpreter)
  B2  `aileron daemon status` with the daemon up, median  (budget 250 ms, no FastAPI/uvicorn)
  B3  first `aileron status` with no daemon until it answers, median of 5 (budget 600 ms)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import as_installed

BIN = Path(sys.executable).parent
AILERON = str(BIN / "aileron")


def _wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def _median(argv: list[str], env: dict[str, str], runs: int) -> float:
    _wall(argv, env)  # warm the page cache
    return statistics.median(_wall(argv, env) for _ in range(runs))


def _imports(argv: list[str], env: dict[str, str]) -> set[str]:
    done = subprocess.run(
        argv, env=dict(env, PYTHONPROFILEIMPORTTIME="1"), capture_output=True, text=True, check=True
    )
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def measure(runs: int) -> list[dict[str, object]]:
    figures: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="aileron-bench-") as tmp:
        env = dict(os.environ, AILERON_HOME=str(Path(tmp) / "home"))
        python = _median([sys.executable, "-c", "pass"], env, runs)
        version = _median([AILERON, "--version"], env, runs)
        figures.append(
            {
                "figure": "B1",
                "what": "aileron --version (median)",
                "value": round(version, 1),
                "reference": round(python, 1),
                "unit": "ms",
                "ratio": round(version / python, 2),
                "budget": "<= 2.5x python -c pass",
                "pass": version <= 2.5 * python,
            }
        )

        subprocess.run([AILERON, "daemon", "start"], env=env, check=True, stdout=subprocess.DEVNULL)
        try:
            status = _median([AILERON, "daemon", "status"], env, runs)
            heavy = _imports([AILERON, "daemon", "status"], env) & {"fastapi", "uvicorn"}
        finally:
            subprocess.run([AILERON, "daemon", "stop"], env=env, stdout=subprocess.DEVNULL)
        figures.append(
            {
                "figure": "B2",
                "what": "aileron daemon status, daemon up (median)",
                "value": round(status, 1),
                "reference": round(python, 1),
                "unit": "ms",
                "ratio": round(status / python, 2),
                "budget": "<= 250 ms, no fastapi/uvicorn import",
                "pass": status <= 250 and not heavy,
                "heavy_imports": sorted(heavy),
            }
        )

        spawns = []
        for index in range(5):
            home_env = dict(env, AILERON_HOME=str(Path(tmp) / f"spawn-{index}"))
            spawns.append(_wall([AILERON, "status"], home_env))
            subprocess.run([AILERON, "daemon", "stop"], env=home_env, stdout=subprocess.DEVNULL)
        spawn = statistics.median(spawns)
        figures.append(
            {
                "figure": "B3",
                "what": "first aileron status, no daemon running (median of 5)",
                "value": round(spawn, 1),
                "reference": round(python, 1),
                "unit": "ms",
                "ratio": round(spawn / python, 2),
                "budget": "<= 600 ms",
                "pass": spawn <= 600,
            }
        )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    as_installed()
    figures = measure(args.runs)
    for figure in figures:
        print(
            f"{figure['figure']:<4} {figure['what']:<48} {figure['value']:>8} {figure['unit']}"
            f"  ref {figure['reference']:>7}  x{figure['ratio']:<5}"
            f"  {'PASS' if figure['pass'] else 'FAIL'}  ({figure['budget']})"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
