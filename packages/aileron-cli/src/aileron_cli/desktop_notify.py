"""Desktop notifications of approvals waiting for a human (issue #20): ``notify-send`` on Linux,
``osascript`` on macOS, whichever is on ``PATH``; nothing where neither is.

Used by ``aileron approval watch`` (in the human's own desktop session) and by the daemon when
``[approvals] notify = true``. What an agent chose (the target's name) is shown with every
non-printable character escaped and, for ``notify-send`` whose notification servers read a
little HTML, with ``&``, ``<`` and ``>`` escaped too; every value is passed as its own
argument, never spliced into a script.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from aileron_cli.cli.visible import escape

__all__ = ["TIMEOUT_S", "notification_command", "notify", "pending_text"]

TIMEOUT_S = 5.0
"""How long a notification command may take before it is given up on."""

# AppleScript that shows its two arguments: the values never become script text.
_OSASCRIPT = (
    "on run argv",
    "display notification (item 2 of argv) with title (item 1 of argv)",
    "end run",
)


def pending_text(approval: Mapping[str, Any], link: str | None) -> tuple[str, str]:
    """The title and body of the notification for a new pending ``approval`` (its JSON)."""
    who = approval.get("agent") or approval.get("session_id") or "outside any agent session"
    title = f"Aileron: {approval['target']} waits for approval"
    body = f"{approval['id']}, asked by {who}"
    if link:
        body += f"\n{link}"
    return escape(title), "\n".join(escape(line) for line in body.split("\n"))


def notification_command(title: str, body: str, *, platform: str | None = None) -> list[str] | None:
    """The command that shows ``title`` and ``body``, or ``None`` when no notifier is on PATH."""
    platform = platform or sys.platform
    if platform == "darwin":
        osascript = shutil.which("osascript")
        if osascript is None:
            return None
        script = [part for line in _OSASCRIPT for part in ("-e", line)]
        return [osascript, *script, title, body]
    notify_send = shutil.which("notify-send")
    if notify_send is None:
        return None
    return [notify_send, "--app-name=Aileron", "--", title, html.escape(body, quote=False)]


def notify(title: str, body: str) -> bool:
    """Show one notification; ``False`` when there is no notifier or it failed (never raises:
    a notification is a courtesy, the approval waits either way)."""
    command = notification_command(title, body)
    if command is None:
        return False
    try:
        done = subprocess.run(  # noqa: S603 - a fixed program, every value its own argument
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0
