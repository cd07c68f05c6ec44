"""`aileron connector search|add|outdated|update|keys` through the real CLI and a real daemon,
with a catalog served by a local mirror and signed by the test's own publisher key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from catalog.support import (
    TEST_KEY_ID,
    echo_catalog,
    entries_of,
    public_b64,
    with_entries,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fakes.catalog_server import CatalogServer
from helpers import aileron

from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

KEY = Ed25519PrivateKey.generate()


@pytest.fixture
def mirror() -> Iterator[CatalogServer]:
    """A local catalog mirror (empty until a test gives it a document)."""
    with CatalogServer() as server:
        yield server


def ok(*args: str) -> str:
    done = aileron(*args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def refreshed(mirror: CatalogServer, document: bytes) -> None:
    mirror.body = document
    ok("connector", "search", "--refresh", mirror.url)


def actions_state() -> dict[str, tuple[str, bool]]:
    listing = json.loads(ok("action", "list", "--json"))
    return {a["name"]: (a["version"], a["enabled"]) for a in listing["actions"]}


def connectors() -> dict[str, str]:
    return {c["fqn"]: c["version"] for c in json.loads(ok("connector", "list", "--json"))}


def test_add_installs_connector_and_actions_disabled_and_is_idempotent(
    real_daemon: DaemonInfo, mirror: CatalogServer, tmp_path: Path, layout: Layout
) -> None:
    """search finds the entry; add installs the connector and its actions disabled; adding
    the same version again installs nothing."""
    ok("connector", "keys", "trust", public_b64(KEY), "--id", TEST_KEY_ID)
    refreshed(mirror, echo_catalog(tmp_path, KEY))
    found = json.loads(ok("connector", "search", "testing", "--json"))
    assert [(e["name"], e["version"], e["key_id"]) for e in found] == [
        ("echo", "1.0.0", TEST_KEY_ID)
    ]
    assert "installed local://echo 1.0.0" in ok("connector", "add", "echo")
    assert connectors() == {"local://echo": "1.0.0"}
    assert actions_state() == {"echo-careful": ("1.0.0", False), "echo-say": ("1.0.0", False)}
    again = ok("connector", "add", "echo@1.0.0")
    assert "local://echo 1.0.0 is installed" in again and "(disabled)" in again
    audit = ok("audit", "list", "--json")
    assert audit.count('"connector.installed"') == 1
    assert audit.count('"action.installed"') == 2


def test_add_enable_installs_the_actions_enabled(
    real_daemon: DaemonInfo, mirror: CatalogServer, tmp_path: Path
) -> None:
    """add --enable installs the actions enabled; a later add --enable of an installed,
    disabled action enables it."""
    ok("connector", "keys", "trust", public_b64(KEY), "--id", TEST_KEY_ID)
    refreshed(mirror, echo_catalog(tmp_path, KEY))
    ok("connector", "add", "echo")
    ok("connector", "add", "echo", "--enable")
    assert actions_state() == {"echo-careful": ("1.0.0", True), "echo-say": ("1.0.0", True)}


def test_untrusted_key_refused_then_trusted_then_revoked(
    real_daemon: DaemonInfo, mirror: CatalogServer, tmp_path: Path
) -> None:
    """An entry by an untrusted key is refused naming the key; trusting the key accepts it;
    revoking it refuses it again, naming the revocation; nothing is installed when refused."""
    refreshed(mirror, echo_catalog(tmp_path, KEY))
    search = aileron("connector", "search", "echo")
    assert search.returncode == 0 and "echo" not in search.stdout.splitlines()[-1]
    assert "echo@1.0.0 is refused: it is signed by key test-publisher, which is not trusted" in (
        search.stderr
    )
    refused = aileron("connector", "add", "echo")
    assert refused.returncode == 1 and "which is not trusted" in refused.stderr
    assert connectors() == {}
    key_file = tmp_path / "publisher.pub"
    key_file.write_text(public_b64(KEY))
    ok("connector", "keys", "trust", str(key_file), "--id", TEST_KEY_ID)
    listed = json.loads(ok("connector", "keys", "list", "--json"))
    assert {(k["id"], k["builtin"], k["revoked"]) for k in listed} == {
        ("aileron-catalog-2026", True, False),
        (TEST_KEY_ID, False, False),
    }
    ok("connector", "add", "echo")
    ok("connector", "remove", "local://echo")
    ok("connector", "keys", "revoke", TEST_KEY_ID)
    revoked = aileron("connector", "add", "echo")
    assert revoked.returncode == 1
    assert "signed by key test-publisher, which you revoked" in revoked.stderr
    assert connectors() == {}


def test_tampered_entry_is_refused(
    real_daemon: DaemonInfo, mirror: CatalogServer, tmp_path: Path
) -> None:
    """An entry changed after signing (its host pointed elsewhere) is refused as tampered."""
    ok("connector", "keys", "trust", public_b64(KEY), "--id", TEST_KEY_ID)
    entries = entries_of(echo_catalog(tmp_path, KEY))
    entries[0]["connector"]["tools"][0]["operations"][0]["hosts"] = ["evil.example:443"]
    refreshed(mirror, with_entries(entries))
    done = aileron("connector", "add", "echo")
    assert done.returncode == 1
    assert "does not match its content (it was changed after signing)" in done.stderr
    assert connectors() == {}


def test_unsigned_entry_is_refused(
    real_daemon: DaemonInfo, mirror: CatalogServer, tmp_path: Path
) -> None:
    """An entry without a signature is refused as unsigned."""
    entries = entries_of(echo_catalog(tmp_path, KEY))
    del entries[0]["signature"]
    refreshed(mirror, with_entries(entries))
    done = aileron("connector", "add", "echo")
    assert done.returncode == 1 and "echo@1.0.0 is refused: it is unsigned" in done.stderr


def test_outdated_and_update_keep_enabled_state(
    real_daemon: DaemonInfo, mirror: CatalogServer, tmp_path: Path
) -> None:
    """With 1.0.0 installed (one action enabled) and 2.0.0 in the catalog, outdated names it
    and update installs 2.0.0, each action keeping its enabled state."""
    ok("connector", "keys", "trust", public_b64(KEY), "--id", TEST_KEY_ID)
    refreshed(mirror, echo_catalog(tmp_path, KEY, ("1.0.0", "2.0.0")))
    ok("connector", "add", "echo@1.0.0")
    ok("action", "enable", "echo-say")
    assert json.loads(ok("connector", "outdated", "--json")) == [
        {"name": "echo", "fqn": "local://echo", "installed": "1.0.0", "latest": "2.0.0"}
    ]
    ok("connector", "update")
    assert connectors() == {"local://echo": "2.0.0"}
    assert actions_state() == {"echo-careful": ("2.0.0", False), "echo-say": ("2.0.0", True)}
    assert json.loads(ok("connector", "outdated", "--json")) == []
    assert "up to date" in ok("connector", "update", "echo")


def test_search_refresh_reads_the_configured_url(
    mirror: CatalogServer, tmp_path: Path, layout: Layout
) -> None:
    """`search --refresh` without a URL fetches [catalog] url from config.toml; without
    one configured it says how to give one."""
    missing = aileron("connector", "search", "--refresh")
    assert missing.returncode == 1 and "[catalog] url" in missing.stderr
    mirror.body = echo_catalog(tmp_path, KEY)
    layout.home.mkdir(parents=True, exist_ok=True)
    layout.config.write_text(f'[catalog]\nurl = "{mirror.url}"\n')
    done = aileron("connector", "search", "--refresh")
    assert done.returncode == 0 and mirror.fetches == 1
    assert f"fetched 1 entries from {mirror.url}" in done.stderr


def test_shipped_catalog_works_offline() -> None:
    """Without any refresh, search lists the shipped, signed connectors (no daemon needed)."""
    found = {e["name"] for e in json.loads(ok("connector", "search", "--json"))}
    assert {"github", "slack"} <= found
    assert [e["name"] for e in json.loads(ok("connector", "search", "pull", "--json"))] == [
        "github"
    ]


def test_add_github_from_the_shipped_catalog(real_daemon: DaemonInfo) -> None:
    """`connector add github` installs the shipped GitHub connector and every one of its
    actions, all disabled; `action enable` then enables one."""
    from aileron_cli.catalog.build import SOURCES

    out = ok("connector", "add", "github")
    assert "from catalog github" in out and "aileron action enable" in out
    shipped = {p.stem for p in (SOURCES / "github" / "actions").glob("*.md")}
    state = actions_state()
    assert set(state) == shipped and not any(enabled for _, enabled in state.values())
    ok("action", "enable", "github-list-issues")
    assert actions_state()["github-list-issues"][1] is True
