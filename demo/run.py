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


DEMO_PASSPHRASE = "correct horse battery staple"  # noqa: S105 (the demo's throw-away vault)
DEMO_SECRET = "sk-demo-0123456789"  # noqa: S105 (a fake key stored to show it never leaks)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="aileron-demo-") as home:
        env = dict(
            os.environ,
            AILERON_HOME=str(Path(home) / ".aileron"),
            AILERON_VAULT_PASSPHRASE=DEMO_PASSPHRASE,
        )
        print(f"AILERON_HOME={env['AILERON_HOME']}")
        try:
            step("The version of the release set", "aileron", "--version", env=env)
            step("Any command starts the daemon on demand", "aileron", "vault", "status", env=env)
            step("The daemon: url, pid, version, uptime", "aileron", "daemon", "status", env=env)
            step(
                "Create the vault (passphrase from $AILERON_VAULT_PASSPHRASE)",
                "aileron",
                "vault",
                "init",
                env=env,
            )
            step(
                "Store a secret, read from stdin (never argv)",
                "aileron",
                "vault",
                "put",
                "api_key/openai/default",
                "--meta",
                "type=api_key",
                stdin=DEMO_SECRET + "\n",
                env=env,
            )
            step(
                "List entries: paths and metadata, never values",
                "aileron",
                "vault",
                "list",
                env=env,
            )
            step("Lock the vault (the daemon forgets the key)", "aileron", "vault", "lock", env=env)
            step("Unlock it again", "aileron", "vault", "unlock", env=env)
            step("Everything Aileron did is in the audit log", "aileron", "audit", "list", env=env)
            step("And the hash chain verifies", "aileron", "audit", "verify", env=env)
        finally:
            step("Stop the daemon", "aileron", "daemon", "stop", env=env)
        leaked = [
            p.name
            for p in Path(home).rglob("*")
            if p.is_file() and DEMO_SECRET.encode() in p.read_bytes()
        ]
        print(f"\nfiles under AILERON_HOME holding the secret in clear: {leaked or 'none'}")
    print("\ndemo: done")
    return 0 if not leaked else 1


if __name__ == "__main__":
    sys.exit(main())
