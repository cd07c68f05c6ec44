"""The Aileron demo: drives the real `aileron` command in a throw-away AILERON_HOME.

It grows with each capability; every step runs the installed console script exactly as a user
would, and stops at the first failure.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent


def step(title: str, *argv: str, stdin: str | None = None, env: dict[str, str]) -> None:
    """Run one command, echoing it like a shell session."""
    print(f"\n# {title}\n$ {shlex.join(argv)}", flush=True)
    command = [str(BIN / argv[0]), *argv[1:]]
    subprocess.run(command, input=stdin, text=True, env=env, check=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="aileron-demo-") as home:
        env = dict(os.environ, AILERON_HOME=str(Path(home) / ".aileron"))
        print(f"AILERON_HOME={env['AILERON_HOME']}")
        step("The version of the release set", "aileron", "--version", env=env)
        step("The MCP adapter ships beside it", "aileron-mcp", "--version", env=env)
    print("\ndemo: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
