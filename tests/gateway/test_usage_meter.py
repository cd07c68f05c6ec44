"""Token usage read from each provider's answers, streamed or not, however they are cut up."""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
import pytest
from fakes.provider import FakeProvider
from fakes.script import ToolScript
from gateway.support import REAL_KEY
from hypothesis import given
from hypothesis import strategies as st

from aileron_cli.daemon.gateway.usage import (
    EVENT_LIMIT,
    USAGE_BODY_LIMIT,
    Price,
    Usage,
    UsageMeter,
)

Kind = Literal["openai", "anthropic"]
SSE = "text/event-stream; charset=utf-8"
JSON = "application/json"


def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\n" if event else "").encode() + f"data: {payload}\n\n".encode()


def chunk(delta: dict[str, Any], **extra: Any) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return sse({"id": "c1", "object": "chat.completion.chunk", "choices": [choice], **extra})


CHAT_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 12},
}
RESPONSES_USAGE = {
    "input_tokens": 120,
    "input_tokens_details": {"cached_tokens": 100},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 12},
    "total_tokens": 150,
}
EXPECTED = Usage(120, 30, 100)

CHAT_JSON = json.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "the usage is"}}],
        "usage": CHAT_USAGE,
    }
).encode()
CHAT_STREAM = b"".join(
    [
        chunk({"role": "assistant", "content": ""}, usage=None),
        chunk({"content": "Your usage"}, usage=None),
        chunk({"content": "usage"}, usage=None),
        sse({"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": CHAT_USAGE}),
        sse("[DONE]"),
    ]
)
RESPONSES_JSON = json.dumps(
    {"id": "r1", "object": "response", "status": "completed", "usage": RESPONSES_USAGE}
).encode()


def responses_stream(final: str = "response.completed") -> bytes:
    """A Responses stream whose created event reports a usage that is not final."""
    early = {"input_tokens": 1, "output_tokens": 1}
    created = {"id": "r1", "status": "in_progress", "usage": early}
    done = {"id": "r1", "status": final.rpartition(".")[2], "usage": RESPONSES_USAGE}
    text = '{"usage": {"input_tokens": 999}} and "usage"'
    return b"".join(
        [
            sse({"type": "response.created", "response": created}, "response.created"),
            sse(
                {"type": "response.output_text.delta", "delta": text}, "response.output_text.delta"
            ),
            sse({"type": final, "response": done}, final),
        ]
    )


ANTHROPIC_USAGE = {
    "input_tokens": 15,
    "cache_creation_input_tokens": 5,
    "cache_read_input_tokens": 100,
    "output_tokens": 30,
}
ANTHROPIC_JSON = json.dumps(
    {"id": "m1", "type": "message", "content": [{"type": "text", "text": "usage"}],
     "usage": ANTHROPIC_USAGE}
).encode()  # fmt: skip
START_USAGE = {**ANTHROPIC_USAGE, "output_tokens": 1}
ANTHROPIC_STREAM = b"".join(
    [
        sse({"type": "message_start", "message": {"id": "m1", "usage": START_USAGE}},
            "message_start"),
        sse({"type": "content_block_start", "index": 0,
             "content_block": {"type": "text", "text": ""}}, "content_block_start"),
        sse({"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": '"usage": {"output_tokens": 7}'}},
            "content_block_delta"),
        sse({"type": "message_delta", "delta": {"stop_reason": None},
             "usage": {"output_tokens": 12}}, "message_delta"),
        sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
             "usage": {"output_tokens": 30}}, "message_delta"),
        sse({"type": "message_stop"}, "message_stop"),
    ]
)  # fmt: skip

FORMS: dict[str, tuple[Kind, str, bytes]] = {
    "chat-json": ("openai", JSON, CHAT_JSON),
    "chat-stream": ("openai", SSE, CHAT_STREAM),
    "responses-json": ("openai", JSON, RESPONSES_JSON),
    "responses-stream": ("openai", SSE, responses_stream()),
    "responses-incomplete": ("openai", SSE, responses_stream("response.incomplete")),
    "anthropic-json": ("anthropic", "application/json; charset=utf-8", ANTHROPIC_JSON),
    "anthropic-stream": ("anthropic", SSE, ANTHROPIC_STREAM),
}


def meter(kind: Kind, content_type: str, pieces: list[bytes]) -> Usage | None:
    """What a meter fed ``pieces`` reports."""
    usage_meter = UsageMeter(kind, content_type)
    for piece in pieces:
        usage_meter.feed(piece)
    return usage_meter.usage()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in zip(marks, marks[1:], strict=False)]


