"""A live event stream never holds the daemon's stop: closing the feed ends every
subscription, and a stopping daemon closes it before it waits for open requests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
from helpers import admin_http, aileron

from aileron_cli.daemon.store.approval_feed import ApprovalFeed
from aileron_core.discovery import DaemonInfo
from aileron_core.models import Approval


def _approval(number: int) -> Approval:
    return Approval(
        id=f"apr_{number:04d}",
        kind="action",
        target="demo",
        args={},
        args_sha256="0" * 64,
        created_at=datetime.now(UTC),
    )


def test_closing_the_feed_ends_open_and_later_subscriptions() -> None:
    """An open subscription yields what it holds, then ends; one opened after the close ends
    at once."""

    async def scenario() -> tuple[list[str], list[str]]:
        feed = ApprovalFeed()
        feed.bind(asyncio.get_running_loop())
        with feed.subscription() as changes:
            feed.publish(_approval(1))
            feed.close()
            before = [a.id async for a in changes if a is not None]
        with feed.subscription() as changes:
            after = [a.id async for a in changes if a is not None]
        return before, after

    assert asyncio.run(scenario()) == (["apr_0001"], [])


def test_daemon_stop_ends_an_open_event_stream_cleanly(real_daemon: DaemonInfo) -> None:
    """`aileron daemon stop` with `approval watch`'s stream open: the stream is ended by the
    daemon (a complete answer), not cut when the graceful shutdown gives up on it."""
    with (
        admin_http(real_daemon) as http,
        http.stream("GET", "approvals/events", timeout=httpx.Timeout(60)) as stream,
    ):
        lines = stream.iter_lines()
        assert next(lines) == "event: ready"
        stopped = aileron("daemon", "stop")
        assert stopped.returncode == 0, stopped.stderr
        rest = list(lines)  # raises RemoteProtocolError if the answer was cut
    assert [line for line in rest if line.startswith("event:")] == []
