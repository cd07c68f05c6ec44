"""KDF parameters come from the file, so they are bounded before any derivation is attempted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from vault.support import PASSPHRASE, load_json, new_vault, write_resealed

from aileron_core.vault import DEFAULT_KDF, KdfParams, Vault, VaultCorrupt
from aileron_core.vault import kdf as kdf_module


def test_default_kdf_is_argon2id_t3_64mib_p4() -> None:
    """The default parameters are the ones SPEC section 6 names."""
    assert DEFAULT_KDF == KdfParams(time_cost=3, memory_kib=65536, parallelism=4)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memory_kib", 2**40),
        ("memory_kib", 1024 * 1024 + 1),
        ("memory_kib", 7),
        ("time_cost", 11),
        ("time_cost", 10**9),
        ("time_cost", 0),
        ("parallelism", 17),
        ("parallelism", 0),
        ("parallelism", -1),
        ("time_cost", True),
        ("memory_kib", 64.0),
    ],
)
def test_out_of_bounds_kdf_params_are_rejected_before_any_derivation(
    vault_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, value: object
) -> None:
    """Out-of-bounds Argon2id costs are VaultCorrupt at open, at once, without running the KDF."""
    new_vault(vault_path).put("a", "1")
    doc = load_json(vault_path)
    doc["vault"]["kdf"][field] = value
    write_resealed(vault_path, doc)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the KDF ran on out-of-bounds parameters")

    monkeypatch.setattr(kdf_module, "Argon2id", forbidden)
    started = time.perf_counter()
    with pytest.raises(VaultCorrupt) as caught:
        Vault.open(vault_path).unlock(PASSPHRASE)
    assert time.perf_counter() - started < 0.5
    assert caught.value.details["region"] == "kdf"


def test_parameters_at_the_caps_are_accepted_by_open(vault_path: Path) -> None:
    """The caps are inclusive: t=10, 1 GiB and p=16 parse (nothing is derived by open)."""
    new_vault(vault_path)
    doc = load_json(vault_path)
    doc["vault"]["kdf"].update(time_cost=10, memory_kib=1024 * 1024, parallelism=16)
    write_resealed(vault_path, doc)
    vault = Vault.open(vault_path)
    assert not vault.is_unlocked


@pytest.mark.parametrize("salt", ["", "AAAAAAAAAAAAAAAAAAAA", "A" * 88 + "=="])
def test_salt_length_is_bounded(vault_path: Path, salt: str) -> None:
    """A salt shorter than 16 or longer than 64 bytes is VaultCorrupt."""
    new_vault(vault_path)
    doc = load_json(vault_path)
    doc["vault"]["kdf"]["salt"] = salt
    write_resealed(vault_path, doc)
    with pytest.raises(VaultCorrupt):
        Vault.open(vault_path)
