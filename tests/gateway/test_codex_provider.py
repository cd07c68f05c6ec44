"""Acceptance 4 of #21: a third, OpenAI-compatible provider configured by name works with the
real codex through ``aileron launch codex --provider NAME``; ``GET /v1/providers`` and the
launcher's refusals of a provider it cannot use.

One real daemon per module: the built-in providers at one fake (the vault's REAL_KEY), the
configured ``local`` (kind openai) at another scripted fake that accepts only LOCAL_KEY, and
``corp`` (kind anthropic) whose binding does not exist.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from actions.support import SECRET, echo_spec, manifest
from agents.support import FINAL, MESSAGE, agent_binary, agent_env, echo_script, wait_until
from fakes.provider import FakeProvider
from gateway.support import REAL_KEY, isolated_env, write_config
from helpers import admin_http, aileron, script
from launch.support import read_record, standin

from aileron_cli.examples.echo_server import EchoServer
from aileron_cli.launch.routing import SESSION_TOKEN_HEADER
from aileron_core.discovery import DaemonInfo, read_daemon_info

LOCAL_KEY = "sk-local-provider-key-2b9d7e4c1a6f3850"  # the third provider's own key


@dataclass
class Setup:
    home: Path
    info: DaemonInfo
    builtin: FakeProvider
    local: FakeProvider
    echo: EchoServer

    def admin_get(self, path: str, **params: str) -> Any:
        with admin_http(self.info) as admin:
            answer = admin.get(path, params=params)
            answer.raise_for_status()
            return answer.json()

    def session_in(self, work: Path) -> dict[str, Any]:
        launched = [s for s in self.admin_get("sessions") if s["working_dir"] == str(work)]
        assert len(launched) == 1, launched
        found: dict[str, Any] = launched[0]
        return found


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The daemon, the two fakes and the echo server (see the module docstring)."""
    home = tmp_path_factory.mktemp("codex-provider")
    env = isolated_env(home)
    with (
        FakeProvider(REAL_KEY) as builtin,
        FakeProvider(LOCAL_KEY, script=echo_script()) as local,
        EchoServer(SECRET) as echo,
    ):
        extra = (
            f'[gateway.providers.local]\nkind = "openai"\nbase_url = "{local.url}"\n'
            'models.deny = ["*-forbidden"]\nlimits.requests_per_minute = 600\n\n'
            f'[gateway.providers.corp]\nkind = "anthropic"\nbase_url = "{local.url}"\n'
        )
        write_config(home / ".aileron", builtin.url, extra)
        started = aileron("daemon", "start", env=env)
        assert started.returncode == 0, started.stderr
        info = read_daemon_info(home / ".aileron" / "daemon.json")
        assert info is not None
        try:
            with admin_http(info) as admin:
                admin.post("vault/init", json={"passphrase": "provider tests"}).raise_for_status()
                spec = json.loads(json.dumps(echo_spec(echo.host)))
                admin.post("connectors", json={"spec": spec}).raise_for_status()
                admin.post("actions", json={"manifest": manifest("echo-say")}).raise_for_status()
                for name, value in (
                    ("token/echo/default", SECRET),
                    ("api_key/openai/default", REAL_KEY),
                    ("api_key/local/default", LOCAL_KEY),
                ):
                    admin.post("bindings", json={"name": name, "value": value}).raise_for_status()
            yield Setup(home, info, builtin, local, echo)
        finally:
            aileron("daemon", "stop", env=env, timeout=30)
            with suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)


def launch(
    setup: Setup, *args: str, cwd: Path, timeout: float = 60, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script("aileron"), "launch", *args],
        cwd=cwd,
        env=agent_env(setup.home, **extra),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_providers_lists_built_in_and_configured_ones_by_name(setup: Setup) -> None:
    """GET /v1/providers: every provider by name, with its kind, base URL, binding, whether
    that binding exists, its model policy and limits; no key in the answer."""
    providers = setup.admin_get("providers")
    assert [p["name"] for p in providers] == ["anthropic", "corp", "local", "openai"]
    by_name = {p["name"]: p for p in providers}
    assert by_name["local"] == {
        "name": "local",
        "kind": "openai",
        "base_url": setup.local.url,
        "binding": "api_key/local/default",
        "bound": True,
        "models": {"allow": None, "deny": ["*-forbidden"], "agents": {}},
        "limits": {"requests_per_minute": 600},
    }
    assert (by_name["corp"]["kind"], by_name["corp"]["bound"]) == ("anthropic", False)
    assert (by_name["openai"]["base_url"], by_name["openai"]["bound"]) == (setup.builtin.url, True)
    assert by_name["anthropic"]["bound"] is False
    assert LOCAL_KEY not in json.dumps(providers) and REAL_KEY not in json.dumps(providers)


def test_launch_with_an_unknown_provider_is_a_usage_error_listing_the_names(
    setup: Setup, tmp_path: Path
) -> None:
    """`--provider nope`: exit 2 naming the daemon's providers; no session is registered."""
    standin(tmp_path / "bin", "codex")
    before = len(setup.admin_get("sessions"))
    done = launch(setup, "codex", "--provider", "nope", cwd=tmp_path, PATH=_path(tmp_path / "bin"))
    assert done.returncode == 2, done.stderr
    assert "no gateway provider named 'nope'" in done.stderr
    assert "anthropic, corp, local, openai" in done.stderr
    assert len(setup.admin_get("sessions")) == before


