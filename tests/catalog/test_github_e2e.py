"""Issue #22, acceptance 1 (the run half): the catalog's GitHub connector and actions,
found with `aileron connector search` and installed with `aileron connector add --enable`
into a real daemon, run against a fake api.github.com served over TLS by a private
CA and reached through a CONNECT proxy (the pinned host, port 443, as in production): the fake
sees the injected token, the action's result comes back, and a merge waits for approval. The
same for Slack: reading a channel, and a post that waits for approval."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakes.github_api import GitHubApi, Repository
from fakes.slack_api import SlackApi
from fakes.tls_upstreams import TlsUpstream
from helpers import admin_http, aileron, kill_daemon
from network_support import ConnectProxy, PrivateCA

from aileron_core.discovery import read_daemon_info
from aileron_core.paths import Layout

pytestmark = pytest.mark.slow

TOKEN = "ghp_catalogE2E-token-for-the-fake-only"  # noqa: S105 (a test credential)
SLACK_TOKEN = "xoxb-catalog-e2e-token-for-the-fake"  # noqa: S105 (a test credential)
PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
)


@dataclass
class World:
    """The fakes a test's daemon reaches: GitHub's API, Slack's, and the proxy to both."""

    github: GitHubApi
    repo: Repository
    slack: SlackApi
    ca: PrivateCA
    proxy_url: str


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """The fake GitHub API with repository octo/hello (two issues, one open pull request,
    a nested file) on TLS for api.github.com, the fake Slack API (channel C1 #general) for
    slack.com, and a proxy that takes each host's port 443 to its fake."""
    ca = PrivateCA(tmp_path)
    api = GitHubApi(TOKEN)
    repo = api.repository("octo", "hello")
    api.add_issue(repo, "First bug")
    api.add_issue(repo, "Second bug")
    api.add_issue(repo, "Add docs", pull={"head": "docs", "base": "main"})
    repo.files["docs/guide.md"] = b"# Guide\n"
    slack = SlackApi(SLACK_TOKEN)
    slack.channel("C1", "general")
    slack.post("C1", "U1", "good morning")
    with (
        TlsUpstream(ca, ["api.github.com"], api) as github_up,
        TlsUpstream(ca, ["slack.com"], slack) as slack_up,
        ConnectProxy(
            hosts={
                "api.github.com:443": f"127.0.0.1:{github_up.port}",
                "slack.com:443": f"127.0.0.1:{slack_up.port}",
            }
        ).running() as proxy,
    ):
        yield World(api, repo, slack, ca, proxy.url)


