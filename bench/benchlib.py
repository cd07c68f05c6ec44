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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def as_installed() -> None:
    """Byte-compile every workspace package's sources, as installing their wheels would."""
    for source in sorted((ROOT / "packages").glob("*/src")):
        compileall.compile_dir(source, quiet=1)
