"""Format version 2's audit key: public half readable locked, private half only after unlock."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from vault.support import PASSPHRASE, load_json, new_vault, write_resealed

from aileron_core.vault import Vault, VaultCorrupt, VaultLocked

GOLDEN = Path(__file__).with_name("golden")
EXPECTED: dict[str, Any] = json.loads((GOLDEN / "expected.json").read_text(encoding="utf-8"))
V1_PASSPHRASE: str = EXPECTED["v1-cheap.json"]["passphrase"]


def verifies(public: bytes | None, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` over ``message`` verifies with the raw Ed25519 ``public`` key."""
    assert public is not None
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def sign(vault: Vault, message: bytes) -> bytes:
    """A signature by the vault's audit signing key."""
    return vault.audit_signing_key().sign(message)


def test_a_signature_verifies_with_the_public_key(vault_path: Path) -> None:
    """What audit_signing_key() signs verifies with audit_public_key, and nothing else does."""
    vault = new_vault(vault_path)
    signature = sign(vault, b"head 1")
    assert verifies(vault.audit_public_key, signature, b"head 1")
    assert not verifies(vault.audit_public_key, signature, b"head 2")
    other = new_vault(vault_path.with_name("other.json"))
    assert other.audit_public_key != vault.audit_public_key
    assert not verifies(other.audit_public_key, signature, b"head 1")


def test_the_public_key_is_in_the_file_and_readable_while_locked(vault_path: Path) -> None:
    """A freshly opened, locked handle gives the 32-byte public key that is stored in the body."""
    created = new_vault(vault_path)
    locked = Vault.open(vault_path)
    public = locked.audit_public_key
    assert public is not None and len(public) == 32
    assert public == created.audit_public_key
    assert not locked.is_unlocked
    stored = load_json(vault_path)["vault"]["audit_key"]
    assert base64.b64decode(stored["public"]) == public
    assert set(stored) == {"public", "sealed"}
    assert set(stored["sealed"]) == {"ciphertext", "nonce"}


def test_the_signing_key_needs_the_vault_unlocked(vault_path: Path) -> None:
    """audit_signing_key() raises VaultLocked on a locked handle and after lock()."""
    vault = new_vault(vault_path)
    vault.lock()
    with pytest.raises(VaultLocked):
        vault.audit_signing_key()
    opened = Vault.open(vault_path)
    with pytest.raises(VaultLocked):
        opened.audit_signing_key()
    opened.unlock(PASSPHRASE)
    assert verifies(opened.audit_public_key, sign(opened, b"m"), b"m")


def test_the_seed_is_not_stored_in_the_clear(vault_path: Path) -> None:
    """The private seed appears nowhere in the file's bytes, raw or in base64."""
    vault = new_vault(vault_path)
    seed = vault.audit_signing_key().private_bytes_raw()
    raw = vault_path.read_bytes()
    assert seed not in raw
    assert base64.b64encode(seed) not in raw


def test_ensure_audit_key_on_a_version_2_vault_writes_nothing(vault_path: Path) -> None:
    """A vault that has an audit key keeps it: ensure_audit_key() returns False, file untouched."""
    vault = new_vault(vault_path)
    raw = vault_path.read_bytes()
    assert vault.ensure_audit_key() is False
    assert vault_path.read_bytes() == raw


def test_rotate_keeps_the_public_key_and_the_signing_key_works(vault_path: Path) -> None:
    """After rotate the public key is the same, its seal is new, and signatures still verify."""
    vault = new_vault(vault_path)
    public = vault.audit_public_key
    sealed_before = load_json(vault_path)["vault"]["audit_key"]["sealed"]
    vault.rotate()
    assert vault.audit_public_key == public
    assert load_json(vault_path)["vault"]["audit_key"]["sealed"] != sealed_before
    assert verifies(public, sign(vault, b"after rotate"), b"after rotate")
    reopened = Vault.open(vault_path)
    reopened.unlock(PASSPHRASE)
    assert verifies(public, sign(reopened, b"reopened"), b"reopened")


