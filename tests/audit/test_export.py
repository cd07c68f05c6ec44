"""Audit exports (JSONL and CSV) re-verify, by range too, and fail when tampered (real files)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from audit.signed_log import T0, SignedLog, raw_public, rechain, standard_log

from aileron_core.audit_export import CSV_HEADER, ExportError, verify_export, write_export
from aileron_core.audit_heads import key_id
from aileron_core.canonical import canonical_json


def export(log: SignedLog, home: Path, fmt: str, **options: object) -> tuple[Path, int]:
    """Write ``log`` into ``home`` and export it; return the export's path and record count."""
    log_path, heads, witness = log.write(home)
    out = home / f"export.{fmt}"
    with open(out, "wb") as handle:
        count = write_export(
            handle,
            [log_path],
            heads,
            witness,
            format=fmt,
            public_key=log.public,
            vault_id=log.vault_id,
            **options,  # type: ignore[arg-type]
        )
    return out, count


def test_jsonl_round_trip(tmp_path: Path) -> None:
    """A JSONL export holds meta, every record byte for byte, heads and marks; it verifies."""
    log = standard_log()
    out, count = export(log, tmp_path, "jsonl")
    lines = out.read_bytes().splitlines(keepends=True)
    meta = json.loads(lines[0])
    assert meta["format"] == "aileron-audit-export" and meta["version"] == 1
    assert (meta["from_seq"], meta["to_seq"], meta["vault_id"]) == (1, 19, log.vault_id)
    assert count == 19 and lines[1:20] == log.records
    assert [json.loads(x)["head"]["n"] for x in lines[20:24]] == [1, 2, 3, 4]
    assert all(b'"witness":' in x for x in lines[24:])
    report = verify_export(out, public_key=log.public)
    assert report.ok and report.records == 19 and report.signed_seq == 19
    assert report.notices == ()


def test_csv_round_trip(tmp_path: Path) -> None:
    """A CSV export has the header row and one row per item; its line cells re-verify."""
    log = standard_log()
    out, count = export(log, tmp_path, "csv")
    rows = list(csv.reader(io.StringIO(out.read_text("utf-8"))))
    assert tuple(rows[0]) == CSV_HEADER and rows[1][0] == "meta"
    records = [r for r in rows if r[0] == "record"]
    assert count == len(records) == 19
    assert [r[-1].encode() + b"\n" for r in records] == log.records
    assert records[0][1:4] == ["1", json.loads(log.records[0])["ts"], "vault.unlocked"]
    assert [r[0] for r in rows].count("head") == 4
    report = verify_export(out, public_key=log.public)
    assert report.ok and report.records == 19 and report.heads == 4


def test_key_taken_from_the_export_is_a_notice(tmp_path: Path) -> None:
    """Without a key, verify_export uses the export's own and says so in a notice."""
    log = standard_log()
    out, _ = export(log, tmp_path, "jsonl")
    report = verify_export(out)
    assert report.ok and report.key == key_id(log.public)
    assert [n.code for n in report.notices] == ["key_from_export"]


def test_range_export(tmp_path: Path) -> None:
    """A since/until export holds the records in range, starts mid-chain and still verifies."""
    log = standard_log()
    out, count = export(
        log, tmp_path, "jsonl", since=T0 + timedelta(seconds=5), until=T0 + timedelta(seconds=15)
    )
    lines = out.read_bytes().splitlines(keepends=True)
    assert json.loads(lines[0])["from_seq"] == 5 and json.loads(lines[0])["to_seq"] == 15
    assert count == 11 and lines[1:12] == log.records[4:15]
    report = verify_export(out, public_key=log.public)
    assert report.ok, report.problems
    assert (report.first_seq, report.last_seq) == (5, 15)
    codes = [n.code for n in report.notices]
    assert codes == ["range_start", "range_end"]
    assert report.notices[0].message.startswith("export starts at seq 5")


def test_range_export_rewritten_fails(tmp_path: Path) -> None:
    """A range export re-chained without one connector's records fails as log_rewritten."""
    log = standard_log()
    out, _ = export(log, tmp_path, "jsonl", since=T0 + timedelta(seconds=3))
    lines = out.read_bytes().splitlines(keepends=True)
    records = [x for x in lines[1:] if x.startswith(b'{"actor"')]
    rest = lines[1 + len(records) :]
    first = json.loads(records[0])
    kept = [r for r in records if json.loads(r)["payload"].get("connector") != "slack"]
    rewritten = rechain(kept, first_seq=first["seq"], prev=first["prev"])
    meta = json.loads(lines[0])
    meta["to_seq"] = json.loads(rewritten[-1])["seq"]
    out.write_bytes(canonical_json(meta) + b"\n" + b"".join(rewritten) + b"".join(rest))
    report = verify_export(out, public_key=log.public)
    assert not report.ok and report.problems[0].code == "log_rewritten"
    assert report.problems[0].seq == 7 and "head n 2" in report.problems[0].message


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_tampered_export_fails(tmp_path: Path, fmt: str) -> None:
    """Deleting a record from an export, or forging its heads with another key, fails verify."""
    log = standard_log()
    out, _ = export(log, tmp_path, fmt)
    original = out.read_bytes()
    victim = log.records[9].rstrip(b"\n")
    needle = victim if fmt == "jsonl" else victim.replace(b'"', b'""')
    start = original.index(needle)
    end = original.index(b"\n", start) + 1
    out.write_bytes(original[: original.rindex(b"\n", 0, start) + 1] + original[end:])
    report = verify_export(out, public_key=log.public)
    assert not report.ok and report.problems[0].code == "chain_broken"
    assert report.problems[0].seq == 11
    out.write_bytes(original)
    other = SignedLog().public
    report = verify_export(out, public_key=other)
    assert not report.ok and report.problems[0].code == "head_invalid"
    assert verify_export(out, public_key=raw_public(log.key)).ok


def test_not_an_export(tmp_path: Path) -> None:
    """A file that is not an export is refused with invalid_audit_export."""
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"hello":1}\n')
    with pytest.raises(ExportError):
        verify_export(path)
    path.write_bytes(b"kind,seq\n")
    with pytest.raises(ExportError):
        verify_export(path)
    assert ExportError.code == "invalid_audit_export"
