"""Server-sent events of the approval feed: one stream shape for every live view (issue #20).

A stream opens with ``event: ready`` once it is subscribed (a client reads the list then, and
misses nothing between the two), sends one ``event: approval`` with the approval's JSON per
change of any approval, ``event: gap`` where the subscription fell behind and lost changes (the
client re-reads the list), and a ``: ping`` comment every :data:`PING_S` seconds while nothing
happens (so a proxy or a client's read timeout never takes a quiet stream for a dead one). It
ends, as a complete answer, when the feed closes (the daemon is stopping).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse

from aileron_cli.daemon.store.approval_feed import ApprovalFeed
from aileron_core.models import Approval

__all__ = ["PING_S", "approval_events"]

PING_S = 15.0
"""Seconds between two keep-alive comments of a quiet stream."""

READY = b"event: ready\ndata: {}\n\n"
GAP = b"event: gap\ndata: {}\n\n"
PING = b": ping\n\n"


def approval_events(
    feed: ApprovalFeed, render: Callable[[Approval], Any], *, ping_s: float = PING_S
) -> StreamingResponse:
    """The ``text/event-stream`` answer streaming ``feed``, each approval as ``render`` makes
    it (a JSON-ready value), until the client goes away."""

    async def stream() -> AsyncIterator[bytes]:
        with feed.subscription() as changes:
            yield READY
            waiting: asyncio.Future[Approval | None] | None = None
            try:
                while True:
                    if waiting is None:
                        waiting = asyncio.ensure_future(anext(changes))
                    done, _ = await asyncio.wait({waiting}, timeout=ping_s)
                    if not done:
                        yield PING
                        continue
                    done_waiting, waiting = waiting, None
                    try:
                        change = done_waiting.result()
                    except StopAsyncIteration:  # the feed closed: the daemon is stopping
                        return
                    if change is None:
                        yield GAP
                        continue
                    data = json.dumps(render(change), separators=(",", ":"))
                    yield f"event: approval\ndata: {data}\n\n".encode()
            finally:
                if waiting is not None:
                    waiting.cancel()

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
    )
