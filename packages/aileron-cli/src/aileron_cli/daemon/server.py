"""Running one daemon process: the life-long lock, the socket, uvicorn, ``daemon.json``.

Order of start-up: take ``daemon.lock`` (a second daemon refuses), bind 127.0.0.1 on a free
port and the Unix socket ``daemon.sock`` (0600; the only place the master token is accepted,
see :mod:`aileron_cli.daemon.access.tokens`), open the stores (recovering from a crash), write
``daemon.json`` atomically (0600), then serve. SIGTERM/SIGINT stop uvicorn gracefully; the
stores are closed and ``daemon.json`` and the socket are removed. The lock dies with the
process, so a ``kill -9`` leaves nothing that blocks the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
import tempfile
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import aileron_core.client  # noqa: F401 (first: keeps httpx's unused CLI out, see there)
from aileron_cli.__about__ import __version__
from aileron_cli.daemon.daemon import Daemon, DaemonConfig, create_app
from aileron_cli.daemon.gateway.config import load_gateway_config
from aileron_cli.daemon.http.uvicorn_glue import Server, http_server
from aileron_core.discovery import DaemonInfo, read_daemon_info
from aileron_core.errors import AileronError, ConfigError
from aileron_core.fileio import atomic_write, take_lock
from aileron_core.paths import Layout, ensure_private_dir
from aileron_core.process_guard import forbid_inspection
from aileron_core.unix_sockets import bind_unix, remove_socket

log = logging.getLogger("aileron.daemon")

# Tests simulate a daemon built at another version with this; never set it otherwise.
VERSION_OVERRIDE_ENV = "AILERON_TEST_DAEMON_VERSION"


class DaemonAlreadyRunning(AileronError):
    code = "daemon_running"


def _idle_timeout(layout: Layout) -> float | None:
    try:
        settings = tomllib.loads(layout.config.read_text())
    except FileNotFoundError:
        return None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{layout.config} is not valid TOML: {error}") from error
    except OSError as error:
        raise ConfigError(f"cannot read {layout.config}: {error.strerror or error}") from error
    table = settings.get("daemon", {})
    if not isinstance(table, dict):
        raise ConfigError(f"`daemon` in {layout.config} must be a table ([daemon])")
    value = table.get("idle_timeout")
    if value is None:
        return None
    # The bounds also refuse nan (it would mean "never"), inf and ints too large for a float.
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < 1e308:
        raise ConfigError(
            f"daemon.idle_timeout in {layout.config} must be a positive number of seconds"
        )
    return float(value)


def _take_life_lock(layout: Layout) -> int:
    fd = take_lock(layout.daemon_lock)
    if fd is None:
        running = None
        with contextlib.suppress(AileronError):
            running = read_daemon_info(layout.daemon_json)
        where = f" (pid {running.pid}, {running.url})" if running else ""
        raise DaemonAlreadyRunning(
            f"another Aileron daemon is already running for {layout.home}{where}",
            hint="use it, or stop it with `aileron daemon stop`",
        )
    return fd


# sun_path holds 108 bytes on Linux (104 on macOS), the terminating NUL included.
MAX_SOCKET_PATH = 100


def socket_path(layout: Layout) -> str:
    """Where the daemon's Unix socket goes: ``daemon.sock`` in the home, or, for a home too
    deep for a socket address, a name derived from the home in a private temporary folder."""
    path = str(layout.daemon_socket)
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    folder = ensure_private_dir(Path(tempfile.gettempdir()) / f"aileron-{os.getuid()}")
    if folder.lstat().st_uid != os.getuid():  # a folder someone else made for us: not ours
        raise ConfigError(f"{folder} belongs to another user; cannot put the daemon's socket there")
    digest = hashlib.sha256(os.fsencode(layout.home.resolve())).hexdigest()[:24]
    return str(folder / f"{digest}.sock")


def _remove_daemon_json(layout: Layout, token: str) -> None:
    """Remove ``daemon.json`` if it is still ours. On a home that turned read-only it stays
    (clients find nothing answers there, and the next start replaces it)."""
    with contextlib.suppress(AileronError, FileNotFoundError):
        info = read_daemon_info(layout.daemon_json)
        if info is not None and info.token == token:
            try:
                layout.daemon_json.unlink()
            except OSError as error:
                log.warning("could not remove %s: %s", layout.daemon_json, error.strerror)


def serve(layout: Layout, *, auto_spawned: bool = False) -> int:
    """Run the daemon in this process until it is told to stop; returns the exit code."""
    layout.ensure()
    # No process of the user (an agent) may read this one's memory: it holds the vault's key.
    forbid_inspection()
    # Settings first: a malformed config.toml is reported before anything is locked or bound.
    idle_timeout = _idle_timeout(layout)
    gateway = load_gateway_config(layout.config)
    lock_fd = _take_life_lock(layout)
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when their
    # proto says TCP, and accepted sockets inherit it. With proto 0, every keep-alive answer
    # (headers and body are two writes) waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    unix_path = socket_path(layout)
    # We hold daemon.lock: a socket file already there is a dead daemon's.
    unix_sock = bind_unix(Path(unix_path), backlog=256)
    config = DaemonConfig(
        layout=layout,
        version=os.environ.get(VERSION_OVERRIDE_ENV) or __version__,
        url=url,
        idle_timeout_s=idle_timeout,
        gateway=gateway,
        peer_required=True,
    )
    server: Server | None = None
    watcher: list[asyncio.Task[None]] = []

    def on_ready(daemon: Daemon) -> None:
        info = DaemonInfo(
            url=url,
            pid=os.getpid(),
            version=config.version,
            started_at=datetime.now(UTC).isoformat(),
            token=daemon.tokens.master_token,
            auto_spawned=auto_spawned,
            socket=unix_path,
        )
        atomic_write(layout.daemon_json, json.dumps(info.to_json(), indent=2).encode() + b"\n")
        log.info("aileron daemon %s listening on %s (pid %d)", config.version, url, info.pid)
        assert server is not None
        server.on_shutdown.append(daemon.approvals.feed.close)  # live streams end first
        if config.idle_timeout_s is not None:
            watcher.append(asyncio.get_running_loop().create_task(_watch_idle(daemon)))

    async def _watch_idle(daemon: Daemon) -> None:
        timeout = config.idle_timeout_s
        assert timeout is not None
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            idle = time.monotonic() - daemon.last_activity
            if daemon.sessions.active_count() == 0 and idle >= timeout:
                log.info("idle for %.0f s with no active session: stopping", idle)
                assert server is not None
                server.should_exit = True
                return

    def on_stopped(daemon: Daemon) -> None:
        for task in watcher:
            task.cancel()
        _remove_daemon_json(layout, daemon.tokens.master_token)
        log.info("aileron daemon stopped")

    app = create_app(config, on_ready=on_ready, on_stopped=on_stopped)
    # SIGTERM/SIGINT stop it gracefully (the session listeners leave the handlers alone).
    server = http_server(app, handle_signals=True, lifespan=True, timeout_graceful_shutdown=5)
    try:
        server.run(sockets=[sock, unix_sock])
    finally:
        sock.close()
        unix_sock.close()
        remove_socket(Path(unix_path))
        os.close(lock_fd)
    if getattr(app.state, "daemon", None) is None:
        log.error("the daemon failed to start; see the messages above")
        return 1
    return 0
