"""How daemon actions and answers look as MCP tools and tool results.

Pure functions: no I/O, no policy. An action ``echo-say`` is the tool ``echo_say`` (action
names are kebab-case, so the mapping is exact both ways); its Markdown body is the tool's
description and the daemon's ``input_schema`` its ``inputSchema``. Beside the actions there is
one tool of this server's own, ``check_action_status``, which polls an approval.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from mcp import types

CHECK_STATUS = "check_action_status"
CHECK_STATUS_TOOL = types.Tool(
    name=CHECK_STATUS,
    description=(
        "Check an action that waited for a human's approval. Pass the approval id that the"
        " action's answer named; the answer is the approval's status (pending, approved,"
        " denied, running, succeeded or failed) and, once it has run, the action's result."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "approval_id": {
                "type": "string",
                "description": "The approval id returned when the action needed approval.",
            }
        },
        "required": ["approval_id"],
        "additionalProperties": False,
    },
    annotations=types.ToolAnnotations(read_only_hint=True, idempotent_hint=True),
)

Fingerprint = tuple[tuple[str, str, str], ...]


def tool_name(action: str) -> str:
    """The MCP tool name of an action (``echo-say`` → ``echo_say``)."""
    return action.replace("-", "_")


def action_name(tool: str) -> str:
    """The action a tool name stands for (``echo_say`` → ``echo-say``)."""
    return tool.replace("_", "-")


def action_tools(actions: Iterable[Mapping[str, Any]]) -> list[types.Tool]:
    """One tool per enabled action of a ``GET /v1/actions`` answer, then ``check_action_status``.

    An action whose tool name would shadow ``check_action_status`` is left out.
    """
    tools = [
        types.Tool(
            name=tool_name(str(action["name"])),
            description=str(action.get("description") or ""),
            input_schema=dict(action["input_schema"]),
        )
        for action in actions
        if action.get("enabled") and tool_name(str(action["name"])) != CHECK_STATUS
    ]
    return [*tools, CHECK_STATUS_TOOL]


def fingerprint(tools: Iterable[types.Tool]) -> Fingerprint:
    """What a client sees of a tool list; two lists with equal fingerprints are the same."""
    return tuple(
        sorted(
            (t.name, t.description or "", json.dumps(t.input_schema, sort_keys=True)) for t in tools
        )
    )


def as_text(value: Any) -> str:
    """A result as text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def text_result(text: str, *, error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=error)


def run_result(answer: Mapping[str, Any]) -> types.CallToolResult:
    """The tool result of a ``POST /v1/actions/{name}/run`` success (200) or pending (202)."""
    if answer.get("status") == "pending_approval":
        approval_id = str(answer["approval_id"])
        message = str(answer.get("message") or "")
        if approval_id not in message:
            message = f"{message} (approval id {approval_id})".strip()
        link = answer.get("link")
        if isinstance(link, str) and link and link not in message:
            message = f"{message}\nThe user can approve it at {link}"
        tail = f"\nlink: {link}" if isinstance(link, str) and link else ""
        return text_result(f"{message}\napproval_id: {approval_id}{tail}")
    return text_result(as_text(answer.get("result")))


def approval_result(approval: Mapping[str, Any]) -> types.CallToolResult:
    """The tool result of ``check_action_status`` for a ``GET /v1/approvals/{id}`` answer.

    A run that failed or was denied is an error result; anything else is normal content.
    """
    approval_id = approval.get("id")
    target = approval.get("target")
    status = approval.get("status")
    head = f"approval {approval_id} for {target}: {status}"
    if status == "succeeded":
        return text_result(f"{head}\nresult: {as_text(approval.get('result'))}")
    if status == "failed":
        error = approval.get("error") or {}
        message = error.get("message") if isinstance(error, Mapping) else None
        return text_result(f"{head}\nerror: {message or as_text(error)}", error=True)
    if status == "denied":
        reason = approval.get("reason")
        tail = f" (reason: {reason})" if reason else ""
        return text_result(f"{head}; the user declined to run it{tail}", error=True)
    if status == "expired":
        reason = approval.get("reason")
        tail = f" ({reason})" if reason else ""
        return text_result(
            f"{head}; nobody approved it in time{tail}, so it counts as denied and nothing ran."
            " Ask again only if the user still wants it.",
            error=True,
        )
    if status == "pending":
        link = approval.get("link")
        where = f" at {link} or" if isinstance(link, str) and link else ""
        return text_result(
            f"{head}; nothing has run yet. Ask the user to approve it{where} with `aileron"
            f" approval approve {approval_id}` (or deny it), then check again."
        )
    return text_result(f"{head}; it is being run now, check again shortly.")
