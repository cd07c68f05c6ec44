"""``aileron approval list|show|approve|deny``: decide what waits for a human.

``approve`` first shows the whole request — action, each connector operation with its target
origins and binding, every argument in full with non-printable characters escaped — and asks
for confirmation on a terminal; without a terminal it needs ``--yes`` (ADR 0016).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

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
from aileron_cli.cli.visible import clip, escape, json_text
from aileron_core.errors import AileronError

ARGS_WIDTH = 60


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser(
        "approval",
        help="Approve or deny actions that wait for a human.",
        description=(
            "An approval is bound to the exact arguments it was requested with and to what would"
            " run (action, connector, operation, binding, target origins); approving runs exactly"
            " those, once, and fails as stale if any of them changed since the request."
        ),
    )
    commands = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="List approvals (default: pending ones).")
    listing.add_argument(
        "--status",
        default="pending",
        help="pending (default), approved, denied, running, succeeded, failed, expired or all",
    )
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    show = commands.add_parser("show", help="Show one approval with its arguments and result.")
    show.add_argument("id")
    add_json_flag(show)
    show.set_defaults(handler=_show)
    approve = commands.add_parser(
        "approve",
        help="Approve: shows the whole request, asks, then runs the approved arguments now.",
        description=(
            "Shows the whole request (action, connector, operation, target origins, binding and"
            " every argument in full, non-printable characters escaped) and asks for"
            " confirmation on the terminal. Without a terminal, pass --yes."
        ),
    )
    approve.add_argument("id")
    approve.add_argument(
        "--yes",
        action="store_true",
        help="approve without asking (for scripts; the request is still shown)",
    )
    approve.add_argument(
        "--for",
        dest="lasts",
        metavar="session|DURATION",
        help=(
            "also grant: approve later requests of the same target with these arguments without"
            " asking, for the rest of the approval's session (`session`) or for a while (`90s`,"
            " `5m`, `2h`); revoke with `aileron approval grants --revoke ID`"
        ),
    )
    approve.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="ARG=GLOB",
        help=(
            "with --for: argument ARG may take any value GLOB matches (fnmatch: * ? [...]);"
            " arguments not named must equal the approved ones (repeatable)"
        ),
    )
    add_json_flag(approve)
    approve.set_defaults(handler=_approve, approved=True, reason=None)
    deny = commands.add_parser("deny", help="Deny: it never runs.")
    deny.add_argument("id")
    deny.add_argument("--reason", help="why (kept in the audit log)")
    add_json_flag(deny)
    deny.set_defaults(handler=_decide, approved=False)
    watch = commands.add_parser(
        "watch",
        help="Show approvals as they arrive and decide each with a key.",
        description=(
            "Shows every pending approval in full, then each new one as it arrives, and asks"
            " about the oldest: a approves it (it runs, and its result is shown), d denies it"
            " (with an optional reason), s skips it (it stays pending), q quits. Each new one"
            " also raises a desktop notification (notify-send or osascript, where present)."
        ),
    )
    watch.add_argument(
        "--no-notify", action="store_true", help="no desktop notification for new approvals"
    )
    watch.set_defaults(handler=_watch)
    grants = commands.add_parser(
        "grants",
        help="List the live grants (made with `approve --for`), or revoke one.",
        description=(
            "A grant approves later requests of one target whose arguments are the approved ones"
            " (or match the grant's globs) without asking, for a session or a while."
        ),
    )
    grants.add_argument("--revoke", metavar="ID", help="revoke this grant")
    grants.add_argument("--all", action="store_true", help="also revoked and expired grants")
    add_json_flag(grants)
    grants.set_defaults(handler=_grants)


def _watch(args: argparse.Namespace) -> int:
    from aileron_cli.cli.approval_watch import watch

    return watch(args)


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
                escape(a["target"]),
                clip(json_text(a["args"]), ARGS_WIDTH),
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


def _requester(session_id: str | None) -> str:
    return f"by session {session_id}" if session_id else "outside any agent session"


def show_request(approval: dict[str, Any], out: TextIO) -> None:
    """Print everything ``approval`` would run, every value escaped, nothing cut."""
    lines = [
        ("approval", f"{approval['id']} ({approval['status']})"),
        ("requested", f"{approval['created_at']} {_requester(approval.get('session_id'))}"),
    ]
    if approval["kind"] == "action":
        lines.append(("action", approval["target"]))
    steps = approval.get("steps") or []
    for number, step in enumerate(steps, start=1):
        lines += [
            (f"step {number}", f"connector {step['connector']}, operation {step['operation']}"),
            ("  targets", ", ".join(step["origins"])),
            ("  binding", step["binding"] or "(none resolves; the run would fail)"),
        ]
    if not steps:
        lines.append(("runs", f"{approval['target']} (recorded before approvals showed this)"))
    arguments = approval["args"]
    lines.append(("arguments", f"{len(arguments)}, in full as JSON"))
    lines += [(f"  {name}", json_text(value)) for name, value in sorted(arguments.items())]
    width = max(len(escape(key)) for key, _ in lines)
    for key, value in lines:
        print(f"{escape(key) + ':':<{width + 1}} {escape(value)}", file=out)


def _confirmed(out: TextIO) -> bool:
    out.write("Approve? [y/N] ")
    out.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _grant(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``grant`` of the decide body from ``--for`` and ``--match``."""
    if args.lasts is None:
        if args.match:
            raise AileronError("--match needs --for", hint="e.g. --for 5m --match 'path=docs/*'")
        return None
    match: dict[str, str] = {}
    for item in args.match:
        name, equals, glob = item.partition("=")
        if not equals or not name:
            raise AileronError(
                f"--match {item!r} is not ARG=GLOB", hint="e.g. --match 'path=docs/*'"
            )
        sendable(glob, "--match")
        match[name] = glob
    sendable(args.lasts, "--for")
    return {"for": args.lasts, "match": match}


