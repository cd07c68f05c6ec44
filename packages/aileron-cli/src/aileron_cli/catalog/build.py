"""Building catalog entries from ``sources/<name>/`` (what ``scripts/sign-catalog`` runs).

A source directory holds ``connector.json`` (the spec), ``actions/*.md`` (its ready actions)
and, optionally, ``tags`` (one tag a line). The entry's name is the directory's; its version
and description are the spec's; its tags are the ``tags`` file's, else the credential's
service and the spec's tool names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aileron_cli.catalog.entries import FORMAT, CatalogError
from aileron_cli.catalog.signing import sign_entry

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SOURCES = Path(__file__).with_name("sources")


def entry_from_source(directory: Path) -> dict[str, Any]:
    """The unsigned entry of one source directory."""
    try:
        spec = json.loads((directory / "connector.json").read_text(encoding="utf-8"))
        actions = {
            path.name: path.read_text(encoding="utf-8")
            for path in sorted((directory / "actions").glob("*.md"))
        }
        tags_file = directory / "tags"
        tags = tags_file.read_text(encoding="utf-8").split() if tags_file.exists() else None
    except (OSError, ValueError) as error:
        raise CatalogError(f"cannot read the catalog source {directory}: {error}") from None
    info = spec["connector"]
    if tags is None:
        tags = [spec["credential"]["service"], *(tool["name"] for tool in spec["tools"])]
    return {
        "name": directory.name,
        "version": info["version"],
        "description": info["description"],
        "tags": sorted(set(tags)),
        "connector": spec,
        "actions": actions,
    }


def build_catalog(
    entries: Iterable[dict[str, Any]], private_key: Ed25519PrivateKey, key_id: str
) -> bytes:
    """A catalog document of ``entries``, each signed with ``private_key`` as ``key_id``."""
    signed = [sign_entry(entry, private_key, key_id) for entry in entries]
    signed.sort(key=lambda e: (e["name"], e["version"]))
    document = {"format": FORMAT, "entries": signed}
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"
