"""Token usage read from a provider's answer as the gateway relays it, and what it costs.

:class:`UsageMeter` is fed every piece of an answer as it goes out (after redaction) and says,
at the end, how many tokens the provider reported. It never keeps the stream: it is on the
gateway's hot path, so per piece it scans the bytes once for event boundaries and for the
JSON key ``"usage"``, and parses only the few events that carry one. Where each provider puts
its usage:

- OpenAI Chat Completions: ``usage.prompt_tokens``, ``completion_tokens`` and
  ``prompt_tokens_details.cached_tokens`` — in the JSON answer, or, streamed, in the chunk
  that carries a ``usage`` object (sent when the request asked for ``include_usage``; the
  other chunks then say ``"usage":null``, which is skipped without parsing);
- OpenAI Responses: ``usage.input_tokens``, ``output_tokens`` and
  ``input_tokens_details.cached_tokens`` — in the JSON answer, or, streamed, in the
  ``response.completed`` / ``response.incomplete`` / ``response.failed`` event's
  ``response.usage`` (the usage of earlier events, e.g. ``response.created``, is not final);
- Anthropic Messages: ``usage.input_tokens`` (the prompt tokens not read from nor written to
  a cache), ``cache_read_input_tokens``, ``cache_creation_input_tokens`` and
  ``output_tokens`` — in the JSON answer, or, streamed, in ``message_start``'s
  ``message.usage`` and each ``message_delta``'s ``usage``, a later value of a field
  replacing an earlier one.

:class:`Usage` is normalised across providers: ``input`` counts every prompt token, cached
ones included, and ``cached`` the part of them read from a cache.

Events are separated by a blank line (``\\n\\n``, ``\\r\\n\\r\\n`` or a mix of the two; a
stream with bare ``\\r`` line ends is not read), may be cut into pieces anywhere, and an event
not ended by a blank line when the answer ends is discarded (as an SSE client does). The
meter keeps at most :data:`EVENT_LIMIT` bytes of an event that spans pieces (a larger event is
dropped, whatever it says) and at most :data:`USAGE_BODY_LIMIT` bytes of a JSON answer (a
larger one reports no usage). Garbage — a malformed event, a body that is not JSON, a count
that is negative, not an integer or a boolean — is never an error: the count is absent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs

__all__ = ["EVENT_LIMIT", "USAGE_BODY_LIMIT", "Price", "Usage", "UsageMeter"]

USAGE_BODY_LIMIT = 8 * 1024 * 1024
"""Bytes of a JSON answer kept to read its usage at the end; a larger answer reports none."""

EVENT_LIMIT = 1024 * 1024
"""Bytes of one server-sent event kept while it spans pieces; a larger event is dropped."""

Kind = Literal["openai", "anthropic"]


@attrs.frozen
class Usage:
    """Tokens one answer used: ``input`` every prompt token (cached included), ``output`` the
    tokens generated, ``cached`` the prompt tokens read from a cache (a part of ``input``)."""

    input: int = 0
    output: int = 0
    cached: int = 0

    @property
    def total(self) -> int:
        """Input and output tokens together (what a token budget counts)."""
        return self.input + self.output

    def as_record(self) -> dict[str, int]:
        """The counts as the audit record keeps them."""
        return {"input": self.input, "output": self.output, "cached": self.cached}

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input + other.input, self.output + other.output, self.cached + other.cached
        )


@attrs.frozen
class Price:
    """A model's price per million tokens; ``cached_input`` (``None``: ``input``'s price) is
    paid for prompt tokens read from a cache instead of ``input``."""

    input: float
    output: float
    cached_input: float | None = None

    def cost(self, usage: Usage) -> float:
        """What ``usage`` costs at this price, in the price table's currency."""
        cached = self.input if self.cached_input is None else self.cached_input
        fresh = max(usage.input - usage.cached, 0)
        return (fresh * self.input + usage.cached * cached + usage.output * self.output) / 1e6