def _approve(args: argparse.Namespace) -> int:
    approval_id = url_segment(args.id, "the approval id")
    grant = _grant(args)
    out = sys.stderr if args.json else sys.stdout
    with connect() as client:
        approval = client.get(f"approvals/{approval_id}")
    show_request(approval, out)
    if not args.yes:
        if not sys.stdin.isatty():
            raise AileronError(
                f"not approving {approval_id}: there is no terminal to confirm on",
                hint="run it in a terminal, or pass --yes if a script decides",
            )
        if not _confirmed(out):
            print(f"not approved; {approval_id} is still pending", file=out)
            return 1
    # What was shown is what is decided: the approval's arguments and plan digest are fixed
    # at request time, and the daemon refuses (approval_stale) if what would run changed.
    with connect() as client:
        body: dict[str, Any] = {"approved": True}
        if grant is not None:
            body["grant"] = grant
        decided = client.post(f"approvals/{approval_id}/decide", body)
    if grant is not None and not args.json:
        scope = (
            "for the rest of its session" if grant["for"] == "session" else f"for {grant['for']}"
        )
        print(
            f"granted {scope}: later requests of {escape(decided['target'])} with these arguments"
            " run without asking (see `aileron approval grants`)"
        )
    return _report(args, decided)


def _grants(args: argparse.Namespace) -> int:
    with connect() as client:
        if args.revoke is not None:
            grant_id = url_segment(args.revoke, "the grant id")
            revoked = client.delete(f"approvals/grants/{grant_id}")
            if args.json:
                print_json(revoked)
            else:
                print(f"revoked {revoked['id']}; {escape(revoked['target'])} asks again")
            return 0
        grants = client.get("approvals/grants", all="true" if args.all else None)
    if args.json:
        print_json(grants)
        return 0
    print_table(
        (
            (
                g["id"],
                escape(g["target"]),
                f"session {g['session_id']}" if g["session_id"] else "any session",
                g["expires_at"] or "session end",
                clip(json_text(g["match"]), ARGS_WIDTH) if g["match"] else "(same args)",
                "revoked" if g["revoked_at"] else "",
            )
            for g in grants
        ),
        ("ID", "TARGET", "WHO", "EXPIRES", "MATCH", ""),
    )
    return 0


def _decide(args: argparse.Namespace) -> int:
    approval_id = url_segment(args.id, "the approval id")
    sendable(args.reason, "--reason")
    with connect() as client:
        approval = client.post(
            f"approvals/{approval_id}/decide", {"approved": args.approved, "reason": args.reason}
        )
    return _report(args, approval)


def _report(args: argparse.Namespace, approval: dict[str, Any]) -> int:
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
    message = escape(str(error.get("message")))  # it may quote the upstream's answer
    print(f"approved {approval['id']}, but {approval['target']} failed: {message}")
    return 1