@pytest.mark.parametrize("form", sorted(FORMS))
def test_each_form_reports_its_normalised_usage(form: str) -> None:
    """Chat, Responses and Messages answers, JSON or streamed, give input (cached included),
    output and cached tokens — not the early or quoted counts."""
    kind, content_type, data = FORMS[form]
    assert meter(kind, content_type, [data]) == EXPECTED


@pytest.mark.parametrize("form", sorted(FORMS))
def test_each_form_byte_by_byte(form: str) -> None:
    """Fed one byte at a time, every form gives the same usage."""
    kind, content_type, data = FORMS[form]
    assert meter(kind, content_type, [data[i : i + 1] for i in range(len(data))]) == EXPECTED


@given(
    form=st.sampled_from(sorted(FORMS)),
    crlf=st.booleans(),
    points=st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=16),
)
def test_any_cut_of_an_answer_gives_the_same_usage(
    form: str, crlf: bool, points: list[int]
) -> None:
    """However the answer is cut into pieces (with `\\n` or `\\r\\n` line ends), the usage is
    the same."""
    kind, content_type, data = FORMS[form]
    if crlf and content_type == SSE:
        data = data.replace(b"\n", b"\r\n")
    assert meter(kind, content_type, cut(data, points)) == EXPECTED


def test_anthropic_later_fields_replace_earlier_ones() -> None:
    """A message_delta that carries input and cache fields replaces message_start's values."""
    start = {"input_tokens": 3, "cache_read_input_tokens": 4, "output_tokens": 1}
    delta = {"input_tokens": 20, "cache_creation_input_tokens": 2, "output_tokens": 9}
    stream = sse({"type": "message_start", "message": {"usage": start}}) + sse(
        {"type": "message_delta", "usage": delta}
    )
    assert meter("anthropic", SSE, [stream]) == Usage(20 + 4 + 2, 9, 4)


def test_a_stream_without_usage_reports_none() -> None:
    """A Chat stream that did not ask for usage (its chunks say `"usage":null`) reports None."""
    stream = chunk({"content": "hi"}, usage=None) + chunk({"content": "usage"}) + sse("[DONE]")
    assert meter("openai", SSE, [stream]) is None
    assert meter("anthropic", SSE, [sse({"type": "message_stop"})]) is None


def test_a_models_text_about_usage_does_not_count() -> None:
    """Text that mentions usage — the word, or quoted JSON with counts — is not a usage."""
    quoted = json.dumps({"usage": {"prompt_tokens": 999, "completion_tokens": 999}})
    stream = chunk({"content": quoted}) + chunk({"content": "usage"}) + chunk({"content": "usage:"})
    assert meter("openai", SSE, [stream + sse("[DONE]")]) is None
    text = {"type": "content_block_delta", "delta": {"type": "text_delta", "text": quoted}}
    assert meter("anthropic", SSE, [sse(text)]) is None


def test_responses_usage_counts_only_from_a_final_event() -> None:
    """A Responses stream that never ends reports none: response.created's usage is not final."""
    unfinished = responses_stream().rpartition(b"event: response.completed")[0]
    assert meter("openai", SSE, [unfinished]) is None
    failed = responses_stream("response.failed")
    assert meter("openai", SSE, [failed]) == EXPECTED


def test_an_unterminated_last_event_is_discarded() -> None:
    """An event the stream does not end with a blank line is not read (as SSE clients do)."""
    assert meter("openai", SSE, [CHAT_STREAM.rpartition(b"data: [DONE]")[0]]) == EXPECTED
    usage_chunk = sse({"choices": [], "usage": CHAT_USAGE})
    assert meter("openai", SSE, [usage_chunk[:-1]]) is None


def test_a_multi_line_event_is_joined() -> None:
    """An event whose JSON spans several `data:` lines is read as one document."""
    event = (
        b'event: message_delta\ndata: {"type":"message_delta",\n'
        b'data: "usage":{"output_tokens":4}}\n\n'
    )
    assert meter("anthropic", SSE, [event]) == Usage(0, 4, 0)


