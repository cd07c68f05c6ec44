"""A live feed of approval changes, for the pages and terminals that show them as they happen
(issue #20).

:class:`ApprovalFeed` is told of every approval the store saves (a new request, a decision, a
run's outcome, an expiry) and hands each change to every open subscription, in order. A
subscription is an async iterator with a bounded queue: a subscriber that does not keep up
loses its oldest changes, never the daemon's memory (it should re-read the list when it sees
:data:`GAP`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

from aileron_core.models import Approval

__all__ = ["GAP", "ApprovalFeed"]

QUEUE = 256
"""Changes one subscription holds at most before it drops its oldest."""
GAP = None
"""What a subscription yields in place of the changes it dropped."""


class _Closed:
    """Queued by :meth:`ApprovalFeed.close`: the subscription ends there."""


_CLOSED = _Closed()


class ApprovalFeed:
    """Every saved approval, fanned out to the open subscriptions."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Approval | _Closed | None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The daemon's event loop: a change published from another thread is handed to it."""
        self._loop = loop

    def publish(self, approval: Approval) -> None:
        """Hand ``approval`` (as just saved) to every subscription."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                loop.call_soon_threadsafe(self._put, approval)
                return
        self._put(approval)

    def _put(self, approval: Approval) -> None:
        for queue in list(self._queues):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(GAP)
            queue.put_nowait(approval)

    def close(self) -> None:
        """End every subscription (after the changes it holds), and any opened later at once:
        the daemon is stopping, and a live stream must not hold its graceful shutdown open.
        Call it on the daemon's loop."""
        self._closed = True
        for queue in list(self._queues):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(_CLOSED)

    @contextlib.contextmanager
    def subscription(self) -> Iterator[AsyncIterator[Approval | None]]:
        """``with feed.subscription() as changes: async for approval in changes: …`` — every
        change saved after it opened (``GAP`` where some were dropped), until it closes."""
        queue: asyncio.Queue[Approval | _Closed | None] = asyncio.Queue(QUEUE)
        self._queues.add(queue)
        if self._closed:
            queue.put_nowait(_CLOSED)

        async def changes() -> AsyncIterator[Approval | None]:
            while not isinstance(change := await queue.get(), _Closed):
                yield change

        try:
            yield changes()
        finally:
            self._queues.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._queues)
