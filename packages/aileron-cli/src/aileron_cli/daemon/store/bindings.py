"""Binding metadata in ``bindings.json``; the secret itself lives in the vault at the same path.

A binding's name is ``<kind>/<service>/<identity>`` (e.g. ``token/github/default``) and is also
its vault path. This file never holds a secret value.
"""

from __future__ import annotations

import builtins
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import attrs

from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.files import writing
from aileron_core.actions import BINDING_PATTERN
from aileron_core.convert import converter
from aileron_core.fileio import atomic_write

_NAME = re.compile(BINDING_PATTERN)


@attrs.frozen
class Binding:
    name: str
    kind: str
    service: str
    identity: str
    created_at: datetime
    metadata: dict[str, str] = attrs.field(factory=dict)


def check_name(name: str) -> tuple[str, str, str]:
    if not _NAME.fullmatch(name):
        raise DaemonError(
            "invalid_binding_name",
            f"{name!r} is not a binding name",
            hint="use <kind>/<service>/<identity>, e.g. token/github/default",
        )
    kind, service, identity = name.split("/")
    return kind, service, identity


class BindingStore:
    """Binding metadata by name, rewritten atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._bindings: dict[str, Binding] = {}

    def load(self) -> None:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            raw = {}
        self._bindings = {
            name: converter.structure(value, Binding)
            for name, value in raw.get("bindings", {}).items()
        }

    def _save(self, bindings: dict[str, Binding]) -> None:
        """Write ``bindings`` to the file, then make them the store's."""
        body = {"bindings": {n: converter.unstructure(b) for n, b in sorted(bindings.items())}}
        with writing(self.path):
            atomic_write(self.path, json.dumps(body, indent=2).encode() + b"\n")
        self._bindings = bindings

    def ensure_absent(self, name: str) -> None:
        if name in self._bindings:
            raise DaemonError(
                "binding_exists",
                f"binding {name!r} already exists",
                hint=f"revoke it first with `aileron binding revoke {name}`",
            )

    def add(self, name: str, metadata: dict[str, str]) -> Binding:
        kind, service, identity = check_name(name)
        self.ensure_absent(name)
        binding = Binding(name, kind, service, identity, datetime.now(UTC), dict(metadata))
        self._save({**self._bindings, name: binding})
        return binding

    def get(self, name: str) -> Binding:
        try:
            return self._bindings[name]
        except KeyError:
            raise DaemonError(
                "binding_not_found",
                f"no binding {name!r}",
                hint=f"add it with `aileron binding add {name}`",
            ) from None

    def remove(self, name: str) -> Binding:
        binding = self.get(name)
        self._save({n: b for n, b in self._bindings.items() if n != name})
        return binding

    def find_default(self, service: str) -> builtins.list[Binding]:
        """Bindings named ``*/<service>/default``."""
        return [
            b for b in self._bindings.values() if b.service == service and b.identity == "default"
        ]

    def list(self) -> builtins.list[Binding]:
        return [self._bindings[name] for name in sorted(self._bindings)]
