"""``aileron approval watch``: approvals in a terminal as they arrive, each decided with a key.

The watch subscribes to the daemon's stream of approval changes (``GET /v1/approvals/events``,
admin only) before it reads the pending list, so nothing that arrives in between is missed. It
shows every pending approval in full, as ``approval approve`` does (every value escaped,
nothing cut), and asks about the oldest one not skipped: ``a`` approves it (it runs now, and
its result is shown), ``d`` denies it (after an optional reason line), ``s`` skips it (it stays
pending), ``q`` quits. Decisions go through the same admin route as ``approval approve`` and
``deny``. An approval decided elsewhere (the page, another terminal) or expired leaves the
watch with a line saying so.

Each approval that arrives while watching also raises a desktop notification (``notify-send``
/ ``osascript`` where present; ``--no-notify`` turns it off) with the approval's page link.
Without a terminal on stdin, the watch only prints.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import select
import sys
import threading
from collections.abc import Iterator
from typing import Any

from aileron_cli.cli.approval import _report, show_request
from aileron_cli.cli.common import connect
from aileron_cli.cli.visible import escape
from aileron_cli.desktop_notify import notify, pending_text
from aileron_core.client import ApiError, DaemonClient
from aileron_core.errors import AileronError

__all__ = ["watch"]

STREAM = "approvals/events"
READY_S = 30.0
"""How long the stream may take to say it is subscribed."""
KEYS = "[a]pprove  [d]eny  [s]kip  [q]uit"

Change = tuple[str, str] | None  # (event, data); None: the stream ended


class _Stream:
    """The daemon's approval stream, read on a thread of its own; each change wakes the
    terminal loop through a pipe (so one ``select`` waits for a key or a change)."""

    def __init__(self, client: DaemonClient) -> None:
        self.changes: queue.Queue[Change] = queue.Queue()
        self.failure: AileronError | None = None
        self._wake_r, self._wake_w = os.pipe()
        self._client = client
        self._thread = threading.Thread(target=self._read, name="approval-stream", daemon=True)
        self._thread.start()

    @property
    def wake_fd(self) -> int:
        return self._wake_r

    def _read(self) -> None:
        try:
            for change in self._client.events(STREAM):
                self._put(change)
        except AileronError as error:
            self.failure = error
        except Exception as error:  # noqa: BLE001 - reported to the terminal loop, not lost
            self.failure = AileronError(f"the approval stream failed: {error}")
        self._put(None)

    def _put(self, change: Change) -> None:
        self.changes.put(change)
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b".")

    def drain(self) -> Iterator[Change]:
        """The changes received so far."""
        with contextlib.suppress(OSError):
            os.read(self._wake_r, 4096)
        while True:
            try:
                yield self.changes.get_nowait()
            except queue.Empty:
                return

    def close(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)


class _Watch:
    """What the terminal shows and which approval the next key decides."""

    def __init__(self, client: DaemonClient, *, notify_desktop: bool, interactive: bool) -> None:
        self.client = client
        self.notify_desktop = notify_desktop
        self.interactive = interactive
        self.pending: dict[str, dict[str, Any]] = {}
        self.skipped: set[str] = set()
        self.decided: set[str] = set()
        self.base = client.api_url.removesuffix("/v1")

    @property
    def current(self) -> str | None:
        """The approval the next key decides: the oldest pending one not skipped."""
        return next((i for i in self.pending if i not in self.skipped), None)

    def link(self, approval: dict[str, Any]) -> str:
        """The approval's page: as the daemon gives it, else on the daemon's address."""
        return str(approval.get("link") or f"{self.base}/ui/approvals/{approval['id']}")

    def prompt(self) -> None:
        if not self.interactive:
            return
        current = self.current
        if current is None:
            waiting = f" ({len(self.skipped)} skipped)" if self.skipped else ""
            print(f"Waiting for approvals{waiting}… [q]uit", flush=True)
        else:
            print(f"{current}: {KEYS} ", end="", flush=True)

    def arrived(self, approval: dict[str, Any], *, new: bool) -> None:
        """A pending approval not shown yet: show it in full (and notify, if it is new)."""
        self.pending[approval["id"]] = approval
        print(file=sys.stdout)
        show_request(approval, sys.stdout)
        print(f"link:      {self.link(approval)}", flush=True)
        if new and self.notify_desktop:
            title, body = pending_text(approval, self.link(approval))
            threading.Thread(target=notify, args=(title, body), daemon=True).start()

    def changed(self, approval: dict[str, Any]) -> bool:
        """Take one change from the stream; whether the terminal should ask again."""
        approval_id = approval["id"]
        if approval["status"] == "pending":
            if approval_id in self.pending or approval_id in self.decided:
                return False
            self.arrived(approval, new=True)
            return True
        if approval_id not in self.pending:
            return False
        del self.pending[approval_id]
        self.skipped.discard(approval_id)
        by = approval.get("decided_by")
        print(
            f"\n{approval_id} is {approval['status']}"
            + (f" (decided by {escape(str(by))})" if by else ""),
            flush=True,
        )
        return True

    def reread(self) -> None:
        """Take the pending list as it is now (at the start, and after a gap in the stream)."""
        listed = self.client.get("approvals", status="pending")
        now = {a["id"]: a for a in listed}
        for approval_id in [i for i in self.pending if i not in now]:
            del self.pending[approval_id]
            self.skipped.discard(approval_id)
            print(f"\n{approval_id} is no longer pending", flush=True)
        for approval in listed:
            if approval["id"] not in self.pending:
                self.arrived(approval, new=False)

    def decide(self, approved: bool, reason: str | None) -> None:
        approval_id = self.current
        if approval_id is None:
            return
        del self.pending[approval_id]
        self.decided.add(approval_id)
        print("approving… (it runs now)" if approved else "denying…", flush=True)
        body = {"approved": approved, "reason": reason}
        try:
            decided = self.client.post(f"approvals/{approval_id}/decide", body)
        except ApiError as error:
            print(f"{approval_id}: {escape(str(error))}", flush=True)
            return
        _report(argparse.Namespace(json=False), decided)


@contextlib.contextmanager
def _keys(fd: int) -> Iterator[None]:
    """The terminal at ``fd`` reads key by key (no Enter, no echo) inside the block."""
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _reason(fd: int) -> str | None:
    """One line typed on the terminal, echoed as usual, for a denial's reason."""
    import termios

    cbreak = termios.tcgetattr(fd)
    cooked = termios.tcgetattr(fd)
    cooked[3] |= termios.ICANON | termios.ECHO
    termios.tcsetattr(fd, termios.TCSADRAIN, cooked)
    try:
        print("\nreason (Enter for none): ", end="", flush=True)
        line = sys.stdin.readline()
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, cbreak)
    return line.strip() or None


