"""Exporting the audit log so that the export itself re-verifies (JSONL or CSV).

JSONL: line 1 is the meta object ``{audit_key, format, from_seq, to_seq, vault_id, version}``;
then every exported record line byte for byte as in the log; then ``{"head": …}`` for every
head and ``{"witness": …}`` for every witness mark. CSV: ``kind,seq,ts,type,actor,session_id,
hash,line`` with ``kind`` one of meta, record, head, witness, and ``line`` the exact canonical
JSON line, so the CSV re-verifies too.

``since``/``until`` choose the records by their ``ts``: from the first record at or after
``since`` to the last record at or before ``until``, and every record between (a chain cannot
have holes). Heads and witness marks are always exported in full.

:func:`verify_export` checks an export with the same :class:`~aileron_core.audit_verify.
LogVerifier` as the live log. A range export starts mid-chain: its first record's ``prev`` is
trusted as the starting point, and heads after its end are not checked (both are notices).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import attrs

from aileron_core.audit import GENESIS_PREV, AuditError
from aileron_core.audit_verify import CompletenessReport, Finding, LogVerifier
from aileron_core.canonical import canonical_json

EXPORT_FORMAT = "aileron-audit-export"
EXPORT_VERSION = 1
FORMATS: tuple[str, ...] = ("jsonl", "csv")
CSV_HEADER: tuple[str, ...] = ("kind", "seq", "ts", "type", "actor", "session_id", "hash", "line")


class ExportError(AuditError):
    """A file is not an audit export this version can read."""

    code = "invalid_audit_export"


def _lines(path: Path | None) -> list[bytes]:
    if path is None:
        return []
    try:
        with open(path, "rb") as handle:
            return [line for line in handle if line.endswith(b"\n")]
    except FileNotFoundError:
        return []


def _record_lines(segments: list[Path]) -> Iterator[bytes]:
    for path in segments:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            continue
        with handle:
            yield from handle


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _select(
    segments: list[Path], since: datetime | None, until: datetime | None
) -> tuple[int, int, int | None, int | None]:
    """``(first, last)`` line indexes to export (``last < first``: none) and their seqs."""
    since, until = _utc(since), _utc(until)
    first = last = -1
    first_seq = last_seq = None
    for index, line in enumerate(_record_lines(segments)):
        if not line.endswith(b"\n"):
            break  # a torn last line is not a record
        try:
            value = json.loads(line)
            moment = datetime.fromisoformat(value["ts"])
            seq = value["seq"]
        except (ValueError, KeyError, TypeError):
            continue  # a bad line inside the range is exported as it is, and fails verify
        if first < 0 and (since is None or moment >= since):
            first, first_seq = index, seq
        if first >= 0 and (until is None or moment <= until):
            last, last_seq = index, seq
    if first < 0 or last < 0:
        return 0, -1, None, None
    return first, last, first_seq, last_seq


def _meta(
    public_key: bytes | None, vault_id: str | None, from_seq: int | None, to_seq: int | None
) -> bytes:
    return canonical_json(
        {
            "audit_key": base64.b64encode(public_key).decode("ascii") if public_key else None,
            "format": EXPORT_FORMAT,
            "from_seq": from_seq,
            "to_seq": to_seq,
            "vault_id": vault_id,
            "version": EXPORT_VERSION,
        }
    )


def _csv_row(row: list[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(row)
    return buffer.getvalue().encode("utf-8")


def _record_row(line: bytes) -> list[Any]:
    try:
        value = json.loads(line)
        actor = f"{value['actor']['type']}:{value['actor']['id']}"
        cells = [value["seq"], value["ts"], value["type"], actor, value["session_id"] or ""]
        cells.append(value["hash"])
    except (ValueError, KeyError, TypeError):
        cells = ["", "", "", "", "", ""]
    return ["record", *cells, line.rstrip(b"\n").decode("utf-8", "replace")]


def write_export(
    out: IO[bytes],
    segments: list[Path],
    heads: Path,
    witness: Path | None,
    *,
    format: str,
    public_key: bytes | None,
    vault_id: str | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Write an export of the log in ``segments`` to ``out``; return how many records it holds."""
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; use one of {', '.join(FORMATS)}")
    first, last, from_seq, to_seq = _select(segments, since, until)
    meta = _meta(public_key, vault_id, from_seq, to_seq)
    head_lines, mark_lines = _lines(heads), _lines(witness)
    csv_out = format == "csv"
    if csv_out:
        out.write(_csv_row(list(CSV_HEADER)))
        out.write(_csv_row(["meta", "", "", "", "", "", "", meta.decode("utf-8")]))
    else:
        out.write(meta + b"\n")
    count = 0
    for index, line in enumerate(_record_lines(segments)):
        if index > last:
            break
        if index < first or not line.endswith(b"\n"):
            continue
        out.write(_csv_row(_record_row(line)) if csv_out else line)
        count += 1
    for kind, lines in (("head", head_lines), ("witness", mark_lines)):
        for line in lines:
            try:
                value = json.loads(line)
            except ValueError:
                value = line.rstrip(b"\n").decode("utf-8", "replace")  # verify reports it
            if not csv_out:
                out.write(canonical_json({kind: value}) + b"\n")
                continue
            fields = value if isinstance(value, dict) else {}
            out.write(
                _csv_row(
                    [
                        kind,
                        fields.get("seq", fields.get("n", "")),
                        fields.get("ts", ""),
                        fields.get("reason", ""),
                        "",
                        "",
                        fields.get("hash", fields.get("digest", "")),
                        line.rstrip(b"\n").decode("utf-8", "replace"),
                    ]
                )
            )
    return count


