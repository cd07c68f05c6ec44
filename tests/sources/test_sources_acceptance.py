"""Issue #22, acceptance 3 and 4, against a real daemon process and the real CLI.

3. GitHub App: two action runs within the installation token's lifetime mint one token; a
   token GitHub no longer accepts (401) is replaced once; a token in its last five minutes is
   replaced before use; the fake verified every JWT with the App's public key. The private key
   and the tokens are in no CLI output, in neither ``binding show`` nor ``list``, and in no
   file of the Aileron home outside the encrypted vault.
4. Command secret: the command runs once per TTL (it appends a line to a file at every run);
   its output is never in daemon.log, the audit log, any other file of the home or any CLI
   output; a failing command's error names its exit status, not what it printed.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.github_app import FakeGitHubApp
from helpers import admin_http, aileron
from sources.support import disk_text

from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

pytestmark = pytest.mark.slow

SECRET = "cmd-secret-6f1d0c9a7b2e4f58a1c3d5e7f9b0a2c4"


def spec(host: str, service: str, fqn: str) -> dict[str, Any]:
    """A connector listing a repository's issues on the fake, bearer-authenticated."""
    return {
        "schema_version": "aileron.connector.v1",
        "connector": {"fqn": fqn, "version": "1.0.0", "description": "Fake GitHub issues."},
        "credential": {"service": service, "kind": "bearer"},
        "tools": [
            {
                "name": "issues",
                "description": "Issues.",
                "operations": [
                    {
                        "name": "list",
                        "summary": "List the issues.",
                        "method": "GET",
                        "path": "/repos/octo/hello/issues",
                        "hosts": [host],
                        "scheme": "http",
                        "idempotency": "idempotent",
                    }
                ],
            }
        ],
    }


def manifest(name: str, fqn: str) -> str:
    return f"""+++
name = "{name}"
version = "1.0.0"

[[requires.connectors]]
fqn = "{fqn}"
version = "1.0.0"

[[execute]]
id = "list"
connector = "{fqn}"
tool = "issues"
op = "list"
args = {{}}
+++
List the issues.
"""


@pytest.fixture
def github() -> Iterator[FakeGitHubApp]:
    """The fake GitHub (App token endpoint and API), on 127.0.0.1."""
    with FakeGitHubApp() as fake:
        yield fake


def install(info: DaemonInfo, github: FakeGitHubApp, service: str, action: str) -> None:
    fqn = f"local://{service}"
    with admin_http(info) as admin:
        admin.post("connectors", json={"spec": spec(github.host, service, fqn)}).raise_for_status()
        admin.post("actions", json={"manifest": manifest(action, fqn)}).raise_for_status()