@pytest.mark.parametrize(
    ("kind", "content_type", "data"),
    [
        ("openai", JSON, b"not json"),
        ("openai", JSON, b'{"usage": [1, 2]}'),
        ("openai", JSON, b'{"usage": {"prompt_tokens": -1, "completion_tokens": true}}'),
        ("openai", JSON, b'{"usage": {"prompt_tokens": "10", "completion_tokens": 1.5}}'),
        ("openai", JSON, b"[" * 100_000 + b"]" * 100_000),
        ("openai", JSON, b"\xff\xfe\x00garbage"),
        ("openai", JSON, CHAT_JSON[:-5]),
        ("openai", SSE, b'data: {"usage": {"prompt_tokens": 5}\n\n'),
        ("openai", SSE, b'data: {"choices": [], "usage": 7}\n\n'),
        ("openai", SSE, b'data: ["usage"]\n\n'),
        ("openai", SSE, b'event: x\n\ndata: "usage"\n\n: comment "usage"\n\n'),
        ("openai", SSE, b'data: {"type": "response.completed", "response": "usage"}\n\n'),
        ("anthropic", SSE, b'data: {"type": "message_start", "message": ["usage"]}\n\n'),
        ("anthropic", SSE, b'data: {"type": "message_delta", "usage": {"output_tokens": -3}}\n\n'),
        ("anthropic", JSON, b'{"usage": {"input_tokens": false}}'),
        ("openai", "application/octet-stream", CHAT_JSON),
        ("openai", "", CHAT_JSON),
    ],
)
def test_garbage_reports_none(kind: Kind, content_type: str, data: bytes) -> None:
    """Malformed bodies and events, bad counts and other media types report no usage, never an
    error."""
    assert meter(kind, content_type, [data]) is None


def test_bad_counts_are_absent_good_ones_kept() -> None:
    """A negative or boolean count is treated as absent; the valid counts of the same usage stay
    (and cached never exceeds input)."""
    fields = {
        "prompt_tokens": 8,
        "completion_tokens": -2,
        "prompt_tokens_details": {"cached_tokens": 50},
    }
    assert meter("openai", JSON, [json.dumps({"usage": fields}).encode()]) == Usage(8, 0, 8)


@given(
    kind=st.sampled_from(["openai", "anthropic"]),
    content_type=st.sampled_from([SSE, JSON]),
    pieces=st.lists(st.binary(max_size=64), max_size=8),
)
def test_random_bytes_never_raise(kind: Kind, content_type: str, pieces: list[bytes]) -> None:
    """Any bytes at all are fed without an error, and report no usage or a valid one."""
    found = meter(kind, content_type, [b'data: {"usage"', *pieces])
    assert found is None or min(found.input, found.output, found.cached) >= 0


def test_a_huge_event_is_dropped_but_the_next_is_read() -> None:
    """An event over EVENT_LIMIT that mentions usage is dropped (bounded memory); a huge event
    without usage does not hide the usage event after it."""
    big = sse({"choices": [], "usage": {**CHAT_USAGE, "pad": "x" * EVENT_LIMIT}})
    assert meter("openai", SSE, [big]) is None
    assert meter("openai", SSE, [big[i : i + 4096] for i in range(0, len(big), 4096)]) is None
    text = chunk({"content": "x" * (2 * EVENT_LIMIT)})
    pieces = [text[i : i + 65536] for i in range(0, len(text), 65536)]
    assert meter("openai", SSE, [*pieces, CHAT_STREAM]) == EXPECTED


