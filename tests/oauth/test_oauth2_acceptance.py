"""Issue #22 acceptance 2: OAuth2 bindings through the real CLI and a real daemon, against a
local authorization server and the API it guards (``fakes.oauth_server``).

The browser is an httpx client: it opens the authorize URL the CLI printed and follows the
authorization server's redirect to the daemon's own callback on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fakes.oauth_server import CLIENT_ID, CLIENT_SECRET, FakeOAuthServer
from helpers import aileron, script
from oauth.support import NAME, oauth_echo_spec

from aileron_cli.examples import ACTIONS
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

Outputs = list[subprocess.CompletedProcess[str]]


@pytest.fixture
def oauth() -> Iterator[FakeOAuthServer]:
    """A local OAuth2 authorization server and its API."""
    with FakeOAuthServer() as server:
        yield server


@pytest.fixture
def env() -> dict[str, str]:
    """The CLI's environment: a vault passphrase at hand, no display (no browser opens)."""
    kept = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return dict(kept, AILERON_VAULT_PASSPHRASE="demo passphrase")


@pytest.fixture
def outputs() -> Outputs:
    """Every CLI run of the test, to look for tokens in."""
    return []


@pytest.fixture
def installed(
    real_daemon: DaemonInfo,
    oauth: FakeOAuthServer,
    env: dict[str, str],
    outputs: Outputs,
    tmp_path: Path,
) -> DaemonInfo:
    """A real daemon with a vault, the OAuth2 echo connector and the `echo-say` action."""
    spec_file = tmp_path / "echo.json"
    spec_file.write_text(json.dumps(oauth_echo_spec(oauth)))
    steps = [
        aileron("vault", "init", env=env),
        aileron("connector", "install", str(spec_file), env=env),
        aileron("action", "install", str(ACTIONS / "echo-say.md"), env=env),
    ]
    outputs += steps
    assert [s.returncode for s in steps] == [0] * len(steps), [s.stderr for s in steps]
    return real_daemon


