"""Whatever bytes are in the file, opening and unlocking it raise only the vault's own errors."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vault.support import (
    PASSPHRASE,
    json_values,
    load_json,
    new_vault,
    reseal,
    scratch_vault_path,
)

from aileron_core.vault import Vault, VaultCorrupt, VaultError
from aileron_core.vault.format import MAX_FILE_BYTES

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def exercise(path: Path) -> None:
    """Open, list, unlock and read the file at ``path``; any failure must be a VaultError.

    Any other exception propagates and fails the calling test.
    """
    try:
        vault = Vault.open(path)
        vault.list()
        vault.unlock(PASSPHRASE)
        for info in vault.list():
            vault.get(info.path)
    except VaultError:
        pass


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_vault_errors(data: bytes) -> None:
    """Random bytes in vault.json make open fail with VaultCorrupt, nothing else."""
    with scratch_vault_path() as path:
        path.write_bytes(data)
        with pytest.raises(VaultCorrupt):
            Vault.open(path)


@FUZZ
@given(json_values, st.booleans())
def test_arbitrary_json_raises_only_vault_errors(value: Any, with_checksum: bool) -> None:
    """Any JSON document, with or without a valid checksum, raises only VaultErrors."""
    with scratch_vault_path() as path:
        if with_checksum:
            document = value if isinstance(value, dict) else {"mac": value, "vault": value}
            path.write_bytes(reseal(document))
        else:
            path.write_bytes(json.dumps(value).encode())
        exercise(path)


def _locations(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _locations(child, prefix + (key,))
    return found


@FUZZ
@given(st.data(), json_values)
def test_valid_files_with_a_subtree_replaced_raise_only_vault_errors(
    data: st.DataObject, replacement: Any
) -> None:
    """A real vault with any part replaced by arbitrary JSON (checksum fixed) raises VaultErrors."""
    with scratch_vault_path() as path:
        vault = new_vault(path)
        vault.put("api_key/x", "v", {"type": "api_key"})
        vault.put("b", b"\x00")
        original = load_json(path)
        where = data.draw(st.sampled_from(_locations(original)[1:]))
        mutated = copy.deepcopy(original)
        holder = mutated
        for key in where[:-1]:
            holder = holder[key]
        if data.draw(st.booleans(), label="delete instead"):
            del holder[where[-1]]
        else:
            holder[where[-1]] = replacement
        path.write_bytes(reseal(mutated))
        exercise(path)


def _checksummed(rest: bytes) -> bytes:
    return b'{"checksum":"' + hashlib.sha256(b"{" + rest).hexdigest().encode() + b'",' + rest


@pytest.mark.parametrize(
    "rest",
    [
        b'"mac":' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # deeper than the recursion limit
        b'"mac":NaN,"vault":{}}',
        b'"mac":Infinity,"vault":{}}',
        b'"mac":"\\ud800","vault":{}}',  # a lone surrogate escape
        b'"mac":1' + b"0" * 5000 + b',"vault":{}}',  # an integer too long to convert
        b'"mac":"x","vault":{"format":"aileron-vault","version":' + b"9" * 5000 + b"}}",
        b'"mac":"\xff\xfe","vault":{}}',  # not UTF-8
        b"}",
        b"",
    ],
)
def test_hostile_json_raises_only_vault_corrupt(vault_path: Path, rest: bytes) -> None:
    """Deep nesting, NaN, lone surrogates, huge numbers and bad UTF-8 are VaultCorrupt."""
    vault_path.parent.mkdir()
    vault_path.write_bytes(_checksummed(rest))
    with pytest.raises(VaultCorrupt):
        Vault.open(vault_path)


def test_oversized_file_is_rejected_without_reading_it(vault_path: Path) -> None:
    """A file larger than the size cap is VaultCorrupt (a sparse file: nothing is read)."""
    vault_path.parent.mkdir()
    with vault_path.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(VaultCorrupt, match="larger than"):
        Vault.open(vault_path)


def test_unreadable_paths_raise_vault_errors(tmp_path: Path) -> None:
    """A directory where the vault should be, or an unreadable file, raises a VaultError."""
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(VaultError):
        Vault.open(tmp_path / "dir.json")
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.json"
        locked.write_bytes(b"{}")
        locked.chmod(0)
        with pytest.raises(VaultError):
            Vault.open(locked)
