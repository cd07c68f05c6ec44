"""Fixtures for the approval notification tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from actions.support import SECRET

from aileron_cli.examples.echo_server import EchoServer


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    """A real local HTTP server that accepts only `Bearer SECRET` and records every request."""
    with EchoServer(SECRET) as server:
        yield server
