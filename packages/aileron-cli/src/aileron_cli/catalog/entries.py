"""The catalog: signed entries, each one connector spec and its ready actions.

A catalog document is ``{"format": "aileron.catalog.v1", "entries": [ENTRY, ...]}``; an entry is
``{"name", "version", "description", "tags": [str], "connector": SPEC, "actions": {"FILE.md":
TEXT}, "key_id", "signature"}`` (``signing`` says what the signature covers). Two documents are
read: the one shipped in the wheel (``catalog.json`` beside this module, so search and add work
offline) and the one last fetched from ``[catalog] url`` (cached as ``~/.aileron/catalog/
catalog.json``). Every entry is verified each time it is read; one that fails is set aside with
its reason and never offered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from aileron_cli.catalog.keys import TrustedKeys
from aileron_cli.catalog.signing import EntryRefused, label, verify_entry
from aileron_core.errors import AileronError

FORMAT = "aileron.catalog.v1"
SHIPPED = Path(__file__).with_name("catalog.json")
CACHE_FILE = "catalog.json"


class CatalogError(AileronError):
    """A catalog document that cannot be read, or a name it does not hold."""

    code = "catalog_error"


@attrs.frozen
class CatalogEntry:
    """One verified entry."""

    name: str
    version: str
    description: str
    tags: tuple[str, ...]
    connector: Mapping[str, Any]
    actions: Mapping[str, str]
    key_id: str

    @property
    def fqn(self) -> str:
        """The FQN of the entry's connector (``connector.fqn`` of its spec)."""
        return str(self.connector["connector"]["fqn"])

    def matches(self, text: str) -> bool:
        """Whether ``text`` (case-insensitive) is in the name, a tag or the description."""
        needle = text.casefold()
        haystack = (self.name, self.description, *self.tags)
        return any(needle in field.casefold() for field in haystack)


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Order versions by their dot-separated parts, numbers numerically (``1.10`` > ``1.9``)."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"[.+-]", version)
    )


def _entry(document: Mapping[str, Any]) -> CatalogEntry:
    """The typed entry of a verified ``document``; ``EntryRefused`` (malformed) otherwise."""

    def bad(why: str) -> EntryRefused:
        return EntryRefused(label(document), "malformed", why)

    name, version = document.get("name"), document.get("version")
    description, tags = document.get("description", ""), document.get("tags", [])
    connector, actions = document.get("connector"), document.get("actions", {})
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", name):
        raise bad("its name is not 1-64 lowercase letters, digits or '-'")
    if not isinstance(version, str) or not version:
        raise bad("it has no version")
    if not isinstance(description, str):
        raise bad("its description is not text")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise bad("its tags are not a list of text")
    if (
        not isinstance(connector, dict)
        or not isinstance(connector.get("connector"), dict)
        or not isinstance(connector["connector"].get("fqn"), str)
    ):
        raise bad("its connector is not a connector spec")
    if not isinstance(actions, dict) or not all(
        isinstance(k, str) and k.endswith(".md") and isinstance(v, str) for k, v in actions.items()
    ):
        raise bad("its actions are not {FILE.md: text}")
    fqn = connector["connector"]["fqn"]
    if connector["connector"].get("version") != version:
        raise bad("its version is not its connector's")
    for file, text in actions.items():
        if _foreign_connectors(text, fqn):
            raise bad(f"its action {file} uses a connector other than {fqn}")
    return CatalogEntry(
        name=name,
        version=version,
        description=description,
        tags=tuple(tags),
        connector=connector,
        actions=dict(actions),
        key_id=str(document["key_id"]),
    )


def _foreign_connectors(text: str, fqn: str) -> bool:
    """Whether the action manifest ``text`` requires or runs a connector other than ``fqn``
    (an entry installs actions for its own connector only: installing it must not change what
    another connector's actions do). A manifest that does not parse is left to ``add``."""
    from aileron_core.actions import ManifestError, parse_action_manifest

    try:
        manifest = parse_action_manifest(text)
    except ManifestError:
        return False
    used = {step.connector for step in manifest.execute}
    used |= {requirement.fqn for requirement in manifest.requires.connectors}
    return bool(used - {fqn})