def test_change_passphrase_keeps_the_audit_key(vault_path: Path) -> None:
    """change_passphrase leaves the audit key as it is; the new passphrase unlocks signing."""
    vault = new_vault(vault_path)
    public = vault.audit_public_key
    sealed = load_json(vault_path)["vault"]["audit_key"]
    vault.change_passphrase(PASSPHRASE, "new passphrase")
    assert load_json(vault_path)["vault"]["audit_key"] == sealed
    reopened = Vault.open(vault_path)
    reopened.unlock("new passphrase")
    assert reopened.audit_public_key == public
    assert verifies(public, sign(reopened, b"x"), b"x")


def test_another_handles_rotation_is_followed(vault_path: Path) -> None:
    """A handle whose file was rotated by another handle still signs with the same key."""
    first = new_vault(vault_path)
    second = Vault.open(vault_path)
    second.unlock(PASSPHRASE)
    first.rotate()
    assert second.is_unlocked
    assert verifies(first.audit_public_key, sign(second, b"x"), b"x")


# --- tampering --------------------------------------------------------------------------------


def _edit_generation(body: dict[str, Any]) -> None:
    body["generation"] += 1


def _edit_public(body: dict[str, Any]) -> None:
    public = bytearray(base64.b64decode(body["audit_key"]["public"]))
    public[0] ^= 1
    body["audit_key"]["public"] = base64.b64encode(public).decode()


def _edit_sealed(body: dict[str, Any]) -> None:
    sealed = bytearray(base64.b64decode(body["audit_key"]["sealed"]["ciphertext"]))
    sealed[-1] ^= 1
    body["audit_key"]["sealed"]["ciphertext"] = base64.b64encode(sealed).decode()


@pytest.mark.parametrize("edit", [_edit_generation, _edit_public, _edit_sealed])
def test_an_edited_generation_or_audit_key_fails_the_mac(vault_path: Path, edit: Any) -> None:
    """A checksum-fixed edit of the generation or audit key is VaultCorrupt (the MAC) at unlock."""
    new_vault(vault_path)
    document = load_json(vault_path)
    edit(document["vault"])
    write_resealed(vault_path, document)
    vault = Vault.open(vault_path)  # parses: the edit is well-formed
    with pytest.raises(VaultCorrupt) as caught:
        vault.unlock(PASSPHRASE)
    assert caught.value.details["region"] == "mac"
    assert not vault.is_unlocked


def test_an_audit_key_from_another_vault_fails_the_mac(vault_path: Path) -> None:
    """Swapping in another vault's audit key (public and sealed) is caught by the MAC."""
    new_vault(vault_path)
    other_path = vault_path.with_name("other.json")
    new_vault(other_path)
    document = load_json(vault_path)
    document["vault"]["audit_key"] = load_json(other_path)["vault"]["audit_key"]
    write_resealed(vault_path, document)
    with pytest.raises(VaultCorrupt):
        Vault.open(vault_path).unlock(PASSPHRASE)


@pytest.mark.parametrize(
    "change",
    [
        {"generation": 0},
        {"generation": -1},
        {"generation": 1.5},
        {"generation": "1"},
        {"generation": 2**63},
        {"audit_key": None},
        {"audit_key": {"public": "AAAA", "sealed": {"ciphertext": "AAAA", "nonce": "AAAA"}}},
    ],
)
def test_malformed_version_2_fields_are_corrupt_at_open(
    vault_path: Path, change: dict[str, Any]
) -> None:
    """An out-of-range generation or a malformed audit key is VaultCorrupt before any key."""
    new_vault(vault_path)
    document = load_json(vault_path)
    document["vault"].update(change)
    write_resealed(vault_path, document)
    with pytest.raises(VaultCorrupt):
        Vault.open(vault_path)