_USAGE_KEY = b'"usage"'
_NULL_VALUE = re.compile(rb"\s*:\s*null")
_FINAL_RESPONSE = frozenset({"response.completed", "response.incomplete", "response.failed"})
_ANTHROPIC_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


def _count(fields: object, name: str) -> int | None:
    """``fields[name]`` when it is a count (a non-negative int, not a bool), else ``None``."""
    if not isinstance(fields, Mapping):
        return None
    value = fields.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _openai_usage(fields: object) -> Usage | None:
    """A Chat Completions or Responses ``usage`` object, normalised; ``None`` when it holds
    no count at all."""
    if not isinstance(fields, Mapping):
        return None
    prompt = _count(fields, "prompt_tokens")
    if prompt is None:
        prompt = _count(fields, "input_tokens")
    output = _count(fields, "completion_tokens")
    if output is None:
        output = _count(fields, "output_tokens")
    if prompt is None and output is None:
        return None
    details = fields.get("prompt_tokens_details")
    if not isinstance(details, Mapping):
        details = fields.get("input_tokens_details")
    cached = _count(details, "cached_tokens") or 0
    prompt = prompt or 0
    return Usage(prompt, output or 0, min(cached, prompt))


def _anthropic_usage(fields: Mapping[str, int]) -> Usage | None:
    """Anthropic's usage fields (as merged so far), normalised; ``None`` when there are none."""
    if not fields:
        return None
    cached = fields.get("cache_read_input_tokens", 0)
    written = fields.get("cache_creation_input_tokens", 0)
    prompt = fields.get("input_tokens", 0) + cached + written
    return Usage(prompt, fields.get("output_tokens", 0), cached)


