"""Damage and tampering are detected and reported as ADR 0002 says, never as wrong data.

Two kinds of change are tried: *damage* (bits flipped or the file cut short, checksum left as
it was) and *deliberate edits* (the JSON changed and the passphrase-independent checksum
recomputed, as an attacker would), which reach the keyed checks behind the checksum.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from vault.support import (
    PASSPHRASE,
    load_json,
    new_vault,
    outcome,
    read_everything,
    reseal,
    scratch_vault_path,
    write_resealed,
)

from aileron_core.vault import (
    UnsupportedVersion,
    Vault,
    VaultCorrupt,
    VaultError,
    WrongPassphrase,
)

# Which exceptions an edit of each part of the file may produce (ADR 0002, "Errors").
ALLOWED: dict[str, tuple[type[VaultError], ...]] = {
    "mac": (VaultCorrupt,),
    "format": (VaultCorrupt,),
    "version": (VaultCorrupt, UnsupportedVersion),
    "vault_id": (VaultCorrupt, WrongPassphrase),
    "created_at": (VaultCorrupt, WrongPassphrase),
    "kdf": (VaultCorrupt, WrongPassphrase),
    "wrapped_key": (VaultCorrupt, WrongPassphrase),
    "updated_at": (VaultCorrupt,),
    "entries": (VaultCorrupt,),
    "generation": (VaultCorrupt,),
    "audit_key": (VaultCorrupt,),
}


def populated(path: Path) -> dict[str, bytes]:
    """Make a small vault at ``path``; return its content."""
    vault = new_vault(path)
    vault.put("api_key/openai/default", "sk-live-1234", {"type": "api_key"})
    vault.put("ssh/deploy", b"\x00\x01binary\xff", {"label": "deploy key", "type": "ssh"})
    vault.put("notes/ünï/☃", "")
    return read_everything(path)


def changed_regions(before: dict[str, Any], after: object) -> set[str]:
    """The ALLOWED regions in which ``after`` differs from ``before`` (checksum ignored)."""
    if (
        not isinstance(after, dict)
        or set(after) != set(before)
        or not isinstance(after.get("vault"), dict)
    ):
        return {"format"}  # not even the same shape: only VaultCorrupt is acceptable
    regions = {"mac"} if after["mac"] != before["mac"] else set()
    body_before, body_after = before["vault"], after["vault"]
    for key in set(body_before) | set(body_after):
        if body_before.get(key, KeyError) != body_after.get(key, KeyError):
            regions.add(key if key in ALLOWED else "format")
    return regions


def assert_detected_or_unchanged(path: Path, original: dict[str, bytes], regions: set[str]) -> None:
    """Reading the vault fails as the changed regions allow, or yields the original content."""
    result = outcome(path)
    event(type(result).__name__)
    if not regions:
        assert result == original
        return
    allowed = set.intersection(*(set(ALLOWED[region]) for region in regions))
    assert isinstance(result, VaultError), f"edit of {regions} went unnoticed"
    assert type(result) in allowed, f"edit of {regions} gave {type(result).__name__}: {result}"


# --- damage -----------------------------------------------------------------------------------


def test_every_single_bit_flip_is_reported_as_corrupt(vault_path: Path) -> None:
    """Flipping any one bit anywhere in the file makes open raise VaultCorrupt."""
    populated(vault_path)
    raw = vault_path.read_bytes()
    for index in range(len(raw)):
        for bit in range(8):
            damaged = bytearray(raw)
            damaged[index] ^= 1 << bit
            vault_path.write_bytes(bytes(damaged))
            with pytest.raises(VaultCorrupt):
                Vault.open(vault_path)


def test_every_truncation_is_reported_as_corrupt(vault_path: Path) -> None:
    """Cutting the file short at any point makes open raise VaultCorrupt."""
    populated(vault_path)
    raw = vault_path.read_bytes()
    for length in range(len(raw)):
        vault_path.write_bytes(raw[:length])
        with pytest.raises(VaultCorrupt) as caught:
            Vault.open(vault_path)
        assert caught.value.code == "vault_corrupt"


# --- deliberate edits -------------------------------------------------------------------------


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_bit_flip_with_a_fixed_checksum_is_detected(data: st.DataObject) -> None:
    """A flipped bit whose checksum an attacker recomputed is still caught by the keyed checks."""
    with scratch_vault_path() as path:
        original = populated(path)
        raw = path.read_bytes()
        before = json.loads(raw)
        index = data.draw(st.integers(0, len(raw) - 1), label="byte")
        bit = data.draw(st.integers(0, 7), label="bit")
        damaged = bytearray(raw)
        damaged[index] ^= 1 << bit
        try:
            after = json.loads(bytes(damaged))
            path.write_bytes(reseal(after))
        except ValueError:
            return  # the flip broke the JSON itself: covered by the damage tests
        assert_detected_or_unchanged(path, original, changed_regions(before, after))


def _leaves(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        found = [prefix + (("key", k),) for k in value] if prefix[-1:] == ("entries",) else []
        return found + [leaf for k, v in value.items() for leaf in _leaves(v, prefix + (k,))]
    return [prefix]


def _mutate(value: Any, data: st.DataObject) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return data.draw(st.sampled_from([None, [], {}, "x", 0]))
    if isinstance(value, int):
        return value + data.draw(st.sampled_from([-3, -2, -1, 1, 2, 3]))
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raw = b""
    if raw and data.draw(st.booleans(), label="flip inside the decoded bytes"):
        flipped = bytearray(raw)
        flipped[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
        return base64.b64encode(bytes(flipped)).decode()
    if not value:
        return "x"
    index = data.draw(st.integers(0, len(value) - 1))
    char = chr(ord(value[index]) ^ (1 << data.draw(st.integers(0, 6))))
    return value[:index] + char + value[index + 1 :]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_field_edit_with_a_fixed_checksum_is_detected(data: st.DataObject) -> None:
    """Changing any one field or entry name (checksum recomputed) fails as the ADR says."""
    with scratch_vault_path() as path:
        original = populated(path)
        before = load_json(path)
        leaves = [leaf for leaf in _leaves(before) if leaf != ("checksum",)]
        leaf = data.draw(st.sampled_from(leaves), label="field")
        after = copy.deepcopy(before)
        *parents, last = leaf
        container = after
        for key in parents:
            container = container[key]
        if isinstance(last, tuple):  # rename an entry
            old_name = last[1]
            new_name = _mutate(old_name, data)
            container[new_name] = container.pop(old_name)
        else:
            container[last] = _mutate(container[last], data)
        write_resealed(path, after)
        assert_detected_or_unchanged(path, original, changed_regions(before, after))


def _corrupt_entries(path: Path) -> VaultCorrupt:
    vault = Vault.open(path)
    with pytest.raises(VaultCorrupt) as caught:
        vault.unlock(PASSPHRASE)
    assert not vault.is_unlocked
    return caught.value


def test_swapped_ciphertexts_are_detected_and_named(vault_path: Path) -> None:
    """Swapping two entries' sealed values fails unlock and names both entries."""
    populated(vault_path)
    doc = load_json(vault_path)
    entries = doc["vault"]["entries"]
    a, b = entries["api_key/openai/default"], entries["ssh/deploy"]
    for field in ("ciphertext", "nonce"):
        a[field], b[field] = b[field], a[field]
    write_resealed(vault_path, doc)
    error = _corrupt_entries(vault_path)
    assert error.details["entries"] == ["api_key/openai/default", "ssh/deploy"]
    assert "'api_key/openai/default'" in str(error) and "'ssh/deploy'" in str(error)


