"""How the vault sits on disk: private modes, no litter, one lock file, re-reads only on change."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from vault.support import PASSPHRASE, load_json, new_vault, write_resealed

from aileron_core.canonical import canonical_json
from aileron_core.vault import Vault, VaultCorrupt, VaultLocked
from aileron_core.vault import vault as vault_module
from aileron_core.vault.parser import ParsedFile, parse_file


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_private_and_nothing_is_left_behind(tmp_path: Path) -> None:
    """Vault 0600 in a 0700 dir; after every kind of write only it and its 0600 lock remain."""
    path = tmp_path / "deep" / "state" / "vault.json"
    vault = new_vault(path)
    vault.put("a", "1")
    vault.put_many([("b", "2", None), ("c", b"3", {"k": "v"})])
    vault.delete("a")
    vault.rotate()
    vault.change_passphrase(PASSPHRASE, "second")
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["vault.json", "vault.json.lock"]
    assert mode(path.with_name("vault.json.lock")) == 0o600


def test_written_files_are_canonical_json(vault_path: Path) -> None:
    """Every write leaves canonical JSON: the file equals its own canonical re-encoding."""
    vault = new_vault(vault_path)
    vault.put("ü/☃", "x", {"note": 'quote " backslash \\ tab \t'})
    raw = vault_path.read_bytes()
    assert canonical_json(load_json(vault_path)) == raw
    assert raw.startswith(b'{"checksum":"')


def test_stale_temp_files_are_removed_by_the_next_write(vault_path: Path) -> None:
    """A temp file left by a killed writer is cleaned up under the lock at the next write."""
    vault = new_vault(vault_path)
    stale = vault_path.with_name(".vault.json.abc123.tmp")
    stale.write_bytes(b"half a vault")
    unrelated = vault_path.with_name("notes.txt")
    unrelated.write_text("keep me")
    vault.put("a", "1")
    assert not stale.exists()
    assert unrelated.exists()


def test_unchanged_file_is_not_parsed_again(
    vault_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handle re-parses only when the file changed: never for its own writes, once for others'."""
    calls: list[int] = []

    def counting_parse(raw: bytes, source: str) -> ParsedFile:
        calls.append(len(raw))
        return parse_file(raw, source)

    monkeypatch.setattr(vault_module, "parse_file", counting_parse)
    vault = new_vault(vault_path)
    other = Vault.open(vault_path)
    other.unlock(PASSPHRASE)
    assert len(calls) == 1
    for i in range(5):
        vault.put(f"k{i}", "v")
        vault.get(f"k{i}")
        vault.list()
    assert len(calls) == 1, "a handle's own writes never make it re-read the file"
    other.get("k4")
    assert len(calls) == 2, "the other handle re-read once to see the five writes"
    other.list()
    assert len(calls) == 2


def test_corruption_by_another_writer_is_reported_and_locks_the_handle(vault_path: Path) -> None:
    """If the file on disk becomes corrupt, an unlocked handle reports it and forgets the key."""
    vault = new_vault(vault_path)
    vault.put("a", "1")
    doc = load_json(vault_path)
    doc["vault"]["entries"]["a"]["metadata"] = {"tampered": "yes"}
    good = vault_path.read_bytes()
    write_resealed(vault_path, doc)
    with pytest.raises(VaultCorrupt) as caught:
        vault.get("a")
    assert caught.value.details["entries"] == ["a"]
    assert not vault.is_unlocked
    with pytest.raises(VaultLocked):
        vault.get("a")
    vault_path.write_bytes(good)  # restored from a backup
    vault.unlock(PASSPHRASE)
    assert vault.get("a") == b"1"
