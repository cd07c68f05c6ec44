"""Every error code raised anywhere in the five wheels has its HTTP status in the one table
(``aileron_core.http_errors.STATUS_BY_CODE``, ADR 0026), found by reading the sources.

The scan knows every way the code base gives an error its code:

- a class attribute ``code = "..."`` on a subclass of ``AileronError``;
- a ``code="..."`` keyword of a call to an error class or to a callable below
  (``EnclaveError(..., code="nonce_reused")``);
- the first argument of a callable whose first parameter is ``code``: a class whose
  ``__init__`` takes it (``DaemonError("binding_required", ...)``) and its subclasses that keep
  that ``__init__``, and a function or method that takes it (``plan.upstream_error(...)``).

A code written as an ``a if cond else b`` expression counts both branches. A code computed at
run time cannot be read here; the scan proves it finds the known forms, so it cannot pass by
finding nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from aileron_core.http_errors import STATUS_BY_CODE

PACKAGES = Path(__file__).resolve().parents[2] / "packages"


def _modules() -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text(), str(path)))
        for path in sorted(PACKAGES.glob("*/src/*/**/*.py"))
    ]


def _name(node: ast.expr) -> str:
    """The last name of ``X`` or ``a.b.X`` (``""`` for anything else)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _strings(node: ast.expr | None) -> Iterator[str]:
    """The string constants ``node`` may evaluate to (both branches of ``a if c else b``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _strings(node.body)
        yield from _strings(node.orelse)


def _first_parameter(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    params = [*function.args.posonlyargs, *function.args.args]
    if params and params[0].arg in ("self", "cls"):
        params = params[1:]
    return params[0].arg if params else None


def _classes(modules: list[tuple[Path, ast.Module]]) -> dict[str, list[ast.ClassDef]]:
    found: dict[str, list[ast.ClassDef]] = {}
    for _, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, []).append(node)
    return found


def _descendants(
    classes: dict[str, list[ast.ClassDef]], roots: set[str], *, keep: bool
) -> set[str]:
    """``roots`` and every class deriving from one of them (by name); with ``keep``, only
    through classes that do not define their own ``__init__``."""
    names = set(roots)
    while True:
        more = {
            name
            for name, defs in classes.items()
            if name not in names
            for node in defs
            if any(_name(base) in names for base in node.bases)
            and not (keep and _defines_init(node))
        }
        if not more:
            return names
        names |= more


def _defines_init(node: ast.ClassDef) -> bool:
    return any(
        isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == "__init__"
        for item in node.body
    )


def raised_codes() -> dict[str, set[str]]:
    """Every error code the sources give an error, with where (``file:line``)."""
    modules = _modules()
    classes = _classes(modules)
    errors = _descendants(classes, {"AileronError"}, keep=False)
    takers = set()  # callables whose first parameter is the code
    for _, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if _first_parameter(node) == "code" and node.name != "__init__":
                    takers.add(node.name)
            elif isinstance(node, ast.ClassDef) and node.name in errors:
                for item in node.body:
                    if (
                        isinstance(item, ast.FunctionDef)
                        and item.name == "__init__"
                        and _first_parameter(item) == "code"
                    ):
                        takers |= _descendants(classes, {node.name}, keep=True)
    found: dict[str, set[str]] = {}

    def add(values: Iterator[str], path: Path, line: int) -> None:
        for value in values:
            found.setdefault(value, set()).add(f"{path.relative_to(PACKAGES)}:{line}")

    for path, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in errors:
                for item in node.body:
                    if isinstance(item, ast.Assign | ast.AnnAssign):
                        targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                        if any(_name(target) == "code" for target in targets):
                            add(_strings(item.value), path, item.lineno)
            elif isinstance(node, ast.Call):
                callee = _name(node.func)
                if callee in errors or callee in takers:
                    for keyword in node.keywords:
                        if keyword.arg == "code":
                            add(_strings(keyword.value), path, node.lineno)
                if callee in takers and node.args:
                    add(_strings(node.args[0]), path, node.lineno)
    return found


RAISED = raised_codes()


def test_the_scan_finds_every_form_of_raising_a_code() -> None:
    """The scan sees a class attribute, a code= keyword, a DaemonError code, a subclass that
    keeps DaemonError's signature, a method taking the code and both branches of a choice."""
    assert "vault_locked" in RAISED  # class VaultLocked: code = "vault_locked"
    assert "nonce_reused" in RAISED  # EnclaveError(..., code="nonce_reused")
    assert "binding_required" in RAISED  # DaemonError("binding_required", ...)
    assert "enclave_refused" in RAISED  # EnclaveRefusal → DaemonError.__init__("enclave_refused")
    assert "upstream_too_many_redirects" in RAISED  # plan.upstream_error("upstream_too_many…")
    assert {"upstream_bad_response", "upstream_unreachable"} <= set(RAISED)  # a if c else b
    assert len(RAISED) > 100


@pytest.mark.parametrize("code", sorted(RAISED))
def test_every_raised_code_has_a_status(code: str) -> None:
    """Each error code raised anywhere has an HTTP status in the one table."""
    assert code in STATUS_BY_CODE, f"{code} (raised at {sorted(RAISED[code])}) has no status"


def test_every_status_in_the_table_is_for_a_raised_code() -> None:
    """The table names no code that nothing raises (a stale entry hides a renamed code)."""
    assert sorted(set(STATUS_BY_CODE) - set(RAISED)) == []
