"""Fixtures for the LLM gateway: a fake provider, the daemon in-process, and a real daemon."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.provider import FakeProvider
from fastapi.testclient import TestClient
from gateway.support import REAL_KEY, Gw, Live, run_live, write_config

from aileron_core.paths import Layout


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    """A fake OpenAI/Anthropic provider that accepts only REAL_KEY and records requests."""
    with FakeProvider(REAL_KEY) as provider:
        yield provider


@pytest.fixture
def configured(layout: Layout, fake: FakeProvider) -> Path:
    """config.toml pointing both providers at the fake (written before the app starts)."""
    write_config(layout.home, fake.url)
    return layout.config


@pytest.fixture
def gw_unbound(configured: Path, api: TestClient, fake: FakeProvider) -> Gw:
    """The in-process daemon with an initialised vault and one session, but no binding."""
    master = {"Authorization": api.headers.pop("authorization")}
    api.post("vault/init", json={"passphrase": "gateway tests"}, headers=master).raise_for_status()
    session = api.post("sessions", json={"agent": "codex", "working_dir": "/w"}, headers=master)
    session.raise_for_status()
    return Gw(api, master, fake, session.json()["id"], session.json()["token"])


@pytest.fixture
def gw(gw_unbound: Gw) -> Gw:
    """The in-process daemon with both providers' keys bound."""
    gw_unbound.bind("openai")
    gw_unbound.bind("anthropic")
    return gw_unbound


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A real daemon process (one per module) whose gateway points at a fake provider."""
    yield from run_live(tmp_path_factory.mktemp("gateway-live"))