def run(action: str, outputs: list[str]) -> dict[str, Any]:
    """``aileron action run ACTION --json``, its output kept for the leak check."""
    done = aileron("action", "run", action, "--json")
    outputs.append(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_a_github_app_binding_mints_one_token_per_lifetime(
    layout: Layout, real_daemon: DaemonInfo, github: FakeGitHubApp, tmp_path: Path
) -> None:
    """Acceptance 3: one mint for two runs, a new token after a 401 and after expiry, every
    JWT verified, and neither the key nor a token in any output or file."""
    with admin_http(real_daemon) as admin:
        admin.post("vault/init", json={"passphrase": "pw"}).raise_for_status()
    install(real_daemon, github, "github", "issues-list")
    key_file = tmp_path / "app.pem"
    key_file.write_text(github.private_pem)
    outputs: list[str] = []
    added = aileron(
        "binding", "add", "app/github/default", "--github-app",
        "--app-id", str(github.app_id),
        "--installation-id", str(github.installation_id),
        "--private-key-file", str(key_file),
        "--api-url", github.url,
    )  # fmt: skip
    outputs.append(added.stdout + added.stderr)
    assert added.returncode == 0, added.stderr

    first = run("issues-list", outputs)
    second = run("issues-list", outputs)
    assert (
        first["result"]
        == second["result"]
        == [{"number": 1, "title": "First issue", "state": "open"}]
    )
    assert github.mints == 1
    assert len(set(github.api_tokens)) == 1 and set(github.api_tokens) <= set(github.tokens)

    # GitHub revokes the token: the run gets a 401, the daemon mints once more and retries.
    github.revoke(github.api_tokens[-1])
    run("issues-list", outputs)
    assert github.mints == 2 and len(github.api_tokens) == 4

    # A token minted to live 5 min + 2 s is used until its last five minutes, then replaced
    # before it is sent again (no 401 needed).
    github.lifetime_s = 300 + 2
    github.revoke(github.api_tokens[-1])
    run("issues-list", outputs)
    assert github.mints == 3
    short_lived = github.api_tokens[-1]
    time.sleep(3)
    calls = len(github.api_tokens)
    run("issues-list", outputs)
    assert github.mints == 4
    assert github.api_tokens[calls:] != [short_lived] and len(github.api_tokens) == calls + 1

    assert github.jwt_checked == github.mints == 4 and github.jwt_rejected == 0

    for command in (("binding", "show", "app/github/default", "--json"), ("binding", "list")):
        shown = aileron(*command)
        assert shown.returncode == 0, shown.stderr
        outputs.append(shown.stdout + shown.stderr)
    shown_binding = json.loads(outputs[-2].strip())
    assert shown_binding["metadata"]["source"] == "github_app"
    assert shown_binding["metadata"]["installation_id"] == str(github.installation_id)

    minted = [
        json.loads(line)["payload"]
        for line in layout.audit.read_text().splitlines()
        if '"binding.minted"' in line
    ]
    assert len(minted) == 4
    key_lines = github.private_pem.splitlines()[1:-1]
    everything = "\n".join(outputs) + disk_text(layout.home)
    assert not [line for line in key_lines if line in everything]
    assert not [token for token in github.tokens if token in everything]


COUNTING = """
import sys
with open(sys.argv[1], "a") as runs:
    runs.write("run\\n")
print(open(sys.argv[2]).read())
sys.exit(int(sys.argv[3]))
"""


def test_a_command_secret_runs_once_per_ttl_and_is_never_shown(
    layout: Layout, real_daemon: DaemonInfo, github: FakeGitHubApp, tmp_path: Path
) -> None:
    """Acceptance 4: two runs within the TTL run the command once; its output reaches the API
    as the bearer token but no output, log or audit record; a failing command names its exit
    status only."""
    with admin_http(real_daemon) as admin:
        admin.post("vault/init", json={"passphrase": "pw"}).raise_for_status()
    install(real_daemon, github, "cmdsvc", "cmd-issues")
    install(real_daemon, github, "failsvc", "fail-issues")
    github.accepted.add(SECRET)
    script = tmp_path / "secret.py"
    script.write_text(COUNTING)
    runs, value = tmp_path / "runs", tmp_path / "value"
    value.write_text(SECRET)
    outputs: list[str] = []
    command = f"{sys.executable} {script} {runs} {value} 0"
    added = aileron(
        "binding", "add", "cmd/cmdsvc/default", "--from-command", command, "--ttl", "3600"
    )
    outputs.append(added.stdout + added.stderr)
    assert added.returncode == 0, added.stderr

    run("cmd-issues", outputs)
    run("cmd-issues", outputs)
    assert runs.read_text().splitlines() == ["run"]
    assert github.api_tokens == [SECRET, SECRET]

    failing = f"{sys.executable} {script} {tmp_path / 'failed-runs'} {value} 7"
    added = aileron("binding", "add", "cmd/failsvc/default", "--from-command", failing)
    assert added.returncode == 0, added.stderr
    failed = aileron("action", "run", "fail-issues", "--json")
    outputs.append(failed.stdout + failed.stderr)
    assert failed.returncode != 0
    assert "cmd/failsvc/default" in failed.stdout + failed.stderr
    assert "status 7" in failed.stdout + failed.stderr

    for listing in (("binding", "show", "cmd/cmdsvc/default", "--json"), ("binding", "list")):
        shown = aileron(*listing)
        assert shown.returncode == 0, shown.stderr
        outputs.append(shown.stdout + shown.stderr)
    assert SECRET not in "\n".join(outputs)
    assert layout.daemon_log.exists() and SECRET not in layout.daemon_log.read_text()
    assert SECRET not in "\n".join(p.read_text() for p in layout.audit_segments())
    assert SECRET not in disk_text(layout.home)
