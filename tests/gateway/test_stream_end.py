"""Recognising a provider's final event in the relayed stream, however it is cut into pieces."""

from __future__ import annotations

import json

import pytest
from gateway.lingering import STREAMS
from hypothesis import given
from hypothesis import strategies as st

from aileron_cli.daemon.gateway.stream_end import EVENT_HEAD, StreamEnd, event_type

PATHS = sorted(STREAMS)


def _feed(pieces: list[bytes]) -> list[bool]:
    ends = StreamEnd()
    return [ends.seen(piece) for piece in pieces]


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"data: [DONE]\n\n", b"[DONE]"),
        (b"event: response.completed\ndata: {}", b"response.completed"),
        (b'data: {"type":"message_stop"}', b"message_stop"),
        (b'data: { "type" : "response.failed", "response": {}}', b"response.failed"),
        (b'data: {"id":"x","type":"message_stop"}', None),
        (b": keep-alive", None),
        (b"id: 7\ndata: [DONE]", None),
    ],
)
def test_event_type_is_read_from_the_first_line_only(head: bytes, expected: bytes | None) -> None:
    """The type comes from an `event:` line or the `"type"` opening a `data:` object, else none."""
    assert event_type(head) == expected


@pytest.mark.parametrize("path", PATHS)
def test_each_providers_stream_ends_on_its_final_event_only(path: str) -> None:
    """Fed event by event, each stream is ended by its final event and by no earlier one (not
    even one whose text quotes a final event's name)."""
    events = STREAMS[path]
    assert _feed(events) == [False] * (len(events) - 1) + [True]


@given(
    path=st.sampled_from(PATHS),
    cuts=st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=12),
)
def test_any_cut_of_a_stream_ends_exactly_at_its_last_byte(path: str, cuts: list[int]) -> None:
    """However the stream is cut into pieces, only the piece that carries its last byte ends it."""
    pieces = _cut(b"".join(STREAMS[path]), cuts)
    assert _feed(pieces) == [False] * (len(pieces) - 1) + [True]


@given(
    path=st.sampled_from(PATHS),
    cuts=st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=12),
)
def test_a_stream_without_its_final_event_never_ends(path: str, cuts: list[int]) -> None:
    """Every event but the final one, cut anyhow, never reads as an ended stream."""
    pieces = _cut(b"".join(STREAMS[path][:-1]), cuts)
    assert not any(_feed(pieces))


@given(text=st.text(max_size=300), cuts=st.lists(st.integers(0, 1 << 12), max_size=8))
def test_model_text_cannot_forge_a_final_event(text: str, cuts: list[int]) -> None:
    """Whatever a model writes inside a delta (JSON-escaped, as providers send it), the stream
    has not ended until the real final event."""
    delta = json.dumps({"type": "response.output_text.delta", "delta": text}).encode()
    forged = b"event: response.output_text.delta\ndata: " + delta + b"\n\n"
    pieces = _cut(STREAMS["/v1/responses"][0] + forged, cuts)
    assert not any(_feed(pieces))


def test_a_long_final_event_is_recognised_by_its_head() -> None:
    """A final event far longer than the head kept (`response.completed` carries the whole
    response) is recognised across many pieces."""
    final = STREAMS["/v1/responses"][-1]
    assert len(final) > 10 * EVENT_HEAD
    pieces = [STREAMS["/v1/responses"][0]] + [final[i : i + 7] for i in range(0, len(final), 7)]
    assert _feed(pieces)[-1] is True
