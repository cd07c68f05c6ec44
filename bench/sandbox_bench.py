"""B11 of BENCHMARKS.md: sandbox launch overhead with podman, image present.

  B11  `aileron launch --sandbox=podman codex` of a no-op agent (pre-run check included)
       vs `podman run --rm` of the same image running the same agent command; medians of N
       runs, interleaved, with the daemon already up. Budget: ≤ 1.3× the bare `podman run`.

The image is Aileron's own aileron/sandbox-codex (the shipped Containerfile) built on the
test suite's stand-in-agent base, whose `codex` prints one line and exits 0. Without podman
or the test base image (scripts/sandbox-setup) the figure is skipped with the reason.
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
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from benchlib import as_installed  # noqa: E402
from sandbox.support import ensure_agent_base, podman_unavailable  # noqa: E402

AILERON = str(Path(sys.executable).parent / "aileron")
BUDGET = 1.3


def _wall(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return (time.perf_counter() - start) * 1000


def measure(runs: int) -> list[dict[str, Any]]:
    reason = podman_unavailable()
    if reason is not None:
        return [{"figure": "B11", "skipped": reason}]
    from aileron_cli.sandbox.images import default_tag

    image = default_tag("codex")
    with tempfile.TemporaryDirectory(prefix="aileron-bench-") as tmp:
        env = dict(os.environ, AILERON_HOME=str(Path(tmp) / "home"))
        workspace = Path(tmp) / "workspace"
        workspace.mkdir()
        base = ensure_agent_base()
        subprocess.run(
            [AILERON, "sandbox", "build", "codex", "--engine", "podman", "--base-image", base],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        subprocess.run([AILERON, "daemon", "start"], env=env, check=True)
        try:
            launch = [AILERON, "launch", "--sandbox=podman", "--sandbox-build=never", "codex"]
            bare = ["podman", "run", "--rm", image, "codex"]
            _wall(launch, env, workspace)  # warm caches
            _wall(bare, env, workspace)
            launched, direct = [], []
            for _ in range(runs):
                launched.append(_wall(launch, env, workspace))
                direct.append(_wall(bare, env, workspace))
        finally:
            subprocess.run([AILERON, "daemon", "stop"], env=env, stdout=subprocess.DEVNULL)
    value, reference = statistics.median(launched), statistics.median(direct)
    ratio = value / reference
    return [
        {
            "figure": "B11",
            "what": f"launch --sandbox=podman, no-op agent (median of {runs})",
            "value": round(value, 1),
            "reference": f"podman run {reference:.1f} ms",
            "unit": "ms",
            "ratio": round(ratio, 2),
            "budget": f"<= {BUDGET}x bare podman run",
            "pass": ratio <= BUDGET,
        }
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    as_installed()
    figures = measure(args.runs)
    for f in figures:
        if "skipped" in f:
            print(f"B11  skipped: {f['skipped']}")
        else:
            verdict = "PASS" if f["pass"] else "FAIL"
            print(f"B11  {f['what']}: {f['value']} ms, {f['reference']}, ×{f['ratio']} {verdict}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
