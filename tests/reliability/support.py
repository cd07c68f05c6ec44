"""Machinery shared by the reliability suite (imported as ``reliability.support``).

- a real daemon's HTTP clients, and setting it up with the echo connector, ``echo-say``, a
  binding and (optionally) ``stall-careful``, an approval-required action whose upstream
  holds every request until released (:class:`StallServer`);
- :func:`run_load`: N concurrent clients (each with its own session token) running
  ``echo-say`` while another client reads ``GET /v1/audit``; it can ``kill -9`` the daemon
  once enough runs were acknowledged;
- reading ``audit.jsonl`` from disk and checking that every acknowledged run has its events;
- ``kill -9`` of a daemon and waiting until its lock is free;
- running the CLI with raw (non-UTF-8) arguments and judging how it failed (:func:`handled`).

The file systems of the storage faults are in ``reliability.mounts``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock

import httpx
from actions.support import SECRET, echo_spec, manifest
from helpers import admin_async_http, admin_http, script

from aileron_cli.examples.echo_server import EchoServer
from aileron_cli.lifecycle import daemon_running
from aileron_core.__about__ import __version__
from aileron_core.audit import AuditRecord, parse_line
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

PASSPHRASE = "reliability passphrase"  # noqa: S105 (a throw-away passphrase)


# -- the daemon --------------------------------------------------------------------------------


def headers(token: str) -> dict[str, str]:
    """What a client of this version sends with ``token``."""
    return {"Authorization": f"Bearer {token}", "X-Aileron-Version": __version__}


def client(info: DaemonInfo, token: str | None = None, timeout: float = 60) -> httpx.Client:
    """A synchronous client of ``info``'s API: the human's (master token, Unix socket) unless
    ``token`` (a session's, over TCP)."""
    if token is None:
        return admin_http(info, timeout=timeout)
    return httpx.Client(base_url=info.api_url + "/", headers=headers(token), timeout=timeout)


def stall_spec(host: str) -> dict[str, Any]:
    """The echo spec renamed ``local://stall`` and pointed at ``host`` (a StallServer)."""
    spec = echo_spec(host)
    spec["connector"]["fqn"] = "local://stall"
    return spec


def stall_manifest() -> str:
    """``echo-careful`` renamed ``stall-careful``, running against ``local://stall``."""
    return (
        manifest("echo-careful")
        .replace('name = "echo-careful"', 'name = "stall-careful"')
        .replace("local://echo", "local://stall")
    )


def set_up(info: DaemonInfo, echo_host: str, stall_host: str | None = None) -> None:
    """Vault (PASSPHRASE), echo connector, ``echo-say``, ``token/echo/default``; with
    ``stall_host`` also ``local://stall`` and ``stall-careful``. Through the HTTP API."""
    steps: list[tuple[str, dict[str, Any]]] = [
        ("vault/init", {"passphrase": PASSPHRASE}),
        ("connectors", {"spec": echo_spec(echo_host)}),
        ("actions", {"manifest": manifest("echo-say")}),
        ("bindings", {"name": "token/echo/default", "value": SECRET}),
    ]
    if stall_host is not None:
        steps += [
            ("connectors", {"spec": stall_spec(stall_host)}),
            ("actions", {"manifest": stall_manifest()}),
        ]
    with client(info) as api:
        for path, body in steps:
            answer = api.post(path, json=body)
            assert answer.status_code in (200, 201), (path, answer.text)


def open_sessions(info: DaemonInfo, count: int) -> list[tuple[str, str]]:
    """``count`` new sessions: ``(id, token)`` each."""
    with client(info) as api:
        made = []
        for n in range(count):
            answer = api.post("sessions", json={"agent": f"load-{n}", "working_dir": "/tmp"})
            assert answer.status_code == 201, answer.text
            made.append((answer.json()["id"], answer.json()["token"]))
    return made


def lock_held(layout: Layout) -> bool:
    """Whether a process holds the daemon's life-long lock (works on a read-only home)."""
    return daemon_running(layout)


def kill9(layout: Layout, pid: int) -> None:
    """SIGKILL the daemon ``pid`` and wait (bounded) until its life-long lock is free."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while lock_held(layout):
        assert time.monotonic() < deadline, f"daemon {pid} still holds its lock after SIGKILL"
        time.sleep(0.02)


def log_problems(layout: Layout) -> list[str]:
    """Lines of ``daemon.log`` that show a crash or a server error."""
    if not layout.daemon_log.exists():
        return []
    text = layout.daemon_log.read_text(errors="replace")
    return [
        line
        for line in text.splitlines()
        if "Traceback" in line or " ERROR " in line or "internal_error" in line
    ]


# -- upstreams ---------------------------------------------------------------------------------

BACKLOG = 128
"""socketserver listens with a backlog of 5; 32 clients connecting at once overflow it, and an
overflowed accept queue now and then surfaces as a reset connection (a 502 from the daemon)."""


@contextlib.contextmanager
def echo_server(port: int = 0) -> Iterator[EchoServer]:
    """The example EchoServer (accepts ``Bearer SECRET``; it listens with a backlog of 128)."""
    with EchoServer(SECRET, port=port) as server:
        yield server


@dataclass
class StallServer:
    """A local upstream for ``local://stall``: it reads each request, sets :attr:`arrived`,
    then holds it until :attr:`release` is set, and answers like the echo server."""

    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    bodies: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.bodies.append(body)
                server.arrived.set()
                server.release.wait(timeout=120)
                data = json.dumps({"echo": json.loads(body).get("message")}).encode()
                with contextlib.suppress(OSError):  # the daemon may be dead by now
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

        with mock.patch.object(ThreadingHTTPServer, "request_queue_size", BACKLOG):
            self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> StallServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


# -- load --------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What the clients of :func:`run_load` saw."""

    acked: dict[str, tuple[str, str]] = field(default_factory=dict)
    """message -> (audit_id, session id) of every 200 answer."""
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)
    """Anything unexpected: a non-200 answer, a wrong result, a transport error before the
    kill, an audit read that was not a consecutive, linked run of records."""
    cut_off: list[str] = field(default_factory=list)
    """Transport errors after the kill (expected: the daemon is gone)."""
    audit_reads: int = 0
    vault_acked: list[str] = field(default_factory=list)
    """Vault paths whose PUT was answered 200."""
    killed_after: int | None = None
    """How many runs were acknowledged when the kill was sent."""


