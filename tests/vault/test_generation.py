"""Format version 2's generation counter: +1 on every write, and a handle notices a rollback."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from vault.support import PASSPHRASE, load_json, new_vault, read_everything

from aileron_core.errors import AileronError
from aileron_core.vault import (
    Vault,
    VaultError,
    VaultLocked,
    VaultRolledBack,
)

GOLDEN_V1 = Path(__file__).with_name("golden") / "v1-cheap.json"
GOLDEN_V1_PASSPHRASE = "golden cheap passphrase ☃"


def file_generation(path: Path) -> int:
    """The generation written in the file, read as plain JSON."""
    generation = load_json(path)["vault"]["generation"]
    assert isinstance(generation, int)
    return generation


WRITES: dict[str, Callable[[Vault], object]] = {
    "put": lambda v: v.put("a/new", "value"),
    "put_many": lambda v: v.put_many([("m/1", "one", None), ("m/2", "two", {"k": "v"})]),
    "delete": lambda v: v.delete("kept/one"),
    "change_passphrase": lambda v: v.change_passphrase(PASSPHRASE, "another passphrase"),
    "rotate": lambda v: v.rotate(),
    "bump_generation": lambda v: v.bump_generation(0),
}


def test_create_starts_at_generation_one(vault_path: Path) -> None:
    """A new vault is written as version 2 with generation 1."""
    vault = new_vault(vault_path)
    assert vault.generation == 1
    body = load_json(vault_path)["vault"]
    assert (body["version"], body["generation"]) == (2, 1)


@pytest.mark.parametrize("kind", sorted(WRITES))
def test_every_kind_of_write_adds_one_to_the_generation(vault_path: Path, kind: str) -> None:
    """Each kind of write raises the generation by exactly one, in the handle and on disk."""
    vault = new_vault(vault_path)
    vault.put("kept/one", "x")
    before = vault.generation
    assert before == file_generation(vault_path) == 2
    WRITES[kind](vault)
    assert vault.generation == file_generation(vault_path) == before + 1
    assert Vault.open(vault_path).generation == before + 1


def test_change_passphrase_while_locked_adds_one(vault_path: Path) -> None:
    """change_passphrase on a locked handle is a write too: the generation goes up by one."""
    new_vault(vault_path)
    vault = Vault.open(vault_path)
    vault.change_passphrase(PASSPHRASE, "another passphrase")
    assert vault.generation == file_generation(vault_path) == 2
    assert not vault.is_unlocked


def test_reads_and_failed_writes_leave_the_generation_alone(vault_path: Path) -> None:
    """get, list, unlock, lock and a refused write do not change the generation."""
    vault = new_vault(vault_path)
    vault.put("a", "1")
    raw = vault_path.read_bytes()
    vault.get("a")
    vault.list()
    vault.lock()
    vault.unlock(PASSPHRASE)
    with pytest.raises(VaultError):
        vault.delete("missing")
    assert vault.generation == 2
    assert vault_path.read_bytes() == raw


def test_bump_generation_jumps_to_at_least(vault_path: Path) -> None:
    """bump_generation writes max(current + 1, at_least) and returns it."""
    vault = new_vault(vault_path)
    assert vault.bump_generation(40) == 40
    assert vault.bump_generation(3) == 41
    assert vault.bump_generation(42) == 42
    assert Vault.open(vault_path).generation == 42
    assert read_everything(vault_path) == {}


def test_bump_generation_needs_the_key(vault_path: Path) -> None:
    """bump_generation on a locked handle raises VaultLocked and writes nothing."""
    new_vault(vault_path)
    raw = vault_path.read_bytes()
    with pytest.raises(VaultLocked):
        Vault.open(vault_path).bump_generation(10)
    assert vault_path.read_bytes() == raw


def test_generation_is_readable_while_locked_and_follows_other_writers(vault_path: Path) -> None:
    """A locked handle reports the file's current generation, including other handles' writes."""
    writer = new_vault(vault_path)
    reader = Vault.open(vault_path)
    assert reader.generation == 1
    writer.put("a", "1")
    writer.put("b", "2")
    assert not reader.is_unlocked
    assert reader.generation == 3


def test_an_unlocked_handle_follows_other_writers_generations(vault_path: Path) -> None:
    """Two unlocked handles writing in turn each see the other's higher generation, no error."""
    first = new_vault(vault_path)
    second = Vault.open(vault_path)
    second.unlock(PASSPHRASE)
    first.put("a", "1")
    second.put("b", "2")
    first.rotate()
    assert second.get("a") == b"1"
    assert first.get("b") == b"2"
    assert first.generation == second.generation == 4
    assert first.is_unlocked and second.is_unlocked


