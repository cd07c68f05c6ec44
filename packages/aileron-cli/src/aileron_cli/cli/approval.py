"""``aileron approval list|show|approve|deny``: decide what waits for a human."""

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
    sendable,
    url_segment,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser(
        "approval",
        help="Approve or deny actions that wait for a human.",
        description=(
            "An approval is bound to the exact arguments it was requested with; approving runs"
            " exactly those, once."
        ),
    )
    commands = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="List approvals (default: pending ones).")
    listing.add_argument(
        "--status",
        default="pending",
        help="pending (default), approved, denied, running, succeeded, failed or all",
    )
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    show = commands.add_parser("show", help="Show one approval with its arguments and result.")
    show.add_argument("id")
    add_json_flag(show)
    show.set_defaults(handler=_show)
    approve = commands.add_parser("approve", help="Approve: runs the approved arguments now.")
    approve.add_argument("id")
    add_json_flag(approve)
    approve.set_defaults(handler=_decide, approved=True, reason=None)
    deny = commands.add_parser("deny", help="Deny: it never runs.")
    deny.add_argument("id")
    deny.add_argument("--reason", help="why (kept in the audit log)")
    add_json_flag(deny)
    deny.set_defaults(handler=_decide, approved=False)


def _list(args: argparse.Namespace) -> int:
    status = query_text(None if args.status == "all" else args.status, "--status")
    with connect() as client:
        approvals = client.get("approvals", status=status)
    if args.json:
        print_json(approvals)
        return 0
    print_table(
        (
            (
                a["id"],
                a["status"],
                a["target"],
                json.dumps(a["args"], sort_keys=True)[:60],
                a["created_at"],
            )
            for a in approvals
        ),
        ("ID", "STATUS", "TARGET", "ARGS", "REQUESTED"),
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    approval_id = url_segment(args.id, "the approval id")
    with connect() as client:
        approval = client.get(f"approvals/{approval_id}")
    if args.json:
        print_json(approval)
    else:
        print_fields(approval.items())
    return 0


def _decide(args: argparse.Namespace) -> int:
    approval_id = url_segment(args.id, "the approval id")
    sendable(args.reason, "--reason")
    with connect() as client:
        approval = client.post(
            f"approvals/{approval_id}/decide", {"approved": args.approved, "reason": args.reason}
        )
    if args.json:
        print_json(approval)
        return 0 if approval["status"] in ("denied", "succeeded") else 1
    if approval["status"] == "denied":
        print(f"denied {approval['id']}; {approval['target']} will not run")
        return 0
    if approval["status"] == "succeeded":
        print(f"approved {approval['id']}; {approval['target']} ran:")
        print(json.dumps(approval["result"], indent=2, sort_keys=True))
        return 0
    error = approval.get("error") or {}
    print(f"approved {approval['id']}, but {approval['target']} failed: {error.get('message')}")
    return 1
