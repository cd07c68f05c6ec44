"""A scripted tool loop for the fake provider: call one tool, then answer with text.

A :class:`ToolScript` drives an agent through one round of tool use, in the streaming shape of
each API an agent speaks (Anthropic Messages, OpenAI Responses, Chat Completions):

1. a request that offers a tool whose name contains ``tool`` (and does not yet carry the call)
   is answered with a call of that tool with ``arguments``;
2. a request that carries the call back (its id, with the tool's result) is answered with
   ``final`` as text; so is any request that offers no such tool (an agent's side requests,
   e.g. a title for the conversation).

The tool is looked for in the request's ``tools`` (Anthropic's ``name``, Chat's
``function.name``, a Responses ``function``'s ``name`` or, for tools nested in a namespace, the
namespace's name and the tool's, joined with ``/``) and, in a request that offers tools but
not this one, as a word in its text (Claude Code lists deferred tools by name in a message).

Every answer reports token usage (:class:`FakeUsage`) in its API's real shape: Anthropic's
``message_start`` and ``message_delta``, the Responses API's ``response.completed``, and — when
the request asks for it with ``"stream_options": {"include_usage": true}`` — a last Chat
Completions chunk with ``"choices": []`` and the ``usage`` (the other chunks then carry
``"usage": null``, as OpenAI's do).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

CALL_ID = "call_fake_tool_loop_1"
"""The id of the one tool call; seeing it in a request means the tool's result is back."""

Finder = Callable[[dict[str, Any]], "str | None"]


@dataclass(frozen=True)
class FakeUsage:
    """The tokens an answer reports: ``input`` every prompt token (``cached`` of them read from
    a cache), ``output`` the tokens generated — each API's shape says the same counts."""

    input: int = 10
    output: int = 5
    cached: int = 0

    def chat(self) -> dict[str, Any]:
        """Chat Completions' ``usage``."""
        return {
            "prompt_tokens": self.input,
            "completion_tokens": self.output,
            "total_tokens": self.input + self.output,
            "prompt_tokens_details": {"cached_tokens": self.cached},
        }

    def responses(self) -> dict[str, Any]:
        """The Responses API's ``usage``."""
        return {
            "input_tokens": self.input,
            "input_tokens_details": {"cached_tokens": self.cached},
            "output_tokens": self.output,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.input + self.output,
        }

    def anthropic(self, output: int | None = None) -> dict[str, Any]:
        """Anthropic's ``usage``, whose ``input_tokens`` leaves the cached tokens out
        (``output`` replaces the output count: ``message_start`` reports 1)."""
        return {
            "input_tokens": self.input - self.cached,
            "cache_read_input_tokens": self.cached,
            "cache_creation_input_tokens": 0,
            "output_tokens": self.output if output is None else output,
        }


