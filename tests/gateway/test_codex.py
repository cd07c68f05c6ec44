"""The real `codex` binary talks to the fake provider through the gateway, offline."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from gateway.support import REAL_KEY, Live, isolated_env
from helpers import script

# Where scripts/bootstrap caches the real Codex CLI; read at import (collection), before the
# autouse fixture points HOME and XDG_CACHE_HOME at a temporary directory.
CODEX = (
    Path(
        os.environ.get("AILERON_TEST_NPM_PREFIX")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aileron-tests/npm"
    )
    / "node_modules/.bin/codex"
)


@pytest.mark.slow
def test_codex_exec_answers_through_the_gateway(live: Live, tmp_path: Path) -> None:
    """`codex exec`, given only its session token and the gateway as a Responses API provider,
    gets the fake's streamed answer, audited as complete (not cancelled) though codex hangs up
    on `response.completed`; the fake saw the real key; the real key is nowhere in codex's
    output or files."""
    if not CODEX.exists():
        pytest.skip(f"the codex binary is not installed at {CODEX} (scripts/bootstrap does it)")
    session_id, token = live.new_session()
    codex_home, work = tmp_path / "codex-home", tmp_path / "work"
    codex_home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "AILERON", "CODEX"))}
    env.update(HOME=str(tmp_path), CODEX_HOME=str(codex_home), OPENAI_API_KEY=token)
    # A custom provider speaks the Responses API over HTTPS+SSE; codex's built-in `openai`
    # provider (what OPENAI_BASE_URL alone configures) insists on a Responses WebSocket,
    # which the gateway does not proxy.
    provider = {
        "model_provider": "aileron",
        "model_providers.aileron.name": "Aileron",
        "model_providers.aileron.base_url": f"{live.url}/v1/gateway/openai/v1",
        "model_providers.aileron.env_key": "OPENAI_API_KEY",
        "model_providers.aileron.wire_api": "responses",
    }
    overrides = [arg for key, value in provider.items() for arg in ("-c", f"{key}={value}")]
    before = len(live.fake.seen)
    done = subprocess.run(
        [str(CODEX), "exec", "--skip-git-repo-check", "-s", "read-only", *overrides]
        + ["-m", "gpt-fake", "say hello"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Hello from the fake provider" in done.stdout
    requests = live.fake.seen[before:]
    assert [(s.method, s.path) for s in requests] == [("POST", "/v1/responses")]
    assert requests[0].header("authorization") == f"Bearer {REAL_KEY}"
    assert all(token not in value for _, value in requests[0].headers)
    record = live.wait_audit("gateway.request", session_id)
    assert (record["payload"]["model"], record["payload"]["status"]) == ("gpt-fake", 200)
    assert "cancelled" not in record["payload"], record["payload"]
    assert REAL_KEY not in done.stdout + done.stderr
    for path in codex_home.rglob("*"):
        if path.is_file():
            assert REAL_KEY.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_aileron_launch_codex_exec_goes_through_the_gateway(live: Live, tmp_path: Path) -> None:
    """`aileron launch codex -- exec …` (OpenAI key in the vault) reaches the fake provider via
    the gateway: the fake saw the real key, the audit has the request, codex never held it."""
    if not CODEX.exists():
        pytest.skip(f"the codex binary is not installed at {CODEX} (scripts/bootstrap does it)")
    codex_home, work = tmp_path / "codex-home", tmp_path / "work"
    codex_home.mkdir()
    work.mkdir()
    env = isolated_env(live.home)
    env = {k: v for k, v in env.items() if not k.startswith(("OPENAI", "CODEX"))}
    env.update(CODEX_HOME=str(codex_home), PATH=f"{CODEX.parent}{os.pathsep}{env['PATH']}")
    before = len(live.fake.seen)
    done = subprocess.run(
        [script("aileron"), "launch", "codex", "--"]
        + ["exec", "--skip-git-repo-check", "-s", "read-only", "-m", "gpt-fake", "say hello"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Hello from the fake provider" in done.stdout
    requests = live.fake.seen[before:]
    assert [(s.method, s.path) for s in requests] == [("POST", "/v1/responses")]
    assert requests[0].header("authorization") == f"Bearer {REAL_KEY}"
    with live.admin() as admin:
        sessions = admin.get("sessions", params={"agent": "codex"}).json()
    launched = [s for s in sessions if s["working_dir"] == str(work)]
    assert len(launched) == 1 and launched[0]["state"] == "ended"
    assert launched[0]["exit_code"] == 0
    record = live.wait_audit("gateway.request", launched[0]["id"])
    assert (record["payload"]["model"], record["payload"]["status"]) == ("gpt-fake", 200)
    assert REAL_KEY not in done.stdout + done.stderr
    for path in codex_home.rglob("*"):
        if path.is_file():
            assert REAL_KEY.encode() not in path.read_bytes(), path
