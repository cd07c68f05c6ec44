"""Helpers for shim tests (imported as ``shims.support``): the golden input, running a shim,
a capturing HTTP server, and PATH directories holding only chosen utilities."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aileron_shims import ShimSet, from_api, generate
from aileron_shims.runtime import UTILITIES

GOLDEN = Path(__file__).resolve().parent / "golden"
SH = shutil.which("sh") or "/bin/sh"
DASH = shutil.which("dash")
BASH = shutil.which("bash")
# What a shim runs besides its shell's built-ins (curl or wget added per test).
SHIM_UTILITIES = UTILITIES


def golden_input() -> dict[str, Any]:
    """The golden fixture: daemon-shaped connectors and actions, and the agent command."""
    document: dict[str, Any] = json.loads((GOLDEN / "input.json").read_text(encoding="utf-8"))
    return document


def generate_from(document: Mapping[str, Any]) -> ShimSet:
    """``from_api`` then ``generate`` over a daemon-shaped document."""
    connectors, actions = from_api(document["connectors"], document["actions"])
    return generate(connectors, actions, agent_command=document["agent_command"])


def write_shims(shims: ShimSet, directory: Path) -> Path:
    """Write every shim (0755) into ``directory``, as launch does; the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in shims.shims.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)
    return directory


def run_shim(
    path: Path,
    *args: str,
    env: Mapping[str, str],
    shell: str = SH,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run a shim with ``shell`` and exactly ``env`` (nothing inherited)."""
    return subprocess.run(
        [shell, os.fspath(path), *args],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
    )


def toolbox(directory: Path, names: Iterable[str]) -> Path:
    """A PATH directory holding symlinks to the named host utilities, and nothing else."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        found = shutil.which(name)
        assert found is not None, f"{name} is not installed on this host"
        (directory / name).symlink_to(os.path.realpath(found))
    return directory


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass(frozen=True)
class Request:
    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CaptureServer:
    """A loopback HTTP server that records each POST and answers ``status`` with ``answer``."""

    status: int = 200
    answer: dict[str, Any] = field(default_factory=lambda: {"audit_id": "A1", "result": None})
    seen: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                server.seen.append(Request(self.path, dict(self.headers.items()), body))
                data = json.dumps(server.answer).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> CaptureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
