"""``aileron sessions list|show``: the agents launched through Aileron."""

from __future__ import annotations

import argparse

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
    group = subparsers.add_parser("sessions", help="List and inspect agent sessions.")
    commands = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="List sessions, oldest first.")
    listing.add_argument("--active", action="store_true", help="only running sessions")
    listing.add_argument("--agent", help="only sessions of this agent")
    listing.add_argument("--limit", type=int, help="only the most recent N")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    show = commands.add_parser("show", help="Show one session.")
    show.add_argument("id")
    add_json_flag(show)
    show.set_defaults(handler=_show)


def _list(args: argparse.Namespace) -> int:
    agent = query_text(args.agent, "--agent")
    with connect() as client:
        sessions = client.get(
            "sessions", active=True if args.active else None, agent=agent, limit=args.limit
        )
    if args.json:
        print_json(sessions)
        return 0
    print_table(
        (
            (s["id"], s["agent"], s["state"], s["started_at"], s["exit_code"], s["working_dir"])
            for s in sessions
        ),
        ("ID", "AGENT", "STATE", "STARTED", "EXIT", "WORKING DIR"),
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    session_id = url_segment(args.id, "the session id")
    with connect() as client:
        session = client.get(f"sessions/{session_id}")
    if args.json:
        print_json(session)
        return 0
    exposed = "; ".join(
        f"{e['binding']} as ${e['variable']} for {', '.join(e['hosts'])}"
        for e in session.get("exposed") or ()
    )
    print_fields({**session, "exposed": exposed or "-"}.items())
    return 0
