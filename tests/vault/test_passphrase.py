"""Passphrases: wrong ones are named as such, changing one re-wraps, rotating re-seals."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from vault.support import PASSPHRASE, load_json, new_vault, read_everything, write_resealed

from aileron_core.vault import (
    InvalidPassphrase,
    Vault,
    VaultCorrupt,
    VaultLocked,
    WrongPassphrase,
)


def filled(path: Path) -> Vault:
    """A vault with three entries, unlocked."""
    vault = new_vault(path)
    vault.put("api_key/openai/default", "sk-1", {"type": "api_key"})
    vault.put("db/password", b"hunter2")
    vault.put("empty", b"")
    return vault


def test_wrong_passphrase_is_reported_as_such(vault_path: Path) -> None:
    """A wrong passphrase raises WrongPassphrase and leaves the handle locked."""
    filled(vault_path)
    vault = Vault.open(vault_path)
    for wrong in ("", "correct horse battery stapl", PASSPHRASE + " ", "\ud800"):
        with pytest.raises(WrongPassphrase) as caught:
            vault.unlock(wrong)
        assert caught.value.code == "wrong_passphrase"
        assert not vault.is_unlocked
    vault.unlock(PASSPHRASE)
    assert vault.get("db/password") == b"hunter2"


def test_passphrase_is_compared_after_unicode_normalisation(tmp_path: Path) -> None:
    """The composed and decomposed spellings of a passphrase open the same vault."""
    composed = "pässwörd"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    new_vault(tmp_path / "vault.json", composed).put("a", "1")
    vault = Vault.open(tmp_path / "vault.json")
    vault.unlock(decomposed)
    assert vault.get("a") == b"1"


def test_change_passphrase_rewraps_and_keeps_entries(vault_path: Path) -> None:
    """After change_passphrase the new one opens, the old does not, entries are untouched."""
    vault = filled(vault_path)
    before = load_json(vault_path)
    expected = read_everything(vault_path)
    vault.change_passphrase(PASSPHRASE, "new passphrase")
    after = load_json(vault_path)
    assert after["vault"]["entries"] == before["vault"]["entries"]
    assert after["vault"]["wrapped_key"] != before["vault"]["wrapped_key"]
    assert after["vault"]["kdf"]["salt"] != before["vault"]["kdf"]["salt"]
    assert vault.is_unlocked and vault.get("db/password") == b"hunter2"
    with pytest.raises(WrongPassphrase):
        Vault.open(vault_path).unlock(PASSPHRASE)
    assert read_everything(vault_path, "new passphrase") == expected


def test_change_passphrase_with_a_wrong_old_one_changes_nothing(vault_path: Path) -> None:
    """A wrong old passphrase raises WrongPassphrase and leaves the file as it was."""
    filled(vault_path)
    before = vault_path.read_bytes()
    with pytest.raises(WrongPassphrase):
        Vault.open(vault_path).change_passphrase("not it", "new passphrase")
    with pytest.raises(InvalidPassphrase):
        Vault.open(vault_path).change_passphrase(PASSPHRASE, "")
    assert vault_path.read_bytes() == before


def test_change_passphrase_works_on_a_locked_handle_and_keeps_it_locked(vault_path: Path) -> None:
    """A locked handle can change the passphrase; it stays locked afterwards."""
    filled(vault_path)
    vault = Vault.open(vault_path)
    vault.change_passphrase(PASSPHRASE, "second")
    assert not vault.is_unlocked
    vault.unlock("second")
    assert vault.get("api_key/openai/default") == b"sk-1"


def test_change_passphrase_refuses_to_bless_a_tampered_file(vault_path: Path) -> None:
    """Re-wrapping authenticates the file first, so it never re-MACs an attacker's edit."""
    filled(vault_path)
    doc = load_json(vault_path)
    del doc["vault"]["entries"]["db/password"]
    write_resealed(vault_path, doc)
    tampered = vault_path.read_bytes()
    with pytest.raises(VaultCorrupt):
        Vault.open(vault_path).change_passphrase(PASSPHRASE, "second")
    assert vault_path.read_bytes() == tampered


def test_another_handle_is_locked_out_by_a_passphrase_change(vault_path: Path) -> None:
    """A handle unlocked before another changed the passphrase must unlock again, and says why."""
    first = filled(vault_path)
    second = Vault.open(vault_path)
    second.unlock(PASSPHRASE)
    first.change_passphrase(PASSPHRASE, "second")
    with pytest.raises(VaultLocked, match="changed the passphrase"):
        second.get("db/password")
    assert not second.is_unlocked
    assert [i.path for i in second.list()] == ["api_key/openai/default", "db/password", "empty"]
    with pytest.raises(WrongPassphrase):
        second.unlock(PASSPHRASE)
    second.unlock("second")
    assert second.get("db/password") == b"hunter2"


def test_rotate_reseals_every_entry_under_a_new_data_key(vault_path: Path) -> None:
    """rotate keeps every value, metadata and time, and changes every ciphertext and nonce."""
    vault = filled(vault_path)
    expected = read_everything(vault_path)
    listed = vault.list()
    before = load_json(vault_path)["vault"]
    vault.rotate()
    after = load_json(vault_path)["vault"]
    assert after["wrapped_key"] != before["wrapped_key"]
    assert after["kdf"] == before["kdf"], "rotation does not touch the passphrase wrapping"
    for path, entry in after["entries"].items():
        old = before["entries"][path]
        assert entry["ciphertext"] != old["ciphertext"] and entry["nonce"] != old["nonce"]
        assert (entry["metadata"], entry["created_at"], entry["updated_at"]) == (
            old["metadata"],
            old["created_at"],
            old["updated_at"],
        )
    assert vault.list() == listed
    assert {p: vault.get(p) for p in expected} == expected
    assert read_everything(vault_path) == expected


def test_other_handles_follow_a_rotation(vault_path: Path) -> None:
    """A handle unlocked before another rotated the data key keeps working without unlock."""
    first = filled(vault_path)
    second = Vault.open(vault_path)
    second.unlock(PASSPHRASE)
    first.rotate()
    assert second.get("db/password") == b"hunter2"
    second.put("db/password", "swordfish")
    assert first.get("db/password") == b"swordfish"
    assert read_everything(vault_path)["db/password"] == b"swordfish"
