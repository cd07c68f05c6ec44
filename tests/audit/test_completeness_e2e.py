"""Issue #16, acceptance 1: every way of tampering with a real daemon's audit files makes
`aileron audit verify` exit 1 naming the problem and its seq; an untouched log, or one whose
torn tail was recovered, exits 0."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest
from audit.completeness_support import (
    Home,
    drop_session,
    echo_server,
    first_line,
    forge_approval,
    reseal,
)

from aileron_core.audit_heads import SIGNED_TYPES
from aileron_core.client import ApiError
from aileron_core.paths import Layout


def home_env(home: Path) -> dict[str, str]:
    """An environment whose AILERON_HOME (and HOME, XDG dirs) is under ``home``."""
    env = dict(os.environ, HOME=str(home), AILERON_HOME=str(home / ".aileron"))
    for name, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_RUNTIME_DIR", "run"),
    ):
        env[name] = str(home / sub)
    return env


@attrs.frozen
class Baseline:
    """A stopped daemon's home: vault unlocked throughout, sessions, one approval approved."""

    home: Path
    ended_session: str


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Baseline]:
    """Made once: init, two sessions started and ended, an approval requested and approved,
    a session left running, then a clean stop (the vault still unlocked: a `stop` head)."""
    root = tmp_path_factory.mktemp("baseline")
    home = Home(Layout(root / ".aileron"), home_env(root))
    try:
        with echo_server() as echo:
            home.run("vault", "init", unlock=True)
            first = home.start_session("alpha")
            second = home.start_session("beta")
            home.end_session(first)
            home.end_session(second)
            home.install_echo(echo, root)
            home.run("approval", "approve", home.request_approval(), "--yes")
            home.start_session("gamma")
            home.stop()
    finally:
        home.run("daemon", "stop", ok=False)
    yield Baseline(root, first)


def copy_of(baseline: Baseline, tmp_path: Path) -> Home:
    """A copy of the baseline home that tests may tamper with."""
    target = tmp_path / "copy"
    shutil.copytree(baseline.home, target, ignore=shutil.ignore_patterns("*.sock", "run"))
    return Home(Layout(target / ".aileron"), home_env(target))


def _rewrite(home: Home, lines: list[bytes]) -> None:
    home.layout.audit.write_bytes(b"".join(lines))


def delete_last(home: Home, n: int) -> int:
    lines = home.lines()
    _rewrite(home, lines[:-n])
    return int(json.loads(lines[-n])["seq"])


def cut_mid_line(home: Home) -> int:
    lines = home.lines()
    _rewrite(home, [*lines[:8], lines[8][:30]])
    return int(json.loads(lines[8])["seq"])


def empty(home: Home) -> int:
    home.layout.audit.write_bytes(b"")
    return 1


def delete_file(home: Home) -> int:
    home.layout.audit.unlink()
    return home.signed_seq()


def edit_head(home: Home) -> int:
    path = home.layout.audit_heads
    lines = path.read_bytes().splitlines(keepends=True)
    edited = lines[1].replace(b'"reason":"decision"', b'"reason":"periodic"')
    assert edited != lines[1]
    path.write_bytes(b"".join([lines[0], edited, *lines[2:]]))
    return int(json.loads(lines[1])["seq"])


def delete_heads(home: Home) -> int:
    home.layout.audit_heads.unlink()
    return int(next(r["seq"] for r in home.records() if r["type"] in SIGNED_TYPES))


def reorder(home: Home) -> int:
    lines = home.lines()
    lines[3], lines[4] = lines[4], lines[3]
    _rewrite(home, lines)
    return int(json.loads(lines[3])["seq"])


def edit_record(home: Home, index: int = 3, agent: bytes = b"beta") -> int:
    lines = home.lines()
    edited = lines[index].replace(b'"agent":"' + agent, b'"agent":"X' + agent)
    assert edited != lines[index]
    _rewrite(home, [*lines[:index], edited, *lines[index + 1 :]])
    return int(json.loads(lines[index])["seq"])


