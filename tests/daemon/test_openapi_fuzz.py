"""Schemathesis fuzzes the real daemon from its own /openapi.json: no 5xx, no schema violation.

The daemon takes its master token only on its Unix socket, and schemathesis's CLI speaks only
TCP (it builds its own ``requests`` session; neither its options nor its hooks reach the
connection). So the fuzzer talks to :func:`unix_relay`, a loopback port of this test process
whose every connection is piped to the daemon's socket: the daemon sees this test process,
outside every agent session, as the caller, exactly as it sees the ``aileron`` CLI.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import master_headers, script

from aileron_core.discovery import DaemonInfo

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    )
)


# The one operation that contacts a host the caller names (the enclave to attach): for a
# well-formed URL of a host that does not answer, 502 `enclave_unreachable` is the right answer,
# so that operation is fuzzed without the no-5xx check (malformed URLs are still 422: see
# tests/enclave/test_attach_url.py); every other operation gets every check.
REMOTE = "^/v1/enclave/attach$"
# A live event stream (`approval watch`'s) answers forever: not a request/answer to fuzz (its
# authorization is in tests/daemon/test_capability_matrix.py, its events in tests/approvals/).
STREAMS = "^/v1/approvals/events$"


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` into ``sink`` until ``source`` ends, then end ``sink``'s sending side."""
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class _Relay(socketserver.ThreadingTCPServer):
    daemon_threads = True
    unix_path = ""


class _Pipe(socketserver.BaseRequestHandler):
    server: _Relay

    def handle(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
            upstream.connect(self.server.unix_path)
            back = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
            back.start()
            _pump(self.request, upstream)
            back.join()


@contextlib.contextmanager
def unix_relay(path: str) -> Iterator[str]:
    """``http://127.0.0.1:PORT``, whose every connection is piped to the Unix socket ``path``."""
    with _Relay(("127.0.0.1", 0), _Pipe) as relay:
        relay.unix_path = path
        thread = threading.Thread(target=relay.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{relay.server_address[1]}"
        finally:
            relay.shutdown()
            thread.join()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("selection", "excluded"),
    [
        (["--exclude-path-regex", f"{REMOTE}|{STREAMS}"], ""),
        (["--include-path-regex", REMOTE], "not_a_server_error"),
    ],
    ids=["all-but-remote", "remote"],
)
def test_fuzzing_the_real_daemon_finds_nothing(
    real_daemon: DaemonInfo, tmp_path: Path, selection: list[str], excluded: str
) -> None:
    """Generated and mutated requests to every operation never get a 5xx or an off-schema answer."""
    checks = ",".join(c for c in CHECKS.split(",") if c != excluded)
    assert real_daemon.socket is not None
    with unix_relay(real_daemon.socket) as url:
        # the way in works: the master token is taken through the relay (403 over TCP)
        with httpx.Client(headers=master_headers(real_daemon), timeout=30) as probe:
            assert probe.get(f"{url}/v1/status").status_code == 200
            assert probe.get(f"{real_daemon.api_url}/status").status_code == 403
        done = _fuzz(url, real_daemon.token, selection, checks, tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "passed" in done.stdout.lower()


def _fuzz(
    url: str, token: str, selection: list[str], checks: str, reports: Path
) -> subprocess.CompletedProcess[str]:
    """Run schemathesis's CLI against the daemon at ``url`` with ``token``."""
    return subprocess.run(
        [
            script("st"),
            "run",
            f"{url}/openapi.json",
            *selection,
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            checks,
            "--max-examples",
            "10",
            "--max-time",
            "90",
            "--seed",
            "20261128",
            "--workers",
            # one worker: with two, CPython 3.11's ast.parse (used by Hypothesis to describe
            # lambdas) can fail with "AST constructor recursion depth mismatch".
            "1",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
            str(reports),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