# --- rollback ---------------------------------------------------------------------------------


def test_copying_an_older_file_back_raises_rolled_back_and_locks(vault_path: Path) -> None:
    """An unlocked handle finding an older copy in place raises VaultRolledBack, then is locked."""
    vault = new_vault(vault_path)
    vault.put("api_key/old", "sk-old")
    older = vault_path.read_bytes()  # generation 2
    vault.put("api_key/old", "sk-new")
    vault.delete("api_key/old")  # generation 4
    vault_path.write_bytes(older)
    with pytest.raises(VaultRolledBack) as caught:
        vault.get("api_key/old")
    error = caught.value
    assert isinstance(error, VaultError) and isinstance(error, AileronError)
    assert error.code == "vault_rolled_back"
    assert error.details["generation"] == 2
    assert error.details["expected"] == 4
    assert "2" in str(error) and "4" in str(error)
    assert not vault.is_unlocked
    with pytest.raises(VaultLocked, match="rolled back"):
        vault.get("api_key/old")
    assert vault.generation == 2


@pytest.mark.parametrize("kind", sorted(WRITES))
def test_a_write_onto_an_older_file_is_refused(vault_path: Path, kind: str) -> None:
    """Every kind of write on a rolled-back file raises VaultRolledBack and writes nothing."""
    vault = new_vault(vault_path)
    vault.put("kept/one", "x")
    older = vault_path.read_bytes()
    vault.put("kept/two", "y")
    vault_path.write_bytes(older)
    with pytest.raises(VaultRolledBack):
        WRITES[kind](vault)
    assert vault_path.read_bytes() == older
    assert not vault.is_unlocked


def test_rolling_back_to_the_version_1_original_is_noticed(tmp_path: Path) -> None:
    """A version-2 file replaced by the version-1 file it was upgraded from is a rollback."""
    path = tmp_path / "vault.json"
    shutil.copyfile(GOLDEN_V1, path)
    vault = Vault.open(path)
    vault.unlock(GOLDEN_V1_PASSPHRASE)
    vault.put("added", "x")
    shutil.copyfile(GOLDEN_V1, path)
    with pytest.raises(VaultRolledBack) as caught:
        vault.list()
    assert (caught.value.details["generation"], caught.value.details["expected"]) == (0, 1)


def test_unlocking_again_accepts_the_older_file(vault_path: Path) -> None:
    """After VaultRolledBack the handle can be unlocked on the older file (the daemon decides)."""
    vault = new_vault(vault_path)
    vault.put("a", "old")
    older = vault_path.read_bytes()
    vault.put("a", "new")
    vault_path.write_bytes(older)
    with pytest.raises(VaultRolledBack):
        vault.get("a")
    vault.unlock(PASSPHRASE)
    assert vault.get("a") == b"old"
    assert vault.bump_generation(10) == 10
    assert vault.get("a") == b"old"


def test_a_locked_handle_just_reads_an_older_file(vault_path: Path) -> None:
    """A handle without keys reports the older generation instead of raising."""
    writer = new_vault(vault_path)
    older = vault_path.read_bytes()
    writer.put("a", "1")
    reader = Vault.open(vault_path)
    assert reader.generation == 2
    vault_path.write_bytes(older)
    assert reader.generation == 1
    assert reader.list() == []


def test_the_same_file_put_back_is_not_a_rollback(vault_path: Path) -> None:
    """Replacing the file by an identical copy (same generation) keeps the handle unlocked."""
    vault = new_vault(vault_path)
    vault.put("a", "1")
    copy = vault_path.with_name("copy.json")
    shutil.copyfile(vault_path, copy)
    copy.replace(vault_path)  # a new inode, same bytes
    assert vault.get("a") == b"1"
    assert vault.is_unlocked