def test_swapped_ciphertexts_alone_are_detected(vault_path: Path) -> None:
    """Swapping only the ciphertexts (nonces kept) is detected for both entries."""
    populated(vault_path)
    doc = load_json(vault_path)
    entries = doc["vault"]["entries"]
    a, b = entries["api_key/openai/default"], entries["ssh/deploy"]
    a["ciphertext"], b["ciphertext"] = b["ciphertext"], a["ciphertext"]
    write_resealed(vault_path, doc)
    assert _corrupt_entries(vault_path).details["entries"] == [
        "api_key/openai/default",
        "ssh/deploy",
    ]


@pytest.mark.parametrize("keep_old", [False, True])
def test_renamed_or_copied_entries_are_detected(vault_path: Path, keep_old: bool) -> None:
    """An entry moved or copied to another path fails unlock, naming the new path."""
    populated(vault_path)
    doc = load_json(vault_path)
    entries = doc["vault"]["entries"]
    moved = entries["ssh/deploy"] if keep_old else entries.pop("ssh/deploy")
    entries["ssh/prod"] = moved
    write_resealed(vault_path, doc)
    assert _corrupt_entries(vault_path).details["entries"] == ["ssh/prod"]


def test_edited_metadata_is_detected(vault_path: Path) -> None:
    """Changing an entry's metadata fails unlock, naming the entry."""
    populated(vault_path)
    doc = load_json(vault_path)
    doc["vault"]["entries"]["ssh/deploy"]["metadata"]["type"] = "api_key"
    write_resealed(vault_path, doc)
    assert _corrupt_entries(vault_path).details["entries"] == ["ssh/deploy"]