def parse_document(data: bytes, source: str) -> list[Any]:
    """The raw entries of a catalog document; ``CatalogError`` naming ``source`` otherwise."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise CatalogError(f"{source} is not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CatalogError(f"{source} is not a catalog ({FORMAT})")
    entries = document.get("entries")
    if not isinstance(entries, list):
        raise CatalogError(f"{source} has no list of entries")
    return entries


@attrs.frozen
class Catalog:
    """The verified entries of the catalogs read, and those refused (with their reasons)."""

    entries: tuple[CatalogEntry, ...]
    refused: tuple[EntryRefused, ...]

    @classmethod
    def build(cls, raw_entries: Iterable[Any], keys: TrustedKeys) -> Catalog:
        """Verify each entry; the first verified one of each name@version is kept. A name or
        connector FQN that a built-in key signs an entry of belongs to the built-in keys: an
        entry of it signed by another key is refused (``name_taken``), so a key trusted for a
        mirror cannot replace (or "update") a shipped connector."""
        verified: list[CatalogEntry] = []
        refused: list[EntryRefused] = []
        for raw in raw_entries:
            if not isinstance(raw, dict):
                refused.append(EntryRefused("?", "malformed", "it is not a JSON object"))
                continue
            try:
                verify_entry(raw, keys)
                verified.append(_entry(raw))
            except EntryRefused as error:
                refused.append(error)
        owned = {(e.name, e.fqn) for e in verified if e.key_id in keys.builtin}
        names, fqns = {name for name, _ in owned}, {fqn for _, fqn in owned}
        entries: dict[tuple[str, str], CatalogEntry] = {}
        for entry in verified:
            if entry.key_id not in keys.builtin and (entry.name in names or entry.fqn in fqns):
                refused.append(
                    EntryRefused(
                        f"{entry.name}@{entry.version}",
                        "name_taken",
                        f"it is signed by key {entry.key_id} but its name or connector"
                        f" ({entry.fqn}) is published by Aileron's own key",
                    )
                )
                continue
            entries.setdefault((entry.name, entry.version), entry)
        return cls(tuple(entries.values()), tuple(refused))

    def search(self, text: str) -> list[CatalogEntry]:
        """The newest version of each name matching ``text`` (all names when it is empty)."""
        newest: dict[str, CatalogEntry] = {}
        for entry in self.entries:
            if not text or entry.matches(text):
                kept = newest.get(entry.name)
                if kept is None or version_key(entry.version) > version_key(kept.version):
                    newest[entry.name] = entry
        return [newest[name] for name in sorted(newest)]

    def newest_for_fqn(self, fqn: str) -> CatalogEntry | None:
        """The newest entry whose connector is ``fqn``."""
        found = [e for e in self.entries if e.fqn == fqn]
        return max(found, key=lambda e: version_key(e.version)) if found else None

    def find(self, name: str, version: str | None = None) -> CatalogEntry:
        """Entry ``name`` (its newest version unless ``version``); when it was refused, the
        refusal is raised (naming the reason); when there is none, ``CatalogError``."""
        found = [e for e in self.entries if e.name == name and version in (None, e.version)]
        if found:
            return max(found, key=lambda e: version_key(e.version))
        for error in self.refused:
            entry_name, _, entry_version = error.entry.partition("@")
            if entry_name == name and version in (None, entry_version):
                raise error
        what = f"{name}@{version}" if version else name
        raise CatalogError(
            f"the catalog holds no connector {what}",
            hint="see `aileron connector search` (`--refresh` fetches the catalog's newest"
            " entries)",
        )


def load_catalog(directory: Path, keys: TrustedKeys, *, shipped: Path = SHIPPED) -> Catalog:
    """The shipped catalog plus the one cached in ``directory`` by a refresh, verified."""
    raw: list[Any] = []
    for path in (shipped, directory / CACHE_FILE):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise CatalogError(f"cannot read {path}: {error.strerror or error}") from None
        raw += parse_document(data, str(path))
    return Catalog.build(raw, keys)
