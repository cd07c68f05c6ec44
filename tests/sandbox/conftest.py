"""Fixtures for the sandbox tests: real podman, with images built once per test run."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from actions.support import SECRET
from helpers import script
from sandbox.broker_support import Loop
from sandbox.support import (
    NO_HTTP_CLIENT,
    REQUIRE_VAR,
    TEST_REPOSITORY,
    ensure_agent_base,
    podman_build,
    podman_unavailable,
)

from aileron_cli.examples.echo_server import EchoServer
from aileron_cli.sandbox.images import REPOSITORY_VAR, default_tag

TEST_TAGS = {REPOSITORY_VAR: TEST_REPOSITORY}


@pytest.fixture(autouse=True)
def test_only_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    """Aileron's images are tagged under a test-only repository, never over a user's."""
    monkeypatch.setenv(REPOSITORY_VAR, TEST_REPOSITORY)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    """A real HTTP server on the host that accepts only `Bearer SECRET` and records requests."""
    with EchoServer(SECRET) as server:
        yield server


@pytest.fixture(scope="session")
def podman() -> None:
    """Real podman with the test base image; skipped without it (failed under scripts/test)."""
    reason = podman_unavailable()
    if reason is None:
        return
    if os.environ.get(REQUIRE_VAR) == "1":
        pytest.fail(f"{REQUIRE_VAR}=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def codex_image_build(podman: None) -> subprocess.CompletedProcess[str]:
    """`aileron sandbox build codex` run once: Aileron's image from the shipped Containerfile,
    on the stand-in-agent base."""
    base = ensure_agent_base()
    return subprocess.run(
        [
            script("aileron"),
            "sandbox",
            "build",
            "codex",
            "--engine",
            "podman",
            "--base-image",
            base,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **TEST_TAGS},
    )


@pytest.fixture(scope="session")
def codex_image(codex_image_build: subprocess.CompletedProcess[str]) -> str:
    """``localhost/aileron-test/sandbox-codex:<version>``, built."""
    assert codex_image_build.returncode == 0, codex_image_build.stderr
    return default_tag("codex", TEST_TAGS)


@pytest.fixture(scope="session")
def no_http_client_image(codex_image: str) -> str:
    """Aileron's codex image with curl and wget removed."""
    podman_build("no-http-client.Containerfile", NO_HTTP_CLIENT, BASE_IMAGE=codex_image)
    return NO_HTTP_CLIENT


@pytest.fixture
def loop() -> Iterator[Loop]:
    """The daemon's event loop (uvloop, as the daemon runs it), in a thread: for the broker
    tests."""
    running = Loop()
    yield running
    running.close()
