"""Recognising the end of a provider's event stream in the bytes the gateway relays.

An agent may hang up the moment it has read a stream's last event — codex closes its
connection on ``response.completed`` — while the provider's end of body (the last chunk of a
chunked answer) is still on its way. That answer is complete, not cancelled. Each provider ends
a stream with an event of its own:

- OpenAI Chat Completions: ``data: [DONE]``;
- OpenAI Responses: ``response.completed`` (or ``response.incomplete`` / ``response.failed``,
  which end a response just as finally);
- Anthropic Messages: ``message_stop``.

:class:`StreamEnd` is fed every piece of the answer after it went out and says whether the last
event it saw ended was one of those. It never keeps the stream: per piece it looks back from
the piece's end to the start of the last event in it (``rfind``, stopping at the first event
boundary), and keeps at most :data:`EVENT_HEAD` bytes of that event's head, across pieces when
an event spans several. An event's type is read from its head only — the ``event:`` line, or
the ``"type"`` that opens a ``data:`` JSON object — so a model's text that mentions an event
name is never mistaken for the event. Events are separated by a blank line (``\\n\\n``, as
both providers send them); a stream with ``\\r\\n`` line ends is not recognised and is complete
only when its body ends.
"""

from __future__ import annotations

import re

__all__ = ["EVENT_HEAD", "TERMINAL_EVENTS", "StreamEnd", "event_type"]

TERMINAL_EVENTS = frozenset(
    {b"[DONE]", b"message_stop", b"response.completed", b"response.incomplete", b"response.failed"}
)
"""Event types after which a provider sends nothing more."""

EVENT_HEAD = 96
"""Bytes of an event's head kept to read its type (``event: response.incomplete`` and
``data: {"type":"response.incomplete"`` both fit)."""

_DATA_TYPE = re.compile(rb'\{\s*"type"\s*:\s*"([^"\\]{1,64})"')
BOUNDARY = b"\n\n"


def event_type(head: bytes) -> bytes | None:
    """The type of the SSE event that starts with ``head``, if its first line names one."""
    line = head.partition(b"\n")[0]
    if line.startswith(b"event:"):
        return line[6:].strip() or None
    if line.startswith(b"data:"):
        value = line[5:].strip()
        if value == b"[DONE]":
            return value
        match = _DATA_TYPE.match(value)
        return match.group(1) if match else None
    return None


class StreamEnd:
    """Whether the event stream relayed so far has ended with a provider's final event."""

    __slots__ = ("_fresh", "_head", "_newline")

    def __init__(self) -> None:
        self._head = b""
        self._fresh = True
        """The next byte starts an event."""
        self._newline = False
        """The last piece ended with a newline (half of a boundary, perhaps)."""

    def seen(self, data: bytes) -> bool:
        """Note ``data`` (the next piece of the stream, as relayed); whether it ends the stream
        with a final event."""
        if not data:
            return False
        start = 0
        if self._newline and data[0] == 0x0A:  # a boundary split between two pieces
            if len(data) == 1:
                self._fresh, self._newline = True, True
                return event_type(self._head) in TERMINAL_EVENTS
            start, self._fresh = 1, True
        ends = data.endswith(BOUNDARY)
        stop = len(data) - 2 if ends else len(data)
        cut = data.rfind(BOUNDARY, start, stop) if stop > start else -1
        if cut >= 0:
            head = data[cut + 2 : cut + 2 + EVENT_HEAD]
        elif self._fresh:
            head = data[start : start + EVENT_HEAD]
        elif len(self._head) < EVENT_HEAD:
            head = self._head + data[start : start + EVENT_HEAD - len(self._head)]
        else:
            head = self._head
        self._head, self._fresh, self._newline = head, ends, data[-1] == 0x0A
        return ends and event_type(head) in TERMINAL_EVENTS