def include_usage(request: dict[str, Any]) -> bool:
    """Whether a Chat Completions request asks for the usage chunk at the end of its stream."""
    options = request.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    """One server-sent event (``event:`` line when named), as the providers stream them."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _offered(tool: dict[str, Any], prefix: str = "") -> Iterator[str]:
    function = tool.get("function")
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        yield prefix + function["name"]
    name = tool.get("name")
    if isinstance(name, str):
        yield prefix + name
        for inner in tool.get("tools") or ():
            if isinstance(inner, dict):
                yield from _offered(inner, f"{prefix}{name}/")


def tool_names(request: dict[str, Any]) -> list[str]:
    """Every tool name a request offers in its ``tools`` array (``namespace/name`` for a tool
    in a namespace)."""
    return [
        name
        for tool in request.get("tools") or ()
        if isinstance(tool, dict)
        for name in _offered(tool)
    ]


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def find_tool(part: str) -> Finder:
    """A finder of the first offered tool whose name contains ``part``."""
    words = re.compile(r"[A-Za-z0-9_.:-]*" + re.escape(part) + r"[A-Za-z0-9_.:-]*")

    def find(request: dict[str, Any]) -> str | None:
        names = tool_names(request)
        offered = [name for name in names if part in name]
        if offered or not names:  # a request that offers no tools at all calls none
            return offered[0] if offered else None
        found = [word for text in _strings(request) for word in words.findall(text)]
        return found[0] if found else None

    return find


@dataclass
class ToolScript:
    """Call the tool ``tool`` names (a part of its name, or a finder) with ``arguments``, then
    say ``final``. ``calls`` records the tool names the fake called, in order."""

    tool: str | Finder
    arguments: dict[str, Any]
    final: str
    calls: list[str] = field(default_factory=list)

    def events(
        self,
        path: str,
        model: str,
        ident: str,
        request: dict[str, Any],
        usage: FakeUsage = FakeUsage(),
    ) -> Iterator[bytes]:
        """The streamed answer to ``request`` at ``path``: a tool call or the final text, which
        reports ``usage``."""
        name = None if CALL_ID in json.dumps(request) else self._find(request)
        counted = Counted(usage, include_usage(request))
        if name is None:
            return TEXT[path](model, ident, self.final, counted)
        self.calls.append(name)
        return CALL[path](model, ident, name, json.dumps(self.arguments), counted)

    def _find(self, request: dict[str, Any]) -> str | None:
        return find_tool(self.tool)(request) if isinstance(self.tool, str) else self.tool(request)


@dataclass(frozen=True)
class Counted:
    """The usage an answer reports, and whether a Chat Completions stream ends with it."""

    usage: FakeUsage = FakeUsage()
    chunk: bool = False


# --- Anthropic Messages ------------------------------------------------------------------------


def message_start(model: str, ident: str, usage: FakeUsage = FakeUsage()) -> bytes:
    """Anthropic's ``message_start`` event of an empty assistant message (its usage: the
    input tokens, one output token)."""
    message: dict[str, Any] = {
        "id": f"msg_{ident}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage.anthropic(output=1),
    }
    return sse({"type": "message_start", "message": message}, "message_start")


def message_delta(stop_reason: str, usage: FakeUsage) -> bytes:
    """Anthropic's ``message_delta`` event that ends a message, with its output tokens."""
    end = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}}
    return sse({**end, "usage": {"output_tokens": usage.output}}, "message_delta")


def _message_end(stop_reason: str, usage: FakeUsage) -> Iterator[bytes]:
    yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    yield message_delta(stop_reason, usage)
    yield sse({"type": "message_stop"}, "message_stop")


def _message_text(model: str, ident: str, text: str, counted: Counted) -> Iterator[bytes]:
    yield message_start(model, ident, counted.usage)
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    yield sse(block, "content_block_start")
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    }
    yield sse(delta, "content_block_delta")
    yield from _message_end("end_turn", counted.usage)


