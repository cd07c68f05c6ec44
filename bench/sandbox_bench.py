"""B11 of BENCHMARKS.md: sandbox launch overhead, image present, on podman and docker.

  B11  `aileron launch --sandbox=ENGINE codex` of a no-op agent — the hardened `--network
       none` container, the in-container bridge and the session's egress proxy included — vs
       `ENGINE run --rm` of the same image running the same agent command; medians of N runs,
       interleaved, with the daemon already up. Budget: <= 1.3x the bare run. The warm-up
       launch runs the pre-run check and records its pass (AILERON_HOME/sandbox/checks.json),
       so the measured launches are the steady state: same image and workspace, no check
       container (the first launch of a new image or workspace pays one more container).

The image is Aileron's own (the shipped Containerfile) built with podman on the test suite's
stand-in-agent base (Node, and a `codex` that prints one line and exits 0), tagged under a
test-only repository, and loaded into docker for the docker figure. Without podman, the test
base image or a running docker engine (scripts/sandbox-setup), a figure is skipped with the
reason.
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
REPOSITORY = "localhost/aileron-bench"
"""Where the bench tags its image: never a tag a user may have."""
ENGINES = ("podman", "docker")


def _wall(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return (time.perf_counter() - start) * 1000


def _docker_unavailable() -> str | None:
    try:
        done = subprocess.run(
            ["docker", "info"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"docker is not usable here ({error})"
    if done.returncode != 0:
        return "the docker engine is not running (scripts/sandbox-setup starts it)"
    return None


def _into_docker(image: str) -> None:
    """Load the podman-built ``image`` into docker under the same tag."""
    with subprocess.Popen(["podman", "save", image], stdout=subprocess.PIPE) as save:
        load = subprocess.run(
            ["docker", "load", "--quiet"], stdin=save.stdout, capture_output=True, text=True
        )
    if save.returncode != 0 or load.returncode != 0:
        raise RuntimeError(f"could not load {image} into docker: {load.stderr.strip()}")
    loaded = load.stdout.strip().rpartition("Loaded image: ")[2]
    if loaded and loaded != image:
        subprocess.run(["docker", "tag", loaded, image], check=True, capture_output=True)


def _figure(engine: str, runs: int, launched: list[float], direct: list[float]) -> dict[str, Any]:
    value, reference = statistics.median(launched), statistics.median(direct)
    ratio = value / reference
    return {
        "figure": f"B11-{engine}",
        "what": f"launch --sandbox={engine}, no-op agent (median of {runs})",
        "value": round(value, 1),
        "reference": f"{engine} run {reference:.1f} ms",
        "unit": "ms",
        "ratio": round(ratio, 2),
        "budget": f"<= {BUDGET}x bare {engine} run",
        "pass": ratio <= BUDGET,
    }


def measure(runs: int, engines: tuple[str, ...] = ENGINES) -> list[dict[str, Any]]:
    reason = podman_unavailable()
    if reason is not None:
        return [{"figure": f"B11-{engine}", "skipped": reason} for engine in engines]
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aileron-bench-") as tmp:
        env = dict(
            os.environ,
            AILERON_HOME=str(Path(tmp) / "home"),
            AILERON_SANDBOX_REPOSITORY=REPOSITORY,
        )
        from aileron_cli.__about__ import __version__

        image = f"{REPOSITORY}/sandbox-codex:{__version__}"
        workspace = Path(tmp) / "workspace"
        workspace.mkdir()
        if os.getuid() == 0:  # launched as root, the agent runs as the workspace's owner
            os.chown(workspace, 1000, 1000)
        subprocess.run(
            [
                AILERON, "sandbox", "build", "codex", "--engine", "podman",
                "--base-image", ensure_agent_base(),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        subprocess.run([AILERON, "daemon", "start"], env=env, check=True)
        try:
            for engine in engines:
                if engine == "docker":
                    skipped = _docker_unavailable()
                    if skipped is not None:
                        figures.append({"figure": "B11-docker", "skipped": skipped})
                        continue
                    _into_docker(image)
                launch = [
                    AILERON, "launch", f"--sandbox={engine}", "--sandbox-build=never", "codex",
                ]  # fmt: skip
                bare = [engine, "run", "--rm", image, "codex"]
                _wall(launch, env, workspace)  # warm caches
                _wall(bare, env, workspace)
                launched, direct = [], []
                for _ in range(runs):
                    launched.append(_wall(launch, env, workspace))
                    direct.append(_wall(bare, env, workspace))
                figures.append(_figure(engine, runs, launched, direct))
        finally:
            subprocess.run([AILERON, "daemon", "stop"], env=env, stdout=subprocess.DEVNULL)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--engine", choices=ENGINES, action="append", help="default: both")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    as_installed()
    figures = measure(args.runs, tuple(args.engine or ENGINES))
    for f in figures:
        if "skipped" in f:
            print(f"{f['figure']}  skipped: {f['skipped']}")
        else:
            verdict = "PASS" if f["pass"] else "FAIL"
            print(
                f"{f['figure']}  {f['what']}: {f['value']} ms, {f['reference']},"
                f" x{f['ratio']} {verdict}"
            )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
