"""Helpers shared by the vault tests (imported as ``vault.support``; tests/ is on sys.path).

``reseal`` is an independent implementation of ADR 0002's checksum rule: it lets a test play a
deliberate attacker who edits the JSON and fixes the passphrase-independent checksum, so the
keyed checks behind it (wrapped key, entry tags, MAC) are exercised too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from aileron_core.canonical import canonical_json
from aileron_core.vault import KdfParams, Vault, VaultError

CHEAP = KdfParams(time_cost=1, memory_kib=8, parallelism=1)
PASSPHRASE = "correct horse battery staple"


def new_vault(path: Path, passphrase: str = PASSPHRASE) -> Vault:
    """A fresh vault with cheap KDF parameters, unlocked."""
    return Vault.create(path, passphrase, kdf=CHEAP)


def load_json(path: Path) -> dict[str, Any]:
    """The vault file as a JSON object."""
    value = json.loads(path.read_bytes())
    assert isinstance(value, dict)
    return value


def reseal(document: dict[str, Any]) -> bytes:
    """Canonical bytes of ``document`` with a correct checksum (whatever its other content)."""
    rest = {key: value for key, value in document.items() if key != "checksum"}
    checksum = hashlib.sha256(canonical_json(rest)).hexdigest()
    return canonical_json({"checksum": checksum, **rest})


def write_resealed(path: Path, document: dict[str, Any]) -> None:
    """Overwrite the vault file with ``document``, checksum fixed (an attacker's edit)."""
    path.write_bytes(reseal(document))


def read_everything(path: Path, passphrase: str = PASSPHRASE) -> dict[str, bytes]:
    """Open, unlock and read every entry of the vault at ``path``."""
    vault = Vault.open(path)
    vault.unlock(passphrase)
    return {info.path: vault.get(info.path) for info in vault.list()}


def outcome(path: Path, passphrase: str = PASSPHRASE) -> dict[str, bytes] | VaultError:
    """Everything in the vault, or the vault error that stopped reading it."""
    try:
        return read_everything(path, passphrase)
    except VaultError as exc:
        return exc


# --- strategies -------------------------------------------------------------------------------

_segment_chars = st.characters(exclude_categories=["Cc", "Cs"], exclude_characters="/")
segments = st.text(_segment_chars, min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))
entry_paths = (
    st.lists(segments, min_size=1, max_size=4).map("/".join).filter(lambda p: len(p) <= 512)
)
metadata_maps = st.dictionaries(
    keys=st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=16),
    values=st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    max_size=4,
)
values = st.binary(max_size=200) | st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def as_bytes(value: bytes | str) -> bytes:
    """What ``Vault.get`` returns for a value that was put."""
    return value.encode("utf-8") if isinstance(value, str) else value


@contextlib.contextmanager
def scratch_vault_path() -> Iterator[Path]:
    """A vault path in a fresh private temp dir (for Hypothesis tests, one per example)."""
    with tempfile.TemporaryDirectory(prefix="aileron-vault-test-") as directory:
        yield Path(directory) / "vault.json"