@pytest.mark.parametrize("member", ["generation", "audit_key"])
def test_a_version_2_file_without_a_new_member_is_corrupt(vault_path: Path, member: str) -> None:
    """A version-2 file missing its generation or audit key does not open."""
    new_vault(vault_path)
    document = load_json(vault_path)
    del document["vault"][member]
    write_resealed(vault_path, document)
    with pytest.raises(VaultCorrupt):
        Vault.open(vault_path)


# --- version 1 --------------------------------------------------------------------------------


@pytest.fixture
def v1_path(tmp_path: Path) -> Path:
    """A private copy of the checked-in version-1 golden vault."""
    path = tmp_path / "vault.json"
    shutil.copyfile(GOLDEN / "v1-cheap.json", path)
    return path


def test_a_version_1_file_opens_at_generation_0_without_an_audit_key(v1_path: Path) -> None:
    """A version-1 file opens and unlocks; generation 0, no public key, signing is VaultCorrupt."""
    vault = Vault.open(v1_path)
    assert (vault.generation, vault.audit_public_key) == (0, None)
    vault.unlock(V1_PASSPHRASE)
    assert (vault.generation, vault.audit_public_key) == (0, None)
    with pytest.raises(VaultCorrupt, match="ensure_audit_key"):
        vault.audit_signing_key()


def test_ensure_audit_key_upgrades_a_version_1_file(v1_path: Path) -> None:
    """ensure_audit_key() writes version 2 with a key and generation 1; the file re-opens."""
    vault = Vault.open(v1_path)
    vault.unlock(V1_PASSPHRASE)
    assert vault.ensure_audit_key() is True
    assert vault.ensure_audit_key() is False
    public = vault.audit_public_key
    assert public is not None and vault.generation == 1
    body = load_json(v1_path)["vault"]
    assert (body["version"], body["generation"]) == (2, 1)
    reopened = Vault.open(v1_path)
    assert reopened.audit_public_key == public and reopened.generation == 1
    reopened.unlock(V1_PASSPHRASE)
    assert verifies(public, sign(reopened, b"upgraded"), b"upgraded")
    for path, entry in EXPECTED["v1-cheap.json"]["entries"].items():
        assert reopened.get(path) == base64.b64decode(entry["value_base64"])


@pytest.mark.parametrize("write", ["put", "rotate", "change_passphrase", "bump_generation"])
def test_the_first_write_of_a_version_1_file_makes_it_version_2(v1_path: Path, write: str) -> None:
    """Any write of a version-1 file produces version 2 with an audit key and generation 1."""
    vault = Vault.open(v1_path)
    vault.unlock(V1_PASSPHRASE)
    passphrase = V1_PASSPHRASE
    if write == "put":
        vault.put("added", "x")
    elif write == "rotate":
        vault.rotate()
    elif write == "change_passphrase":
        passphrase = "changed"
        vault.change_passphrase(V1_PASSPHRASE, passphrase)
    else:
        vault.bump_generation(0)
    body = load_json(v1_path)["vault"]
    assert (body["version"], body["generation"]) == (2, 1)
    reopened = Vault.open(v1_path)
    reopened.unlock(passphrase)
    assert verifies(reopened.audit_public_key, sign(reopened, b"m"), b"m")
    assert vault.audit_public_key == reopened.audit_public_key


def test_a_handle_follows_another_handles_upgrade(v1_path: Path) -> None:
    """A handle unlocked on the version-1 file stays unlocked when another handle upgrades it."""
    first = Vault.open(v1_path)
    first.unlock(V1_PASSPHRASE)
    second = Vault.open(v1_path)
    second.unlock(V1_PASSPHRASE)
    assert first.ensure_audit_key() is True
    assert second.audit_public_key == first.audit_public_key
    assert second.is_unlocked
    assert verifies(first.audit_public_key, sign(second, b"m"), b"m")
    assert second.ensure_audit_key() is False