def watch(args: argparse.Namespace) -> int:
    """The ``approval watch`` command."""
    interactive = sys.stdin.isatty()
    with connect() as client:
        stream = _Stream(client)
        try:
            return _run(client, stream, notify_desktop=not args.no_notify, interactive=interactive)
        finally:
            stream.close()


def _run(client: DaemonClient, stream: _Stream, *, notify_desktop: bool, interactive: bool) -> int:
    try:
        first = stream.changes.get(timeout=READY_S)
    except queue.Empty:
        raise AileronError("the daemon did not open the approval stream") from None
    if first is None:
        raise stream.failure or AileronError("the daemon closed the approval stream")
    view = _Watch(client, notify_desktop=notify_desktop, interactive=interactive)
    view.reread()
    if not view.pending:
        print("No approval is pending.", flush=True)
    view.prompt()
    stdin = sys.stdin.fileno()
    with _keys(stdin) if interactive else contextlib.nullcontext():
        while True:
            watched = [stream.wake_fd, stdin] if interactive else [stream.wake_fd]
            ready, _, _ = select.select(watched, [], [])
            if stream.wake_fd in ready:
                ask = False
                for change in stream.drain():
                    if change is None:
                        print("\nThe daemon ended the approval stream.", file=sys.stderr)
                        return 1
                    event, data = change
                    if event == "approval":
                        ask = view.changed(json.loads(data)) or ask
                    elif event == "gap":
                        view.reread()
                        ask = True
                if ask:
                    view.prompt()
            if interactive and stdin in ready:
                key = os.read(stdin, 1).decode(errors="replace").lower()
                if key in ("q", ""):
                    print()
                    return 0
                if view.current is None or key not in ("a", "d", "s"):
                    continue
                print(key, flush=True)
                if key == "s":
                    view.skipped.add(view.current)
                elif key == "a":
                    view.decide(True, None)
                else:
                    view.decide(False, _reason(stdin))
                view.prompt()
