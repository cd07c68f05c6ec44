"""Installed connector specs, content-addressed: ``store/connectors/sha256/<hex>/…``.

One spec per FQN is active. Installing a spec with the same FQN and other content replaces
the previous one (its directory is removed). A directory whose content does not hash to its
name, or does not parse, is reported as a load error and ignored.
"""

from __future__ import annotations

import builtins
import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store_files import writing
from aileron_core.canonical import canonical_json
from aileron_core.connectors import ConnectorSpec, parse_connector_spec, spec_digest, spec_to_json
from aileron_core.errors import AileronError
from aileron_core.fileio import atomic_write
from aileron_core.paths import ensure_private_dir

SPEC_FILE = "aileron.connector.v1.json"


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

    def load(self) -> None:
        self._by_fqn.clear()
        self.load_errors.clear()
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

    def list(self) -> builtins.list[InstalledConnector]:
        return [self._by_fqn[fqn] for fqn in sorted(self._by_fqn)]

    def specs(self) -> dict[str, ConnectorSpec]:
        return {fqn: item.spec for fqn, item in self._by_fqn.items()}
