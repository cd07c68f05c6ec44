"""`aileron --version` and `--help` stay light: no web server, engine or MCP imports."""

from __future__ import annotations

import os
import subprocess

import pytest
from helpers import script

HEAVY = (
    "fastapi",
    "uvicorn",
    "python_on_whales",
    "mcp",
    "starlette",
    "pydantic",
    "httpx",
    "cattrs",
)


def imported_modules(*args: str) -> set[str]:
    """Run the real `aileron` script with import profiling and return every module it loaded."""
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    done = subprocess.run([script("aileron"), *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert lines, "import profiling produced no output"
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}


@pytest.mark.parametrize("args", [["--version"], ["version"], ["--help"]])
def test_startup_imports_nothing_heavy(args: list[str]) -> None:
    """The fast commands import none of FastAPI, uvicorn, python-on-whales, mcp (nor their deps)."""
    modules = imported_modules(*args)
    assert "aileron_cli" in modules
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == []
