"""The measurement: a sha256 over the enclave's installed code.

The measured code is every ``.py`` file of the installed ``aileron_enclave`` and
``aileron_core`` packages (the service and the protocol it speaks), in sorted order of
``<package>/<relative path>``::

    measurement = sha256( for each file: path UTF-8 || 0x00 || sha256(content) || 0x0a )

Third-party libraries and the interpreter are not measured. With the local provider the
enclave computes this about itself, so it tells a client which code it claims to run, not what
hardware proved it runs (``adr/0012-enclave-trust-model.md``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import aileron_core
import aileron_enclave

__all__ = ["MEASURED_PACKAGES", "measure", "measured_files"]

MEASURED_PACKAGES = (aileron_core, aileron_enclave)


def measured_files() -> list[tuple[str, Path]]:
    """``(name, path)`` of every measured file, sorted by name."""
    files: list[tuple[str, Path]] = []
    for package in MEASURED_PACKAGES:
        root = Path(package.__file__ or "").resolve().parent
        for path in root.rglob("*.py"):
            if "__pycache__" not in path.parts:
                files.append((f"{package.__name__}/{path.relative_to(root).as_posix()}", path))
    return sorted(files)


def measure(files: Iterable[tuple[str, Path]] | None = None) -> str:
    """The measurement (sha256 hex) of ``files`` (default: the installed code)."""
    digest = hashlib.sha256()
    for name, path in measured_files() if files is None else files:
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest() + b"\n")
    return digest.hexdigest()
