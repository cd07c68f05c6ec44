"""Installed action manifests: ``actions/<name>.md``, plus which ones are disabled.

The enabled/disabled state lives beside the manifests in ``actions/.state.json`` (``{"disabled":
[names]}``), so a manifest file stays exactly what the user installed. A manifest that does not
parse, or no longer fits the installed connectors, is a load error: it is listed in
``GET /v1/actions`` under ``load_errors`` and never breaks the list.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.connectors import LoadError
from aileron_cli.daemon.store.files import writing
from aileron_core.actions import ActionManifest, check_requirements, parse_action_manifest
from aileron_core.connectors import ConnectorSpec
from aileron_core.errors import AileronError
from aileron_core.fileio import atomic_write
from aileron_core.paths import ensure_private_dir

STATE_FILE = ".state.json"


@dataclass(frozen=True)
class InstalledAction:
    manifest: ActionManifest
    text: str
    enabled: bool


class ActionStore:
    """Actions by name."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._actions: dict[str, InstalledAction] = {}
        self._disabled: set[str] = set()
        self.load_errors: builtins.list[LoadError] = []

    def load(self, specs: Mapping[str, ConnectorSpec]) -> None:
        """(Re-)read every manifest, checking each against the installed connectors."""
        self._actions.clear()
        self.load_errors.clear()
        if not self.directory.is_dir():
            return
        try:
            state = json.loads((self.directory / STATE_FILE).read_text())
            self._disabled = {str(name) for name in state.get("disabled", [])}
        except FileNotFoundError:
            self._disabled = set()
        except (ValueError, AttributeError, TypeError) as error:
            self.load_errors.append(LoadError(STATE_FILE, "invalid_state", str(error)))
            self._disabled = set()
        for path in sorted(self.directory.glob("*.md")):
            try:
                text = path.read_text(encoding="utf-8")
                manifest = self._check(text, specs, str(path))
                if manifest.name != path.stem:
                    raise DaemonError(
                        "invalid_action_manifest",
                        f"{path}: the file name must be the action's name ({manifest.name}.md)",
                    )
            except (OSError, UnicodeDecodeError, AileronError) as error:
                code = getattr(error, "code", "unreadable")
                self.load_errors.append(LoadError(str(path), code, str(error)))
                continue
            self._actions[manifest.name] = InstalledAction(
                manifest, text, manifest.name not in self._disabled
            )

    @staticmethod
    def _check(text: str, specs: Mapping[str, ConnectorSpec], source: str) -> ActionManifest:
        manifest = parse_action_manifest(text, source=source)
        check_requirements(manifest, specs, source=source)
        return manifest

    def install(
        self, text: str, specs: Mapping[str, ConnectorSpec], *, enabled: bool | None = None
    ) -> InstalledAction:
        """Validate ``text`` and store it as ``actions/<name>.md`` (replacing any previous).
        ``enabled`` sets its state before the manifest is written, so an action installed
        disabled is never enabled for a moment; ``None`` keeps the state it had."""
        manifest = self._check(text, specs, "<manifest>")
        path = self.directory / f"{manifest.name}.md"
        if enabled is not None:
            name = manifest.name
            self._save_state(self._disabled - {name} if enabled else self._disabled | {name})
        with writing(path):
            ensure_private_dir(self.directory)
            atomic_write(path, text.encode("utf-8"))
        installed = InstalledAction(manifest, text, manifest.name not in self._disabled)
        self._actions[manifest.name] = installed
        return installed

    def get(self, name: str) -> InstalledAction:
        try:
            return self._actions[name]
        except KeyError:
            raise DaemonError(
                "action_not_found",
                f"no action {name!r} is installed",
                hint="see `aileron action list`",
            ) from None

    def set_enabled(self, name: str, enabled: bool) -> InstalledAction:
        installed = self.get(name)
        self._save_state(self._disabled - {name} if enabled else self._disabled | {name})
        updated = InstalledAction(installed.manifest, installed.text, enabled)
        self._actions[name] = updated
        return updated

    def remove(self, name: str) -> None:
        self.get(name)
        path = self.directory / f"{name}.md"
        with writing(path):
            path.unlink(missing_ok=True)
        del self._actions[name]
        if name in self._disabled:
            self._save_state(self._disabled - {name})

    def _save_state(self, disabled: set[str]) -> None:
        """Write ``disabled`` to the state file, then make it the store's."""
        path = self.directory / STATE_FILE
        body = json.dumps({"disabled": sorted(disabled)}, indent=2).encode() + b"\n"
        with writing(path):
            ensure_private_dir(self.directory)
            atomic_write(path, body)
        self._disabled = disabled

    def list(self) -> builtins.list[InstalledAction]:
        return [self._actions[name] for name in sorted(self._actions)]