TAMPERINGS: dict[str, tuple[Callable[[Home, Baseline], int], str]] = {
    "delete the last 3 records": (lambda h, b: delete_last(h, 3), "log_truncated"),
    "delete the last record": (lambda h, b: delete_last(h, 1), "log_truncated"),
    "cut mid-line": (lambda h, b: cut_mid_line(h), "log_truncated"),
    "empty the log": (lambda h, b: empty(h), "log_truncated"),
    "delete the log": (lambda h, b: delete_file(h), "log_missing"),
    "append a forged approval.approved": (
        lambda h, b: forge_approval(h.layout.audit),
        "unsigned_signed_type",
    ),
    "remove one session and re-hash": (
        lambda h, b: (drop_session(h.layout.audit, b.ended_session), h.heads()[1]["seq"])[1],
        "log_rewritten",
    ),
    "edit a head": (lambda h, b: edit_head(h), "head_invalid"),
    "delete the heads file": (lambda h, b: delete_heads(h), "heads_missing"),
    "reorder two records": (lambda h, b: reorder(h), "chain_broken"),
    "edit one record": (lambda h, b: edit_record(h), "chain_broken"),
}


def test_untouched_log_verifies(baseline: Baseline, tmp_path: Path) -> None:
    """After a clean stop with the vault unlocked the log is complete and fully signed."""
    home = copy_of(baseline, tmp_path)
    code, out = home.verify()
    assert code == 0, out
    assert first_line(out).startswith("audit log complete")
    last = home.records()[-1]["seq"]
    assert f"signed through seq {last}" in first_line(out)
    assert home.verify("--strict")[0] == 0


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_tampering_fails_naming_code_and_seq(name: str, baseline: Baseline, tmp_path: Path) -> None:
    """Each tampering of a stopped daemon's files: exit 1, one line with the code and seq."""
    home = copy_of(baseline, tmp_path)
    tamper, problem = TAMPERINGS[name]
    seq = tamper(home, baseline)
    code, out = home.verify()
    assert code == 1, out
    line = first_line(out)
    assert line.startswith("AUDIT LOG NOT INTACT: ") and f"{problem}: " in line, line
    assert f"seq {seq}" in line, line
    code, report = home.verify_json()
    assert code == 1 and report["ok"] is False
    assert report["summary"] == line
    assert (report["problems"][0]["code"], report["problems"][0]["seq"]) == (problem, seq)


@pytest.fixture
def running(layout: Layout) -> Iterator[Home]:
    """A running daemon: init, a session started and ended, one left running, then a lock and
    an unlock; the vault is left unlocked and the unlock's head covers every record (so the
    10 s timer has nothing to sign while the test tampers)."""
    home = Home(layout)
    try:
        home.run("vault", "init", unlock=True)
        home.end_session(home.start_session("alpha"))
        home.start_session("beta")
        home.run("vault", "lock")
        home.run("vault", "unlock", unlock=True)
        assert home.signed_seq() == home.records()[-1]["seq"]
        yield home
    finally:
        home.run("daemon", "stop", ok=False)


RUNNING: dict[str, tuple[Callable[[Home], int], str]] = {
    "delete the last 2 records": (lambda h: delete_last(h, 2), "log_truncated"),
    "empty the log": (empty, "log_truncated"),
    "append a forged approval.approved": (
        lambda h: forge_approval(h.layout.audit),
        "unsigned_signed_type",
    ),
    "delete the heads file": (delete_heads, "heads_missing"),
    "edit one record": (lambda h: edit_record(h, 2, b"alpha"), "chain_broken"),
}


def test_running_daemon_untouched_log_verifies(running: Home) -> None:
    """The running daemon's own verify of an untouched log exits 0, also --strict."""
    code, out = running.verify("--strict")
    assert code == 0, out
    assert first_line(out).startswith("audit log complete")


def test_running_daemon_signs_an_unsigned_tail_within_10_s(running: Home) -> None:
    """Records added while unlocked are covered by a `periodic` head within about 10 s."""
    running.start_session("gamma")
    seq = running.records()[-1]["seq"]
    assert running.signed_seq() < seq
    deadline = time.monotonic() + 30
    while running.signed_seq() < seq and time.monotonic() < deadline:
        time.sleep(0.5)
    assert running.heads()[-1]["reason"] == "periodic"
    assert running.signed_seq() == seq
    assert running.verify("--strict")[0] == 0


@pytest.mark.parametrize("name", list(RUNNING))
def test_running_daemon_tampering_fails(name: str, running: Home) -> None:
    """Tampering while the daemon runs: its verify exits 1 with the code and seq."""
    tamper, problem = RUNNING[name]
    seq = tamper(running)
    code, out = running.verify()
    assert code == 1, out
    line = first_line(out)
    assert f"{problem}: " in line and f"seq {seq}" in line, line
    code, report = running.verify_json()
    assert code == 1
    assert (report["problems"][0]["code"], report["problems"][0]["seq"]) == (problem, seq)


