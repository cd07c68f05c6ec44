"""``aileron usage``: the tokens and cost of the LLM gateway's requests, from the audit log."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from aileron_cli.cli.common import add_json_flag, connect, print_json, print_table, query_text

GROUPINGS = ("model", "agent", "session", "provider")
UNPRICED = "—"
HEADERS = ("REQUESTS", "INPUT", "OUTPUT", "CACHED", "COST")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = subparsers.add_parser(
        "usage",
        help="Tokens and cost of the agents' LLM requests, by model, agent, session or provider.",
        description=(
            "Sums the usage the providers reported for each request through the gateway"
            " (input tokens, cached ones included; output; cached) and its cost from the"
            " [gateway.prices] table of config.toml, as recorded in the audit log. A cost of"
            f" {UNPRICED} means no request of the row matched a price; requests that reported"
            " no usage count with 0 tokens."
        ),
    )
    command.add_argument("--session", metavar="ID", help="only this session's requests")
    command.add_argument(
        "--since",
        metavar="WHEN",
        help="only requests at or after WHEN: an ISO 8601 time with a zone"
        " (2026-05-01T00:00:00+00:00), or a span back from now: 30m, 24h, 7d",
    )
    command.add_argument(
        "--by", choices=GROUPINGS, default="model", help="what each row sums (default: model)"
    )
    add_json_flag(command)
    command.set_defaults(handler=_usage)


def cost_text(cost: float | None) -> str:
    return UNPRICED if cost is None else f"{cost:.4f}"


def _row(key: str, tally: Mapping[str, Any]) -> Sequence[object]:
    return (
        key,
        tally["requests"],
        tally["input"],
        tally["output"],
        tally["cached"],
        cost_text(tally["cost"]),
    )


def _usage(args: argparse.Namespace) -> int:
    session = query_text(args.session, "--session")
    since = query_text(args.since, "--since")
    with connect() as client:
        report = client.get("usage", session=session, since=since, by=args.by)
    if args.json:
        print_json(report)
    else:
        show(report)
    return 0


def show(report: Mapping[str, Any]) -> None:
    """Print the daemon's usage report as a table with a total row, and what the cost leaves
    out."""
    total = report["total"]
    rows = [_row(g["key"], g) for g in report["groups"]]
    print_table([*rows, _row("TOTAL", total)], (str(report["by"]).upper(), *HEADERS))
    if total["unpriced_requests"]:
        print(
            f"note: {total['unpriced_requests']} request(s) matched no price in"
            " [gateway.prices]; their cost is not counted"
        )
    if total["unreported_requests"]:
        print(f"note: {total['unreported_requests']} request(s) reported no usage (0 tokens)")
