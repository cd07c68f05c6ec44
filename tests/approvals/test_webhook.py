"""The daemon announces each new pending approval: `[approvals] webhook` gets its summary (never
its arguments) without holding the request, a failing webhook is logged and audited, and with
`notify = true` a desktop notification goes through the notifier on PATH."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from actions.support import SECRET, echo_spec, manifest
from fakes.webhook import FakeWebhook
from fastapi.testclient import TestClient

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.__about__ import __version__
from aileron_core.paths import Layout

MASTER = "aim_webhook-test-master-token"  # noqa: S105 (a test's own token)
MESSAGE = "the-argument-value-7c1e"


def daemon(layout: Layout, config: str) -> TestClient:
    """The daemon in-process with ``config`` as its config.toml."""
    from aileron_cli.daemon.daemon import DaemonConfig, create_app
    from aileron_core.vault import KdfParams

    layout.ensure()
    layout.config.write_text(config)
    settings = DaemonConfig(
        layout=layout,
        version=__version__,
        master_token=MASTER,
        url="http://127.0.0.1:4711",
        kdf=KdfParams(time_cost=1, memory_kib=64, parallelism=1),
    )
    headers = {"Authorization": f"Bearer {MASTER}", "X-Aileron-Version": __version__}
    return TestClient(create_app(settings), base_url="http://t/v1/", headers=headers)


def install(api: TestClient, echo: EchoServer) -> None:
    assert api.post("vault/init", json={"passphrase": "pw"}).status_code == 201
    assert api.post("connectors", json={"spec": echo_spec(echo.host)}).status_code == 201
    assert api.post("actions", json={"manifest": manifest("echo-careful")}).status_code == 201
    added = api.post("bindings", json={"name": "token/echo/default", "value": SECRET})
    assert added.status_code == 201, added.text


def ask(api: TestClient) -> str:
    """Run the gated action: it waits for approval; the approval's id."""
    pending = api.post("actions/echo-careful/run", json={"args": {"message": MESSAGE}})
    assert pending.status_code == 202, pending.text
    return str(pending.json()["approval_id"])


def audited(api: TestClient, kind: str, count: int = 1) -> list[dict[str, Any]]:
    """The first ``count`` audit records of ``kind``, once written (the notices are sent after
    the request is answered)."""
    deadline = time.monotonic() + 30
    while True:
        records = [r for r in api.get("audit", params={"limit": 1000}).json() if r["type"] == kind]
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


@pytest.fixture
def hook() -> Iterator[FakeWebhook]:
    with FakeWebhook() as server:
        yield server


def test_webhook_gets_the_summary_and_never_the_arguments(
    layout: Layout, echo: EchoServer, hook: FakeWebhook
) -> None:
    """A new pending approval is POSTed as id, target, kind, session, agent, time and link —
    the argument's value appears nowhere in what the webhook receives."""
    with daemon(layout, f'[approvals]\nwebhook = "{hook.url}"\n') as api:
        install(api, echo)
        approval_id = ask(api)
        (post,) = hook.wait_for(1)
    assert post["path"] == "/hooks/T0/B0/secretpath"
    assert post["headers"]["Content-Type"] == "application/json"
    assert MESSAGE not in post["body"].decode()
    payload = json.loads(post["body"])
    assert sorted(payload) == sorted(
        ["id", "target", "kind", "session_id", "agent", "created_at", "link"]
    )
    assert payload["id"] == approval_id
    assert payload["target"] == "echo-careful"
    assert payload["kind"] == "action"
    assert payload["session_id"] is None and payload["agent"] is None
    assert payload["link"] == f"http://127.0.0.1:4711/ui/approvals/{approval_id}"


def test_one_post_per_approval_and_none_for_decisions(
    layout: Layout, echo: EchoServer, hook: FakeWebhook
) -> None:
    """Deciding an approval (a save of another status) sends nothing; a second request does."""
    with daemon(layout, f'[approvals]\nwebhook = "{hook.url}"\n') as api:
        install(api, echo)
        first = ask(api)
        hook.wait_for(1)
        assert api.post(f"approvals/{first}/decide", json={"approved": False}).status_code == 200
        second = ask(api)
        hook.wait_for(2)
    assert [hook.payload(0)["id"], hook.payload(1)["id"]] == [first, second]
    assert len(hook.posts) == 2


