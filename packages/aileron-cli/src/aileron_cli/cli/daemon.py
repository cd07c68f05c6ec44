"""``aileron daemon start|stop|status``: the user-scoped daemon's process."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from aileron_cli.cli.common import add_json_flag, print_fields, print_json
from aileron_core.paths import Layout


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser(
        "daemon",
        help="Start, stop and inspect the Aileron daemon.",
        description=(
            "The daemon owns the vault, sessions and the audit log. Commands that need it start"
            " it on demand; these commands manage it by hand."
        ),
    )
    commands = group.add_subparsers(title="commands", metavar="COMMAND", required=True)
    start = commands.add_parser("start", help="Start the daemon (detached unless --foreground).")
    start.add_argument("--foreground", action="store_true", help="stay attached; log to stderr")
    start.add_argument("--auto-spawned", action="store_true", help=argparse.SUPPRESS)
    start.set_defaults(handler=_start)
    stop = commands.add_parser("stop", help="Stop the daemon gracefully (exit 0 if none ran).")
    stop.set_defaults(handler=_stop)
    status = commands.add_parser("status", help="Show url, pid, version, uptime, vault, sessions.")
    add_json_flag(status)
    status.set_defaults(handler=_status)


def _start(args: argparse.Namespace) -> int:
    layout = Layout()
    if args.foreground:
        import logging

        from aileron_cli.daemon.server import serve

        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        return serve(layout, auto_spawned=args.auto_spawned)
    from aileron_cli.lifecycle import healthy, spawn, spawn_lock

    with spawn_lock(layout):
        found = healthy(layout)
        if found is not None:
            print(f"the daemon is already running at {found[0].url} (pid {found[0].pid})")
            return 0
        info = spawn(layout, auto_spawned=False)
    print(f"the daemon is running at {info.url} (pid {info.pid})")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from aileron_cli.lifecycle import stop

    info = stop(Layout())
    print("the daemon is not running" if info is None else f"stopped the daemon (pid {info.pid})")
    return 0


def _uptime(started_at: str) -> str:
    seconds = int((datetime.now(UTC) - datetime.fromisoformat(started_at)).total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s"


def _status(args: argparse.Namespace) -> int:
    from aileron_core.discovery import get_json, probe, read_daemon_info

    info = read_daemon_info(Layout().daemon_json)
    status = None
    if info is not None and probe(info) is not None:
        try:
            status = get_json(info.url, "/v1/status", token=info.token, unix_socket=info.socket)
        except (OSError, ValueError) as error:
            print(f"aileron: error: the daemon answered badly: {error}", file=sys.stderr)
            return 1
    if status is None:
        if args.json:
            print_json({"running": False})
        else:
            print("the daemon is not running")
        return 0
    if args.json:
        print_json({"running": True, **status})
        return 0
    print_fields(
        [
            ("url", status["url"]),
            ("pid", status["pid"]),
            ("version", status["version"]),
            ("uptime", _uptime(status["started_at"])),
            ("vault", status["vault"]),
            ("active sessions", status["active_sessions"]),
        ]
    )
    return 0
