"""Fixtures for shim tests: generated golden shims on disk, a capturing server, an echo server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from actions.support import SECRET
from shims.support import CaptureServer, generate_from, golden_input, write_shims

from aileron_cli.examples.echo_server import EchoServer


@pytest.fixture
def golden_bin(tmp_path: Path) -> Path:
    """The golden input's shims written to a directory (aileron-echo, aileron-echo-2, issues)."""
    return write_shims(generate_from(golden_input()), tmp_path / "bin")


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    """A loopback HTTP server standing in for the daemon; it records each request."""
    with CaptureServer() as server:
        yield server


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    """A real local HTTP server that accepts only `Bearer SECRET` and echoes `message`."""
    with EchoServer(SECRET) as server:
        yield server
