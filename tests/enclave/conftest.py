"""Fixtures for enclave tests: a real enclave process and a real echo server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from enclave.support import SECRET, EnclaveProcess

from aileron_cli.examples.echo_server import EchoServer


@pytest.fixture
def enclave(tmp_path: Path) -> Iterator[EnclaveProcess]:
    """A real `aileron-enclave serve` (AILERON_TEE_PROVIDER=local) on a free port."""
    process = EnclaveProcess(tmp_path / "enclave-data").start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    """A real local HTTP server that accepts only `Bearer SECRET` and records every request."""
    with EchoServer(SECRET) as server:
        yield server
