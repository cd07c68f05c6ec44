"""Verify proves the audit log complete: each tampering fails with its code and seq (real files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from audit.signed_log import SignedLog, raw_public, rechain, standard_log
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aileron_core.audit_heads import SIGNED_TYPES, key_id
from aileron_core.audit_verify import CompletenessReport, Finding, verify_files
from aileron_core.canonical import canonical_json


def only(report: CompletenessReport, code: str) -> Finding:
    """The first problem of ``report``, asserted to carry ``code``."""
    assert not report.ok
    assert report.problems[0].code == code, report.problems
    return report.problems[0]


def one_line(report: CompletenessReport) -> None:
    """Every message and the summary are single lines."""
    for finding in (*report.problems, *report.notices):
        assert "\n" not in finding.message
    assert "\n" not in report.summary()


def test_untouched_log_passes(tmp_path: Path) -> None:
    """An untouched log signed through its last record passes with no notices."""
    log = standard_log()
    report = log.verify(tmp_path)
    assert report.ok, report.problems
    assert (report.records, report.first_seq, report.last_seq) == (19, 1, 19)
    assert (report.signed_seq, report.heads, report.unsigned_tail) == (19, 4, 0)
    assert report.key == key_id(log.public) and report.notices == ()
    assert report.summary().startswith("audit log complete: 19 records")
    assert report.to_json()["problems"] == []
    one_line(report)


def test_unsigned_tail_is_only_a_notice(tmp_path: Path) -> None:
    """Records after the last head are a notice naming their count and seqs, not a problem."""
    log = standard_log()
    log.add()
    log.add()
    report = log.verify(tmp_path)
    assert report.ok and report.unsigned_tail == 2
    assert [n.code for n in report.notices] == ["unsigned_tail"]
    assert report.notices[0].message == "unsigned tail: 2 records (seq 20..21)"
    assert "2 unsigned" in report.summary()


def test_delete_last_records(tmp_path: Path) -> None:
    """Deleting the last records, down past a head, is log_truncated from the first lost seq."""
    log = standard_log()
    del log.records[-3:]
    finding = only(log.verify(tmp_path), "log_truncated")
    assert finding.seq == 17 and "ends at seq 16" in finding.message and "seq 19" in finding.message


def test_cut_mid_line(tmp_path: Path) -> None:
    """A last line cut short inside the signed range is log_truncated, not just a torn tail."""
    log = standard_log()
    path, _, _ = log.write(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - len(log.records[-1]) // 2])
    report = log.verify(tmp_path, write=False)
    finding = only(report, "log_truncated")
    assert finding.seq == 19 and "torn" in finding.message
    assert [p.code for p in report.problems] == ["log_truncated"]


def test_torn_line_after_last_head_is_a_notice(tmp_path: Path) -> None:
    """A torn last line after the last head is a notice only."""
    log = standard_log()
    log.add()
    path, _, _ = log.write(tmp_path)
    path.write_bytes(path.read_bytes()[:-10])
    report = log.verify(tmp_path, write=False)
    assert report.ok
    assert [n.code for n in report.notices] == ["torn_tail"] and report.notices[0].seq == 20


def test_emptied_log(tmp_path: Path) -> None:
    """An emptied log is log_truncated from seq 1."""
    log = standard_log()
    log.records.clear()
    finding = only(log.verify(tmp_path), "log_truncated")
    assert finding.seq == 1 and "ends at seq 0" in finding.message


def test_deleted_log(tmp_path: Path) -> None:
    """A deleted log file with heads present is log_missing."""
    log = standard_log()
    path, _, _ = log.write(tmp_path)
    path.unlink()
    finding = only(log.verify(tmp_path, write=False), "log_missing")
    assert finding.seq == 19


def test_forged_signed_type_append(tmp_path: Path) -> None:
    """A well-chained approval appended after the last head is unsigned_signed_type at its seq."""
    log = standard_log()
    log.add("approval.approved", None)
    finding = only(log.verify(tmp_path), "unsigned_signed_type")
    assert finding.seq == 20 and "approval.approved" in finding.message


def test_connector_removed_and_rechained(tmp_path: Path) -> None:
    """Removing every record of one connector and re-hashing the chain is log_rewritten."""
    log = standard_log()
    kept = [line for line in log.records if json.loads(line)["payload"].get("connector") != "slack"]
    log.records = rechain(kept)
    report = log.verify(tmp_path)
    finding = only(report, "log_rewritten")
    assert finding.seq == 7 and "head n 2" in finding.message
    assert "intact through seq 1 (head n 1)" in finding.message


def test_head_line_edited(tmp_path: Path) -> None:
    """A head whose seq was edited (still canonical) fails its signature: head_invalid."""
    log = standard_log()
    value = json.loads(log.heads[2])
    value["seq"] = 13
    log.heads[2] = canonical_json(value) + b"\n"
    finding = only(log.verify(tmp_path), "head_invalid")
    assert finding.seq == 13 and "head n 3" in finding.message


def test_heads_file_deleted(tmp_path: Path) -> None:
    """A missing heads file, with signed-type records in the log, is heads_missing."""
    log = standard_log()
    _, heads, _ = log.write(tmp_path)
    heads.unlink()
    finding = only(log.verify(tmp_path, write=False), "heads_missing")
    assert finding.seq == 1


def test_records_reordered(tmp_path: Path) -> None:
    """Two swapped records are chain_broken at the seq found out of place."""
    log = standard_log()
    log.records[4], log.records[5] = log.records[5], log.records[4]
    finding = only(log.verify(tmp_path), "chain_broken")
    assert finding.seq == 6 and "seq 6" in finding.message


def test_record_edited(tmp_path: Path) -> None:
    """One record edited in place is chain_broken at its seq."""
    log = standard_log()
    log.records[8] = log.records[8].replace(b'"github"', b'"gitlab"')
    finding = only(log.verify(tmp_path), "chain_broken")
    assert finding.seq == 9 and "seq 9" in finding.message


def test_head_resigned_with_another_key(tmp_path: Path) -> None:
    """A head re-signed with another key is head_invalid naming that head."""
    log = SignedLog()
    log.add("vault.unlocked", None)
    log.sign("unlock")
    log.add()
    log.sign(key=Ed25519PrivateKey.generate())
    finding = only(log.verify(tmp_path), "head_invalid")
    assert finding.seq == 2 and "head n 2" in finding.message and "key" in finding.message


def test_generation_decreasing(tmp_path: Path) -> None:
    """A head whose vault generation is lower than the head before is head_invalid."""
    log = SignedLog(generation=5)
    log.add("vault.unlocked", None)
    log.sign("unlock")
    log.add()
    log.sign(generation=4)
    finding = only(log.verify(tmp_path), "head_invalid")
    assert finding.seq == 2 and "generation 4" in finding.message


def test_head_of_another_vault(tmp_path: Path) -> None:
    """Heads of another vault id are head_invalid."""
    log = standard_log()
    finding = only(log.verify(tmp_path, vault_id="f" * 32), "head_invalid")
    assert finding.seq == 1 and "vault" in finding.message


def test_head_removed_from_the_middle(tmp_path: Path) -> None:
    """A head removed from the middle is head_invalid (n and prev no longer follow)."""
    log = standard_log()
    del log.heads[1]
    finding = only(log.verify(tmp_path), "head_invalid")
    assert finding.seq == 14 and "n 2 belongs" in finding.message


def test_no_key_checks_the_chain_only(tmp_path: Path) -> None:
    """Without an audit key and without heads, the chain is checked and a notice says so."""
    log = standard_log()
    log.heads.clear()
    report = log.verify(tmp_path, public_key=None)
    assert report.ok and report.key is None
    assert [n.code for n in report.notices] == ["no_audit_key"]
    log.records[3] = log.records[3].replace(b'"github"', b'"gitlab"')
    assert only(log.verify(tmp_path, public_key=None), "chain_broken").seq == 4


def test_no_key_but_heads(tmp_path: Path) -> None:
    """Without an audit key, heads that exist cannot be checked: head_invalid."""
    finding = only(standard_log().verify(tmp_path, public_key=None), "head_invalid")
    assert finding.message == "no audit key to check heads against"


def test_tip_mismatch(tmp_path: Path) -> None:
    """A file that does not end at the daemon's tip is tip_mismatch; the right tip passes."""
    log = standard_log()
    assert log.verify(tmp_path, tip=log.tip).ok
    finding = only(log.verify(tmp_path, tip=(20, "ab" * 32)), "tip_mismatch")
    assert finding.seq == 19 and "seq 20" in finding.message


