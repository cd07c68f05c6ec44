"""The capped body read the daemon and the enclave share (ADR 0026)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import anyio
import pytest

from aileron_core.http_bodies import BodyTooLarge, read_capped


class Chunks:
    """Hands out ``chunks`` one by one and counts how many were taken."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = list(chunks)
        self.taken = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            self.taken += 1
            yield chunk


def read(chunks: Chunks, limit: int, **options: object) -> bytes:
    return anyio.run(lambda: read_capped(chunks, limit, **options))  # type: ignore[arg-type]


def test_a_body_of_exactly_the_limit_is_read_whole() -> None:
    """limit bytes, in any chunking, come back joined."""
    assert read(Chunks([b"ab", b"c", b"de"]), 5) == b"abcde"


def test_one_byte_past_the_limit_is_refused_and_reading_stops() -> None:
    """limit + 1 bytes raise BodyTooLarge at the chunk that crosses it; no later chunk is read."""
    chunks = Chunks([b"abc", b"de", b"f", b"never"])
    with pytest.raises(BodyTooLarge) as raised:
        read(chunks, 5)
    assert raised.value.limit == 5 and raised.value.declared is None
    assert chunks.taken == 3


def test_a_declared_length_past_the_limit_is_refused_before_reading() -> None:
    """A Content-Length above the limit refuses without taking a chunk; at the limit it reads."""
    chunks = Chunks([b"abcdef"])
    with pytest.raises(BodyTooLarge) as raised:
        read(chunks, 5, content_length="6")
    assert raised.value.declared == 6 and chunks.taken == 0
    assert read(Chunks([b"abcde"]), 5, content_length="5") == b"abcde"


def test_a_length_that_is_not_a_number_is_ignored() -> None:
    """A Content-Length that is not ASCII digits (e.g. '²') decides nothing; the bytes do."""
    assert read(Chunks([b"ab"]), 5, content_length="\u00b2") == b"ab"
    assert read(Chunks([b"ab"]), 5, content_length="x") == b"ab"


def test_truncate_keeps_the_first_limit_bytes() -> None:
    """With truncate, a longer body (or a larger declared length) gives its first limit bytes."""
    chunks = Chunks([b"abc", b"def", b"never"])
    assert read(chunks, 5, truncate=True, content_length="100") == b"abcde"
    assert chunks.taken == 2
