"""Catalog entries: what the signature covers, and each reason an entry is refused."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from catalog.support import TEST_KEY_ID, echo_catalog, entries_of, public_b64
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from aileron_cli.catalog import (
    EntryRefused,
    TrustedKeys,
    load_keys,
    revoke_key,
    sign_entry,
    signed_bytes,
    trust_key,
    verify_entry,
)
from aileron_core.canonical import canonical_json

KEY = Ed25519PrivateKey.generate()


def keys_with(key: Ed25519PrivateKey, key_id: str = TEST_KEY_ID) -> TrustedKeys:
    return TrustedKeys(
        {key_id: base64.b64decode(public_b64(key))}, frozenset(), frozenset({key_id})
    )


@pytest.fixture(scope="module")
def entry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return entries_of(echo_catalog(tmp_path_factory.mktemp("src"), KEY))[0]


def refusal(entry: dict[str, Any], keys: TrustedKeys) -> EntryRefused:
    with pytest.raises(EntryRefused) as caught:
        verify_entry(entry, keys)
    return caught.value


def test_signature_covers_canonical_json_without_signature(entry: dict[str, Any]) -> None:
    """The signed bytes are the canonical JSON of the entry minus ``signature``, key id included."""
    unsigned = {k: v for k, v in entry.items() if k != "signature"}
    assert signed_bytes(entry) == canonical_json(unsigned)
    assert b'"key_id":"test-publisher"' in signed_bytes(entry)
    KEY.public_key().verify(base64.b64decode(entry["signature"]), signed_bytes(entry))


def test_a_signed_entry_verifies(entry: dict[str, Any]) -> None:
    """An entry signed by a trusted key passes, however its members are ordered."""
    verify_entry(dict(reversed(list(entry.items()))), keys_with(KEY))


def test_unsigned_entry_is_refused(entry: dict[str, Any]) -> None:
    """An entry without a signature is refused as unsigned."""
    bare = {k: v for k, v in entry.items() if k not in ("signature", "key_id")}
    error = refusal(bare, keys_with(KEY))
    assert error.reason == "unsigned" and "echo@1.0.0 is refused: it is unsigned" in str(error)


def test_tampered_entry_is_refused(entry: dict[str, Any]) -> None:
    """Changing one host of the spec after signing is refused as a bad signature."""
    tampered = copy.deepcopy(entry)
    tampered["connector"]["tools"][0]["operations"][0]["hosts"] = ["evil.example:443"]
    error = refusal(tampered, keys_with(KEY))
    assert error.reason == "bad_signature" and "does not match its content" in str(error)


def test_reattributing_an_entry_to_another_key_is_refused(entry: dict[str, Any]) -> None:
    """The key id is signed: claiming another trusted key's id breaks the signature."""
    other = Ed25519PrivateKey.generate()
    keys = TrustedKeys(
        {TEST_KEY_ID: base64.b64decode(public_b64(KEY)), "b": base64.b64decode(public_b64(other))},
        frozenset(),
        frozenset(),
    )
    assert refusal(entry | {"key_id": "b"}, keys).reason == "bad_signature"


def test_entry_by_an_untrusted_key_is_refused(entry: dict[str, Any]) -> None:
    """An entry whose key id is not trusted is refused naming that key and how to trust it."""
    error = refusal(entry, keys_with(KEY, "someone-else"))
    assert error.reason == "unknown_key"
    assert "key test-publisher, which is not trusted" in str(error)
    assert "aileron connector keys trust" in str(error)


def test_same_id_other_key_is_a_bad_signature(entry: dict[str, Any]) -> None:
    """A trusted id whose pinned key did not make the signature is refused (forged entry)."""
    forger = sign_entry(entry, Ed25519PrivateKey.generate(), TEST_KEY_ID)
    assert refusal(forger, keys_with(KEY)).reason == "bad_signature"


def test_entry_by_a_revoked_key_is_refused(entry: dict[str, Any], tmp_path: Path) -> None:
    """Revoking a trusted key refuses its entries, naming the revocation."""
    trust_key(tmp_path, TEST_KEY_ID, base64.b64decode(public_b64(KEY)))
    verify_entry(entry, load_keys(tmp_path))
    revoke_key(tmp_path, TEST_KEY_ID)
    error = refusal(entry, load_keys(tmp_path))
    assert error.reason == "revoked_key" and "which you revoked" in str(error)


@given(st.data())
def test_any_changed_text_is_refused(entry: dict[str, Any], data: st.DataObject) -> None:
    """Replacing any action's text, the description or a tag with other text is refused."""
    changed = copy.deepcopy(entry)
    field = data.draw(st.sampled_from(["description", "tags", "actions"]))
    new = data.draw(st.text(max_size=40))
    if field == "description":
        changed["description"] = changed["description"] + "x" + new
    elif field == "tags":
        changed["tags"] = [*changed["tags"], new]
    else:
        file = data.draw(st.sampled_from(sorted(changed["actions"])))
        changed["actions"][file] += new + "\n"
    assert refusal(changed, keys_with(KEY)).reason == "bad_signature"


def test_keys_file_is_private_and_names_revocations(tmp_path: Path) -> None:
    """``keys.json`` is written 0600 and a revoked built-in key is listed as revoked."""
    revoke_key(tmp_path, "aileron-catalog-2026")
    path = tmp_path / "keys.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["revoked"] == ["aileron-catalog-2026"]
    keys = load_keys(tmp_path)
    assert keys.public_key("aileron-catalog-2026") is None
