"""What the benchmark scripts share: measuring the code as it is installed.

``pip``/``pipx`` byte-compile a wheel when they install it, so an installed ``aileron`` never
compiles its own modules at start-up. The workspace's editable sources are compiled on first
import instead, and not even cached when ``PYTHONDONTWRITEBYTECODE`` is set (as on this
project's machines): every process would then compile every ``aileron_*`` module it imports,
~0.2-0.3 s of each daemon start. :func:`as_installed` byte-compiles the workspace once (into
the usual ``__pycache__`` folders, which git ignores), so whole-process figures (B1-B3, B11)
measure what a user runs.
"""

from __future__ import annotations

import compileall
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
"""The test fakes (``fakes.provider``) live with the tests, outside every shipped wheel."""
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


def with_tests_path(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with the tests folder on ``PYTHONPATH``, for a child
    that runs a fake (``python -m fakes.provider``)."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), env.get("PYTHONPATH")) if p)
    return env


def as_installed() -> None:
    """Byte-compile every workspace package's sources, as installing their wheels would."""
    for source in sorted((ROOT / "packages").glob("*/src")):
        compileall.compile_dir(source, quiet=1)