def test_removed_entry_is_detected_by_the_mac(vault_path: Path) -> None:
    """Deleting an entry from the file fails unlock on the file-wide MAC."""
    populated(vault_path)
    doc = load_json(vault_path)
    del doc["vault"]["entries"]["ssh/deploy"]
    write_resealed(vault_path, doc)
    error = _corrupt_entries(vault_path)
    assert error.details["region"] == "mac" and error.details["entries"] == []


def test_rolled_back_entry_is_detected_by_the_mac(vault_path: Path) -> None:
    """Replacing an entry with its own earlier, validly sealed version fails unlock."""
    vault = new_vault(vault_path)
    vault.put("token", "old")
    old_entry = load_json(vault_path)["vault"]["entries"]["token"]
    vault.put("token", "new")
    doc = load_json(vault_path)
    doc["vault"]["entries"]["token"] = old_entry
    write_resealed(vault_path, doc)
    assert _corrupt_entries(vault_path).details["region"] == "mac"


@pytest.mark.parametrize("field", ["created_at", "updated_at"])
def test_redated_entries_and_vault_are_detected_by_the_mac(vault_path: Path, field: str) -> None:
    """Editing an entry's or the vault's timestamps fails unlock on the MAC."""
    populated(vault_path)
    for target in ("entry", "vault"):
        doc = load_json(vault_path)
        holder = doc["vault"]["entries"]["ssh/deploy"] if target == "entry" else doc["vault"]
        if field == "created_at" and target == "vault":
            continue  # the vault's created_at is in the header: see the next test
        holder[field] = "2000-01-01T00:00:00.000000Z"
        original = vault_path.read_bytes()
        write_resealed(vault_path, doc)
        assert _corrupt_entries(vault_path).details["region"] == "mac"
        vault_path.write_bytes(original)


def test_header_edits_read_as_wrong_passphrase(vault_path: Path) -> None:
    """Checksum-fixed header edits look like a bad passphrase (ADR 0002): WrongPassphrase."""
    populated(vault_path)
    doc = load_json(vault_path)
    doc["vault"]["created_at"] = "2000-01-01T00:00:00.000000Z"
    write_resealed(vault_path, doc)
    with pytest.raises(WrongPassphrase):
        Vault.open(vault_path).unlock(PASSPHRASE)


def _with_checksum(rest: bytes) -> bytes:
    """``rest`` is the file after ``{"checksum":"…",``; prepend a matching checksum."""
    digest = hashlib.sha256(b"{" + rest).hexdigest()
    return b'{"checksum":"' + digest.encode() + b'",' + rest


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"vault":{', b'"vault": {'),  # white space
        (b'"format":"aileron-vault"', b'"format":"\\u0061ileron-vault"'),  # needless escape
        (b'"version":2', b'"version":2.0'),  # another number spelling
        (b'"version":2', b'"version":2,"version":2'),  # duplicate key
        (b'"generation":4', b'"generation":4.0'),  # another number spelling
        (b'"generation":4', b'"generation":04'),  # a leading zero (not even JSON)
        (b'"generation":4', b'"generation":true'),  # not a number at all
        (b'"format":"aileron-vault",', b""),  # a key missing...
    ],
)
def test_non_canonical_spellings_are_rejected(vault_path: Path, old: bytes, new: bytes) -> None:
    """A file that is not byte-identical to its canonical encoding is VaultCorrupt at open."""
    populated(vault_path)
    raw = vault_path.read_bytes()
    rest = raw[raw.index(b'"mac"') :]
    assert old in rest
    vault_path.write_bytes(_with_checksum(rest.replace(old, new, 1)))
    with pytest.raises(VaultCorrupt):
        Vault.open(vault_path)


def test_keys_out_of_order_are_rejected(vault_path: Path) -> None:
    """The same JSON with its keys in another order is not accepted."""
    populated(vault_path)
    doc = load_json(vault_path)
    rest = {"vault": doc["vault"], "mac": doc["mac"]}
    text = json.dumps(rest, separators=(",", ":"), ensure_ascii=False).encode()
    vault_path.write_bytes(_with_checksum(text[1:]))
    with pytest.raises(VaultCorrupt):
        Vault.open(vault_path)
