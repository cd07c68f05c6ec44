"""A real daemon's audit files, made by the real `aileron` CLI, and the ways to tamper with them
(shared by the completeness end-to-end and property tests)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from actions.support import SECRET, echo_spec
from audit.signed_log import rechain
from helpers import aileron

from aileron_cli.examples import ACTIONS
from aileron_cli.examples.echo_server import EchoServer
from aileron_core.audit import GENESIS_PREV, Actor, AuditEvent, seal_line
from aileron_core.client import DaemonClient
from aileron_core.discovery import pid_alive, read_daemon_info
from aileron_core.paths import Layout

PASSPHRASE = "completeness passphrase"


class Home:
    """One AILERON_HOME driven through the real CLI; ``env`` is what every call runs with
    (without the passphrase, so that a locked vault stays locked)."""

    def __init__(
        self, layout: Layout, env: dict[str, str] | None = None, passphrase: str = PASSPHRASE
    ) -> None:
        self.layout = layout
        self.env = dict(env if env is not None else os.environ)
        self.env.pop("AILERON_VAULT_PASSPHRASE", None)
        self.unlocking = dict(self.env, AILERON_VAULT_PASSPHRASE=passphrase)

    def run(
        self, *args: str, ok: bool = True, unlock: bool = False, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `aileron ARGS`; assert it succeeded when ``ok``. A daemon that a loaded machine
        could not start within the CLI's spawn budget goes on starting: the call is repeated
        once then (the command did not reach any daemon the first time)."""
        env = self.unlocking if unlock else self.env
        done = aileron(*args, stdin=stdin, env=env)
        if done.returncode == 1 and "the daemon did not answer within" in done.stderr:
            done = aileron(*args, stdin=stdin, env=env)
        if ok:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def client(self) -> DaemonClient:
        """The human's client of the running daemon (started first if none runs)."""
        self.run("status")
        info = read_daemon_info(self.layout.daemon_json)
        assert info is not None
        return DaemonClient.for_daemon(info)

    def start_session(self, agent: str) -> str:
        """Start a session; return its id."""
        with self.client() as client:
            session: dict[str, Any] = client.post(
                "sessions", {"agent": agent, "working_dir": "/tmp"}
            )
        return str(session["id"])

    def end_session(self, session_id: str) -> None:
        """End a session with exit code 0."""
        with self.client() as client:
            client.post(f"sessions/{session_id}/end", {"exit_code": 0})

    def install_echo(self, echo: EchoServer, spec_dir: Path) -> None:
        """Install the echo connector and its careful (approval-needing) action, with a
        binding (the vault must be unlocked)."""
        spec_file = spec_dir / "echo.json"
        spec_file.write_text(json.dumps(echo_spec(echo.host)))
        self.run("connector", "install", str(spec_file))
        self.run("action", "install", str(ACTIONS / "echo-careful.md"))
        done = aileron(
            "binding", "add", "token/echo/default", stdin=SECRET + "\n", env=self.unlocking
        )
        assert done.returncode == 0, done.stderr

    def request_approval(self, message: str = "careful") -> str:
        """Run the careful action: it waits for a human; return the approval id."""
        done = self.run(
            "action", "run", "echo-careful", "--arg", f"message={message}", "--json", ok=False
        )
        assert done.returncode == 75, (done.stdout, done.stderr)
        return str(json.loads(done.stdout)["approval_id"])

    def kill(self) -> None:
        """kill -9 the daemon, started first if none runs (the next CLI call starts a new one)."""
        self.run("status")
        info = read_daemon_info(self.layout.daemon_json)
        assert info is not None
        os.kill(info.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(info.pid) and not _zombie(info.pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the daemon cleanly."""
        self.run("daemon", "stop")

    def verify(self, *flags: str) -> tuple[int, str]:
        """`aileron audit verify FLAGS`: exit code and stdout."""
        done = self.run("audit", "verify", *flags, ok=False)
        assert done.returncode in (0, 1), (done.stdout, done.stderr)
        return done.returncode, done.stdout

    def verify_json(self, *flags: str) -> tuple[int, dict[str, Any]]:
        """`aileron audit verify --json FLAGS`: exit code and the report."""
        code, out = self.verify("--json", *flags)
        report: dict[str, Any] = json.loads(out)
        return code, report

    # -- the files ------------------------------------------------------------------------------

    def lines(self) -> list[bytes]:
        """The active log's lines, with their newlines."""
        return self.layout.audit.read_bytes().splitlines(keepends=True)

    def records(self) -> list[dict[str, Any]]:
        """The active log's records."""
        return [json.loads(line) for line in self.lines()]

    def heads(self) -> list[dict[str, Any]]:
        """The signed heads."""
        if not self.layout.audit_heads.exists():
            return []
        return [json.loads(line) for line in self.layout.audit_heads.read_bytes().splitlines()]

    def signed_seq(self) -> int:
        """The seq the last head covers (0 without heads)."""
        heads = self.heads()
        return int(heads[-1]["seq"]) if heads else 0


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def first_line(out: str) -> str:
    """The one line `audit verify` prints about the verdict."""
    return out.splitlines()[0] if out else ""


# -- tampering ---------------------------------------------------------------------------------


def reseal(values: list[dict[str, Any]], *, first_seq: int, prev: str) -> list[bytes]:
    """Re-seal record values as a fresh, valid chain from ``first_seq`` after ``prev``."""
    return rechain((json.dumps(value).encode() for value in values), first_seq=first_seq, prev=prev)


def forge_approval(log: Path) -> int:
    """Append a properly sealed `approval.approved` (only completeness can catch it); return
    its seq."""
    last = json.loads(log.read_bytes().splitlines()[-1])
    record, line = seal_line(
        AuditEvent(
            type="approval.approved",
            actor=Actor(type="human", id="user"),
            session_id=None,
            payload={"approval_id": "apr_forged"},
        ),
        seq=last["seq"] + 1,
        prev=last["hash"],
    )
    with open(log, "ab") as handle:
        handle.write(line)
    return record.seq


def drop_session(log: Path, session_id: str) -> int:
    """Remove every record of ``session_id`` and re-hash the chain after the first one removed;
    return that first removed seq."""
    values = [json.loads(line) for line in log.read_bytes().splitlines()]
    first = next(i for i, v in enumerate(values) if v["session_id"] == session_id)
    kept = [v for v in values[first:] if v["session_id"] != session_id]
    prefix = log.read_bytes().splitlines(keepends=True)[:first]
    prev = values[first - 1]["hash"] if first else GENESIS_PREV
    log.write_bytes(b"".join([*prefix, *reseal(kept, first_seq=values[first]["seq"], prev=prev)]))
    return int(values[first]["seq"])


@contextlib.contextmanager
def echo_server() -> Iterator[EchoServer]:
    """The local echo server the careful action calls once approved."""
    with EchoServer(SECRET) as server:
        yield server


Tamper = Callable[[Home], int]
"""A tampering step: changes the files, returns the seq it must be reported at."""