async def _runner(
    api_url: str, session: tuple[str, str], n: int, until: float, out: LoadResult
) -> None:
    session_id, token = session
    async with httpx.AsyncClient(
        base_url=api_url + "/", headers=headers(token), timeout=60
    ) as http:
        i = 0
        while time.monotonic() < until and out.killed_after is None:
            message = f"c{n}-{i}"
            i += 1
            try:
                answer = await http.post(
                    "actions/echo-say/run", json={"args": {"message": message}}
                )
            except httpx.TransportError as error:
                (out.cut_off if out.killed_after is not None else out.problems).append(
                    f"{message}: {error!r}"
                )
                return
            out.statuses[answer.status_code] += 1
            if answer.status_code != 200:
                out.problems.append(f"{message}: {answer.status_code} {answer.text[:300]}")
                continue
            body = answer.json()
            if body.get("result") != {"echo": message, "authorized": True}:
                out.problems.append(f"{message}: wrong result {body!r:.300}")
            out.acked[message] = (body["audit_id"], session_id)


async def _audit_reader(info: DaemonInfo, until: float, out: LoadResult) -> None:
    async with admin_async_http(info) as http:
        while time.monotonic() < until and out.killed_after is None:
            try:
                answer = await http.get("audit", params={"limit": 300})
            except httpx.TransportError as error:
                (out.cut_off if out.killed_after is not None else out.problems).append(
                    f"audit read: {error!r}"
                )
                return
            out.statuses[answer.status_code] += 1
            if answer.status_code != 200:
                out.problems.append(f"audit read: {answer.status_code} {answer.text[:300]}")
                continue
            out.audit_reads += 1
            records = answer.json()
            for before, after in zip(records, records[1:], strict=False):
                if after["seq"] != before["seq"] + 1 or after["prev"] != before["hash"]:
                    out.problems.append(f"audit read: seq {after['seq']} does not follow")
                    break


async def _vault_writer(info: DaemonInfo, until: float, out: LoadResult) -> None:
    async with admin_async_http(info) as http:
        i = 0
        while time.monotonic() < until and out.killed_after is None:
            path = f"reliability/w{i}"
            i += 1
            try:
                answer = await http.put(f"vault/entries/{path}", json={"value": f"v{i}" * 50})
            except httpx.TransportError as error:
                (out.cut_off if out.killed_after is not None else out.problems).append(
                    f"vault write: {error!r}"
                )
                return
            out.statuses[answer.status_code] += 1
            if answer.status_code == 200:
                out.vault_acked.append(path)
            else:
                out.problems.append(f"vault write: {answer.status_code} {answer.text[:300]}")


async def _killer(
    out: LoadResult, after: int, ready: Callable[[], bool], kill: Callable[[], None], until: float
) -> None:
    while len(out.acked) < after or not ready():
        if time.monotonic() >= until:
            out.problems.append(f"the kill never came: {len(out.acked)} runs acknowledged")
            return
        await asyncio.sleep(0.005)
    out.killed_after = len(out.acked)
    kill()


