"""A model-based test: two handles on one file, driven at random, agree with a plain dict.

The model also counts the file's writes: the vault's generation must equal it, and its audit
public key must never change.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from vault.support import as_bytes, entry_paths, metadata_maps, new_vault, values

from aileron_core.vault import EntryNotFound, Vault, VaultLocked, WrongPassphrase

paths = st.sampled_from(["a", "b/c", "api_key/openai/default", "ü/☃"]) | entry_paths
handles = st.sampled_from([0, 1])


class VaultModel(RuleBasedStateMachine):
    """Drives two handles on the same file; the model is path -> (value, metadata)."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.TemporaryDirectory(prefix="aileron-vault-model-")
        self.path = Path(self.directory.name) / "vault.json"
        self.generation = 0  # bumped by every passphrase change
        self.handles = [new_vault(self.path, self.passphrase), Vault.open(self.path)]
        self.handles[1].unlock(self.passphrase)
        # The passphrase generation each handle unlocked at; None when it is locked.
        self.unlocked_at: list[int | None] = [0, 0]
        self.model: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.writes = 1  # the file's expected generation: 1 at create, +1 per write
        self.audit_public_key = self.handles[0].audit_public_key

    @property
    def passphrase(self) -> str:
        return f"passphrase {self.generation}"

    def ready(self, h: int) -> Vault:
        """The handle, unlocked; a handle that missed a passphrase change must report it."""
        vault = self.handles[h]
        if self.unlocked_at[h] != self.generation:
            with pytest.raises(VaultLocked):
                vault.get("probe")
            vault.unlock(self.passphrase)
            self.unlocked_at[h] = self.generation
        return vault

    @rule(h=handles, path=paths, value=values, metadata=st.none() | metadata_maps)
    def put(self, h: int, path: str, value: bytes | str, metadata: dict[str, str] | None) -> None:
        info = self.ready(h).put(path, value, metadata)
        self.writes += 1
        if metadata is None:
            metadata = self.model[path][1] if path in self.model else {}
        self.model[path] = (as_bytes(value), metadata)
        assert info.path == path and info.metadata == metadata

    @rule(h=handles, path=paths)
    def delete(self, h: int, path: str) -> None:
        vault = self.ready(h)
        if path in self.model:
            vault.delete(path)
            self.writes += 1
            del self.model[path]
        else:
            with pytest.raises(EntryNotFound):
                vault.delete(path)

    @rule(h=handles)
    def reopen(self, h: int) -> None:
        self.handles[h] = Vault.open(self.path)
        self.unlocked_at[h] = None

    @rule(h=handles)
    def lock(self, h: int) -> None:
        self.handles[h].lock()
        self.unlocked_at[h] = None

    @rule(h=handles)
    def wrong_passphrase(self, h: int) -> None:
        with pytest.raises(WrongPassphrase):
            self.handles[h].unlock("not the passphrase")
        if self.unlocked_at[h] != self.generation:
            self.unlocked_at[h] = None  # a stale handle noticed the change while trying

    @rule(h=handles)
    def change_passphrase(self, h: int) -> None:
        current = self.unlocked_at[h] == self.generation
        self.handles[h].change_passphrase(self.passphrase, f"passphrase {self.generation + 1}")
        self.generation += 1
        self.writes += 1
        self.unlocked_at[h] = self.generation if current else None
        assert self.handles[h].is_unlocked == current

    @rule(h=handles)
    def rotate(self, h: int) -> None:
        self.ready(h).rotate()
        self.writes += 1

    @rule(h=handles, at_least=st.integers(0, 60))
    def bump_generation(self, h: int, at_least: int) -> None:
        self.writes = max(self.writes + 1, at_least)
        assert self.ready(h).bump_generation(at_least) == self.writes

    @invariant()
    def generation_counts_the_writes(self) -> None:
        for vault in self.handles:
            assert vault.generation == self.writes
            assert vault.audit_public_key == self.audit_public_key

    @invariant()
    def agrees_with_the_model(self) -> None:
        vault = self.ready(0)
        listed = vault.list()
        assert [info.path for info in listed] == sorted(self.model)
        for info in listed:
            value, metadata = self.model[info.path]
            assert info.metadata == metadata
            assert vault.get(info.path) == value

    def teardown(self) -> None:
        self.directory.cleanup()


VaultModel.TestCase.settings = settings(
    max_examples=75,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_vault_agrees_with_a_dict_model = VaultModel.TestCase
