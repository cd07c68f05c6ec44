"""200,000 records over several segments, signed as the daemon signs them, verified and exported
with the real CLI; a missing segment, a missing record or an edited export fails (issue #16,
acceptance 5)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import aileron

from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.audit.signer import HeadSigner
from aileron_core.audit import Actor, AuditEvent
from aileron_core.paths import Layout
from aileron_core.vault import KdfParams, Vault

pytestmark = pytest.mark.slow  # builds and re-reads a 200k-record log several times (~60 MB)

RECORDS = 200_000
BATCH = 1_000
SEGMENT_BYTES = 16 * 1024 * 1024
PASSPHRASE = "rotation passphrase"
HUMAN = Actor(type="human", id="user")
AGENT = Actor(type="agent", id="ses_big")


def build(layout: Layout) -> None:
    """A real vault, and a log written by the daemon's own AuditLog in batches of BATCH (each
    commit signs a head, as the daemon does every 256 records), rotated every SEGMENT_BYTES."""
    vault = Vault.create(
        layout.vault, PASSPHRASE, kdf=KdfParams(time_cost=1, memory_kib=64, parallelism=1)
    )
    log, _ = AuditLog.open(layout.audit, segment_bytes=SEGMENT_BYTES)
    heads = HeadSigner(log, layout.audit_heads)
    heads.arm(vault.audit_signing_key(), vault.vault_id, lambda: vault.generation)
    log.append_sync("vault.unlocked", HUMAN)
    heads.sign("unlock")
    written = 1
    while written < RECORDS - 1:
        count = min(BATCH, RECORDS - 1 - written)
        log._commit(
            [
                AuditEvent(
                    type="action.executed",
                    actor=AGENT,
                    session_id="ses_big",
                    payload={"action": "github-issue", "n": written + i, "outcome": "ok"},
                )
                for i in range(count)
            ]
        )
        written += count
    log.append_sync("vault.locked", HUMAN)
    heads.sign("lock")
    heads.disarm()
    log.close()


@pytest.fixture(scope="module")
def big_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AILERON_HOME holding the 200k-record log (built once for this module)."""
    home = tmp_path_factory.mktemp("big") / ".aileron"
    started = time.monotonic()
    build(Layout(home))
    print(f"built {RECORDS} records in {time.monotonic() - started:.1f} s")
    return home


@pytest.fixture
def home(big_home: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the big home this test may tamper with."""
    copy = tmp_path / "home"
    shutil.copytree(big_home, copy)
    yield copy


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`aileron ARGS` with AILERON_HOME at ``home`` (no daemon runs: verify reads the files)."""
    return aileron(*args, env=dict(os.environ, AILERON_HOME=str(home)), timeout=120)


def verify(home: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """`aileron audit verify ARGS --json`: its exit code and report."""
    started = time.monotonic()
    done = cli(home, "audit", "verify", *args, "--json")
    print(f"audit verify {' '.join(args)}: {time.monotonic() - started:.1f} s")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def pinned_key(home: Path) -> str:
    """The public audit key as `aileron audit key` prints it (base64, then its id)."""
    done = cli(home, "audit", "key")
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[0]


def export(home: Path, out: Path, *args: str) -> None:
    """`aileron audit export ARGS -o OUT`, asserted to succeed."""
    started = time.monotonic()
    done = cli(home, "audit", "export", *args, "-o", str(out))
    print(f"audit export {' '.join(args)}: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stderr


def test_200k_records_over_segments_verify_offline(big_home: Path) -> None:
    """The whole 200k-record chain verifies across >= 3 segments, every record covered."""
    segments = Layout(big_home).audit_segments()
    assert len(segments) >= 3 and segments[-1].name == "audit.jsonl"
    code, report = verify(big_home)
    assert code == 0, report["problems"]
    assert (report["records"], report["first_seq"], report["last_seq"]) == (RECORDS, 1, RECORDS)
    assert report["signed_seq"] == RECORDS and report["unsigned_tail"] == 0
    assert report["heads"] >= RECORDS // BATCH


def test_a_missing_middle_segment_fails(home: Path) -> None:
    """Deleting a rotated segment from the middle makes verify exit 1."""
    middle = Layout(home).audit_segments()[1]
    middle.unlink()
    code, report = verify(home)
    assert code == 1
    assert report["problems"][0]["code"] == "chain_broken", report["problems"]


def test_a_missing_record_in_a_middle_segment_fails(home: Path) -> None:
    """Deleting one record inside a rotated middle segment makes verify exit 1 from its seq."""
    middle = Layout(home).audit_segments()[1]
    lines = middle.read_bytes().splitlines(keepends=True)
    gone = json.loads(lines[len(lines) // 2])["seq"]
    middle.write_bytes(b"".join(lines[: len(lines) // 2] + lines[len(lines) // 2 + 1 :]))
    code, report = verify(home)
    assert code == 1
    problem = report["problems"][0]
    assert problem["code"] == "chain_broken" and problem["seq"] == gone + 1, problem


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_full_export_verifies_and_an_edited_byte_fails(
    big_home: Path, tmp_path: Path, fmt: str
) -> None:
    """A full export verifies with the pinned key; one edited byte in it makes it exit 1."""
    out = tmp_path / f"audit.{fmt}"
    export(big_home, out, "--format", fmt)
    key = pinned_key(big_home)
    code, report = verify(big_home, "--file", str(out), "--key", key)
    assert code == 0, report["problems"]
    assert (report["records"], report["last_seq"]) == (RECORDS, RECORDS)
    data = bytearray(out.read_bytes())
    quote = b'"' if fmt == "jsonl" else b'""'  # CSV doubles the quotes of the JSON line
    at = data.index(quote + b"n" + quote + b":100000,") + len(quote) * 2 + 2
    data[at] = ord("7")  # a record's payload "n":100000 -> "n":700000
    out.write_bytes(bytes(data))
    code, report = verify(big_home, "--file", str(out), "--key", key)
    assert code == 1
    assert report["problems"], report


def test_a_range_export_verifies(big_home: Path, tmp_path: Path) -> None:
    """An export of a time range in the middle of the chain verifies on its own."""
    layout = Layout(big_home)
    middle = layout.audit_segments()[1].read_bytes().splitlines()
    since = json.loads(middle[100])["ts"]
    until = json.loads(middle[-100])["ts"]
    out = tmp_path / "range.jsonl"
    export(big_home, out, "--format", "jsonl", "--since", since, "--until", until)
    code, report = verify(big_home, "--file", str(out), "--key", pinned_key(big_home))
    assert code == 0, report["problems"]
    # from the first record at or after --since to the last at or before --until
    assert 1 < report["first_seq"] <= json.loads(middle[100])["seq"]
    assert json.loads(middle[-100])["seq"] <= report["last_seq"] < RECORDS
    assert report["records"] == report["last_seq"] - report["first_seq"] + 1
    assert any("export starts at seq" in n["message"] for n in report["notices"]), report
