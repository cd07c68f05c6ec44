"""Grants (issue #20, acceptance 3): approving with `--for 5m --match ARG=GLOB` lets the same
action with matching arguments run without asking, a non-matching one still waits, and once
the grant expires (or is revoked) it waits again; each automatic approval is audited with its
grant. The expiry of a real five-minute grant is proved on the store with an injected clock;
against a real daemon, with a grant of a few seconds (no timing threshold: the test polls
`approval grants` until the grant is gone, then asks again)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from approvals.policy_support import (
    PENDING,
    audit,
    cli_json,
    daemon_with,
    echoed,
    env,
    install,
    poll,
    request,
    run,
    show,
)
from helpers import aileron

from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.grants import GrantStore, GrantTerms, covers
from aileron_cli.examples.echo_server import EchoServer
from aileron_core.models import Approval, Grant
from aileron_core.paths import Layout

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def grant_on(approval_id: str, *options: str) -> str:
    """`approval approve ID --yes OPTIONS`: it runs; the new grant's id."""
    approved = aileron("approval", "approve", approval_id, "--yes", *options, env=env())
    assert approved.returncode == 0, approved.stderr
    assert "granted for" in approved.stdout
    [grant] = [g for g in cli_json("approval", "grants") if g["approval_id"] == approval_id]
    return str(grant["id"])


def test_a_five_minute_grant_runs_matching_requests_and_not_others(
    layout: Layout, echo: EchoServer, tmp_path: Path
) -> None:
    """After `approve --for 5m --match 'message=hello*'`, "hello again" runs at once (200, no
    approval waits) and is audited `approval.auto_approved` with the grant; "goodbye" still
    waits; after `grants --revoke` "hello there" waits again."""
    with daemon_with(layout, ""):
        install(tmp_path, echo)
        first = request("hello world")["approval_id"]
        grant_id = grant_on(first, "--for", "5m", "--match", "message=hello*")
        code, answer, stderr = run("hello again")
        assert code == 0, (answer, stderr)
        assert answer["result"] is not None and "approval_id" not in answer
        waits = request("goodbye")
        assert show(waits["approval_id"])["status"] == "pending"
        [auto] = [r for r in audit() if r["type"] == "approval.auto_approved"]
        assert auto["payload"]["grant"] == grant_id
        assert auto["payload"]["match"] == {"message": "hello*"}
        ran = show(auto["payload"]["approval_id"])
        assert ran["status"] == "succeeded" and ran["decided_by"] == f"grant {grant_id}"
        revoked = aileron("approval", "grants", "--revoke", grant_id, env=env())
        assert revoked.returncode == 0, revoked.stderr
        assert cli_json("approval", "grants") == []
        request("hello there")
        assert "grant.revoked" in {r["type"] for r in audit()}
    assert echoed(echo) == ["hello world", "hello again"]


def test_after_a_grant_expires_the_same_request_waits_again(
    layout: Layout, echo: EchoServer, tmp_path: Path
) -> None:
    """A grant `--for 2s` (without --match: the same arguments only) runs the same request
    while it lasts; once `approval grants` no longer lists it, the same request waits."""
    with daemon_with(layout, ""):
        install(tmp_path, echo)
        grant_on(request("same")["approval_id"], "--for", "2s")
        code, answer, stderr = run("same")
        if code == 0:  # the grant was still live: it ran without asking
            assert answer["result"] is not None and "approval_id" not in answer
        else:  # a slow machine: the two seconds were over already
            assert code == PENDING, stderr
        request("other")  # not the approved arguments: waits
        poll(lambda: cli_json("approval", "grants"), lambda grants: grants == [])
        request("same")
        every = cli_json("approval", "grants", "--all")
        assert len(every) == 1 and every[0]["expires_at"] is not None


def test_a_session_grant_needs_a_session_and_a_bad_grant_leaves_it_pending(
    layout: Layout, echo: EchoServer, tmp_path: Path
) -> None:
    """`--for session` on an approval made outside any agent session, `--match` naming no
    argument, or `--match` without `--for` is refused; the approval stays pending, nothing ran."""
    with daemon_with(layout, ""):
        install(tmp_path, echo)
        approval_id = request("careful")["approval_id"]
        for options, said in (
            (("--for", "session"), "not requested in an agent session"),
            (("--for", "5m", "--match", "nope=*"), "not an argument"),
            (("--match", "message=*"), "--match needs --for"),
            (("--for", "5 minutes"), "invalid"),
        ):
            refused = aileron("approval", "approve", approval_id, "--yes", *options, env=env())
            assert refused.returncode != 0, options
            assert said in refused.stderr, (options, refused.stderr)
        assert show(approval_id)["status"] == "pending"
        assert cli_json("approval", "grants") == []
    assert echoed(echo) == []


