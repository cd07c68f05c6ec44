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

    def events(self, path: str, model: str, ident: str, request: dict[str, Any]) -> Iterator[bytes]:
        """The streamed answer to ``request`` at ``path``: a tool call or the final text."""
        name = None if CALL_ID in json.dumps(request) else self._find(request)
        if name is None:
            return TEXT[path](model, ident, self.final)
        self.calls.append(name)
        return CALL[path](model, ident, name, json.dumps(self.arguments))

    def _find(self, request: dict[str, Any]) -> str | None:
        return find_tool(self.tool)(request) if isinstance(self.tool, str) else self.tool(request)


# --- Anthropic Messages ------------------------------------------------------------------------


def message_start(model: str, ident: str) -> bytes:
    """Anthropic's ``message_start`` event of an empty assistant message."""
    message: dict[str, Any] = {
        "id": f"msg_{ident}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }
    return sse({"type": "message_start", "message": message}, "message_start")


def _message_end(stop_reason: str) -> Iterator[bytes]:
    yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    end = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}}
    yield sse({**end, "usage": {"output_tokens": 5}}, "message_delta")
    yield sse({"type": "message_stop"}, "message_stop")


def _message_text(model: str, ident: str, text: str) -> Iterator[bytes]:
    yield message_start(model, ident)
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
    yield from _message_end("end_turn")


def _message_call(model: str, ident: str, name: str, arguments: str) -> Iterator[bytes]:
    yield message_start(model, ident)
    use = {"type": "tool_use", "id": CALL_ID, "name": name, "input": {}}
    yield sse(
        {"type": "content_block_start", "index": 0, "content_block": use}, "content_block_start"
    )
    delta = {"type": "input_json_delta", "partial_json": arguments}
    yield sse({"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta")
    yield from _message_end("tool_use")


# --- OpenAI Responses --------------------------------------------------------------------------


def _response(model: str, ident: str, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": f"resp_{ident}",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": status,
        "model": model,
        "output": output,
        "usage": {
            "input_tokens": 10,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 15,
        },
    }


def _response_item(model: str, ident: str, item: dict[str, Any]) -> Iterator[bytes]:
    """``response.created``, the item added and done, ``response.completed``."""
    created = {"type": "response.created", "response": _response(model, ident, "in_progress", [])}
    yield sse(created, "response.created")
    added = {"type": "response.output_item.added", "output_index": 0, "item": item}
    yield sse(added, "response.output_item.added")
    done = {"type": "response.output_item.done", "output_index": 0, "item": item}
    yield sse(done, "response.output_item.done")
    completed = _response(model, ident, "completed", [item])
    yield sse({"type": "response.completed", "response": completed}, "response.completed")


def _response_text(model: str, ident: str, text: str) -> Iterator[bytes]:
    content = [{"type": "output_text", "text": text, "annotations": []}]
    item = {"id": f"msg_{ident}", "type": "message", "status": "completed", "role": "assistant"}
    return _response_item(model, ident, {**item, "content": content})


def _response_call(model: str, ident: str, name: str, arguments: str) -> Iterator[bytes]:
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
    return _response_item(model, ident, item)


# --- Chat Completions --------------------------------------------------------------------------


def _chunk(model: str, ident: str, delta: dict[str, Any], finish: str | None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    base = {"id": f"chatcmpl-{ident}", "object": "chat.completion.chunk", "created": 1_700_000_000}
    return sse({**base, "model": model, "choices": [choice]})


def _chat_text(model: str, ident: str, text: str) -> Iterator[bytes]:
    yield _chunk(model, ident, {"role": "assistant", "content": text}, None)
    yield _chunk(model, ident, {}, "stop")
    yield sse("[DONE]")


def _chat_call(model: str, ident: str, name: str, arguments: str) -> Iterator[bytes]:
    call = {"index": 0, "id": CALL_ID, "type": "function"}
    start = {**call, "function": {"name": name, "arguments": ""}}
    yield _chunk(model, ident, {"role": "assistant", "content": None, "tool_calls": [start]}, None)
    more = {"index": 0, "function": {"arguments": arguments}}
    yield _chunk(model, ident, {"tool_calls": [more]}, None)
    yield _chunk(model, ident, {}, "tool_calls")
    yield sse("[DONE]")


TEXT: dict[str, Callable[[str, str, str], Iterator[bytes]]] = {
    "/v1/messages": _message_text,
    "/v1/responses": _response_text,
    "/v1/chat/completions": _chat_text,
}
CALL: dict[str, Callable[[str, str, str, str], Iterator[bytes]]] = {
    "/v1/messages": _message_call,
    "/v1/responses": _response_call,
    "/v1/chat/completions": _chat_call,
}
