"""The checked-in golden vaults (format versions 1 and 2) open, unlock and read back exactly."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aileron_core.canonical import canonical_json
from aileron_core.vault import KdfParams, Vault, WrongPassphrase

GOLDEN = Path(__file__).with_name("golden")
EXPECTED: dict[str, Any] = json.loads((GOLDEN / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_vault_opens_with_every_entry_intact(name: str) -> None:
    """Each golden file opens, unlocks with its passphrase and yields every recorded entry."""
    expected = EXPECTED[name]
    path = GOLDEN / name
    raw = path.read_bytes()
    vault = Vault.open(path)
    assert vault.vault_id == expected["vault_id"]
    listed = vault.list()
    assert [info.path for info in listed] == sorted(expected["entries"])
    for info in listed:
        entry = expected["entries"][info.path]
        assert info.metadata == entry["metadata"]
        assert info.created_at == datetime.fromisoformat(entry["created_at"])
        assert info.updated_at == datetime.fromisoformat(entry["updated_at"])
    vault.unlock(expected["passphrase"])
    for entry_path, entry in expected["entries"].items():
        assert vault.get(entry_path) == base64.b64decode(entry["value_base64"])
    assert path.read_bytes() == raw, "reading a vault never writes it"
    assert sorted(p.name for p in GOLDEN.iterdir()) == [
        "README.md",
        "expected.json",
        "v1-cheap.json",
        "v1-default.json",
        "v2-cheap.json",
    ]


def test_golden_version_2_vault_keeps_its_generation_and_audit_key() -> None:
    """The version-2 golden file has its recorded generation and public key, and it signs."""
    expected = EXPECTED["v2-cheap.json"]
    vault = Vault.open(GOLDEN / "v2-cheap.json")
    public = base64.b64decode(expected["audit_public_key"])
    assert (vault.generation, vault.audit_public_key) == (expected["generation"], public)
    vault.unlock(expected["passphrase"])
    signature = vault.audit_signing_key().sign(b"golden")
    Ed25519PublicKey.from_public_bytes(public).verify(signature, b"golden")  # raises if not


def test_golden_version_1_vaults_read_as_generation_0_without_audit_key() -> None:
    """Both version-1 golden files report generation 0 and no audit key."""
    for name in ("v1-cheap.json", "v1-default.json"):
        vault = Vault.open(GOLDEN / name)
        assert (vault.generation, vault.audit_public_key) == (0, None)


def test_golden_default_vault_uses_the_real_default_kdf() -> None:
    """One golden file is sealed with the real default Argon2id parameters (t=3, 64 MiB, p=4)."""
    document = json.loads((GOLDEN / "v1-default.json").read_bytes())
    kdf = document["vault"]["kdf"]
    assert (kdf["time_cost"], kdf["memory_kib"], kdf["parallelism"]) == (3, 65536, 4)
    assert EXPECTED["v1-default.json"]["kdf"] == {
        "time_cost": 3,
        "memory_kib": 65536,
        "parallelism": 4,
    }
    assert canonical_json(document) == (GOLDEN / "v1-default.json").read_bytes()


def test_golden_vault_rejects_a_wrong_passphrase() -> None:
    """The cheap golden vault says WrongPassphrase for the default vault's passphrase."""
    with pytest.raises(WrongPassphrase):
        Vault.open(GOLDEN / "v1-cheap.json").unlock(EXPECTED["v1-default.json"]["passphrase"])


def test_a_copy_of_a_golden_vault_can_still_be_written(tmp_path: Path) -> None:
    """Today's code writes to a version-1 vault without losing anything already in it."""
    expected = EXPECTED["v1-cheap.json"]
    path = tmp_path / "vault.json"
    shutil.copyfile(GOLDEN / "v1-cheap.json", path)
    vault = Vault.open(path)
    vault.unlock(expected["passphrase"])
    vault.put("added/later", "new")
    vault.rotate()
    vault.change_passphrase(expected["passphrase"], "changed")
    reopened = Vault.open(path)
    reopened.unlock("changed")
    for entry_path, entry in expected["entries"].items():
        assert reopened.get(entry_path) == base64.b64decode(entry["value_base64"])
    assert reopened.get("added/later") == b"new"
    assert KdfParams(**expected["kdf"]) == KdfParams(time_cost=1, memory_kib=8, parallelism=1)
