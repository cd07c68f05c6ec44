"""Run every benchmark of BENCHMARKS.md and print one table: figure, what, value, reference,
ratio, budget, result.

Each figure script measures its own reference in the same run on the same machine and writes
a JSON list of figures; this runner collects them, prints the table and writes the combined
report (default ``bench-report.json``). The ratio is the figure's own (``ratio``: what it
compares, e.g. through the daemon vs straight to the server) or else value / reference when
both are numbers. Figures that need something absent (an engine, a script not built yet) are
listed as skipped with the reason. Every script also runs alone:
``hatch run bench:python bench/<script>.py [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchlib import as_installed

HERE = Path(__file__).resolve().parent

INFO_BUDGETS = ("none", "(reported; no budget)")

# (script, what it measures); run in this order.
SCRIPTS: tuple[tuple[str, str], ...] = (
    ("cli_bench.py", "B1 B2 B3"),
    ("actions_bench.py", "B4 B5"),
    ("mcp_bench.py", "B6"),
    ("vault_bench.py", "B7 B8"),
    ("gateway_bench.py", "B9 B10"),
    ("sandbox_bench.py", "B11"),
    ("egress_bench.py", "B16"),
    ("broker_bench.py", "B17"),
    ("audit_bench.py", "B12"),
    ("audit_verify_bench.py", "B14"),
    ("audit_start_bench.py", "B15"),
    ("provenance_bench.py", "B13"),
    ("agent_bench.py", "B18"),
)


def _cell(figure: dict[str, Any], *keys: str) -> str:
    for key in keys:
        if key in figure and figure[key] is not None:
            value = figure[key]
            return f"{value:.2f}" if isinstance(value, float) else str(value)
    return ""


def _number(figure: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = figure.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def ratio(figure: dict[str, Any]) -> float | None:
    """The figure's own ratio, else value / reference when both are numbers."""
    own = _number(figure, "ratio")
    if own is not None:
        return own
    value = _number(figure, "value", "value_ms")
    reference = _number(figure, "reference", "reference_ms")
    if value is None or not reference:
        return None
    return round(value / reference, 2)


def run(script: str, out: Path) -> list[dict[str, Any]] | str:
    path = HERE / script
    if not path.exists():
        return "not built yet"
    done = subprocess.run(
        [sys.executable, str(path), "--json", str(out)], capture_output=True, text=True
    )
    # A script may exit 1 when a budget is missed; its figures are in the JSON all the same.
    if not out.exists():
        last = done.stderr.strip().splitlines()[-1:] or [""]
        return f"failed (exit {done.returncode}): {last[0]}"
    figures: list[dict[str, Any]] = json.loads(out.read_text())
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, default=Path("bench-report.json"))
    parser.add_argument("--only", nargs="*", help="run only these scripts (e.g. cli_bench.py)")
    args = parser.parse_args()
    report: list[dict[str, Any]] = []
    as_installed()
    with tempfile.TemporaryDirectory(prefix="aileron-bench-all-") as tmp:
        for script, figures in SCRIPTS:
            if args.only and script not in args.only:
                continue
            print(f"running {script} ({figures}) …", file=sys.stderr, flush=True)
            result = run(script, Path(tmp) / f"{script}.json")
            if isinstance(result, str):
                report.append({"figure": figures, "script": script, "skipped": result})
                continue
            for figure in result:  # a figure may be skipped on its own (e.g. no engine)
                report.append({"script": script, **figure})
    print(
        f"\n{'FIGURE':<15} {'WHAT':<58} {'VALUE':>24} {'REFERENCE':>34} {'RATIO':>7}"
        f"  {'BUDGET':<50} RESULT"
    )
    for f in report:
        if "skipped" in f:
            script = f"({f['script']})"
            print(
                f"{f['figure']:<15} {script:<58} {'':>24} {'':>34} {'':>7}  {'':<50} SKIP:"
                f" {f['skipped']}"
            )
            continue
        unit = f.get("unit") or ("ms" if "value_ms" in f else "")
        value = f"{_cell(f, 'value', 'value_ms')} {unit}".strip()
        reference = _cell(f, "reference", "reference_ms")
        if "reference_ms" in f or (unit == "ms" and isinstance(f.get("reference"), int | float)):
            reference += " ms"
        factor = ratio(f)
        f["ratio"] = factor
        informative = f.get("pass") is None or str(f.get("budget", "none")) in INFO_BUDGETS
        verdict = "info" if informative else ("PASS" if f.get("pass") else "FAIL")
        print(
            f"{str(f.get('figure')):<15} {str(f.get('what', ''))[:58]:<58} {value:>24}"
            f" {reference[:34]:>34} {'' if factor is None else f'x{factor:.2f}':>7}"
            f"  {str(f.get('budget', ''))[:50]:<50} {verdict}"
        )
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nreport written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
