"""Noticing at once that a session's launcher died (SPEC §16: a session ends with it).

Each watched launcher is a pidfd (``os.pidfd_open``) registered with the event loop: the kernel
makes it readable when the process exits, whatever killed it, so the session ends within one
loop iteration. Where pidfds are missing (an old kernel, another OS) the launcher is polled
every :data:`POLL_S` seconds instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable

from aileron_core.processes import ProcessRef

log = logging.getLogger("aileron.daemon")

POLL_S = 0.5
OnExit = Callable[[str], Awaitable[None]]


class LauncherWatch:
    """Calls ``on_exit(session_id)`` once when a watched launcher process exits."""

    def __init__(self, on_exit: OnExit) -> None:
        self._on_exit = on_exit
        self._fds: dict[str, int] = {}
        self._polls: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def watch(self, session_id: str, launcher: ProcessRef) -> None:
        """Watch ``launcher`` for ``session_id``; one already gone counts as exited now."""
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(launcher.pid)
        except ProcessLookupError:
            loop.call_soon(self._exited, session_id)
            return
        except (AttributeError, OSError):
            self._polls[session_id] = loop.create_task(self._poll(session_id, launcher))
            return
        if not launcher.alive():  # it exited, and its pid may be another's by now
            os.close(fd)
            loop.call_soon(self._exited, session_id)
            return
        self._fds[session_id] = fd
        loop.add_reader(fd, self._exited, session_id)

    def unwatch(self, session_id: str) -> None:
        fd = self._fds.pop(session_id, None)
        if fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
        poll = self._polls.pop(session_id, None)
        if poll is not None:
            poll.cancel()

    def close(self) -> None:
        for session_id in list(self._fds) + list(self._polls):
            self.unwatch(session_id)

    def _exited(self, session_id: str) -> None:
        self.unwatch(session_id)
        task = asyncio.get_running_loop().create_task(self._run(session_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll(self, session_id: str, launcher: ProcessRef) -> None:
        while launcher.alive():
            await asyncio.sleep(POLL_S)
        self._polls.pop(session_id, None)
        await self._run(session_id)

    async def _run(self, session_id: str) -> None:
        try:
            await self._on_exit(session_id)
        except Exception:  # a failure here must not take the loop's callback down with it
            log.exception("ending session %s after its launcher exited failed", session_id)