def run_load(
    info: DaemonInfo,
    sessions: list[tuple[str, str]],
    seconds: float,
    *,
    vault_writes: bool = False,
    kill_after: int | None = None,
    kill: Callable[[], None] | None = None,
    kill_when: Callable[[], bool] = lambda: True,
    extra: Callable[[], Awaitable[None]] | None = None,
) -> LoadResult:
    """One client per session runs ``echo-say`` (distinct messages) for ``seconds`` while a
    master-token client reads the audit log (and, with ``vault_writes``, another writes vault
    entries). With ``kill_after``, ``kill()`` runs once that many runs were acknowledged and
    ``kill_when()`` holds; the clients then stop at their first transport error. ``extra`` is
    one more coroutine run alongside (its own errors are its business)."""
    out = LoadResult()

    async def main() -> None:
        until = time.monotonic() + seconds
        tasks: list[Awaitable[None]] = [
            _runner(info.api_url, session, n, until, out) for n, session in enumerate(sessions)
        ]
        tasks.append(_audit_reader(info, until, out))
        if vault_writes:
            tasks.append(_vault_writer(info, until, out))
        if kill_after is not None:
            assert kill is not None
            tasks.append(_killer(out, kill_after, kill_when, kill, until))
        if extra is not None:
            tasks.append(extra())
        await asyncio.gather(*tasks)

    asyncio.run(main())
    return out


# -- the audit log on disk ---------------------------------------------------------------------


def read_audit(layout: Layout) -> list[AuditRecord]:
    """Every record of ``audit.jsonl``; fails on a line that is not an intact record."""
    with layout.audit.open("rb") as handle:
        return [parse_line(line) for line in handle]


def missing_events(records: list[AuditRecord], acked: dict[str, tuple[str, str]]) -> list[str]:
    """What is wrong with the events of the acknowledged runs (empty when nothing is).

    Each acknowledged ``audit_id`` must be an ``execution.succeeded`` of the run's session,
    whose invocation has exactly one ``execution.started`` before it and one
    ``binding.used``, and no invocation may have succeeded twice.
    """
    by_id = {r.id: r for r in records}
    per_invocation: dict[str, collections.Counter[str]] = collections.defaultdict(
        collections.Counter
    )
    started_seq: dict[str, int] = {}
    for record in records:
        invocation = record.payload.get("invocation_id")
        if isinstance(invocation, str):
            per_invocation[invocation][record.type] += 1
            if record.type == "execution.started":
                started_seq[invocation] = record.seq
    problems = []
    for message, (audit_id, session_id) in sorted(acked.items()):
        found = by_id.get(audit_id)
        if found is None:
            problems.append(f"{message}: no audit record {audit_id}")
            continue
        invocation = found.payload.get("invocation_id")
        counts = per_invocation.get(str(invocation), collections.Counter())
        if found.type != "execution.succeeded" or found.session_id != session_id:
            problems.append(f"{message}: {audit_id} is {found.type} of {found.session_id}")
        elif counts != collections.Counter(
            {"execution.started": 1, "binding.used": 1, "execution.succeeded": 1}
        ):
            problems.append(f"{message}: invocation {invocation} has {dict(counts)}")
        elif started_seq[str(invocation)] > found.seq:
            problems.append(f"{message}: execution.started comes after execution.succeeded")
    return problems


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    """``done`` failed (exit 1) with one ``aileron: error:`` line holding every needle."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith("aileron: error: "), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    for needle in needles:
        assert needle in done.stderr, (needle, done.stderr)


# -- the CLI with hostile input ------------------------------------------------------------


def cli(*args: str | bytes, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    """Run `aileron` with raw (possibly non-UTF-8) arguments and standard input."""
    argv = [script("aileron").encode()] + [a if isinstance(a, bytes) else a.encode() for a in args]
    done = subprocess.run(argv, input=stdin, capture_output=True, timeout=120)
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )


def handled(done: subprocess.CompletedProcess[str], codes: frozenset[int]) -> str | None:
    """What is wrong with how the CLI handled a hostile input (``None``: nothing)."""
    if "Traceback" in done.stderr or done.returncode not in codes:
        return f"exit {done.returncode}: {done.stderr[-400:]}"
    if done.returncode == 1 and not (
        done.stderr.startswith("aileron: error: ") and done.stderr.count("\n") == 1
    ):
        return f"not one error line: {done.stderr[-400:]}"
    if done.returncode == 2 and not re.search(r"^usage: .*\n.*error: ", done.stderr, re.S):
        return f"not a usage error: {done.stderr[-400:]}"
    return None


ERROR = frozenset({1})
USAGE = frozenset({2})
EITHER = frozenset({0, 1})  # valid but odd input: done, or refused in one line
