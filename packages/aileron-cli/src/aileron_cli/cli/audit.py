"""``aileron audit list|show|verify``: the hash-chained record of what Aileron executed."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from aileron_cli.cli.common import (
    InputError,
    add_json_flag,
    connect,
    print_fields,
    print_json,
    print_table,
    query_text,
    url_segment,
)
from aileron_core.paths import Layout


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser("audit", help="Read and verify the audit log.")
    commands = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="List records, oldest first.")
    listing.add_argument("--since", help="only records at or after this ISO 8601 time")
    listing.add_argument("--type", help="only records of this type, e.g. session.started")
    listing.add_argument("--session", help="only records of this session id")
    listing.add_argument("--limit", type=int, default=50, help="the most recent N (default 50)")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    show = commands.add_parser("show", help="Show one record.")
    show.add_argument("id")
    add_json_flag(show)
    show.set_defaults(handler=_show)
    verify = commands.add_parser(
        "verify",
        help="Prove the log complete: the chain, every signed head, and that the log reaches"
        " the last one; exit 1 naming the first problem.",
        description=(
            "Checks the hash chain across every segment, each signed head (with the vault's"
            " public audit key: no passphrase needed) and that no signed record is missing."
            " Records after the last signed head are reported as an unsigned tail. Asks the"
            " daemon when it runs (it also knows what it wrote last); reads the files itself"
            " otherwise."
        ),
    )
    verify.add_argument(
        "--strict", action="store_true", help="also exit 1 when there is an unsigned tail"
    )
    verify.add_argument(
        "--witness",
        action="store_true",
        help="also require the attached enclave's countersignature on every head",
    )
    verify.add_argument(
        "--file", type=Path, metavar="EXPORT", help="verify an export written by `audit export`"
    )
    verify.add_argument(
        "--key",
        metavar="BASE64",
        help="the public audit key to check heads with (default: the vault's, or the export's)",
    )
    add_json_flag(verify)
    verify.set_defaults(handler=_verify)
    export = commands.add_parser(
        "export", help="Write the records, with their hashes and the signed heads, to a file."
    )
    export.add_argument("--since", help="only records at or after this ISO 8601 time")
    export.add_argument("--until", help="only records at or before this ISO 8601 time")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write here (default: stdout)"
    )
    export.set_defaults(handler=_export)
    key = commands.add_parser(
        "key",
        help="Print the vault's public audit key (note it somewhere safe to pin `verify --key`).",
    )
    key.set_defaults(handler=_key)
    ack = commands.add_parser(
        "ack", help="Acknowledge the recoveries and rejected checkpoints `aileron status` shows."
    )
    ack.set_defaults(handler=_ack)


def _list(args: argparse.Namespace) -> int:
    since = query_text(args.since, "--since")
    type_ = query_text(args.type, "--type")
    session = query_text(args.session, "--session")
    with connect() as client:
        records = client.get("audit", since=since, type=type_, session=session, limit=args.limit)
    if args.json:
        print_json(records)
        return 0
    print_table(
        (
            (
                r["seq"],
                r["ts"],
                r["type"],
                f"{r['actor']['type']}:{r['actor']['id']}",
                r["session_id"] or "-",
                json.dumps(r["payload"], sort_keys=True),
            )
            for r in records
        ),
        ("SEQ", "TIME", "TYPE", "ACTOR", "SESSION", "PAYLOAD"),
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    record_id = url_segment(args.id, "the record id")
    with connect() as client:
        record = client.get(f"audit/{record_id}")
    if args.json:
        print_json(record)
        return 0
    print_fields(record.items())
    return 0


def _verify(args: argparse.Namespace) -> int:
    from aileron_cli import audit_files
    from aileron_cli.lifecycle import healthy

    key = audit_files.parse_key(args.key) if args.key is not None else None
    if args.file is not None:
        if args.witness:
            raise InputError("--witness checks the live log; an export carries its marks")
        report = audit_files.verify_export_file(args.file, key)
    elif key is None and (os.environ.get("AILERON_API_URL") or healthy(Layout()) is not None):
        with connect() as client:
            report = client.get("audit/verify", **({"witness": "true"} if args.witness else {}))
    else:
        report = audit_files.verify_offline(Layout(), key=key, witness=args.witness)
    failed = not report["ok"] or (args.strict and report["unsigned_tail"] > 0)
    if args.json:
        print_json(report)
    else:
        print(report["summary"])
        for notice in report["notices"]:
            print(f"  note: {notice['message']}")
        if args.strict and report["ok"] and failed:
            print("  --strict: the unsigned tail fails the check")
    return 1 if failed else 0


def _export(args: argparse.Namespace) -> int:
    from aileron_cli import audit_files

    since = _time(args.since, "--since")
    until = _time(args.until, "--until")
    written = audit_files.export(Layout(), args.format, args.output, since=since, until=until)
    if args.output is not None:
        print(f"wrote {written} records to {args.output}", file=sys.stderr)
    return 0


def _key(args: argparse.Namespace) -> int:
    from aileron_cli import audit_files

    public, _, source = audit_files.audit_key(Layout())
    if public is None:
        print(f"no audit key: {source}", file=sys.stderr)
        return 1
    print(audit_files.describe_key(public))
    return 0


def _ack(args: argparse.Namespace) -> int:
    with connect() as client:
        result = client.post("audit/ack")
    print(f"acknowledged the audit notices through seq {result['through_seq']}")
    return 0


def _time(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{flag} {text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
