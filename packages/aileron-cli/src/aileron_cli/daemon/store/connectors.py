"""Installed connector specs, content-addressed: ``store/connectors/sha256/<hex>/…``.

One spec per FQN is active. Installing a spec with the same FQN and other content replaces
the previous one (its directory is removed). A directory whose content does not hash to its
name, or does not parse, is reported as a load error and ignored.

Beside the specs, ``store/connectors/agents.json`` keeps what the user closed to agents: whole
connectors and single operations a session token may not run directly
(``{"connectors": [fqn], "operations": [[fqn, tool, op]]}``; the rule is
:mod:`aileron_cli.daemon.run.agent_access`). It is keyed by FQN, so it outlives a replaced spec. A
file that does not parse is a load error and closes every connector to agents until the user
sets a switch again (fail closed).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.files import writing
from aileron_core.canonical import canonical_json
from aileron_core.connectors import ConnectorSpec, parse_connector_spec, spec_digest, spec_to_json
from aileron_core.errors import AileronError
from aileron_core.fileio import atomic_write
from aileron_core.paths import ensure_private_dir

SPEC_FILE = "aileron.connector.v1.json"
AGENTS_FILE = "agents.json"


@dataclass(frozen=True)
class InstalledConnector:
    spec: ConnectorSpec
    digest: str


@dataclass(frozen=True)
class LoadError:
    file: str
    code: str
    message: str


class ConnectorStore:
    """The active connector spec of each FQN."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_fqn: dict[str, InstalledConnector] = {}
        self.load_errors: builtins.list[LoadError] = []
        self._closed_connectors: set[str] = set()
        self._closed_operations: set[tuple[str, str, str]] = set()
        self._closed_to_all = False

    @property
    def agents_file(self) -> Path:
        return self.root.parent / AGENTS_FILE

    def load(self) -> None:
        self._by_fqn.clear()
        self.load_errors.clear()
        self._load_agent_switches()
        if not self.root.is_dir():
            return
        for directory in sorted(self.root.iterdir()):
            path = directory / SPEC_FILE
            try:
                spec = parse_connector_spec(path.read_bytes(), source=str(path))
            except (OSError, AileronError) as error:
                code = getattr(error, "code", "unreadable")
                self.load_errors.append(LoadError(str(path), code, str(error)))
                continue
            digest = spec_digest(spec)
            if digest != directory.name:
                self.load_errors.append(
                    LoadError(str(path), "digest_mismatch", f"content hashes to {digest}")
                )
                continue
            self._by_fqn[spec.fqn] = InstalledConnector(spec, digest)

    def install(self, spec: ConnectorSpec) -> tuple[InstalledConnector, str | None]:
        """Store ``spec``; returns it and the digest it replaced (if any). A write the file
        system refuses is a ``StoreWriteError`` and changes nothing."""
        digest = spec_digest(spec)
        path = self.root / digest / SPEC_FILE
        with writing(path):
            ensure_private_dir(path.parent)
            atomic_write(path, canonical_json(spec_to_json(spec)) + b"\n")
        previous = self._by_fqn.get(spec.fqn)
        replaced = previous.digest if previous is not None and previous.digest != digest else None
        if replaced is not None:
            try:
                self._remove_dir(replaced)
            except BaseException:
                # Two specs of one FQN on disk would make the next start pick either: keep the
                # old one, the only one in force.
                with contextlib.suppress(OSError):
                    shutil.rmtree(path.parent)
                raise
        installed = InstalledConnector(spec, digest)
        self._by_fqn[spec.fqn] = installed
        return installed, replaced

    def _remove_dir(self, digest: str) -> None:
        with writing(self.root / digest), contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.root / digest)

    def get(self, fqn: str) -> InstalledConnector:
        try:
            return self._by_fqn[fqn]
        except KeyError:
            raise DaemonError(
                "connector_not_found",
                f"no connector {fqn!r} is installed",
                hint="install it with `aileron connector install FILE`",
            ) from None

    def remove(self, fqn: str) -> InstalledConnector:
        installed = self.get(fqn)
        self._remove_dir(installed.digest)
        del self._by_fqn[fqn]
        return installed

    # --- what agents may run directly (agents.json) --------------------------------------

    def _load_agent_switches(self) -> None:
        self._closed_connectors, self._closed_operations = set(), set()
        self._closed_to_all = False
        try:
            document = json.loads(self.agents_file.read_text(encoding="utf-8"))
            connectors = {str(fqn) for fqn in document.get("connectors", [])}
            operations = set()
            for item in document.get("operations", []):
                fqn, tool, op = (str(part) for part in item)
                operations.add((fqn, tool, op))
        except FileNotFoundError:
            return
        except (OSError, ValueError, AttributeError, TypeError) as error:
            self.load_errors.append(LoadError(str(self.agents_file), "invalid_state", str(error)))
            self._closed_to_all = True
            return
        self._closed_connectors, self._closed_operations = connectors, operations

    def closed_to_agents(self, fqn: str, tool: str | None = None, op: str | None = None) -> bool:
        """Whether the user closed connector ``fqn`` (or its operation ``tool``/``op``) to
        agents' direct runs."""
        if self._closed_to_all or fqn in self._closed_connectors:
            return True
        return tool is not None and op is not None and (fqn, tool, op) in self._closed_operations

    def set_agent_access(self, fqn: str, operation: tuple[str, str] | None, open_: bool) -> None:
        """Open or close connector ``fqn`` (or one ``(tool, op)`` of it) to agents' direct runs.
        The file is written first; a refused write changes nothing."""
        spec = self.get(fqn).spec
        connectors, operations = set(self._closed_connectors), set(self._closed_operations)
        if operation is None:
            (connectors.discard if open_ else connectors.add)(fqn)
        else:
            tool, op = operation
            spec.find_operation(tool, op)  # 404 unknown_operation for a name it does not have
            (operations.discard if open_ else operations.add)((fqn, tool, op))
        self._save_agent_switches(connectors, operations)

    def _save_agent_switches(
        self, connectors: set[str], operations: set[tuple[str, str, str]]
    ) -> None:
        document = {
            "connectors": sorted(connectors),
            "operations": [list(item) for item in sorted(operations)],
        }
        body = json.dumps(document, indent=2).encode() + b"\n"
        with writing(self.agents_file):
            ensure_private_dir(self.agents_file.parent)
            atomic_write(self.agents_file, body)
        self._closed_connectors, self._closed_operations = connectors, operations
        self._closed_to_all = False

    def list(self) -> builtins.list[InstalledConnector]:
        return [self._by_fqn[fqn] for fqn in sorted(self._by_fqn)]

    def specs(self) -> dict[str, ConnectorSpec]:
        return {fqn: item.spec for fqn, item in self._by_fqn.items()}
