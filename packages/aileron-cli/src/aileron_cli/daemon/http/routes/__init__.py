"""The daemon's HTTP routes, one module per resource (SPEC §5.3)."""

from __future__ import annotations

from fastapi import Request

from aileron_cli.daemon.daemon import DaemonState


def daemon_state(request: Request) -> DaemonState:
    """The running daemon's state (a FastAPI dependency)."""
    state: DaemonState = request.app.state.daemon
    return state
