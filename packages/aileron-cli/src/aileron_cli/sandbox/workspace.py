"""Which directories may become a sandboxed agent's workspace: never one that holds the vault.

The workspace is bind-mounted read-write into the container, so a workspace that is, contains
or lies inside an Aileron home would hand the agent ``vault.json`` and ``daemon.json`` (whose
master token the daemon honours). :func:`refuse_unsafe_workspace` is that one rule; launch and
``aileron sandbox check`` call it before any session or container exists.

What counts as an Aileron home: ``AILERON_HOME`` (by path, at any depth below the workspace),
and any directory holding ``daemon.json`` or ``vault.json`` among the workspace itself, its
ancestors and its immediate subdirectories (so ``cd ~`` is refused for a ``~/.aileron`` that is
not the current ``AILERON_HOME``). Deeper subdirectories are not scanned: a project tree can be
large, and a second home buried deep inside a project is not a layout Aileron creates.
"""

from __future__ import annotations

import os
from pathlib import Path

from aileron_cli.launch.errors import UnsafeWorkspace
from aileron_core.paths import Layout

# The files that make a directory an Aileron home (Layout.daemon_json, Layout.vault).
HOME_MARKERS = ("daemon.json", "vault.json")
HINT = "`cd` into your project folder (one that does not hold Aileron's state) and launch again"


def unsafe_workspace(cwd: Path, layout: Layout) -> str | None:
    """Why ``cwd`` must not be a sandbox workspace, or ``None`` when it may."""
    workspace = cwd.resolve()
    home = layout.home.expanduser().resolve()
    if workspace == home:
        return f"the workspace {workspace} is AILERON_HOME"
    if workspace.is_relative_to(home):
        return f"the workspace {workspace} is inside AILERON_HOME ({home})"
    if home.is_relative_to(workspace):
        return f"the workspace {workspace} contains AILERON_HOME ({home})"
    for directory in (workspace, *workspace.parents):
        marker = _marker(directory)
        if marker is not None:
            where = "is" if directory == workspace else "is inside"
            return f"the workspace {workspace} {where} an Aileron home ({marker} holds its state)"
    for child in _subdirectories(workspace):
        marker = _marker(child)
        if marker is not None:
            return f"the workspace {workspace} contains an Aileron home ({marker})"
    return None


def refuse_unsafe_workspace(cwd: Path, layout: Layout) -> None:
    """Raise :class:`UnsafeWorkspace` when ``cwd`` would mount Aileron's state into a
    container (see the module docstring for the rule)."""
    reason = unsafe_workspace(cwd, layout)
    if reason is not None:
        raise UnsafeWorkspace(
            f"refusing to mount {cwd} into the sandbox: {reason}, and the agent would be"
            " able to read the vault and the daemon's token",
            hint=HINT,
        )


def _marker(directory: Path) -> Path | None:
    for name in HOME_MARKERS:
        if (directory / name).exists():
            return directory / name
    return None


def _subdirectories(directory: Path) -> list[Path]:
    try:
        with os.scandir(directory) as entries:
            return [Path(entry.path) for entry in entries if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []
