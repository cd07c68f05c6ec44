"""Issue #22, acceptance 1 (the run half): the catalog's GitHub connector and actions,
installed into a real daemon, run against a fake api.github.com served over TLS by a private
CA and reached through a CONNECT proxy (the pinned host, port 443, as in production): the fake
sees the injected token, the action's result comes back, and a merge waits for approval."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from importlib.resources import as_file, files
from pathlib import Path

import pytest
from fakes.github_api import GitHubApi, Repository
from fakes.tls_upstreams import TlsUpstream
from helpers import admin_http, aileron, kill_daemon
from network_support import ConnectProxy, PrivateCA

from aileron_core.discovery import read_daemon_info
from aileron_core.paths import Layout

pytestmark = pytest.mark.slow

TOKEN = "ghp_catalogE2E-token-for-the-fake-only"  # noqa: S105 (a test credential)
SOURCE = files("aileron_cli") / "catalog" / "sources" / "github"
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


@pytest.fixture
def github(tmp_path: Path) -> Iterator[tuple[GitHubApi, Repository, PrivateCA, str]]:
    """The fake GitHub API with repository octo/hello (two issues, one open pull request,
    a nested file) on TLS for api.github.com, and a proxy that takes api.github.com:443 to it:
    (api, repository, CA, proxy URL)."""
    ca = PrivateCA(tmp_path)
    api = GitHubApi(TOKEN)
    repo = api.repository("octo", "hello")
    api.add_issue(repo, "First bug")
    api.add_issue(repo, "Second bug")
    api.add_issue(repo, "Add docs", pull={"head": "docs", "base": "main"})
    repo.files["docs/guide.md"] = b"# Guide\n"
    with (
        TlsUpstream(ca, ["api.github.com"], api) as upstream,
        ConnectProxy(hosts={"api.github.com:443": f"127.0.0.1:{upstream.port}"}).running() as proxy,
    ):
        yield api, repo, ca, proxy.url


@pytest.fixture
def daemon(
    layout: Layout,
    github: tuple[GitHubApi, Repository, PrivateCA, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    """A real daemon trusting the private CA, its HTTPS through the proxy, with an unlocked
    vault holding token/github/default."""
    _, _, ca, proxy_url = github
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
            admin.post(
                "bindings", json={"name": "token/github/default", "value": TOKEN}
            ).raise_for_status()
        yield
    finally:
        kill_daemon(layout)


def install(*actions: str) -> None:
    """Install the catalog's GitHub connector and ``actions`` with the CLI, and enable them."""
    with as_file(SOURCE / "connector.json") as path:
        done = aileron("connector", "install", str(path))
    assert done.returncode == 0, done.stderr
    for name in actions:
        with as_file(SOURCE / "actions" / f"{name}.md") as path:
            done = aileron("action", "install", str(path))
        assert done.returncode == 0, done.stderr
        done = aileron("action", "enable", name)
        assert done.returncode == 0, done.stderr


def run(name: str, *args: str) -> tuple[int, dict[str, object]]:
    """``aileron action run NAME --arg … --json``: (exit code, the JSON answer)."""
    arguments = [item for arg in args for item in ("--arg", arg)]
    done = aileron("action", "run", name, *arguments, "--json")
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.usefixtures("daemon")
def test_catalog_github_actions_run_against_github_with_the_injected_token(
    github: tuple[GitHubApi, Repository, PrivateCA, str],
) -> None:
    """github-list-issues and github-read-file (a nested path) reach api.github.com through
    the proxy with Bearer <the binding's token>, and return GitHub's JSON."""
    api, _, _, _ = github
    install("github-list-issues", "github-read-file")
    code, answer = run("github-list-issues", "owner=octo", "repo=hello")
    assert code == 0, answer
    titles = [item["title"] for item in answer["result"]]  # type: ignore[index]
    assert titles == ["First bug", "Second bug", "Add docs"]
    code, answer = run("github-read-file", "owner=octo", "repo=hello", "path=docs/guide.md")
    assert code == 0, answer
    result = answer["result"]
    assert isinstance(result, dict)
    assert base64.b64decode(result["content"]) == b"# Guide\n"
    assert api.tokens == [TOKEN, TOKEN]


@pytest.mark.usefixtures("daemon")
def test_a_merge_waits_for_approval_then_merges(
    github: tuple[GitHubApi, Repository, PrivateCA, str],
) -> None:
    """github-merge-pull sends nothing until a human approves; approved, the pull request is
    merged with the injected token and GitHub's answer comes back."""
    api, repo, _, _ = github
    install("github-merge-pull")
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
def test_a_wrong_token_gets_githubs_own_error(
    layout: Layout, github: tuple[GitHubApi, Repository, PrivateCA, str]
) -> None:
    """With a token GitHub does not know, the run fails with GitHub's 401 "Bad credentials",
    and the wrong token is what reached the fake (nothing else was sent in its place)."""
    api, _, _, _ = github
    info = read_daemon_info(layout.daemon_json)
    assert info is not None
    with admin_http(info) as admin:
        admin.delete("bindings/token/github/default").raise_for_status()
        admin.post(
            "bindings", json={"name": "token/github/default", "value": "ghp_revoked"}
        ).raise_for_status()
    install("github-list-issues")
    done = aileron(
        "action", "run", "github-list-issues", "--arg", "owner=octo", "--arg", "repo=hello"
    )
    assert done.returncode != 0
    assert "401" in done.stderr or "Bad credentials" in done.stderr, done.stderr
    assert api.tokens == ["ghp_revoked"]