def test_witness(tmp_path: Path) -> None:
    """With the witness key every head needs a valid mark; missing or forged marks fail."""
    log = standard_log()
    witness_key = raw_public(log.witness_key)
    options: dict[str, Any] = {
        "witness": tmp_path / "audit.witness.jsonl",
        "witness_key": witness_key,
    }
    report = log.verify(tmp_path, **options)
    assert report.ok and report.witnessed == 4
    del log.marks[2]
    finding = only(log.verify(tmp_path, **options), "witness_missing")
    assert finding.seq == 14 and "head n 3" in finding.message
    log.marks.append(log.marks[0])  # a mark for head 1 presented again is fine; one forged:
    value = json.loads(log.marks[0])
    value["n"] = 3
    log.marks.append(canonical_json(value) + b"\n")
    report = log.verify(tmp_path, **options)
    assert {p.code for p in report.problems} == {"witness_invalid", "witness_missing"}


def test_notices_for_recovery_and_rejected_checkpoint(tmp_path: Path) -> None:
    """audit.recovered and audit.checkpoint_rejected records become notices, not problems."""
    log = standard_log()
    log.add("audit.recovered", None)
    log.add("audit.checkpoint_rejected", None)
    log.sign()
    report = log.verify(tmp_path)
    assert report.ok
    assert [(n.code, n.seq) for n in report.notices] == [
        ("audit.recovered", 20),
        ("audit.checkpoint_rejected", 21),
    ]