def _message_call(
    model: str, ident: str, name: str, arguments: str, counted: Counted
) -> Iterator[bytes]:
    yield message_start(model, ident, counted.usage)
    use = {"type": "tool_use", "id": CALL_ID, "name": name, "input": {}}
    yield sse(
        {"type": "content_block_start", "index": 0, "content_block": use}, "content_block_start"
    )
    delta = {"type": "input_json_delta", "partial_json": arguments}
    yield sse({"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta")
    yield from _message_end("tool_use", counted.usage)


# --- OpenAI Responses --------------------------------------------------------------------------


def _response(
    model: str, ident: str, status: str, output: list[dict[str, Any]], usage: FakeUsage
) -> dict[str, Any]:
    return {
        "id": f"resp_{ident}",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": status,
        "model": model,
        "output": output,
        "usage": usage.responses() if status == "completed" else None,
    }


def _response_item(
    model: str, ident: str, item: dict[str, Any], usage: FakeUsage
) -> Iterator[bytes]:
    """``response.created``, the item added and done, ``response.completed``."""
    started = _response(model, ident, "in_progress", [], usage)
    created = {"type": "response.created", "response": started}
    yield sse(created, "response.created")
    added = {"type": "response.output_item.added", "output_index": 0, "item": item}
    yield sse(added, "response.output_item.added")
    done = {"type": "response.output_item.done", "output_index": 0, "item": item}
    yield sse(done, "response.output_item.done")
    completed = _response(model, ident, "completed", [item], usage)
    yield sse({"type": "response.completed", "response": completed}, "response.completed")


def _response_text(model: str, ident: str, text: str, counted: Counted) -> Iterator[bytes]:
    content = [{"type": "output_text", "text": text, "annotations": []}]
    item = {"id": f"msg_{ident}", "type": "message", "status": "completed", "role": "assistant"}
    return _response_item(model, ident, {**item, "content": content}, counted.usage)


def _response_call(
    model: str, ident: str, name: str, arguments: str, counted: Counted
) -> Iterator[bytes]:
    namespace, _, short = name.rpartition("/")
    item: dict[str, Any] = {
        "id": f"fc_{ident}",
        "type": "function_call",
        "status": "completed",
        "call_id": CALL_ID,
        "name": short,
        "arguments": arguments,
    }
    if namespace:  # a tool of a namespace (how Codex offers MCP tools) is called with it
        item["namespace"] = namespace
    return _response_item(model, ident, item, counted.usage)


# --- Chat Completions --------------------------------------------------------------------------


def chat_chunk(
    model: str, ident: str, delta: dict[str, Any], finish: str | None, counted: Counted
) -> bytes:
    """One Chat Completions chunk (with ``"usage": null`` when the stream ends with usage)."""
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    base = {"id": f"chatcmpl-{ident}", "object": "chat.completion.chunk", "created": 1_700_000_000}
    usage: dict[str, Any] = {"usage": None} if counted.chunk else {}
    return sse({**base, "model": model, "choices": [choice], **usage})


def chat_end(model: str, ident: str, counted: Counted) -> Iterator[bytes]:
    """The end of a Chat Completions stream: the usage chunk when asked for, ``[DONE]``."""
    if counted.chunk:
        base = {"id": f"chatcmpl-{ident}", "object": "chat.completion.chunk"}
        yield sse({**base, "created": 1_700_000_000, "model": model, "choices": [],
                   "usage": counted.usage.chat()})  # fmt: skip
    yield sse("[DONE]")


def _chat_text(model: str, ident: str, text: str, counted: Counted) -> Iterator[bytes]:
    yield chat_chunk(model, ident, {"role": "assistant", "content": text}, None, counted)
    yield chat_chunk(model, ident, {}, "stop", counted)
    yield from chat_end(model, ident, counted)


def _chat_call(
    model: str, ident: str, name: str, arguments: str, counted: Counted
) -> Iterator[bytes]:
    call = {"index": 0, "id": CALL_ID, "type": "function"}
    start = {**call, "function": {"name": name, "arguments": ""}}
    opening = {"role": "assistant", "content": None, "tool_calls": [start]}
    yield chat_chunk(model, ident, opening, None, counted)
    more = {"index": 0, "function": {"arguments": arguments}}
    yield chat_chunk(model, ident, {"tool_calls": [more]}, None, counted)
    yield chat_chunk(model, ident, {}, "tool_calls", counted)
    yield from chat_end(model, ident, counted)


TEXT: dict[str, Callable[[str, str, str, Counted], Iterator[bytes]]] = {
    "/v1/messages": _message_text,
    "/v1/responses": _response_text,
    "/v1/chat/completions": _chat_text,
}
CALL: dict[str, Callable[[str, str, str, str, Counted], Iterator[bytes]]] = {
    "/v1/messages": _message_call,
    "/v1/responses": _response_call,
    "/v1/chat/completions": _chat_call,
}