@pytest.fixture
def daemon(layout: Layout, world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A real daemon trusting the private CA, its HTTPS through the proxy, with an unlocked
    vault holding token/github/default and token/slack/default."""
    ca, proxy_url = world.ca, world.proxy_url
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", proxy_url)
    layout.ensure()
    layout.config.write_text(f'[network]\nca_bundle = "{ca.pem}"\n')
    done = aileron("daemon", "start")
    assert done.returncode == 0, done.stderr
    info = read_daemon_info(layout.daemon_json)
    assert info is not None
    try:
        with admin_http(info) as admin:
            admin.post("vault/init", json={"passphrase": "pw"}).raise_for_status()
            for name, value in (
                ("token/github/default", TOKEN),
                ("token/slack/default", SLACK_TOKEN),
            ):
                admin.post("bindings", json={"name": name, "value": value}).raise_for_status()
        yield
    finally:
        kill_daemon(layout)


def install(name: str) -> None:
    """``aileron connector search NAME`` finds the catalog entry; ``aileron connector add NAME
    --enable`` installs its connector and every action, enabled."""
    done = aileron("connector", "search", name)
    assert done.returncode == 0, done.stderr
    assert name in done.stdout
    done = aileron("connector", "add", name, "--enable")
    assert done.returncode == 0, done.stderr


def run(name: str, *args: str) -> tuple[int, dict[str, Any]]:
    """``aileron action run NAME --arg … --json``: (exit code, the JSON answer)."""
    arguments = [item for arg in args for item in ("--arg", arg)]
    done = aileron("action", "run", name, *arguments, "--json")
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.usefixtures("daemon")
def test_catalog_github_actions_run_against_github_with_the_injected_token(
    world: World,
) -> None:
    """github-list-issues and github-read-file (a nested path) reach api.github.com through
    the proxy with Bearer <the binding's token>, and return GitHub's JSON."""
    api = world.github
    install("github")
    code, answer = run("github-list-issues", "owner=octo", "repo=hello")
    assert code == 0, answer
    titles = [item["title"] for item in answer["result"]]
    assert titles == ["First bug", "Second bug", "Add docs"]
    code, answer = run("github-read-file", "owner=octo", "repo=hello", "path=docs/guide.md")
    assert code == 0, answer
    result = answer["result"]
    assert isinstance(result, dict)
    assert base64.b64decode(result["content"]) == b"# Guide\n"
    assert api.tokens == [TOKEN, TOKEN]


@pytest.mark.usefixtures("daemon")
def test_a_merge_waits_for_approval_then_merges(
    world: World,
) -> None:
    """github-merge-pull sends nothing until a human approves; approved, the pull request is
    merged with the injected token and GitHub's answer comes back."""
    api, repo = world.github, world.repo
    install("github")
    code, answer = run("github-merge-pull", "owner=octo", "repo=hello", "number=3")
    assert answer["status"] == "pending_approval", answer
    assert code != 0
    assert api.tokens == []
    assert repo.issues[2]["state"] == "open"
    done = aileron("approval", "approve", str(answer["approval_id"]), "--yes", "--json")
    assert done.returncode == 0, done.stderr
    decided = json.loads(done.stdout)
    assert decided["result"]["merged"] is True, decided
    assert repo.issues[2]["merged"] is True
    assert api.tokens == [TOKEN]


@pytest.mark.usefixtures("daemon")
def test_a_wrong_token_gets_githubs_own_error(layout: Layout, world: World) -> None:
    """With a token GitHub does not know, the run fails with GitHub's 401 "Bad credentials",
    and the wrong token is what reached the fake (nothing else was sent in its place)."""
    api = world.github
    info = read_daemon_info(layout.daemon_json)
    assert info is not None
    with admin_http(info) as admin:
        admin.delete("bindings/token/github/default").raise_for_status()
        admin.post(
            "bindings", json={"name": "token/github/default", "value": "ghp_revoked"}
        ).raise_for_status()
    install("github")
    done = aileron(
        "action", "run", "github-list-issues", "--arg", "owner=octo", "--arg", "repo=hello"
    )
    assert done.returncode != 0
    assert "401" in done.stderr or "Bad credentials" in done.stderr, done.stderr
    assert api.tokens == ["ghp_revoked"]


@pytest.mark.usefixtures("daemon")
def test_catalog_slack_actions_read_and_post_with_the_injected_token(world: World) -> None:
    """slack-read-channel returns the channel's messages at once; slack-post-message sends
    nothing until approved, then posts with Bearer <the binding's token>."""
    install("slack")
    code, answer = run("slack-read-channel", "channel=C1")
    assert code == 0, answer
    result = answer["result"]
    assert isinstance(result, dict) and result["ok"] is True
    assert [message["text"] for message in result["messages"]] == ["good morning"]
    code, answer = run("slack-post-message", "channel=#general", "text=deploy done")
    assert answer["status"] == "pending_approval", answer
    assert world.slack.tokens == [SLACK_TOKEN]
    done = aileron("approval", "approve", str(answer["approval_id"]), "--yes", "--json")
    assert done.returncode == 0, done.stderr
    decided = json.loads(done.stdout)
    assert decided["result"]["ok"] is True and decided["result"]["channel"] == "C1", decided
    assert world.slack.channels["C1"][0]["text"] == "deploy done"
    assert world.slack.tokens == [SLACK_TOKEN, SLACK_TOKEN]