# --- reading an export back -----------------------------------------------------------------


def _wrapped(line: bytes, kind: str) -> bytes:
    """The original head or witness line inside ``{"head": …}`` (its canonical encoding)."""
    try:
        value = json.loads(line)
        inner = value[kind] if type(value) is dict and value.keys() == {kind} else None
        return (canonical_json(inner) if inner is not None else line.rstrip(b"\n")) + b"\n"
    except (ValueError, RecursionError):
        return line


def _read_jsonl(data: bytes) -> tuple[bytes, list[bytes], list[bytes], list[bytes]]:
    lines = data.splitlines(keepends=True)
    if not lines:
        raise ExportError("the export is empty")
    records: list[bytes] = []
    heads: list[bytes] = []
    marks: list[bytes] = []
    for line in lines[1:]:
        if line.startswith(b'{"head":'):
            heads.append(_wrapped(line, "head"))
        elif line.startswith(b'{"witness":'):
            marks.append(_wrapped(line, "witness"))
        else:
            records.append(line)
    return lines[0], records, heads, marks


def _read_csv(data: bytes) -> tuple[bytes, list[bytes], list[bytes], list[bytes]]:
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as error:
        raise ExportError(f"the CSV export cannot be read: {error}") from None
    if not rows or tuple(rows[0]) != CSV_HEADER:
        raise ExportError("the CSV export does not start with its header row")
    meta = b""
    found: dict[str, list[bytes]] = {"record": [], "head": [], "witness": []}
    for row in rows[1:]:
        if len(row) != len(CSV_HEADER):
            raise ExportError(f"a CSV row has {len(row)} cells, not {len(CSV_HEADER)}")
        kind, line = row[0], row[-1].encode("utf-8")
        if kind == "meta":
            meta = line
        elif kind in found:
            found[kind].append(line + b"\n")
        else:
            raise ExportError(f"a CSV row has kind {kind!r}")
    return meta, found["record"], found["head"], found["witness"]


def _parse_meta(line: bytes) -> dict[str, Any]:
    try:
        meta = json.loads(line)
    except ValueError:
        meta = None
    if type(meta) is not dict or meta.get("format") != EXPORT_FORMAT:
        raise ExportError("the file is not an Aileron audit export (no meta line)")
    if meta.get("version") != EXPORT_VERSION:
        raise ExportError(f"audit export version {meta.get('version')!r} is not supported")
    return meta


def _start(records: list[bytes]) -> tuple[int, str]:
    try:
        value = json.loads(records[0])
        seq, prev = value["seq"], value["prev"]
    except (IndexError, ValueError, KeyError, TypeError):
        return 1, GENESIS_PREV
    if type(seq) is not int or seq < 1 or type(prev) is not str:
        return 1, GENESIS_PREV
    return seq, prev


def verify_export(path: Path, *, public_key: bytes | None = None) -> CompletenessReport:
    """Verify an export (JSONL or CSV) with ``public_key``, or with the key it carries."""
    data = Path(path).read_bytes()
    reader = _read_csv if data.startswith(b"kind,") else _read_jsonl
    meta_line, records, heads, _ = reader(data)  # witness marks need the witness key
    meta = _parse_meta(meta_line)
    notices: list[Finding] = []
    if public_key is None and meta.get("audit_key"):
        try:
            public_key = base64.b64decode(meta["audit_key"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ExportError("the export's audit_key is not base64") from None
        notices.append(
            Finding(
                "key_from_export",
                None,
                "checked with the key the export carries; compare it with `aileron audit key` "
                "(or pass --key) to know who signed it",
            )
        )
    start = _start(records)
    if start[0] > 1:
        notices.append(
            Finding(
                "range_start", start[0], f"export starts at seq {start[0]}; its prev is trusted"
            )
        )
    to_seq = meta.get("to_seq")
    verifier = LogVerifier(
        public_key=public_key,
        vault_id=meta.get("vault_id") if type(meta.get("vault_id")) is str else None,
        heads=heads,
        start=start,
        end=to_seq if type(to_seq) is int else start[0] - 1,
    )
    for line in records:
        if line.endswith(b"\n"):
            verifier.feed(line)
        else:
            verifier.torn(line)
    report = verifier.finish(log_present=True)
    return attrs.evolve(report, notices=(*notices, *report.notices))


__all__ = [
    "CSV_HEADER",
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "FORMATS",
    "ExportError",
    "verify_export",
    "write_export",
]
