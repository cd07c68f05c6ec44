"""One POST to a credential source's endpoint (an OAuth2 token endpoint, GitHub's App token
endpoint), bounded in size and in time as a whole.

httpx's ``timeout`` bounds each connect, read and write, not the exchange: an endpoint that
drips a byte every few seconds, or streams without end, would hold the source's per-binding
lock (every request of that binding waiting behind it) and the daemon's memory. Here reading
stops after ``limit`` bytes, and the whole exchange — connect, send, headers, body — must end
within ``deadline_s``, else ``httpx.ReadTimeout`` (an ``httpx.HTTPError``, which callers already
treat as "unreachable").
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

__all__ = ["post_bounded"]


async def post_bounded(
    client: httpx.AsyncClient,
    url: str,
    *,
    limit: int,
    deadline_s: float,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[httpx.Response, bytes]:
    """The response (its body not read) and at most ``limit + 1`` bytes of its body (more
    than ``limit``: the answer is too large; the rest is never read)."""
    try:
        async with asyncio.timeout(deadline_s):
            request = client.build_request(
                "POST", url, data=dict(data) if data is not None else None, headers=headers
            )
            response = await client.send(request, stream=True)
            try:
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > limit:
                        break
            finally:
                await response.aclose()
    except TimeoutError:
        raise httpx.ReadTimeout(f"no whole answer within {deadline_s:g} s") from None
    return response, bytes(body[: limit + 1])