@pytest.mark.parametrize(
    ("agent", "provider", "said"),
    [
        ("codex", "corp", "codex cannot use provider 'corp': it speaks the anthropic API"),
        ("claude", "local", "claude cannot use provider 'local': it speaks the openai API"),
        ("opencode", "corp", "binding api_key/corp/default does not exist"),
    ],
)
def test_launch_refuses_a_provider_the_agent_cannot_use(
    setup: Setup, tmp_path: Path, agent: str, provider: str, said: str
) -> None:
    """A provider of a kind the agent does not speak, or whose binding does not exist, is
    refused (exit 1, naming the fix) before a session is registered."""
    standin(tmp_path / "bin", agent)
    before = len(setup.admin_get("sessions"))
    done = launch(
        setup, agent, f"--provider={provider}", cwd=tmp_path, PATH=_path(tmp_path / "bin")
    )
    assert done.returncode == 1, done.stderr
    assert said in done.stderr
    if "binding" in said:
        assert "`aileron binding add api_key/corp/default`" in done.stderr
    assert len(setup.admin_get("sessions")) == before


def test_launch_codex_with_a_provider_wires_its_gateway_url(setup: Setup, tmp_path: Path) -> None:
    """`aileron launch codex --provider local -- exec hi`: codex gets the gateway provider at
    /v1/gateway/local/v1 with the session token as its key, before the user's arguments."""
    record = tmp_path / "record.json"
    standin(tmp_path / "bin", "codex", "record()\n")
    done = launch(
        setup, "codex", "--provider", "local", "--", "exec", "hi", cwd=tmp_path,
        PATH=_path(tmp_path / "bin"), STANDIN_RECORD=str(record),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = read_record(record)
    argv, env = seen["argv"], seen["env"]
    gateway = f"{setup.info.url}/v1/gateway/local/v1"
    assert f'model_providers.aileron.base_url="{gateway}"' in argv
    assert argv[-2:] == ["exec", "hi"]
    assert env["OPENAI_BASE_URL"] == gateway
    assert env["OPENAI_API_KEY"] == env["AILERON_TOKEN"] and env["AILERON_TOKEN"].startswith("ais_")


def test_check_reports_the_route_to_the_named_provider(setup: Setup, tmp_path: Path) -> None:
    """`aileron launch codex --provider local --check`: the route row names the provider and
    its live probe through /v1/gateway/local/ answers; the key row names its binding."""
    standin(tmp_path / "bin", "codex", "print('codex-cli 0.0.0')\n")
    done = launch(
        setup, "codex", "--provider", "local", "--check", "--json", cwd=tmp_path,
        PATH=_path(tmp_path / "bin"), STANDIN_RECORD=str(tmp_path / "record.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {row["item"]: row for row in json.loads(done.stdout)["findings"]}
    assert rows["route"]["ok"] is True, rows["route"]
    assert rows["route"]["detail"] == (
        "provider local (openai) through the gateway: GET /v1/gateway/local/v1/models → HTTP 200"
    )
    assert rows["key"]["detail"] == "binding api_key/local/default"


def _path(bindir: Path) -> str:
    return f"{bindir}{os.pathsep}{os.environ['PATH']}"


@pytest.mark.slow
def test_real_codex_completes_a_tool_loop_through_the_named_provider(
    setup: Setup, tmp_path: Path
) -> None:
    """`aileron launch codex --provider local -- exec …` with the real codex: every model
    request reaches the local fake through /v1/gateway/local/ with its own key (never the
    session token), codex calls Aileron's tool, the final text prints, the built-in provider
    sees nothing, and the audit's gateway.request records provider "local"."""
    agent_binary("codex")
    work = tmp_path / "work"
    work.mkdir()
    done = launch(
        setup, "codex", "--provider", "local", "--",
        "exec", "--skip-git-repo-check", "-m", "gpt-fake", "Say hello through the echo tool.",
        cwd=work, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert FINAL in done.stdout
    assert setup.local.script is not None
    assert setup.local.script.calls == ["mcp__aileron/echo_say"]
    assert [json.loads(e.body) for e in setup.echo.seen] == [{"message": MESSAGE}]
    model_requests = [s for s in setup.local.seen if s.method == "POST"]
    assert len(model_requests) >= 2
    for seen in model_requests:
        assert seen.path == "/v1/responses"
        assert seen.header("authorization") == f"Bearer {LOCAL_KEY}"
        assert SESSION_TOKEN_HEADER.lower() not in seen.header_names()
    assert [s for s in setup.builtin.seen if s.method == "POST"] == []
    session = setup.session_in(work)
    assert (session["state"], session["exit_code"]) == ("ended", 0)
    records = wait_until(
        lambda: setup.admin_get("audit", type="gateway.request", session=session["id"])
    )
    assert records and all(r["payload"]["provider"] == "local" for r in records)
    assert {r["payload"]["path"] for r in records} == {"/v1/responses"}
    assert LOCAL_KEY not in done.stdout + done.stderr