def start(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """The CLI started with ``args``, and the lines it printed up to its URL (or code)."""
    process = subprocess.Popen(
        [script("aileron"), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdin is not None and process.stdout is not None
    if "--client-secret-stdin" in args:
        process.stdin.write(CLIENT_SECRET + "\n")
    process.stdin.close()
    lines = [process.stdout.readline()]
    if lines[0].startswith("Open this URL"):
        lines.append(process.stdout.readline())
    return process, lines


def finish(process: subprocess.Popen[str], lines: list[str]) -> subprocess.CompletedProcess[str]:
    """The CLI's whole run once it has exited (killed after a minute)."""
    process.stdin = None  # closed by start()
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, "".join(lines) + out, err)


def add_args(*extra: str) -> tuple[str, ...]:
    return (
        "binding",
        "add",
        NAME,
        "--connector",
        "local://echo",
        "--client-id",
        CLIENT_ID,
        "--client-secret-stdin",
        "--no-browser",
        *extra,
    )


def browse(url: str) -> httpx.Response:
    """The user's browser: opens ``url`` and follows the redirects (to the daemon)."""
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        return browser.get(url)


def authorize(env: dict[str, str], outputs: Outputs) -> None:
    """`aileron binding add oauth2/echo/default …` with the browser approving at once."""
    process, lines = start(env, *add_args())
    page = browse(lines[1].strip())
    done = finish(process, lines)
    outputs.append(done)
    assert page.status_code == 200, page.text
    assert "You can close this tab" in page.text
    assert done.returncode == 0, done.stderr
    assert f"authorized binding {NAME}" in done.stdout


def run(env: dict[str, str], outputs: Outputs, message: str) -> subprocess.CompletedProcess[str]:
    done = aileron("action", "run", "echo-say", "--arg", f"message={message}", env=env)
    outputs.append(done)
    return done


def audit_types(env: dict[str, str], outputs: Outputs) -> list[str]:
    listed = aileron("audit", "list", "--json", "--limit", "1000", env=env)
    outputs.append(listed)
    assert listed.returncode == 0, listed.stderr
    records: list[dict[str, Any]] = json.loads(listed.stdout)
    return [r["type"] for r in records]


def test_code_flow_with_pkce_binds_and_the_action_gets_the_token(
    installed: DaemonInfo, oauth: FakeOAuthServer, env: dict[str, str], outputs: Outputs
) -> None:
    """The printed URL, opened by a browser, comes back to the daemon, which exchanges the
    code with its PKCE verifier: the binding exists (source oauth2) and an action's request
    carries an access token the API accepts."""
    process, lines = start(env, *add_args())
    url = lines[1].strip()
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [f"{installed.url}/v1/oauth/callback"]
    assert query["scope"] == ["echo:write"]
    page = browse(url)
    done = finish(process, lines)
    assert page.status_code == 200 and "close this tab" in page.text, page.text
    assert done.returncode == 0, done.stderr
    shown = aileron("binding", "show", NAME, "--json", env=env)
    assert json.loads(shown.stdout)["metadata"] == {"source": "oauth2", "connector": "local://echo"}
    ran = run(env, outputs, "hello")
    assert ran.returncode == 0, ran.stderr
    assert '"echo": "hello"' in ran.stdout
    assert (oauth.api_calls, oauth.refreshes) == (1, 0)
    assert "binding.created" in audit_types(env, outputs)


def test_a_wrong_state_is_refused_and_the_real_one_still_works(
    installed: DaemonInfo, oauth: FakeOAuthServer, env: dict[str, str], outputs: Outputs
) -> None:
    """A callback with a state the daemon did not make gets a 400 page and binds nothing; the
    flow's own state still completes it, once (a replay is refused)."""
    process, lines = start(env, *add_args())
    with httpx.Client(timeout=30) as browser:
        approved = browser.get(lines[1].strip())
        assert approved.status_code == 302
        callback = urlsplit(approved.headers["Location"])
        code = parse_qs(callback.query)["code"][0]
        forged = f"{installed.url}/v1/oauth/callback?" + urlencode(
            {"code": code, "state": "forged-state"}
        )
        refused = browser.get(forged)
        assert refused.status_code == 400
        assert "unknown, finished or expired" in refused.text
        assert aileron("binding", "show", NAME, env=env).returncode != 0
        accepted = browser.get(approved.headers["Location"])
        replayed = browser.get(approved.headers["Location"])
    done = finish(process, lines)
    assert accepted.status_code == 200, accepted.text
    assert replayed.status_code == 400
    assert done.returncode == 0, done.stderr


def test_an_expired_access_token_is_refreshed_exactly_once(
    installed: DaemonInfo, oauth: FakeOAuthServer, env: dict[str, str], outputs: Outputs
) -> None:
    """An access token within 60 s of its expiry is refreshed before the request: two runs,
    one refresh (the refreshed token lasts), one binding.refreshed record."""
    oauth.expires_in = 30  # the first token is already "about to expire"
    authorize(env, outputs)
    oauth.expires_in = 3600
    first, second = run(env, outputs, "one"), run(env, outputs, "two")
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert oauth.refreshes == 1
    assert oauth.api_calls == 2
    assert audit_types(env, outputs).count("binding.refreshed") == 1


def test_a_401_with_a_valid_looking_token_refreshes_once_and_retries(
    installed: DaemonInfo, oauth: FakeOAuthServer, env: dict[str, str], outputs: Outputs
) -> None:
    """The API refuses a token that has not expired (revoked early): the daemon refreshes once
    and retries once, and the run succeeds."""
    authorize(env, outputs)
    assert run(env, outputs, "before").returncode == 0
    oauth.revoke_access_tokens()
    after = run(env, outputs, "after")
    assert after.returncode == 0, after.stderr
    assert '"echo": "after"' in after.stdout
    assert oauth.refreshes == 1
    assert oauth.api_calls == 3  # before; after refused; after retried


def test_a_revoked_refresh_token_asks_to_reauthorize_and_reauthorizing_works(
    layout: Layout,
    installed: DaemonInfo,
    oauth: FakeOAuthServer,
    env: dict[str, str],
    outputs: Outputs,
) -> None:
    """With its refresh token revoked, a run fails naming `aileron binding reauthorize`; after
    reauthorizing (browser again) runs work; no token or client secret is in any output, the
    daemon's log or the audit log (nor any other file of the home)."""
    authorize(env, outputs)
    oauth.revoke_refresh_tokens()
    oauth.revoke_access_tokens()
    refused = run(env, outputs, "refused")
    assert refused.returncode != 0
    assert f"run `aileron binding reauthorize {NAME}`" in refused.stderr
    assert "refresh token" in refused.stderr
    process, lines = start(env, "binding", "reauthorize", NAME, "--no-browser")
    page = browse(lines[1].strip())
    done = finish(process, lines)
    outputs.append(done)
    assert page.status_code == 200 and done.returncode == 0, done.stderr
    assert f"reauthorized binding {NAME}" in done.stdout
    again = run(env, outputs, "again")
    assert again.returncode == 0, again.stderr
    types = audit_types(env, outputs)
    assert "binding.reauthorized" in types
    aileron("daemon", "stop")
    secrets = [*oauth.issued, CLIENT_SECRET]
    assert len(oauth.issued) >= 4
    for output in outputs:
        for secret in secrets:
            assert secret not in output.stdout + output.stderr
    assert layout.daemon_log.exists()
    holders = [
        (path, secret)
        for path in layout.home.rglob("*")
        if path.is_file()
        for secret in secrets
        if secret.encode() in path.read_bytes()
    ]
    assert holders == []


def test_device_flow_binds_without_a_browser(
    installed: DaemonInfo, oauth: FakeOAuthServer, env: dict[str, str], outputs: Outputs
) -> None:
    """`--device` prints the user code and where to enter it; the CLI waits while the server
    says authorization_pending, then the binding works."""
    oauth.pending_polls = 1
    process, lines = start(env, *add_args("--device"))
    done = finish(process, lines)
    assert done.returncode == 0, done.stderr
    assert f"Enter the code WDJB-MJHT at {oauth.url}/activate" in done.stdout
    assert f"authorized binding {NAME}" in done.stdout
    ran = run(env, outputs, "device")
    assert ran.returncode == 0, ran.stderr
    assert '"echo": "device"' in ran.stdout