def test_segments_continue_the_chain(tmp_path: Path) -> None:
    """A log split across rotated segments verifies as one chain."""
    log = standard_log()
    log.write(tmp_path)
    first, second = tmp_path / "audit.000001.jsonl", tmp_path / "audit.jsonl"
    first.write_bytes(b"".join(log.records[:10]))
    second.write_bytes(b"".join(log.records[10:]))
    heads = tmp_path / "audit.heads.jsonl"
    report = verify_files([first, second], heads, public_key=log.public, vault_id=log.vault_id)
    assert report.ok and report.records == 19
    first.unlink()
    report = verify_files([first, second], heads, public_key=log.public, vault_id=log.vault_id)
    assert only(report, "chain_broken").seq == 11


def test_empty_log_head_at_seq_zero(tmp_path: Path) -> None:
    """A head of an empty log (seq 0, GENESIS_PREV) passes with an empty log."""
    log = SignedLog()
    log.sign("unlock")
    report = log.verify(tmp_path)
    assert report.ok and report.signed_seq == 0 and report.records == 0


TAMPERINGS = (
    "delete_last",
    "cut_mid_line",
    "empty",
    "delete_log",
    "forge_signed",
    "remove_connector",
    "edit_head",
    "delete_heads",
    "reorder",
    "edit_record",
    "resign_other_key",
    "generation_down",
)


def _build(data: st.DataObject) -> SignedLog:
    log = SignedLog(generation=data.draw(st.integers(1, 3)))
    log.add("vault.unlocked", None)
    log.sign("unlock")
    for _ in range(data.draw(st.integers(2, 25))):
        kind = data.draw(st.sampled_from(("action.executed", "session.started", *SIGNED_TYPES)))
        log.add(kind, data.draw(st.sampled_from(("github", "slack", None))))
        if kind in SIGNED_TYPES or data.draw(st.integers(0, 4)) == 0:
            log.generation += data.draw(st.integers(0, 1))
            log.sign("decision" if kind in SIGNED_TYPES else "periodic")
    return log


