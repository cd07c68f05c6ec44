"""The catalog as read: search, versions, the shipped document, refreshing from a URL."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from catalog.support import TEST_KEY_ID, echo_catalog, entries_of, public_b64
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fakes.catalog_server import CatalogServer

from aileron_cli.catalog import (
    Catalog,
    CatalogError,
    EntryRefused,
    TrustedKeys,
    load_catalog,
    load_keys,
    version_key,
)
from aileron_cli.catalog.build import SOURCES, entry_from_source
from aileron_cli.catalog.entries import SHIPPED
from aileron_cli.catalog.remote import check_url, refresh
from aileron_core.actions import check_requirements, parse_action_manifest
from aileron_core.canonical import canonical_json
from aileron_core.connectors import parse_connector_spec

KEY = Ed25519PrivateKey.generate()
KEYS = TrustedKeys({TEST_KEY_ID: base64.b64decode(public_b64(KEY))}, frozenset(), frozenset())


def catalog_of(document: bytes) -> Catalog:
    return Catalog.build(entries_of(document), KEYS)


def test_search_finds_by_name_tag_and_description(tmp_path: Path) -> None:
    """Search matches the name, a tag or the description, case-insensitively; not other text."""
    catalog = catalog_of(echo_catalog(tmp_path, KEY))
    for text in ("ech", "TESTING", "demo", "local echo server", ""):
        assert [e.name for e in catalog.search(text)] == ["echo"], text
    assert catalog.search("slack") == []


def test_search_and_find_pick_the_newest_version(tmp_path: Path) -> None:
    """Of two versions, search shows and find installs the newest; find@VERSION picks that one."""
    catalog = catalog_of(echo_catalog(tmp_path, KEY, ("1.9.0", "1.10.0")))
    assert [e.version for e in catalog.search("echo")] == ["1.10.0"]
    assert catalog.find("echo").version == "1.10.0"
    assert catalog.find("echo", "1.9.0").version == "1.9.0"
    assert version_key("1.10.0") > version_key("1.9.0") > version_key("1.9")


def test_find_names_the_refusal_of_a_refused_entry(tmp_path: Path) -> None:
    """Asking for an entry that was refused raises its refusal, not "no such connector"."""
    entries = entries_of(echo_catalog(tmp_path, KEY))
    entries[0]["description"] = "changed"
    catalog = Catalog.build(entries, KEYS)
    assert catalog.entries == () and len(catalog.refused) == 1
    with pytest.raises(EntryRefused, match="does not match its content"):
        catalog.find("echo")
    with pytest.raises(CatalogError, match="holds no connector nope"):
        catalog.find("nope")


def test_shipped_catalog_is_the_signed_build_of_its_sources() -> None:
    """Every shipped entry verifies with the built-in key and equals its source as it is now
    (rerun scripts/sign-catalog after changing a source)."""
    catalog = load_catalog(Path("/nonexistent"), load_keys(Path("/nonexistent")))
    assert catalog.refused == ()
    built = sorted(d.name for d in SOURCES.iterdir() if (d / "connector.json").is_file())
    assert sorted(e.name for e in catalog.entries) == built
    for document in json.loads(SHIPPED.read_text())["entries"]:
        fresh = entry_from_source(SOURCES / document["name"])
        assert {k: v for k, v in document.items() if k not in ("key_id", "signature")} == fresh


def test_shipped_entries_are_valid_connectors_and_actions() -> None:
    """Each shipped spec parses and each of its actions fits it."""
    catalog = load_catalog(Path("/nonexistent"), load_keys(Path("/nonexistent")))
    for entry in catalog.entries:
        spec = parse_connector_spec(canonical_json(entry.connector), source=entry.name)
        assert spec.version == entry.version
        for file, text in entry.actions.items():
            manifest = parse_action_manifest(text, source=file)
            assert f"{manifest.name}.md" == file
            check_requirements(manifest, {spec.fqn: spec}, source=file)


def test_revoking_the_builtin_key_refuses_the_shipped_entries(tmp_path: Path) -> None:
    """With the built-in key revoked, no shipped entry is offered; each refusal says why."""
    from aileron_cli.catalog import revoke_key

    revoke_key(tmp_path, "aileron-catalog-2026")
    catalog = load_catalog(tmp_path, load_keys(tmp_path))
    assert catalog.entries == ()
    assert catalog.refused and all(r.reason == "revoked_key" for r in catalog.refused)


def test_refresh_caches_the_document_and_its_entries_are_verified(tmp_path: Path) -> None:
    """A refreshed catalog is cached (0600) and read beside the shipped one, verified the same
    way: its entries are offered with the test key trusted, refused without."""
    with CatalogServer(echo_catalog(tmp_path / "src", KEY)) as server:
        assert refresh(server.url, tmp_path / "cat") == 1
    cached = tmp_path / "cat" / "catalog.json"
    assert cached.stat().st_mode & 0o777 == 0o600
    trusting = load_catalog(tmp_path / "cat", KEYS)
    assert [e.name for e in trusting.search("echo")] == ["echo"]
    default = load_catalog(tmp_path / "cat", load_keys(tmp_path / "cat"))
    assert default.search("echo") == []
    assert [r.reason for r in default.refused] == ["unknown_key"]


def test_refresh_refuses_what_is_not_a_catalog(tmp_path: Path) -> None:
    """A URL serving other JSON is an error and leaves the cache alone."""
    with (
        CatalogServer(b'{"entries": []}') as server,
        pytest.raises(CatalogError, match="is not a catalog"),
    ):
        refresh(server.url, tmp_path)
    assert not (tmp_path / "catalog.json").exists()


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://catalog.example/catalog.json", True),
        ("http://127.0.0.1:9/catalog.json", True),
        ("http://catalog.example/catalog.json", False),
        ("file:///etc/passwd", False),
    ],
)
def test_catalog_url_is_https_or_loopback_http(url: str, ok: bool) -> None:
    """Only https, or plain http to a loopback address, may serve the catalog."""
    if ok:
        assert check_url(url) == url
    else:
        with pytest.raises(CatalogError, match="neither https nor http to a loopback"):
            check_url(url)
