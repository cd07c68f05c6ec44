"""Reading an HTTP body with a byte limit: the capped read the daemon and the enclave share.

An upstream decides how much it answers; the reader decides how much it holds. A body is read
chunk by chunk and reading stops at the first byte past the limit, so memory stays bounded
whatever the upstream sends; a declared ``Content-Length`` above the limit is refused before
anything is read. Each caller words the refusal (``upstream_response_too_large``) from the
:class:`BodyTooLarge` it gets (ADR 0026).
"""

from __future__ import annotations

from collections.abc import AsyncIterable

__all__ = ["BodyTooLarge", "read_capped"]


class BodyTooLarge(Exception):
    """A body is, or says it is, larger than the limit; nothing past the limit was read."""

    def __init__(self, limit: int, *, declared: int | None) -> None:
        super().__init__(f"the body exceeds {limit} bytes")
        self.limit = limit
        self.declared = declared
        """The ``Content-Length`` that refused it, or ``None`` when the bytes themselves did."""


async def read_capped(
    chunks: AsyncIterable[bytes],
    limit: int,
    *,
    content_length: str | None = None,
    truncate: bool = False,
) -> bytes:
    """The body ``chunks`` make, at most ``limit`` bytes of it.

    ``content_length`` is the answer's header (``None`` where it does not describe the body,
    as for a HEAD answer); a decimal value above ``limit`` raises :class:`BodyTooLarge`
    before reading. A body longer than ``limit`` raises it as soon as the chunk that crosses
    the limit arrives — or, with ``truncate``, its first ``limit`` bytes are returned (an error
    answer's excerpt needs only its start).
    """
    text = (content_length or "").strip()
    if not truncate and text.isascii() and text.isdigit():  # "²" is a digit to isdigit()
        declared = int(text)
        if declared > limit:
            raise BodyTooLarge(limit, declared=declared)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        if size + len(chunk) > limit:
            if not truncate:
                raise BodyTooLarge(limit, declared=None)
            parts.append(chunk[: limit - size])
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)
