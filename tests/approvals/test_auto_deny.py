"""Auto-deny rules (issue #20): `[[approvals.deny]]` in config.toml denies matching requests at
once, without asking anyone; the agent is told which rule; the approval is recorded `denied`
and the audit names the rule; a request the rule does not match still waits for a human."""

from __future__ import annotations

from pathlib import Path

import pytest
from approvals.policy_support import audit, cli_json, daemon_with, echoed, request, run
from approvals.policy_support import install as install_echo

from aileron_cli.approvals_config import DenyRule, parse_approvals_config
from aileron_cli.daemon.run.policy import denying_rule
from aileron_cli.examples.echo_server import EchoServer
from aileron_core.errors import ConfigError
from aileron_core.paths import Layout

CONFIG = """
[[approvals.deny]]
target = "echo-*"
match = { message = "*rm -rf*" }
reason = "never destructive commands"
"""


def test_a_request_matching_a_deny_rule_is_denied_at_once_and_audited(
    layout: Layout, echo: EchoServer, tmp_path: Path
) -> None:
    """ "please rm -rf /" is refused at once (403 approval_denied naming approvals.deny[1] and
    its reason), recorded as a denied approval decided by the rule, audited
    `approval.auto_denied` with the rule; "hello" still waits; nothing was sent."""
    with daemon_with(layout, CONFIG):
        install_echo(tmp_path, echo)
        code, _, stderr = run("please rm -rf /")
        assert code != 0
        assert "approvals.deny[1]" in stderr and "never destructive commands" in stderr
        [denied] = cli_json("approval", "list", "--status", "denied")
        assert denied["args"] == {"message": "please rm -rf /"}
        assert denied["decided_by"] == "rule approvals.deny[1]"
        assert denied["reason"] == "never destructive commands"
        [record] = [r for r in audit() if r["type"] == "approval.auto_denied"]
        assert record["payload"]["approval_id"] == denied["id"]
        assert record["payload"]["rule"] == "approvals.deny[1]"
        assert record["payload"]["target"] == "echo-*"
        assert record["payload"]["match"] == {"message": "*rm -rf*"}
        request("hello")
    assert echoed(echo) == []


def test_the_first_matching_rule_decides() -> None:
    """Rules are tried in file order; a rule matches by target glob and every named argument's
    glob (an absent argument does not match; a number is matched as its JSON text)."""
    rules = parse_approvals_config(
        {
            "approvals": {
                "deny": [
                    {"target": "github.com/* repos delete", "match": {"repo": "prod-*"}},
                    {"target": "deploy", "match": {"replicas": "1?"}},
                    {"target": "github.com/*"},
                ]
            }
        },
        "c",
    ).deny
    first, second, third = rules
    assert denying_rule(rules, "github.com/acme repos delete", {"repo": "prod-db"}) == first
    assert denying_rule(rules, "github.com/acme repos delete", {"repo": "dev"}) == third
    assert denying_rule(rules, "deploy", {"replicas": 12}) == second
    assert denying_rule(rules, "deploy", {"replicas": 2}) is None
    assert denying_rule(rules, "deploy", {}) is None
    assert denying_rule(rules, "echo-careful", {"repo": "prod-db"}) is None
    assert third == DenyRule(index=3, target="github.com/*")


@pytest.mark.parametrize(
    "rule",
    [
        {},
        {"target": ""},
        {"target": "x", "match": {"a": 1}},
        {"target": "x", "match": "a=*"},
        {"target": "x", "reason": 5},
        {"target": "x", "unknown": True},
    ],
)
def test_a_malformed_deny_rule_is_a_config_error(rule: dict[str, object]) -> None:
    """A deny rule without a target glob, with a match that is not argument = "glob", a reason
    that is not text, or an unknown key is a ConfigError naming approvals.deny[1]."""
    with pytest.raises(ConfigError, match=r"approvals\.deny\[1\]"):
        parse_approvals_config({"approvals": {"deny": [rule]}}, "c")
