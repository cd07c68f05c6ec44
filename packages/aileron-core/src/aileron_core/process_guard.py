"""Protections a process asks the kernel for about itself (Linux ``prctl``).

Standard library only, so that it can be loaded anywhere (tests load it on its own, in a
process of another user).

- :func:`forbid_inspection`: no other process of the same user may ptrace this one, read its
  memory (``/proc/PID/mem``) or its environment: the daemon holds the vault's key once
  unlocked, and the launcher's requests are the human's, so an agent running as the same user
  must not reach into either. Only root (``CAP_SYS_PTRACE``) still can. Also disables core
  dumps, which would write that memory to disk.
- :func:`become_subreaper`: orphans of our descendants are re-parented to us instead of to
  init, so they stay in our process tree (ADR 0014).

Each answers whether the kernel agreed; elsewhere than Linux both answer ``False``.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["become_subreaper", "forbid_inspection"]

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def forbid_inspection() -> bool:
    """Make this process non-dumpable (``PR_SET_DUMPABLE`` 0)."""
    return _prctl(PR_SET_DUMPABLE, 0)


def become_subreaper() -> bool:
    """Make this process its descendants' reaper (``PR_SET_CHILD_SUBREAPER``)."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)
