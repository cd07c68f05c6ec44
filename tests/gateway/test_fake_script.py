"""The fake provider's scripted tool loop, in each API's streaming shape."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fakes.provider import FakeProvider
from fakes.script import CALL_ID, ToolScript
from gateway.support import REAL_KEY

AUTH = {"Authorization": f"Bearer {REAL_KEY}"}


def events(fake: FakeProvider, path: str, body: dict[str, Any]) -> list[Any]:
    """The JSON payloads of a streamed answer (``[DONE]`` as the string)."""
    answer = httpx.post(f"{fake.url}{path}", json={**body, "stream": True}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    payloads = [line[6:] for line in answer.text.splitlines() if line.startswith("data: ")]
    return [p if p == "[DONE]" else json.loads(p) for p in payloads]


@pytest.fixture
def fake() -> Any:
    """A fake whose script calls the tool named like ``echo_say``, then says ``done``."""
    script = ToolScript(tool="echo_say", arguments={"message": "hi"}, final="done")
    with FakeProvider(REAL_KEY, script=script) as provider:
        yield provider


def test_anthropic_tool_use_then_text(fake: FakeProvider) -> None:
    """Messages: a tool_use block with input_json_delta and stop_reason tool_use; with the
    tool's result back, the final text with end_turn."""
    tools = [{"name": "Bash"}, {"name": "mcp__aileron__echo_say"}]
    first = events(fake, "/v1/messages", {"model": "m", "tools": tools, "messages": []})
    start = next(e for e in first if e["type"] == "content_block_start")
    assert start["content_block"] == {
        "type": "tool_use", "id": CALL_ID, "name": "mcp__aileron__echo_say", "input": {}
    }  # fmt: skip
    delta = next(e for e in first if e["type"] == "content_block_delta")["delta"]
    assert (delta["type"], json.loads(delta["partial_json"])) == (
        "input_json_delta",
        {"message": "hi"},
    )
    assert (
        next(e for e in first if e["type"] == "message_delta")["delta"]["stop_reason"] == "tool_use"
    )
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": CALL_ID}]}
    second = events(fake, "/v1/messages", {"model": "m", "tools": tools, "messages": [result]})
    texts = [e["delta"]["text"] for e in second if e["type"] == "content_block_delta"]
    assert texts == ["done"]
    assert (
        next(e for e in second if e["type"] == "message_delta")["delta"]["stop_reason"]
        == "end_turn"
    )
    assert fake.script is not None and fake.script.calls == ["mcp__aileron__echo_say"]


def test_responses_calls_a_namespaced_tool_with_its_namespace(fake: FakeProvider) -> None:
    """Responses: a tool inside a namespace (how Codex offers MCP tools) is called as a
    function_call naming the tool and its namespace; then the final text completes."""
    tools = [{"type": "namespace", "name": "mcp__aileron", "tools": [{"name": "echo_say"}]}]
    first = events(fake, "/v1/responses", {"model": "m", "tools": tools, "input": []})
    assert first[-1]["type"] == "response.completed"
    item = next(e for e in first if e["type"] == "response.output_item.done")["item"]
    assert (item["type"], item["namespace"], item["name"], item["call_id"]) == (
        "function_call", "mcp__aileron", "echo_say", CALL_ID
    )  # fmt: skip
    back = [{"type": "function_call_output", "call_id": CALL_ID, "output": "ok"}]
    second = events(fake, "/v1/responses", {"model": "m", "tools": tools, "input": back})
    done = second[-1]["response"]["output"][0]
    assert (done["type"], done["content"][0]["text"]) == ("message", "done")


def test_chat_tool_calls_then_text_and_a_toolless_request_gets_text(fake: FakeProvider) -> None:
    """Chat Completions: streamed tool_calls with finish_reason tool_calls; a request offering
    no tools (a side request, e.g. a title) gets the final text and calls nothing."""
    side = events(fake, "/v1/chat/completions", {"model": "m", "messages": []})
    assert side[0]["choices"][0]["delta"]["content"] == "done" and side[-1] == "[DONE]"
    tools = [{"type": "function", "function": {"name": "aileron_echo_say"}}]
    first = events(fake, "/v1/chat/completions", {"model": "m", "tools": tools, "messages": []})
    call = first[0]["choices"][0]["delta"]["tool_calls"][0]
    assert (call["id"], call["function"]["name"]) == (CALL_ID, "aileron_echo_say")
    arguments = first[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(arguments) == {"message": "hi"}
    assert first[2]["choices"][0]["finish_reason"] == "tool_calls"
    assert fake.script is not None and fake.script.calls == ["aileron_echo_say"]
