"""A second reader, written from ADR 0002 alone (no aileron_core.vault), reads the golden vaults.

If this test and the real implementation disagree, either the ADR is wrong or incomplete, or
the implementation drifted from it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

GOLDEN = Path(__file__).with_name("golden")
EXPECTED: dict[str, Any] = json.loads((GOLDEN / "expected.json").read_text(encoding="utf-8"))


def canonical(value: Any) -> bytes:
    """ADR 0002 section 1: sorted keys, no white space, minimal escapes, UTF-8."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def b64(text: str) -> bytes:
    """Strict canonical base64 (ADR 0002 section 1)."""
    data = base64.b64decode(text, validate=True)
    assert base64.b64encode(data).decode() == text
    return data


def hkdf(data_key: bytes, vault_id: str, info: bytes) -> bytes:
    """HKDF-SHA256 with the vault id's raw bytes as salt (ADR 0002 section 3)."""
    derive = HKDF(algorithm=hashes.SHA256(), length=32, salt=bytes.fromhex(vault_id), info=info)
    return derive.derive(data_key)


def read_vault(raw: bytes, passphrase: str) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Every entry's value and metadata, checking everything ADR 0002 says a reader checks."""
    document = json.loads(raw.decode("utf-8"))
    assert canonical(document) == raw
    assert set(document) == {"checksum", "mac", "vault"}
    assert raw[:13] == b'{"checksum":"' and raw[77:79] == b'",'
    checksum = hashlib.sha256(b"{" + raw[79:]).hexdigest()
    assert checksum == document["checksum"]
    assert (
        checksum
        == hashlib.sha256(
            canonical({"mac": document["mac"], "vault": document["vault"]})
        ).hexdigest()
    )
    vault = document["vault"]
    assert vault["format"] == "aileron-vault" and vault["version"] in (1, 2)
    v1_keys = {"created_at", "entries", "format", "kdf", "updated_at", "vault_id", "version"}
    v1_keys.add("wrapped_key")
    extra = {"audit_key", "generation"} if vault["version"] == 2 else set()
    assert set(vault) == v1_keys | extra
    kdf = vault["kdf"]
    assert kdf["name"] == "argon2id"
    assert 1 <= kdf["time_cost"] <= 10 and 1 <= kdf["parallelism"] <= 16
    assert 8 * kdf["parallelism"] <= kdf["memory_kib"] <= 1024 * 1024
    password = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    kek = Argon2id(
        salt=b64(kdf["salt"]),
        length=32,
        iterations=kdf["time_cost"],
        lanes=kdf["parallelism"],
        memory_cost=kdf["memory_kib"],
    ).derive(password)
    header = {key: vault[key] for key in ("created_at", "format", "kdf", "vault_id", "version")}
    wrap_ad = canonical({"context": "aileron-vault/v1/wrapped-key", "header": header})
    wrapped = vault["wrapped_key"]
    data_key = AESGCM(kek).decrypt(b64(wrapped["nonce"]), b64(wrapped["ciphertext"]), wrap_ad)
    vault_id = vault["vault_id"]
    mac_key = hkdf(data_key, vault_id, b"aileron-vault/v1/mac")
    expected_mac = hmac.new(mac_key, canonical(vault), hashlib.sha256).digest()
    assert hmac.compare_digest(expected_mac, b64(document["mac"]))
    if vault["version"] == 2:  # ADR 0002 section 3, "Audit key"
        assert type(vault["generation"]) is int and 1 <= vault["generation"] < 2**63
        audit = vault["audit_key"]
        audit_ad = canonical(
            {
                "context": "aileron-vault/v2/audit-key",
                "public": audit["public"],
                "vault_id": vault_id,
            }
        )
        audit_cipher = AESGCM(hkdf(data_key, vault_id, b"aileron-vault/v2/audit-key"))
        sealed = audit["sealed"]
        seed = audit_cipher.decrypt(b64(sealed["nonce"]), b64(sealed["ciphertext"]), audit_ad)
        public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
        assert public == b64(audit["public"])
    entry_cipher = AESGCM(hkdf(data_key, vault_id, b"aileron-vault/v1/entry"))
    found = {}
    for path, entry in vault["entries"].items():
        ad = canonical(
            {
                "context": "aileron-vault/v1/entry",
                "metadata": entry["metadata"],
                "path": path,
                "vault_id": vault_id,
                "version": 1,
            }
        )
        value = entry_cipher.decrypt(b64(entry["nonce"]), b64(entry["ciphertext"]), ad)
        found[path] = (value, entry["metadata"])
    return found


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_adr_alone_is_enough_to_read_the_golden_vaults(name: str) -> None:
    """A reader built only from ADR 0002 decrypts every golden entry to its recorded value."""
    expected = EXPECTED[name]
    found = read_vault((GOLDEN / name).read_bytes(), expected["passphrase"])
    assert found == {
        path: (base64.b64decode(entry["value_base64"]), entry["metadata"])
        for path, entry in expected["entries"].items()
    }
