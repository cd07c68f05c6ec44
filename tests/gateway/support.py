"""Shared pieces of the gateway tests: keys, config, an in-process and a real-process set-up."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fakes.provider import FakeProvider
from fastapi.testclient import TestClient
from helpers import admin_http, aileron

from aileron_cli.daemon import daemon as root
from aileron_core.discovery import DaemonInfo, read_daemon_info

REAL_KEY = "sk-real-provider-key-7f3a9c1e5b2d4068"  # the key only the daemon may hold
OPENAI = "/v1/gateway/openai"
ANTHROPIC = "/v1/gateway/anthropic"
CHAT = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {
    "model": "claude-fake",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}


def write_config(home: Path, base_url: str, extra: str = "") -> None:
    """Point both providers of the daemon at ``base_url`` in ``config.toml`` (and add the
    TOML ``extra``)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    tables = (f'[gateway.{name}]\nbase_url = "{base_url}"\n' for name in ("openai", "anthropic"))
    (home / "config.toml").write_text("\n".join([*tables, extra]))


def session_headers(token: str, provider: str = "openai") -> dict[str, str]:
    """How an SDK presents the session token as its API key."""
    if provider == "anthropic":
        return {"x-api-key": token, "anthropic-version": "2023-06-01"}
    return {"Authorization": f"Bearer {token}"}


def read_stream(response: httpx.Response) -> bytes:
    return b"".join(response.iter_raw())


@dataclass
class Gw:
    """The daemon in-process with its gateway pointed at ``fake``; ``client`` sends no token
    unless told to (admin calls pass ``master``)."""

    client: TestClient
    master: dict[str, str]
    fake: FakeProvider
    session_id: str
    token: str

    @property
    def state(self) -> root.Daemon:
        state: root.Daemon = self.client.app.state.daemon  # type: ignore[attr-defined]
        return state

    def bind(self, provider: str, value: str = REAL_KEY) -> None:
        body = {"name": f"api_key/{provider}/default", "value": value}
        self.client.post("bindings", json=body, headers=self.master).raise_for_status()

    def audit(self, type: str) -> list[dict[str, Any]]:
        answer = self.client.get("audit", params={"type": type}, headers=self.master)
        answer.raise_for_status()
        records: list[dict[str, Any]] = answer.json()
        return records


@dataclass
class Daemon:
    """A real daemon process (its gateway pointed at some local upstream)."""

    home: Path
    info: DaemonInfo

    @property
    def url(self) -> str:
        return self.info.url

    @property
    def pid(self) -> int:
        return self.info.pid

    def admin(self) -> httpx.Client:
        """The human's client: the master token, through the daemon's Unix socket."""
        return admin_http(self.info)

    def new_session(self) -> tuple[str, str]:
        """A fresh session: ``(id, token)``."""
        with self.admin() as admin:
            answer = admin.post("sessions", json={"agent": "codex", "working_dir": str(self.home)})
            answer.raise_for_status()
            body = answer.json()
        return body["id"], body["token"]

    def audit(self, type: str, session: str) -> list[dict[str, Any]]:
        with self.admin() as admin:
            answer = admin.get("audit", params={"type": type, "session": session})
            answer.raise_for_status()
            records: list[dict[str, Any]] = answer.json()
        return records

    def wait_audit(self, type: str, session: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            records = self.audit(type, session)
            if records or time.monotonic() > deadline:
                assert records, f"no {type} record for session {session}"
                return records[-1]
            time.sleep(0.05)


@dataclass
class Live(Daemon):
    """A real daemon process whose gateway points at a real fake provider."""

    fake: FakeProvider


def isolated_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AILERON_")}
    env.update(HOME=str(home), AILERON_HOME=str(home / ".aileron"))
    for name, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache")):
        env[name] = str(home / sub)
    return env


@contextmanager
def run_daemon(home: Path, base_url: str, extra: str = "") -> Iterator[Daemon]:
    """Start a real daemon under ``home`` whose providers are at ``base_url`` (config with the
    TOML ``extra``, vault, both built-in bindings and every binding ``extra`` names, each
    holding REAL_KEY)."""
    env = isolated_env(home)
    write_config(home / ".aileron", base_url, extra)
    done = aileron("daemon", "start", env=env)
    assert done.returncode == 0, done.stderr
    info = read_daemon_info(home / ".aileron" / "daemon.json")
    assert info is not None
    daemon = Daemon(home, info)
    try:
        with daemon.admin() as admin:
            admin.post("vault/init", json={"passphrase": "gateway tests"}).raise_for_status()
            named = re.findall(r'binding = "([^"]+)"', extra)
            for name in dict.fromkeys(
                ["api_key/openai/default", "api_key/anthropic/default", *named]
            ):
                binding = {"name": name, "value": REAL_KEY}
                admin.post("bindings", json=binding).raise_for_status()
        yield daemon
    finally:
        aileron("daemon", "stop", env=env, timeout=30)
        with suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGKILL)


def run_live(home: Path) -> Iterator[Live]:
    """Start a fake provider and a real daemon (config, vault, binding) under ``home``."""
    with FakeProvider(REAL_KEY) as fake, run_daemon(home, fake.url) as daemon:
        yield Live(daemon.home, daemon.info, fake)