def test_a_webhook_that_does_not_answer_does_not_hold_the_request(
    layout: Layout, echo: EchoServer
) -> None:
    """The webhook holds its answer until the agent's request has been answered 202: the
    request never waits for the webhook."""
    with (
        FakeWebhook(hold=True) as held,
        daemon(layout, f'[approvals]\nwebhook = "{held.url}"\n') as api,
    ):
        install(api, echo)
        approval_id = ask(api)
        held.wait_for(1)
        assert held.answered == 0  # the agent had its answer while the webhook still held
        assert held.payload(0)["id"] == approval_id
        held.release()


@pytest.mark.parametrize("dead", ["refused", "500"])
def test_a_failing_webhook_is_audited_without_its_url(
    layout: Layout, echo: EchoServer, dead: str
) -> None:
    """A refused connection or a 500 is audited `approval.webhook_failed` with the approval and
    the host — never the URL's path, which is the chat tool's credential."""
    if dead == "refused":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        url = f"http://127.0.0.1:{port}/hooks/T0/B0/secretpath"
        context: Any = None
    else:
        context = FakeWebhook(status=500).__enter__()
        url = context.url
    try:
        with daemon(layout, f'[approvals]\nwebhook = "{url}"\n') as api:
            install(api, echo)
            approval_id = ask(api)
            (record,) = audited(api, "approval.webhook_failed")
            assert api.get(f"approvals/{approval_id}").json()["status"] == "pending"
    finally:
        if context is not None:
            context.__exit__(None, None, None)
    assert record["actor"] == {"type": "service", "id": "aileron-daemon"}
    assert record["payload"]["approval_id"] == approval_id
    assert record["payload"]["host"] == "127.0.0.1"
    if dead == "500":
        assert record["payload"]["reason"] == "answered 500"
    else:
        assert "ConnectError" in record["payload"]["reason"]
    assert "secretpath" not in json.dumps(record)


def test_no_webhook_configured_sends_nothing(
    layout: Layout, echo: EchoServer, hook: FakeWebhook
) -> None:
    """Without `[approvals] webhook` nothing is posted and nothing is audited as failed."""
    with daemon(layout, "") as api:
        install(api, echo)
        ask(api)
        assert api.get("audit", params={"limit": 1000}).status_code == 200
        records = api.get("audit", params={"limit": 1000}).json()
    assert hook.posts == []
    assert [r for r in records if r["type"] == "approval.webhook_failed"] == []


def stand_in(folder: Path, name: str) -> Path:
    """An executable ``name`` in ``folder`` that appends its arguments (one JSON line) to
    ``name.log`` beside it."""
    log = folder / f"{name}.log"
    program = folder / name
    program.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return log


def calls(log: Path, count: int) -> list[list[str]]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if log.exists() and len(lines := log.read_text().splitlines()) >= count:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_notify_true_sends_a_desktop_notification_with_the_link(
    layout: Layout, echo: EchoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`notify = true`: the daemon runs notify-send (a stand-in on PATH) with the target and
    the approval's link, and not the arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = stand_in(bin_dir, "notify-send")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with daemon(layout, "[approvals]\nnotify = true\n") as api:
        install(api, echo)
        approval_id = ask(api)
        (argv,) = calls(log, 1)
    assert argv[:2] == ["--app-name=Aileron", "--"]
    title, body = argv[2:]
    assert "echo-careful" in title
    assert f"http://127.0.0.1:4711/ui/approvals/{approval_id}" in body
    assert MESSAGE not in title + body


def test_notify_off_by_default(
    layout: Layout, echo: EchoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `notify = true` the daemon runs no notifier, even one on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = stand_in(bin_dir, "notify-send")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with FakeWebhook() as hook, daemon(layout, f'[approvals]\nwebhook = "{hook.url}"\n') as api:
        install(api, echo)
        ask(api)
        hook.wait_for(1)  # the notifier has handled the approval
    assert not log.exists()
