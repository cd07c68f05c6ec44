"""``aileron audit list|show|verify``: the hash-chained record of what Aileron executed."""

from __future__ import annotations

import argparse
import json

from aileron_cli.cli.common import (
    add_json_flag,
    connect,
    print_fields,
    print_json,
    print_table,
    query_text,
    url_segment,
)


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
        "verify", help="Re-walk the hash chain; exit 1 naming the first bad record."
    )
    add_json_flag(verify)
    verify.set_defaults(handler=_verify)


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
    with connect() as client:
        report = client.get("audit/verify")
    if args.json:
        print_json(report)
    elif report["ok"]:
        print(f"the audit chain verifies: {report['records']} records")
    else:
        print(f"the audit chain is broken at seq {report['first_bad_seq']}: {report['reason']}")
    return 0 if report["ok"] else 1
