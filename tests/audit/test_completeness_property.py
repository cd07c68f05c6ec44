"""Issue #16, acceptance 2: whatever a real daemon went through (sessions, locks and unlocks,
decisions, kill -9), `aileron audit verify` passes exactly when nobody tampered with its files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
from audit.completeness_support import Home, drop_session, echo_server, forge_approval
from audit.test_completeness_e2e import home_env
from hypothesis import HealthCheck, Phase, event, example, given, note, settings
from hypothesis import strategies as st

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.audit_heads import SIGNED_TYPES
from aileron_core.paths import Layout

OPERATIONS = ("session", "session", "lock", "unlock", "decide", "kill")
TAMPERINGS = (
    "delete the tail",
    "cut mid-line",
    "empty",
    "delete the log",
    "forge an approval",
    "remove a session",
    "edit a head",
    "delete the heads",
    "reorder",
    "edit a record",
)


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    """One echo server for every example (approved actions call it)."""
    with echo_server() as server:
        yield server


class Driver:
    """Applies operations to a real daemon, remembering whether its vault is unlocked."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.unlocked = True
        self.running: list[str] = []

    def apply(self, operation: str, choice: int) -> None:
        home = self.home
        if operation == "session":
            self.running.append(home.start_session(f"agent{choice}"))
            if choice % 2 and self.running:
                home.end_session(self.running.pop(0))
        elif operation == "lock":
            home.run("vault", "lock")
            self.unlocked = False
        elif operation == "unlock":
            if not self.unlocked:  # unlocking an unlocked vault is an error
                home.run("vault", "unlock", unlock=True)
            self.unlocked = True
        elif operation == "decide":
            approval = home.request_approval(f"m{choice}")
            verb = ("approve", approval, "--yes") if choice % 2 else ("deny", approval)
            done = home.run("approval", *verb, ok=self.unlocked)
            assert done.returncode == (0 if self.unlocked else 1), done.stderr
        else:
            home.kill()
            self.unlocked = False  # a new daemon starts with the vault locked
            self.running = []  # its sessions are orphaned


def tamper(home: Home, kind: str, pick: int) -> str:
    """Apply one tampering that a signed head makes detectable; return what was done."""
    records = home.records()
    signed = home.signed_seq()
    assert signed >= 1  # `vault init` signs a head at once
    lines = home.lines()
    log = home.layout.audit
    covered = [r for r in records if r["seq"] <= signed]
    target = covered[pick % len(covered)]
    index = records.index(target)
    if kind == "delete the heads" and not any(r["type"] in SIGNED_TYPES for r in records):
        kind = "edit a head"  # with no signed-type record, no head is required at all
    if kind == "delete the tail":
        log.write_bytes(b"".join(lines[:index]))
        return f"{kind}: removed seq {target['seq']} onwards (signed through {signed})"
    if kind == "cut mid-line":
        log.write_bytes(b"".join(lines[:index]) + lines[index][: 1 + pick % 40])
        return f"{kind}: cut inside seq {target['seq']} (signed through {signed})"
    if kind == "empty":
        log.write_bytes(b"")
        return kind
    if kind == "delete the log":
        log.unlink()
        return kind
    if kind == "forge an approval":
        return f"{kind} at seq {forge_approval(log)}"
    if kind == "remove a session":
        sessions = [r["session_id"] for r in covered if r["session_id"] is not None]
        if sessions:
            session = sessions[pick % len(sessions)]
            return f"{kind}: {session} from seq {drop_session(log, session)}"
        kind = "edit a record"  # no session under a head: fall through
    if kind in ("edit a head", "delete the heads"):
        heads = home.layout.audit_heads
        if kind == "delete the heads":
            heads.unlink()
            return kind
        head_lines = heads.read_bytes().splitlines(keepends=True)
        at = pick % len(head_lines)
        value = json.loads(head_lines[at])
        edited = head_lines[at].replace(b'"reason":"' + value["reason"].encode(), b'"reason":"x')
        heads.write_bytes(b"".join([*head_lines[:at], edited, *head_lines[at + 1 :]]))
        return f"{kind}: head n {value['n']}"
    if kind == "reorder" and len(lines) >= 2:
        at = min(index, len(lines) - 2)
        lines[at], lines[at + 1] = lines[at + 1], lines[at]
        log.write_bytes(b"".join(lines))
        return f"{kind}: lines {at + 1} and {at + 2}"
    edited = lines[index].replace(b'"seq":', b'"seq": ', 1)
    assert edited != lines[index]
    log.write_bytes(b"".join([*lines[:index], edited, *lines[index + 1 :]]))
    return f"edit a record: seq {target['seq']}"


def run(
    tmp_path_factory: pytest.TempPathFactory,
    echo: EchoServer,
    operations: list[tuple[str, int]],
    tampering: tuple[str, int],
) -> None:
    """Drive a real daemon through ``operations`` and stop it; the untouched files verify,
    a copy with ``tampering`` applied does not."""
    root = tmp_path_factory.mktemp("example")
    home = Home(Layout(root / ".aileron"), home_env(root))
    note(f"operations: {operations}")
    try:
        home.run("vault", "init", unlock=True)
        home.install_echo(echo, root)
        driver = Driver(home)
        for operation, choice in operations:
            driver.apply(operation, choice)
        home.stop()
    finally:
        home.run("daemon", "stop", ok=False)
    copy = tmp_path_factory.mktemp("tampered")
    shutil.copytree(root / ".aileron", copy / ".aileron", ignore=shutil.ignore_patterns("*.sock"))
    tampered = Home(Layout(copy / ".aileron"), home_env(copy))
    note(f"tampering: {tamper(tampered, *tampering)}")
    code, out = home.verify()
    note(f"verify untouched: {out}")
    assert code == 0, out
    code, out = tampered.verify()
    note(f"verify tampered: {out}")
    assert code == 1, out


operation = st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 1000))
tampering = st.tuples(st.sampled_from(TAMPERINGS), st.integers(0, 1000))


@pytest.mark.slow
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each step is a real process
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(operation, min_size=1, max_size=6), tampering=tampering)
@example(  # a decision, a crash, a lock, a session written while locked; a session removed
    operations=[
        ("session", 1),
        ("decide", 1),
        ("kill", 0),
        ("unlock", 0),
        ("lock", 0),
        ("session", 0),
    ],
    tampering=("remove a session", 0),
)
def test_verify_passes_on_any_history_and_fails_on_any_tampering(
    tmp_path_factory: pytest.TempPathFactory,
    echo: EchoServer,
    operations: list[tuple[str, int]],
    tampering: tuple[str, int],
) -> None:
    """Random daemon histories: verify exits 0 on the files as left, and 1 on a copy with one
    effective tampering."""
    event(f"tampering: {tampering[0]}")
    event(f"kill -9: {sum(op == 'kill' for op, _ in operations)}")
    run(tmp_path_factory, echo, operations, tampering)
