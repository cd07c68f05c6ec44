"""Fixtures of the approvals page's tests: a real daemon on a real port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import kill_daemon
from ui.support import armed_daemon

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout


@pytest.fixture
def armed(layout: Layout, tmp_path: Path) -> Iterator[tuple[DaemonInfo, EchoServer, str]]:
    """A real daemon with the approval-gated action echo-careful and an agent session."""
    try:
        with armed_daemon(tmp_path) as found:
            yield found
    finally:
        kill_daemon(layout)
