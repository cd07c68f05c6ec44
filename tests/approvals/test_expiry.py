"""Pending approvals expire (issue #20, acceptance 3): ``[approvals] expire_after`` in
config.toml, counted as denied, audited with its rule, reported to the agent with the page
link while it waits and as expired afterwards."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from approvals.policy_support import (
    audit,
    daemon_with,
    echoed,
    env,
    install,
    poll,
    request,
    show,
)
from helpers import aileron
from mcp import types

from aileron_cli.approvals_config import parse_approvals_config
from aileron_cli.examples.echo_server import EchoServer
from aileron_core.errors import ConfigError
from aileron_core.paths import Layout
from aileron_mcp.tools import approval_result, run_result


def text_of(result: types.CallToolResult) -> str:
    [block] = result.content
    assert isinstance(block, types.TextContent)
    return block.text


def test_an_unanswered_approval_expires_is_denied_and_audited(
    layout: Layout, echo: EchoServer, tmp_path: Path
) -> None:
    """With expire_after = "2s" an approval nobody decides becomes `expired`; approving it
    afterwards is refused (409 approval_expired); nothing ran; `approval.expired` names the
    rule; MCP's check_action_status reports the expiry as an error result."""
    with daemon_with(layout, '[approvals]\nexpire_after = "2s"\n'):
        install(tmp_path, echo)
        approval_id = request("nobody answers")["approval_id"]
        expired = poll(lambda: show(approval_id), lambda a: a["status"] != "pending")
        assert expired["status"] == "expired"
        assert expired["decided_by"] == "rule approvals.expire_after"
        late = aileron("approval", "approve", approval_id, "--yes", env=env())
        assert late.returncode != 0
        assert "expired" in late.stderr
        assert show(approval_id)["status"] == "expired"
        records = audit()
        [record] = [r for r in records if r["type"] == "approval.expired"]
        assert record["payload"]["approval_id"] == approval_id
        assert record["payload"]["rule"] == "approvals.expire_after"
        assert record["payload"]["expire_after"] == "2s"
        assert "execution.started" not in {r["type"] for r in records}
        status = approval_result(expired)
        assert status.is_error is True
        assert f"approval {approval_id} for echo-careful: expired" in text_of(status)
        assert "nothing ran" in text_of(status)
    assert echoed(echo) == []


def test_the_pending_answer_and_check_action_status_carry_the_page_link(
    layout: Layout, echo: EchoServer, tmp_path: Path
) -> None:
    """The run's 202 answer, GET /v1/approvals/{id} and both MCP texts (the tool's pending
    answer, check_action_status) name http://127.0.0.1:PORT/ui/approvals/{id} on the daemon's
    own TCP address; with the default expiry (30 min) it stays pending meanwhile."""
    with daemon_with(layout, "") as info:
        install(tmp_path, echo)
        answer = request("where do I approve?")
        approval_id = answer["approval_id"]
        link = f"{info.url}/ui/approvals/{approval_id}"
        assert info.url.startswith("http://127.0.0.1:")
        assert answer["link"] == link
        assert link in answer["message"]
        shown = show(approval_id)
        assert shown["status"] == "pending"
        assert shown["link"] == link
        assert link in text_of(run_result(answer))
        assert link in text_of(approval_result(shown))
    assert echoed(echo) == []


def test_expire_after_is_read_from_config_toml() -> None:
    """expire_after defaults to 30 minutes, takes "<N>s|m|h", "0" turns it off, and anything
    else is a ConfigError naming the setting."""
    assert parse_approvals_config({}, "c").expire_after == timedelta(minutes=30)
    assert parse_approvals_config(_expiry("90s"), "c").expire_after == timedelta(seconds=90)
    assert parse_approvals_config(_expiry("2h"), "c").expire_after == timedelta(hours=2)
    assert parse_approvals_config(_expiry("0"), "c").expire_after is None
    for bad in ("30", "-5m", "5 m", "1d", "0m", "", "\u0665m"):
        with pytest.raises(ConfigError, match="approvals.expire_after"):
            parse_approvals_config(_expiry(bad), "c")
    with pytest.raises(ConfigError, match="approvals.expire_after"):
        parse_approvals_config({"approvals": {"expire_after": 30}}, "c")


def _expiry(text: str) -> dict[str, Any]:
    return {"approvals": {"expire_after": text}}
