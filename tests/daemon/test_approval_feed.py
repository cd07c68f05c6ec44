"""The live feed of approval changes (issue #20)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

from aileron_cli.daemon.store.approval_feed import GAP, QUEUE, ApprovalFeed
from aileron_cli.daemon.store.approvals import ApprovalStore, Scope
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


def test_a_subscription_sees_each_saved_change_in_order(tmp_path: Path) -> None:
    """A request and its decision, saved by the store, reach an open subscription in order;
    nothing saved before it opened does."""

    async def scenario() -> list[tuple[str, str]]:
        store, _ = ApprovalStore.open(tmp_path / "approvals.jsonl")
        store.feed.bind(asyncio.get_running_loop())
        scope = Scope(steps=(), parts={})
        store.request("action", "before", {}, None, scope)
        seen: list[tuple[str, str]] = []
        with store.feed.subscription() as changes:
            first = store.request("action", "demo", {"a": 1}, "ses_1", scope)
            store.decide(first.id, True, "test", None)
            async for approval in changes:
                assert approval is not None
                seen.append((approval.target, approval.status))
                if len(seen) == 2:
                    break
        assert store.feed.subscribers == 0
        return seen

    assert asyncio.run(scenario()) == [("demo", "pending"), ("demo", "approved")]


def test_a_slow_subscriber_loses_its_oldest_changes_and_is_told() -> None:
    """A subscription that falls more than its queue behind gets GAP in place of what it lost,
    then the newest changes: the feed's memory stays bounded."""

    async def scenario() -> list[Approval | None]:
        feed = ApprovalFeed()
        feed.bind(asyncio.get_running_loop())
        got: list[Approval | None] = []
        with feed.subscription() as changes:
            for number in range(QUEUE + 10):
                feed.publish(_approval(number))
            async for item in changes:
                got.append(item)
                if item is not None and item.id == f"apr_{QUEUE + 9:04d}":
                    break
        return got

    got = asyncio.run(scenario())
    assert GAP in got
    assert len(got) <= QUEUE
    assert got[-1] is not None and got[-1].id == f"apr_{QUEUE + 9:04d}"


def test_a_change_saved_on_another_thread_reaches_the_loop() -> None:
    """A change published from a worker thread is handed to the daemon's loop, not lost."""

    async def scenario() -> str:
        feed = ApprovalFeed()
        feed.bind(asyncio.get_running_loop())
        with feed.subscription() as changes:
            threading.Thread(target=feed.publish, args=(_approval(7),)).start()
            async for item in changes:
                assert item is not None
                return item.id
        return ""

    assert asyncio.run(scenario()) == "apr_0007"