def test_a_json_answer_beyond_the_limit_reports_none() -> None:
    """A JSON answer larger than USAGE_BODY_LIMIT is not kept, so it reports no usage."""
    body = json.dumps({"pad": "x" * USAGE_BODY_LIMIT, "usage": CHAT_USAGE}).encode()
    assert meter("openai", JSON, [body[: len(body) // 2], body[len(body) // 2 :]]) is None


def test_usage_arithmetic() -> None:
    """Usage adds field by field; total is input plus output; the record names the fields."""
    both = Usage(10, 5, 2) + Usage(1, 2, 3)
    assert both == Usage(11, 7, 5)
    assert both.total == 18
    assert both.as_record() == {"input": 11, "output": 7, "cached": 5}


def test_price_cost() -> None:
    """Uncached input, cached input and output are each priced per million tokens; cached input
    costs input's price unless its own is set."""
    usage = Usage(input=1_000_000, output=500_000, cached=400_000)
    assert Price(1.25, 10.0, 0.125).cost(usage) == pytest.approx(0.6 * 1.25 + 0.4 * 0.125 + 5.0)
    assert Price(1.25, 10.0).cost(usage) == pytest.approx(1.25 + 5.0)
    assert Price(2.0, 8.0).cost(Usage()) == 0.0


# -- the fake provider reports usage in every API's shape ---------------------------------------

ROUTES: list[tuple[str, Kind]] = [
    ("/v1/chat/completions", "openai"),
    ("/v1/responses", "openai"),
    ("/v1/messages", "anthropic"),
]


def ask(
    fake: FakeProvider, path: str, kind: Kind, body: dict[str, Any], **headers: str
) -> tuple[Usage | None, bytes]:
    """Send ``body`` to the fake; the usage a meter reads from the raw answer, and the answer."""
    headers = {"Authorization": f"Bearer {REAL_KEY}", **headers}
    with httpx.stream("POST", f"{fake.url}{path}", json=body, headers=headers) as answer:
        assert answer.status_code == 200
        usage_meter = UsageMeter(kind, answer.headers["content-type"])
        data = b""
        for piece in answer.iter_raw():
            usage_meter.feed(piece)
            data += piece
    return usage_meter.usage(), data


INCLUDE = {"stream_options": {"include_usage": True}}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("path", "kind"), ROUTES)
def test_the_fake_reports_the_usage_it_is_told(
    fake: FakeProvider, path: str, kind: Kind, stream: bool
) -> None:
    """With `x-fake-usage: I,O,C` each of the fake's six answer forms reads as (I, O, C)."""
    body = {"model": "m", "stream": stream, **INCLUDE}
    assert ask(fake, path, kind, body, **{"x-fake-usage": "300,40,120"})[0] == Usage(300, 40, 120)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("path", "kind"), ROUTES)
def test_the_fakes_default_usage(fake: FakeProvider, path: str, kind: Kind, stream: bool) -> None:
    """By default the fake reports input 10, output one token per content event, cached 0."""
    body = {"model": "m", "stream": stream, **INCLUDE}
    assert ask(fake, path, kind, body, **{"x-fake-chunks": "7"})[0] == Usage(10, 7, 0)


def test_a_chat_stream_ends_with_usage_only_when_asked(fake: FakeProvider) -> None:
    """The fake's Chat stream has a usage chunk (`choices: []`) only with include_usage."""
    usage, data = ask(fake, "/v1/chat/completions", "openai", {"stream": True})
    assert usage is None and b'"usage"' not in data
    usage, data = ask(fake, "/v1/chat/completions", "openai", {"stream": True, **INCLUDE})
    last = json.loads(data.split(b"data: ")[-2])
    assert (last["choices"], usage) == ([], Usage(10, 5, 0))


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("path", "kind"), ROUTES)
def test_the_fake_echoes_the_credential_when_asked(
    fake: FakeProvider, path: str, kind: Kind, stream: bool
) -> None:
    """With `x-fake-echo-key: 1` the answer's text holds the credential the fake received."""
    body = {"model": "m", "stream": stream}
    assert REAL_KEY.encode() not in ask(fake, path, kind, body)[1]
    data = ask(fake, path, kind, body, **{"x-fake-echo-key": "1"})[1]
    assert data.count(REAL_KEY.encode()) >= (5 if stream else 1)


@pytest.mark.parametrize(("path", "kind"), ROUTES)
def test_scripted_answers_report_usage(path: str, kind: Kind) -> None:
    """The scripted tool loop's answers report 10/5/0, or what `x-fake-usage` says."""
    script = ToolScript(tool="echo_say", arguments={"message": "hi"}, final="done")
    tools = [{"name": "echo_say"}]
    with FakeProvider(REAL_KEY, script=script) as fake:
        body = {"model": "m", "stream": True, "tools": tools, **INCLUDE}
        assert ask(fake, path, kind, body)[0] == Usage(10, 5, 0)
        told = ask(fake, path, kind, body, **{"x-fake-usage": "50,6,20"})[0]
    assert told == Usage(50, 6, 20)
    assert script.calls == ["echo_say", "echo_say"]


def test_an_event_of_exactly_the_limit_is_read_however_its_end_is_cut() -> None:
    """An event of EVENT_LIMIT bytes is read, also when its blank line is cut between pieces."""
    head = b'data: {"choices": [], "usage": {"prompt_tokens": 3}, "pad": "'
    event = head + b"x" * (EVENT_LIMIT - len(head) - 2) + b'"}'
    assert len(event) == EVENT_LIMIT
    for pieces in ([event + b"\n\n"], [event + b"\n", b"\n"], [event + b"\n", b"\r\n"]):
        assert meter("openai", SSE, pieces) == Usage(3, 0, 0)
    assert meter("openai", SSE, [event + b"x\n", b"\n"]) is None
