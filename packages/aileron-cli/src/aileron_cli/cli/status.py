"""``aileron status``: the daemon's state (starting it if needed)."""

from __future__ import annotations

import argparse

from aileron_cli.cli.common import add_json_flag, connect, print_fields, print_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = subparsers.add_parser(
        "status", help="Show the daemon's state (starts it if it is not running)."
    )
    add_json_flag(status)
    status.set_defaults(handler=_status)


def _status(args: argparse.Namespace) -> int:
    with connect() as client:
        status = client.get("status")
    if args.json:
        print_json(status)
    else:
        print_fields(
            (key, status[key])
            for key in (
                "version",
                "url",
                "pid",
                "vault",
                "active_sessions",
                "actions",
                "connectors",
                "bindings",
            )
        )
        for notice in status.get("audit_notices", []):
            print(f"audit notice: {notice}  (`aileron audit ack` once seen)")
    return 0
