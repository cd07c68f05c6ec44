"""The crash-safe file primitives behave as their callers rely on."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from aileron_core.canonical import canonical_json
from aileron_core.fileio import atomic_write, exclusive_lock


def test_atomic_write_replaces_content_with_private_mode(tmp_path: Path) -> None:
    """atomic_write leaves exactly the new bytes, mode 0600, and no temp file behind."""
    target = tmp_path / "state.json"
    target.write_text("old")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_exclusive_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    """A non-blocking second lock on a held lock file fails at once."""
    lock = tmp_path / "x.lock"
    with exclusive_lock(lock), pytest.raises(BlockingIOError), exclusive_lock(lock, blocking=False):
        pass


def test_canonical_json_is_order_independent_and_compact() -> None:
    """Equal objects encode to the same compact, key-sorted UTF-8 bytes."""
    assert canonical_json({"b": 1, "a": "é"}) == canonical_json({"a": "é", "b": 1})
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
    with pytest.raises(ValueError):
        canonical_json(float("nan"))
