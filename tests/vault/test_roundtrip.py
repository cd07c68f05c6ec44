"""What goes into the vault comes back out, across handles and processes' views of the file."""

from __future__ import annotations

import threading
from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vault.support import (
    CHEAP,
    PASSPHRASE,
    as_bytes,
    entry_paths,
    metadata_maps,
    new_vault,
    scratch_vault_path,
    values,
)

from aileron_core.vault import (
    EntryNotFound,
    InvalidEntryPath,
    InvalidPassphrase,
    Vault,
    VaultExists,
    VaultLocked,
    VaultMissing,
)

contents = st.dictionaries(entry_paths, st.tuples(values, metadata_maps), max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contents, st.booleans())
def test_round_trip_through_the_file(
    items: dict[str, tuple[bytes | str, dict[str, str]]], one_write: bool
) -> None:
    """Arbitrary paths, values and metadata survive save, reopen, unlock and get."""
    with scratch_vault_path() as path:
        vault = new_vault(path)
        if one_write:
            vault.put_many([(p, value, metadata) for p, (value, metadata) in items.items()])
        else:
            for p, (value, metadata) in items.items():
                vault.put(p, value, metadata)
        reopened = Vault.open(path)
        listed = reopened.list()
        assert [info.path for info in listed] == sorted(items)
        assert {info.path: info.metadata for info in listed} == {
            p: metadata for p, (_, metadata) in items.items()
        }
        reopened.unlock(PASSPHRASE)
        for p, (value, _) in items.items():
            assert reopened.get(p) == as_bytes(value)


def test_put_returns_info_with_utc_times_and_keeps_created_at(vault_path: Path) -> None:
    """put returns the entry's info; replacing a value keeps created_at and moves updated_at."""
    vault = new_vault(vault_path)
    first = vault.put("api_key/openai/default", "sk-1", {"type": "api_key"})
    assert first.path == "api_key/openai/default"
    assert first.metadata == {"type": "api_key"}
    assert first.created_at.tzinfo is UTC and first.created_at == first.updated_at
    second = vault.put("api_key/openai/default", b"sk-2")
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert second.metadata == {"type": "api_key"}, "metadata=None keeps the old metadata"
    third = vault.put("api_key/openai/default", b"sk-3", {})
    assert third.metadata == {}, "an explicit mapping replaces the metadata"
    assert vault.get("api_key/openai/default") == b"sk-3"


def test_list_works_while_locked_but_get_put_delete_do_not(vault_path: Path) -> None:
    """A locked handle lists entries but refuses reads and writes with VaultLocked."""
    new_vault(vault_path).put("a/b", "secret", {"label": "x"})
    vault = Vault.open(vault_path)
    assert not vault.is_unlocked
    assert [(i.path, i.metadata) for i in vault.list()] == [("a/b", {"label": "x"})]
    for action in (
        lambda: vault.get("a/b"),
        lambda: vault.put("a/c", "v"),
        lambda: vault.delete("a/b"),
        vault.rotate,
    ):
        with pytest.raises(VaultLocked) as caught:
            action()
        assert caught.value.code == "vault_locked"
    vault.unlock(PASSPHRASE)
    assert vault.get("a/b") == b"secret"
    vault.lock()
    assert not vault.is_unlocked
    with pytest.raises(VaultLocked):
        vault.get("a/b")


def test_missing_entries_and_paths(vault_path: Path) -> None:
    """get/delete of an absent entry raise EntryNotFound; bad paths raise InvalidEntryPath."""
    vault = new_vault(vault_path)
    with pytest.raises(EntryNotFound) as caught:
        vault.get("nope")
    assert caught.value.code == "entry_not_found"
    with pytest.raises(EntryNotFound):
        vault.delete("nope")
    for bad in ("/abs", "a//b", "../x"):
        with pytest.raises(InvalidEntryPath):
            vault.put(bad, "v")
        with pytest.raises(InvalidEntryPath):
            vault.get(bad)
    vault.put("x", "1")
    vault.delete("x")
    with pytest.raises(EntryNotFound):
        vault.get("x")
    assert Vault.open(vault_path).list() == []


def test_create_never_overwrites_and_open_needs_a_file(vault_path: Path) -> None:
    """create over an existing vault raises VaultExists; open/unlock of no file VaultMissing."""
    with pytest.raises(VaultMissing) as missing:
        Vault.open(vault_path)
    assert missing.value.code == "vault_missing"
    vault = new_vault(vault_path)
    vault.put("keep", "me")
    before = vault_path.read_bytes()
    with pytest.raises(VaultExists) as exists:
        Vault.create(vault_path, "other", kdf=CHEAP)
    assert exists.value.code == "vault_exists"
    assert vault_path.read_bytes() == before
    vault_path.unlink()
    with pytest.raises(VaultMissing):
        vault.unlock(PASSPHRASE)


def test_empty_passphrase_is_refused_at_create(vault_path: Path) -> None:
    """A vault cannot be created with an empty passphrase (InvalidPassphrase)."""
    with pytest.raises(InvalidPassphrase):
        Vault.create(vault_path, "", kdf=CHEAP)
    assert not vault_path.exists()


def test_second_handle_sees_writes_without_reopening(vault_path: Path) -> None:
    """A handle re-reads the file when another handle wrote it, and loses none of its writes."""
    first = new_vault(vault_path)
    second = Vault.open(vault_path)
    second.unlock(PASSPHRASE)
    first.put("a", "1")
    assert second.get("a") == b"1"
    second.put("b", "2")
    first.put("c", "3")
    second.delete("a")
    assert {i.path for i in first.list()} == {"b", "c"}
    assert {i.path: second.get(i.path) for i in second.list()} == {"b": b"2", "c": b"3"}


def test_vault_id_is_128_random_bits(tmp_path: Path) -> None:
    """Each vault gets its own vault_id of 32 hex digits."""
    ids = {new_vault(tmp_path / f"v{i}.json").vault_id for i in range(3)}
    assert len(ids) == 3
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_put_many_is_all_or_nothing(vault_path: Path) -> None:
    """put_many validates every item before writing: one bad item means nothing is written."""
    vault = new_vault(vault_path)
    before = vault_path.read_bytes()
    with pytest.raises(InvalidEntryPath):
        vault.put_many([("good", "1", None), ("bad//path", "2", None)])
    assert vault_path.read_bytes() == before
    assert vault.put_many([]) == []
    assert vault_path.read_bytes() == before, "an empty batch does not touch the file"
    infos = vault.put_many([("a", "1", {"k": "v"}), ("b", b"2", None)])
    assert [(i.path, i.metadata) for i in infos] == [("a", {"k": "v"}), ("b", {})]
    assert infos[0].updated_at == infos[1].updated_at, "one write, one time"


def test_one_handle_can_be_shared_by_threads(vault_path: Path) -> None:
    """Four threads putting through one handle at once lose none of their entries."""
    vault = new_vault(vault_path)

    def writer(name: str) -> None:
        for i in range(15):
            vault.put(f"{name}/{i}", f"{name}-{i}")

    threads = [threading.Thread(target=writer, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reopened = Vault.open(vault_path)
    reopened.unlock(PASSPHRASE)
    assert {i.path: reopened.get(i.path) for i in reopened.list()} == {
        f"t{n}/{i}": f"t{n}-{i}".encode() for n in range(4) for i in range(15)
    }