def test_running_daemon_catches_a_plain_appended_record(running: Home) -> None:
    """A sealed record appended behind the running daemon's back is past what it wrote."""
    last = running.records()[-1]
    forged = dict(last, type="session.started", session_id=None, id="aud_forged")
    running.layout.audit.write_bytes(
        running.layout.audit.read_bytes()
        + reseal([forged], first_seq=last["seq"] + 1, prev=last["hash"])[0]
    )
    code, report = running.verify_json()
    assert code == 1
    assert [(p["code"], p["seq"]) for p in report["problems"]] == [
        ("tip_mismatch", last["seq"] + 1)
    ]


def test_recovered_torn_tail_is_a_notice_until_acknowledged(
    baseline: Baseline, tmp_path: Path
) -> None:
    """A torn tail after a clean stop is cut at the next start, recorded as audit.recovered,
    shown by verify and `status` until `audit ack`; verify still exits 0."""
    home = copy_of(baseline, tmp_path)
    with open(home.layout.audit, "ab") as handle:
        handle.write(b'{"actor":{"id":"aileron-daemon","type":"serv')
    try:
        status = json.loads(home.run("status", "--json").stdout)
        recovered = [r for r in home.records() if r["type"] == "audit.recovered"]
        assert len(recovered) == 1 and recovered[0]["payload"]["dropped_bytes"] > 0
        assert len(status["audit_notices"]) == 1
        assert f"seq {recovered[0]['seq']}" in status["audit_notices"][0]
        code, report = home.verify_json()
        assert code == 0, report
        notices = [(n["code"], n["seq"]) for n in report["notices"]]
        assert ("audit.recovered", recovered[0]["seq"]) in notices, report["notices"]
        home.run("audit", "ack")
        assert json.loads(home.run("status", "--json").stdout)["audit_notices"] == []
    finally:
        home.run("daemon", "stop", ok=False)
    code, out = home.verify()
    assert code == 0, out
    assert f"note: audit.recovered at seq {recovered[0]['seq']}" in out


def test_strict_fails_on_records_written_while_locked(baseline: Baseline, tmp_path: Path) -> None:
    """Records written while the vault is locked are an unsigned tail: a notice, and a failure
    under --strict only."""
    home = copy_of(baseline, tmp_path)
    try:
        home.start_session("locked")
        home.stop()
    finally:
        home.run("daemon", "stop", ok=False)
    code, out = home.verify()
    assert code == 0, out
    code, report = home.verify_json()
    assert code == 0 and report["unsigned_tail"] > 0
    assert f"unsigned tail: {report['unsigned_tail']} records" in out
    code, out = home.verify("--strict")
    assert code == 1, out
    assert "--strict" in out
    code, report = home.verify_json("--strict")
    assert code == 1 and report["ok"] is True


def test_decision_while_locked_is_refused_and_not_recorded(
    baseline: Baseline, tmp_path: Path
) -> None:
    """Approving or denying while the vault is locked is 423 vault_locked; no decision is
    recorded and the approval stays pending."""
    home = copy_of(baseline, tmp_path)
    try:
        approval = home.request_approval("while locked")
        denied = home.run("approval", "deny", approval, ok=False)
        approved = home.run("approval", "approve", approval, "--yes", ok=False)
        assert denied.returncode == approved.returncode == 1
        assert "the vault is locked" in denied.stderr
        with home.client() as client:
            with pytest.raises(ApiError) as raised:
                client.post(f"approvals/{approval}/decide", {"approved": True})
            assert raised.value.code == "vault_locked"
            assert client.get(f"approvals/{approval}")["status"] == "pending"
        decided = [
            r
            for r in home.records()
            if r["type"] in ("approval.approved", "approval.denied")
            and r["payload"].get("approval_id") == approval
        ]
        assert decided == []
    finally:
        home.run("daemon", "stop", ok=False)
    assert home.verify()[0] == 0


def test_heads_deleted_after_only_a_vault_init_fails(layout: Layout) -> None:
    """A log whose only signed record is `vault.initialized` (no unlock, lock or decision yet)
    still fails `heads_missing` once its heads file is deleted: the init is always signed."""
    home = Home(layout)
    try:
        home.run("vault", "init", unlock=True)
        home.start_session("alpha")
    finally:
        home.run("daemon", "stop", ok=False)
    initialized = next(r["seq"] for r in home.records() if r["type"] == "vault.initialized")
    assert [r["type"] for r in home.records()].count("vault.unlocked") == 0
    assert home.verify()[0] == 0
    home.layout.audit_heads.unlink()
    code, out = home.verify()
    assert code == 1
    assert "heads_missing" in out and f"seq {initialized}" in out
