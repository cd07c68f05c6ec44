"""Run every benchmark of BENCHMARKS.md and print one table: figure, value, reference, budget.

Each figure script measures its own reference in the same run on the same machine and writes
a JSON list of figures; this runner collects them, prints the table and writes the combined
report (default ``bench-report.json``). Figures that need something absent (an engine, a
script not built yet) are listed as skipped with the reason.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# (script, what it measures); run in this order.
SCRIPTS: tuple[tuple[str, str], ...] = (
    ("cli_bench.py", "B1 B2 B3"),
    ("actions_bench.py", "B4 B5"),
    ("mcp_bench.py", "B6"),
    ("vault_bench.py", "B7 B8"),
    ("gateway_bench.py", "B9 B10"),
    ("sandbox_bench.py", "B11"),
    ("audit_bench.py", "B12"),
)


def _cell(figure: dict[str, Any], *keys: str) -> str:
    for key in keys:
        if key in figure and figure[key] is not None:
            value = figure[key]
            return f"{value:.2f}" if isinstance(value, float) else str(value)
    return ""


def run(script: str, out: Path) -> list[dict[str, Any]] | str:
    path = HERE / script
    if not path.exists():
        return "not built yet"
    done = subprocess.run(
        [sys.executable, str(path), "--json", str(out)], capture_output=True, text=True
    )
    if done.returncode != 0:
        return f"failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:] or ''}"
    figures: list[dict[str, Any]] = json.loads(out.read_text())
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, default=Path("bench-report.json"))
    parser.add_argument("--only", nargs="*", help="run only these scripts (e.g. cli_bench.py)")
    args = parser.parse_args()
    report: list[dict[str, Any]] = []
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
    print(f"\n{'FIG':<15} {'WHAT':<62} {'VALUE':>26} {'REFERENCE':>26}  RESULT  BUDGET")
    for f in report:
        if "skipped" in f:
            script = f"({f['script']})"
            print(f"{f['figure']:<15} {script:<62} {'':>26} {'':>26}  SKIP    {f['skipped']}")
            continue
        unit = f.get("unit") or ("ms" if "value_ms" in f else "")
        value = f"{_cell(f, 'value', 'value_ms')} {unit}".strip()
        reference = _cell(f, "reference", "reference_ms")
        verdict = "PASS" if f.get("pass") else ("info" if f.get("pass") is None else "FAIL")
        print(
            f"{str(f.get('figure')):<15} {str(f.get('what', ''))[:62]:<62} {value:>26}"
            f" {reference[:26]:>26}  {verdict:<6}  {f.get('budget', '')}"
        )
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nreport written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