def _tamper(log: SignedLog, home: Path, how: str, data: st.DataObject) -> None:
    """Apply one tampering that always removes or changes something a head vouches for."""
    last_head = log.head_seqs[-1]
    if how == "delete_last":
        keep = data.draw(st.integers(0, last_head - 1))
        del log.records[keep:]
    elif how == "forge_signed":
        log.add(data.draw(st.sampled_from(SIGNED_TYPES)), None)
    elif how == "remove_connector":
        signed = [json.loads(r) for r in log.records[:last_head]]
        connectors = {r["payload"].get("connector") for r in signed} - {None}
        victim = data.draw(st.sampled_from(sorted(connectors))) if connectors else None
        if victim is None:  # nothing of a connector is signed: remove a signed record instead
            del log.records[data.draw(st.integers(0, last_head - 1))]
            log.records = rechain(log.records)
        else:
            log.records = rechain(
                r for r in log.records if json.loads(r)["payload"].get("connector") != victim
            )
    elif how == "edit_head":
        index = data.draw(st.integers(0, len(log.heads) - 1))
        value = json.loads(log.heads[index])
        value["seq"] += 1
        log.heads[index] = canonical_json(value) + b"\n"
    elif how == "reorder":
        index = data.draw(st.integers(0, len(log.records) - 2))
        log.records[index], log.records[index + 1] = log.records[index + 1], log.records[index]
    elif how == "edit_record":
        index = data.draw(st.integers(0, len(log.records) - 1))
        log.records[index] = log.records[index].replace(b'"n":', b'"m":')
    elif how == "resign_other_key":
        log.add()
        log.sign(key=Ed25519PrivateKey.generate())
    elif how == "generation_down":
        log.add()
        log.sign(generation=log.generation - 1)
    elif how == "empty":
        log.records.clear()
    log.write(home)
    log_path, heads_path, _ = home / "audit.jsonl", home / "audit.heads.jsonl", None
    if how == "cut_mid_line":
        target = data.draw(st.integers(0, last_head - 1))
        offset = sum(len(r) for r in log.records[:target])
        cut = offset + data.draw(st.integers(1, len(log.records[target]) - 1))
        log_path.write_bytes(log_path.read_bytes()[:cut])
    elif how == "delete_log":
        log_path.unlink()
    elif how == "delete_heads":
        heads_path.unlink()


@settings(
    deadline=None, max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_verify_passes_exactly_when_untouched(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Random signed logs pass untouched and fail after any one tampering from the list."""
    home = tmp_path_factory.mktemp("home")
    log = _build(data)
    how = data.draw(st.none() | st.sampled_from(TAMPERINGS))
    if how is None:
        log.write(home)
    else:
        _tamper(log, home, how, data)
    report = log.verify(home, write=False)
    assert report.ok == (how is None), (how, report.problems)
    one_line(report)
    if how is None:
        assert report.signed_seq == log.head_seqs[-1]
        assert report.unsigned_tail == report.records - report.signed_seq


def test_torn_last_head_is_a_notice(tmp_path: Path) -> None:
    """A torn last heads line (a crash mid-write) is a notice; earlier heads still count."""
    log = standard_log()
    log.add()
    log.sign()
    _, heads, _ = log.write(tmp_path)
    heads.write_bytes(heads.read_bytes()[:-7])
    report = log.verify(tmp_path, write=False)
    assert report.ok and report.signed_seq == 19 and report.unsigned_tail == 1
    assert "torn_head" in [n.code for n in report.notices]


def test_blank_heads_line_is_invalid(tmp_path: Path) -> None:
    """A blank line among the heads is head_invalid: heads are exact canonical lines."""
    log = standard_log()
    log.heads.insert(2, b"\n")
    finding = only(log.verify(tmp_path), "head_invalid")
    assert "heads line 3" in finding.message