def approval(args: dict[str, Any], session_id: str | None = "ses_1") -> Approval:
    return Approval(
        id="apr_1",
        kind="action",
        target="echo-careful",
        args=args,
        args_sha256="x",
        created_at=T0,
        session_id=session_id,
        plan_sha256="plan",
    )


def test_a_five_minute_grant_expires_after_five_minutes(tmp_path: Path) -> None:
    """With an injected clock: a `5m` grant covers the request at 4 min 59 s, not at 5 min;
    it survives a restart of the store (grants.jsonl) until then."""
    now = [T0]
    store = GrantStore.open(tmp_path / "grants.jsonl", clock=lambda: now[0])
    store.add(approval({"message": "hi"}), "human", GrantTerms.parse("5m", {}))
    again = GrantStore.open(tmp_path / "grants.jsonl", clock=lambda: now[0])
    now[0] = T0 + timedelta(minutes=4, seconds=59)
    assert again.find("echo-careful", "ses_2", {"message": "hi"}, "plan") is not None
    now[0] = T0 + timedelta(minutes=5)
    assert again.find("echo-careful", "ses_2", {"message": "hi"}, "plan") is None
    assert again.list() == []


def test_a_grant_covers_only_its_target_plan_session_and_arguments(tmp_path: Path) -> None:
    """A session grant covers its own session only; no grant covers another target or a
    changed plan (ADR 0016); arguments not named by --match must be equal."""
    store = GrantStore.open(tmp_path / "grants.jsonl", clock=lambda: T0)
    store.add(approval({"message": "hi", "n": 1}), "human", GrantTerms.parse("session", {}))
    assert store.find("echo-careful", "ses_1", {"message": "hi", "n": 1}, "plan") is not None
    assert store.find("echo-careful", "ses_2", {"message": "hi", "n": 1}, "plan") is None
    assert store.find("echo-careful", None, {"message": "hi", "n": 1}, "plan") is None
    assert store.find("echo-other", "ses_1", {"message": "hi", "n": 1}, "plan") is None
    assert store.find("echo-careful", "ses_1", {"message": "hi", "n": 1}, "other") is None
    assert store.find("echo-careful", "ses_1", {"message": "hi", "n": 2}, "plan") is None
    assert store.find("echo-careful", "ses_1", {"message": "hi"}, "plan") is None


def test_match_globs_widen_only_the_named_arguments() -> None:
    """`match` lets a named argument take any value its glob matches (case-sensitive; other
    types as canonical JSON); every other argument must equal the approved one; an extra or
    missing argument is not covered."""
    grant = Grant(
        id="grt_1",
        kind="action",
        target="t",
        args={"path": "docs/a.md", "mode": "w", "n": 1},
        match={"path": "docs/*", "n": "[0-9]"},
        plan_sha256="p",
        approval_id="apr_1",
        granted_by="human",
        created_at=T0,
    )
    assert covers(grant, {"path": "docs/b/c.md", "mode": "w", "n": 7})
    assert not covers(grant, {"path": "Docs/b.md", "mode": "w", "n": 7})
    assert not covers(grant, {"path": "src/x.py", "mode": "w", "n": 7})
    assert not covers(grant, {"path": "docs/b.md", "mode": "a", "n": 7})
    assert not covers(grant, {"path": "docs/b.md", "mode": "w", "n": 10})
    assert not covers(grant, {"path": "docs/b.md", "mode": "w"})
    assert not covers(grant, {"path": "docs/b.md", "mode": "w", "n": 1, "extra": 1})


def test_terms_refuse_what_cannot_be_granted(tmp_path: Path) -> None:
    """A duration that is not "<N>s|m|h" or "session", and a match naming no argument, are
    `invalid_grant`."""
    store = GrantStore.open(tmp_path / "grants.jsonl", clock=lambda: T0)
    for bad in ("5", "5d", "-5m", "soon"):
        with pytest.raises(DaemonError) as raised:
            GrantTerms.parse(bad, {})
        assert raised.value.code == "invalid_grant"
    with pytest.raises(DaemonError) as raised:
        store.add(approval({"message": "hi"}), "human", GrantTerms.parse("5m", {"nope": "*"}))
    assert raised.value.code == "invalid_grant"
    assert store.list(all=True) == []
