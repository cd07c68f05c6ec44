"""The Aileron demo: drives the real `aileron` command in a throw-away AILERON_HOME.

It grows with each capability; every step runs the installed console script exactly as a user
would, and stops at the first failure.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from aileron_cli.examples import ACTIONS, CONNECTORS
from aileron_cli.examples.echo_server import EchoServer

BIN = Path(sys.executable).parent


def step(
    title: str,
    *argv: str,
    stdin: str | None = None,
    env: dict[str, str],
    expect: int = 0,
    capture: bool = False,
) -> str:
    """Run one command, echoing it like a shell session; stop unless it exits ``expect``."""
    print(f"\n# {title}\n$ {shlex.join(argv)}", flush=True)
    command = [str(BIN / argv[0]), *argv[1:]]
    done = subprocess.run(
        command, input=stdin, text=True, env=env, stdout=subprocess.PIPE if capture else None
    )
    if done.returncode != expect:
        raise SystemExit(f"demo: `{shlex.join(argv)}` exited {done.returncode}, not {expect}")
    if capture:
        print(done.stdout, end="")
    return done.stdout or ""


DEMO_PASSPHRASE = "correct horse battery staple"  # noqa: S105 (the demo's throw-away vault)
DEMO_SECRET = "sk-demo-0123456789"  # noqa: S105 (a fake key stored to show it never leaks)
ECHO_TOKEN = "echo-demo-token-5b7e"  # noqa: S105 (the credential the local echo server wants)


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="aileron-demo-") as home,
        EchoServer(ECHO_TOKEN) as echo,
    ):
        env = dict(
            os.environ,
            AILERON_HOME=str(Path(home) / ".aileron"),
            AILERON_VAULT_PASSPHRASE=DEMO_PASSPHRASE,
        )
        spec = Path(home) / "local-echo.json"
        spec.write_text(
            (CONNECTORS / "local-echo.json").read_text().replace("127.0.0.1:8765", echo.host)
        )
        print(f"AILERON_HOME={env['AILERON_HOME']}")
        print(f"a local echo server that wants `Bearer {ECHO_TOKEN}` listens on {echo.host}")
        try:
            step("The version of the release set", "aileron", "--version", env=env)
            step("Any command starts the daemon on demand", "aileron", "vault", "status", env=env)
            step("The daemon: url, pid, version, uptime", "aileron", "daemon", "status", env=env)
            step(
                "Create the vault ($AILERON_VAULT_PASSPHRASE)", "aileron", "vault", "init", env=env
            )
            step(
                "Bind the OpenAI key for the gateway: stored in the vault, read from stdin",
                *("aileron", "binding", "add", "api_key/openai/default", "--meta", "type=api_key"),
                stdin=DEMO_SECRET + "\n",
                env=env,
            )
            step(
                "Install the example connector",
                "aileron",
                "connector",
                "install",
                str(spec),
                env=env,
            )
            for name in ("echo-say", "echo-careful"):
                step(
                    f"Install the {name} action",
                    "aileron",
                    "action",
                    "install",
                    str(ACTIONS / f"{name}.md"),
                    env=env,
                )
            step(
                "Bind the echo server's credential (stdin again)",
                *("aileron", "binding", "add", "token/echo/default"),
                stdin=ECHO_TOKEN + "\n",
                env=env,
            )
            step(
                "List the vault: paths and metadata, never values",
                "aileron",
                "vault",
                "list",
                env=env,
            )
            step("Lock the vault: the daemon forgets the key", "aileron", "vault", "lock", env=env)
            step(
                "Run an action: the CLI unlocks the vault, the daemon injects the credential",
                *("aileron", "action", "run", "echo-say", "--arg", "message=hello from the demo"),
                env=env,
            )
            step(
                "A risky action waits for a human (exit 75)",
                *(
                    "aileron",
                    "action",
                    "run",
                    "echo-careful",
                    "--arg",
                    "message=approved by a human",
                ),
                env=env,
                expect=75,
            )
            pending = step(
                "What waits for approval",
                "aileron",
                "approval",
                "list",
                "--json",
                env=env,
                capture=True,
            )
            approval_id = json.loads(pending)[0]["id"]
            step(
                "Approve it: it runs now, once",
                "aileron",
                "approval",
                "approve",
                approval_id,
                "--yes",  # the demo is a script: it decides without a terminal prompt
                env=env,
            )
            step("Everything Aileron did is in the audit log", "aileron", "audit", "list", env=env)
            step("And the audit log proves it is complete", "aileron", "audit", "verify", env=env)
        finally:
            step("Stop the daemon", "aileron", "daemon", "stop", env=env)
        saw = sum(1 for s in echo.seen if s.headers.get("Authorization") == f"Bearer {ECHO_TOKEN}")
        print(f"\nthe echo server received the credential on {saw} of {len(echo.seen)} requests")
        leaked = [
            p.name
            for p in Path(home).rglob("*")
            if p.is_file()
            and p != spec
            and any(s.encode() in p.read_bytes() for s in (DEMO_SECRET, ECHO_TOKEN))
        ]
        print(f"files under AILERON_HOME holding a secret in clear: {leaked or 'none'}")
    print("\ndemo: done")
    return 0 if not leaked and saw == 2 else 1


if __name__ == "__main__":
    sys.exit(main())
