"""Finding the running daemon: ``daemon.json`` and a fast health probe.

This module is on the CLI's hot path (every command that talks to the daemon starts here), so
it uses only the standard library: importing httpx costs ~150 ms on the reference machine,
more than the whole ``aileron daemon status`` budget allows (see ADR 0004).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aileron_core.errors import AileronError

API_PREFIX = "/v1"
VERSION_HEADER = "X-Aileron-Version"
MAX_PID = 1 << 31  # pid_t is a signed 32-bit integer


class DaemonInfoInvalid(AileronError):
    """``daemon.json`` exists but cannot be read as a daemon record."""

    code = "daemon_info_invalid"


@dataclass(frozen=True)
class DaemonInfo:
    """The record a running daemon writes to ``daemon.json`` (0600)."""

    url: str
    pid: int
    version: str
    started_at: str
    token: str
    auto_spawned: bool = False
    socket: str | None = None
    """The daemon's Unix socket: the only place its master token is accepted."""

    @property
    def api_url(self) -> str:
        """The base of the HTTP API (``…/v1``)."""
        return self.url.rstrip("/") + API_PREFIX

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "pid": self.pid,
            "version": self.version,
            "started_at": self.started_at,
            "token": self.token,
            "auto_spawned": self.auto_spawned,
            "socket": self.socket,
        }


def read_daemon_info(path: Path) -> DaemonInfo | None:
    """Read ``daemon.json``; ``None`` when it does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
        pid = int(data["pid"])
        if not 0 < pid < MAX_PID:  # 0 and -1 would signal a whole process group, or everyone
            raise ValueError(f"pid {pid} is out of range")
        return DaemonInfo(
            url=str(data["url"]),
            pid=pid,
            version=str(data["version"]),
            started_at=str(data["started_at"]),
            token=str(data["token"]),
            auto_spawned=bool(data.get("auto_spawned", False)),
            socket=str(data["socket"]) if data.get("socket") is not None else None,
        )
    # OverflowError: a pid of Infinity (int() of it); RecursionError: deeply nested JSON.
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as error:
        raise DaemonInfoInvalid(
            f"{path} is not a valid daemon record ({error})",
            hint="run `aileron daemon stop`, then retry",
        ) from error


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a Unix socket (the daemon's admin socket)."""

    def __init__(self, path: str, *, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def get_json(
    url: str,
    path: str,
    *,
    token: str | None = None,
    timeout: float = 2.0,
    unix_socket: str | None = None,
) -> Any:
    """GET ``url + path`` over plain HTTP (through ``unix_socket`` when given) and return the
    decoded JSON body.

    Raises ``OSError`` when nothing answers and ``ValueError`` when the answer is not a 2xx
    JSON document. Only for the daemon's loopback URL.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"not a plain-HTTP daemon URL: {url}")
    connection: http.client.HTTPConnection
    if unix_socket is not None:
        connection = UnixHTTPConnection(unix_socket, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request("GET", parts.path.rstrip("/") + path, headers=headers)
        response = connection.getresponse()
        body = response.read()
    except http.client.HTTPException as error:
        raise OSError(f"bad HTTP answer from {url}: {error}") from error
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        raise ValueError(f"{url}{path} answered {response.status}")
    return json.loads(body)


def probe(info: DaemonInfo, *, timeout: float = 0.5) -> dict[str, Any] | None:
    """Ask the daemon's ``/v1/health``; its answer, or ``None`` if nothing healthy answers."""
    try:
        health = get_json(info.url, f"{API_PREFIX}/health", timeout=timeout)
    except (OSError, ValueError):
        return None
    if not isinstance(health, dict) or health.get("service") != "aileron":
        return None
    return health


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
