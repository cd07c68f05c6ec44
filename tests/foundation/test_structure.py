"""The shape of the code, read from its imports (ADR 0024): the daemon's folders form layers,
``aileron_core`` stays free of web frameworks, and no package leans on another's privates."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "packages"
DAEMON = PACKAGES / "aileron-cli" / "src" / "aileron_cli" / "daemon"

LAYERS = (
    "server",  # the process: the life-long lock, the sockets, uvicorn
    "daemon",  # the composition root: builds every service, closes them
    "http",  # the HTTP edge: app, dependencies, routes, schemas, listeners, uvicorn glue
    "gateway",  # the LLM gateway
    "run",  # planning and running actions, resolving credentials
    "custody",  # the vault's keys held: unlock/lock, arming the heads, the witness, verify
    "enclave",  # the escrow enclave: client, service, witness
    "egress",  # what leaves the machine: the executor, the sandbox egress proxies
    "access",  # who is calling: tokens, peers, launchers
    "audit",  # the audit log: log, heads, recovery, index
    "store",  # the files under AILERON_HOME, the vault service
    "errors",  # the daemon's error type
)
"""The daemon's rooms, top first: a module may import its own room and the rooms below it."""

WEB_FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "aiohttp", "sse_starlette")
DISTRIBUTIONS = {
    "aileron_core",
    "aileron_cli",
    "aileron_mcp",
    "aileron_shims",
    "aileron_enclave",
}
UVICORN_GLUES = (
    DAEMON / "http" / "uvicorn_glue.py",
    # The enclave is its own distribution (it cannot import the daemon's glue): its server
    # module is its one uvicorn module, on top-level names only.
    PACKAGES / "aileron-enclave" / "src" / "aileron_enclave" / "server.py",
)


def sources() -> Iterator[tuple[str, Path]]:
    """Every module of the five wheels, with the top-level package it belongs to."""
    for path in sorted(PACKAGES.glob("*/src/*/**/*.py")):
        top = path.relative_to(PACKAGES).parts[2]
        yield top, path


def imported(path: Path, *, module_level_only: bool = False) -> Iterator[tuple[str, int]]:
    """The absolute module names ``path`` imports (each name of a ``from X import a`` as
    ``X.a``), with the line; relative imports resolved against the module's package."""
    tree = ast.parse(path.read_text(), str(path))
    package = _package_of(path) if path.is_relative_to(PACKAGES) else ""
    nodes: Iterable[ast.AST] = _flatten(tree.body) if module_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def _flatten(nodes: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level statements, looking inside ``if``/``try``/``with`` (not inside functions
    or classes, and not under ``if TYPE_CHECKING``)."""
    for node in nodes:
        if isinstance(node, ast.If):
            test = ast.unparse(node.test)
            if "TYPE_CHECKING" not in test:
                yield from _flatten(node.body)
            yield from _flatten(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _flatten(block)
            for handler in node.handlers:
                yield from _flatten(handler.body)
        elif isinstance(node, ast.With):
            yield from _flatten(node.body)
        else:
            yield node


def _package_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGES).parts[2:])
    parts[-1] = parts[-1].removesuffix(".py")
    return ".".join(parts[:-1]) if parts[-1] != "__init__" else ".".join(parts[:-1])


def room(module: str) -> str | None:
    """The layer of a module name under ``aileron_cli.daemon`` (``None`` outside it)."""
    parts = module.split(".")
    if parts[:2] != ["aileron_cli", "daemon"] or len(parts) < 3:
        return None
    return parts[2] if parts[2] in LAYERS else None


def test_every_daemon_module_is_in_a_declared_room() -> None:
    """Each file and folder directly under ``daemon/`` is one of the declared layers."""
    found = {p.stem for p in DAEMON.iterdir() if p.suffix == ".py" or p.is_dir()}
    found -= {"__init__", "__pycache__"}
    assert sorted(found - set(LAYERS)) == []


def test_no_daemon_room_imports_a_room_above_it() -> None:
    """No module under ``daemon/`` imports from a layer above its own (type-only and
    function-level imports included: a dependency is a dependency)."""
    wrong = []
    for path in sorted(DAEMON.rglob("*.py")):
        if path.parent == DAEMON and path.stem == "__init__":
            continue  # the package's docstring
        own = room(_package_of(path) + "." + path.stem)
        assert own is not None, path
        for name, line in imported(path):
            other = room(name)
            if other is not None and LAYERS.index(other) < LAYERS.index(own):
                wrong.append(f"{path.relative_to(DAEMON)}:{line} ({own}) imports {name} ({other})")
    assert wrong == []


def test_core_imports_no_web_framework_at_module_level() -> None:
    """``aileron_core`` is usable without FastAPI, Starlette or uvicorn loaded."""
    wrong = []
    for top, path in sources():
        if top != "aileron_core":
            continue
        for name, line in imported(path, module_level_only=True):
            if name.split(".")[0] in WEB_FRAMEWORKS:
                wrong.append(f"{path.name}:{line} imports {name}")
    assert wrong == []


def test_no_module_imports_another_distributions_private_names() -> None:
    """No ``starlette._…``, ``uvicorn.…._…``, ``httpx._…``, nor another Aileron wheel's
    private module or name (the standard library is not a distribution here)."""
    wrong = []
    for top, path in sources():
        for name, line in imported(path):
            parts = name.split(".")
            if parts[0] == top or parts[0] in sys.stdlib_module_names:
                continue
            private = [p for p in parts[1:] if p.startswith("_") and not p.startswith("__")]
            if private:
                wrong.append(f"{path.relative_to(PACKAGES)}:{line} imports {name}")
    assert wrong == []


def test_uvicorn_is_used_in_one_module_through_its_public_api() -> None:
    """Only the uvicorn glue (one per serving distribution) imports uvicorn, and only names
    uvicorn exports at its top."""
    wrong = []
    for _top, path in sources():
        for name, line in imported(path):
            if name.split(".")[0] != "uvicorn":
                continue
            if path not in UVICORN_GLUES or name.count(".") > 1:
                wrong.append(f"{path.relative_to(PACKAGES)}:{line} imports {name}")
    assert wrong == []


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("aileron_cli.daemon.http.routes.vault", "http"),
        ("aileron_cli.daemon.store.vault.VaultService", "store"),
        ("aileron_cli.daemon.errors.DaemonError", "errors"),
        ("aileron_cli.cli.main", None),
    ],
)
def test_room_reads_the_layer_from_a_module_name(module: str, expected: str | None) -> None:
    """The helper the layering test rests on names the layer right (so the test can fail)."""
    assert room(module) == expected


def test_the_layering_check_sees_an_upward_import(tmp_path: Path) -> None:
    """A store module importing the composition root would be reported."""
    source = tmp_path / "probe.py"
    source.write_text("from aileron_cli.daemon.daemon import Daemon\n")
    names = [name for name, _ in imported(source)]
    assert names == ["aileron_cli.daemon.daemon.Daemon"]
    assert LAYERS.index(room(names[0]) or "") < LAYERS.index("store")