def _mentions_usage(data: bytes, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` holds the JSON key ``"usage"`` with a value other than
    ``null``."""
    at = data.find(_USAGE_KEY, start, end)
    while at >= 0:
        null = _NULL_VALUE.match(data, at + len(_USAGE_KEY), end)
        if null is None:
            return True
        at = data.find(_USAGE_KEY, null.end(), end)
    return False


def _boundary(data: bytes, start: int) -> tuple[int, int] | None:
    """Where the first blank line at or after ``start`` begins and ends (``\\n\\n`` or
    ``\\n\\r\\n``, the line end before it being the event's own)."""
    size = len(data)
    at = data.find(b"\n", start)
    while at >= 0:
        if at + 1 < size and data[at + 1] == 0x0A:
            return at, at + 2
        if at + 2 < size and data[at + 1] == 0x0D and data[at + 2] == 0x0A:
            return at, at + 3
        at = data.find(b"\n", at + 1)
    return None


def _event_data(event: bytes) -> bytes:
    """The data of one server-sent event: its ``data:`` lines' values joined with ``\\n``."""
    values = []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            value = line[5:]
            values.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(values)


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


class UsageMeter:
    """Fed every chunk of an answer as relayed (after redaction), never keeping the stream;
    :meth:`usage` is what the answer reported."""

    __slots__ = (
        "_anthropic",
        "_body",
        "_body_size",
        "_carry",
        "_kind",
        "_mode",
        "_pending",
        "_pending_size",
        "_skipping",
        "_usage",
    )

    def __init__(self, kind: Kind, content_type: str) -> None:
        self._kind = kind
        media = content_type.partition(";")[0].strip().lower()
        self._mode: Literal["sse", "json", "none"] = (
            "sse"
            if media == "text/event-stream"
            else "json"
            if media == "application/json" or media.endswith("+json")
            else "none"
        )
        self._usage: Usage | None = None
        self._anthropic: dict[str, int] = {}
        # A JSON answer, kept whole (up to USAGE_BODY_LIMIT) to parse at the end.
        self._body: list[bytes] | None = []
        self._body_size = 0
        # An event stream: the pieces of the event that began in an earlier chunk, the last
        # bytes of that event (a boundary may be cut between chunks), and whether it outgrew
        # EVENT_LIMIT and is being skipped to its end.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._carry = b""
        self._skipping = False

    def feed(self, chunk: bytes) -> None:
        """Note the next piece of the answer."""
        if not chunk:
            return
        if self._mode == "sse":
            self._feed_events(chunk)
        elif self._mode == "json":
            self._feed_body(chunk)

    def usage(self) -> Usage | None:
        """The usage the answer reported so far (``None``: it reported none)."""
        if self._mode == "json" and self._usage is None and self._body:
            document = _json_object(b"".join(self._body))
            self._body = None  # parsed once: a JSON answer is complete when asked
            if document is not None:
                self._take(document.get("usage"))
        return self._usage

    # -- a JSON answer ------------------------------------------------------------------------

    def _feed_body(self, chunk: bytes) -> None:
        if self._body is None:
            return
        self._body_size += len(chunk)
        if self._body_size > USAGE_BODY_LIMIT:
            self._body = None
        else:
            self._body.append(chunk)

    # -- an event stream ----------------------------------------------------------------------

    def _feed_events(self, chunk: bytes) -> None:
        start = 0
        if self._carry:  # an event began earlier: does its boundary straddle this chunk?
            joint = self._carry + chunk[:2]
            cut = _boundary(joint, 0)
            if cut is not None and cut[0] < len(self._carry):
                self._finish_pending(len(self._carry) - cut[0])
                start = cut[1] - len(self._carry)
            else:
                cut = _boundary(chunk, 0)
                if cut is None:
                    self._keep(chunk, 0)
                    return
                self._pending.append(chunk[: cut[0]])
                self._pending_size += cut[0]
                self._finish_pending(0)
                start = cut[1]
        while (cut := _boundary(chunk, start)) is not None:
            if cut[0] - start <= EVENT_LIMIT and _mentions_usage(chunk, start, cut[0]):
                self._event(chunk[start : cut[0]])
            start = cut[1]
        if start < len(chunk):
            self._keep(chunk, start)

    def _keep(self, chunk: bytes, start: int) -> None:
        """Keep ``chunk[start:]``, the head of an event that has not ended yet."""
        piece = chunk[start:] if start else chunk
        self._carry = (self._carry + piece[-2:])[-2:]
        if self._skipping:
            return
        self._pending_size += len(piece)
        if self._pending_size > EVENT_LIMIT + 2:  # beyond doubt too large
            self._pending.clear()
            self._skipping = True
        else:
            self._pending.append(piece)

    def _finish_pending(self, boundary_bytes: int) -> None:
        """The event begun in earlier chunks has ended (its last ``boundary_bytes`` kept bytes
        are the blank line's start)."""
        size = self._pending_size - boundary_bytes
        if not self._skipping and size <= EVENT_LIMIT:
            event = b"".join(self._pending)[:size]
            if _mentions_usage(event, 0, size):
                self._event(event)
        self._pending.clear()
        self._pending_size = 0
        self._carry = b""
        self._skipping = False

    def _event(self, event: bytes) -> None:
        """One whole event that mentions usage: read it."""
        document = _json_object(_event_data(event))
        if document is None:
            return
        if self._kind == "anthropic":
            kind = document.get("type")
            if kind == "message_start":
                message = document.get("message")
                self._take(message.get("usage") if isinstance(message, dict) else None)
            elif kind == "message_delta":
                self._take(document.get("usage"))
            return
        if document.get("type") in _FINAL_RESPONSE:
            response = document.get("response")
            self._take(response.get("usage") if isinstance(response, dict) else None)
        elif "type" not in document:  # a Chat Completions chunk
            self._take(document.get("usage"))

    def _take(self, fields: object) -> None:
        """A ``usage`` object the answer reported (later ones replace earlier ones)."""
        if self._kind == "anthropic":
            if not isinstance(fields, Mapping):
                return
            for name in _ANTHROPIC_FIELDS:
                value = _count(fields, name)
                if value is not None:
                    self._anthropic[name] = value
            self._usage = _anthropic_usage(self._anthropic)
            return
        found = _openai_usage(fields)
        if found is not None:
            self._usage = found
