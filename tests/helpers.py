"""Small helpers shared by tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from aileron_core.__about__ import __version__
from aileron_core.discovery import DaemonInfo, read_daemon_info
from aileron_core.paths import Layout

REPO = Path(__file__).resolve().parent.parent


def script(name: str) -> str:
    """Path of a console script installed in the running environment."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is not installed beside {sys.executable}"
    return os.fspath(path)


def aileron(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real `aileron` console script."""
    return subprocess.run(
        [script("aileron"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def kill_daemon(layout: Layout) -> None:
    """Make sure no daemon of this home survives the test."""
    info = None
    with contextlib.suppress(Exception):
        info = read_daemon_info(layout.daemon_json)
    aileron("daemon", "stop", timeout=30)
    if info is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGKILL)


def master_headers(info: DaemonInfo) -> dict[str, str]:
    """What the human's client sends to ``info``: its master token and this version."""
    return {"Authorization": f"Bearer {info.token}", "X-Aileron-Version": __version__}


def _admin_socket(info: DaemonInfo) -> str:
    assert info.socket is not None, f"daemon {info.pid} names no Unix socket in daemon.json"
    return info.socket


def admin_http(info: DaemonInfo, *, timeout: float = 30) -> httpx.Client:
    """A raw HTTP client of a real daemon as the human: the master token, sent through the
    daemon's Unix socket (over TCP the daemon answers 403 ``master_token_needs_socket``)."""
    return httpx.Client(
        base_url=info.api_url + "/",
        headers=master_headers(info),
        transport=httpx.HTTPTransport(uds=_admin_socket(info)),
        timeout=timeout,
    )


def admin_async_http(info: DaemonInfo, *, timeout: float = 60) -> httpx.AsyncClient:
    """:func:`admin_http`, asynchronous."""
    return httpx.AsyncClient(
        base_url=info.api_url + "/",
        headers=master_headers(info),
        transport=httpx.AsyncHTTPTransport(uds=_admin_socket(info)),
        timeout=timeout,
    )
