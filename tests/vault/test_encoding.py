"""The byte-level encodings and input rules of the vault format."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from vault.support import CHEAP, entry_paths, metadata_maps

from aileron_core.canonical import canonical_json
from aileron_core.vault import InvalidEntry, InvalidEntryPath, KdfParams, Vault
from aileron_core.vault.encoding import (
    b64decode_strict,
    b64encode,
    format_timestamp,
    json_string,
    json_string_map,
    parse_timestamp,
)
from aileron_core.vault.entries import (
    MAX_PATH_CHARS,
    check_entry_path,
    check_metadata,
    entry_path_problem,
)
from aileron_core.vault.format import entry_associated_data


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_json_string_matches_canonical_json(text: str) -> None:
    """The incremental string encoder produces exactly canonical_json's bytes."""
    assert json_string(text) == canonical_json(text)


@given(metadata_maps)
def test_json_string_map_matches_canonical_json(mapping: dict[str, str]) -> None:
    """The incremental mapping encoder produces exactly canonical_json's bytes."""
    assert json_string_map(mapping) == canonical_json(mapping)


@given(entry_paths, metadata_maps, st.text("0123456789abcdef", min_size=32, max_size=32))
def test_entry_associated_data_is_the_documented_canonical_json(
    path: str, metadata: dict[str, str], vault_id: str
) -> None:
    """An entry's associated data is canonical JSON of context, metadata, path, id, version."""
    expected = canonical_json(
        {
            "context": "aileron-vault/v1/entry",
            "metadata": metadata,
            "path": path,
            "vault_id": vault_id,
            "version": 1,
        }
    )
    assert entry_associated_data(vault_id, path, json_string_map(metadata)) == expected


@given(st.binary(max_size=100))
def test_base64_round_trips(data: bytes) -> None:
    """Canonical standard base64 decodes back to the original bytes."""
    assert b64decode_strict(b64encode(data)) == data


@pytest.mark.parametrize(
    "text",
    [
        "QQ",  # missing padding
        "QQ===",  # extra padding
        "QR==",  # non-zero unused bits ("QQ==" is canonical)
        "Q Q==",  # white space
        "QQ==\n",  # trailing newline
        "-_8=",  # URL-safe alphabet
        "é===",  # not ASCII
        "=QQ=",  # padding first
    ],
)
def test_non_canonical_base64_is_rejected(text: str) -> None:
    """Any spelling of base64 other than the canonical one is refused."""
    assert b64decode_strict(text) is None


def test_base64_uses_the_standard_alphabet_with_padding() -> None:
    """b64encode is RFC 4648 section 4 base64 with padding."""
    data = b"\xfb\xff\x00"
    assert b64encode(data) == base64.b64encode(data).decode() == "+/8A"


@given(st.datetimes(timezones=st.just(UTC)))
def test_timestamps_round_trip_at_fixed_width(moment: datetime) -> None:
    """A UTC time encodes to 27 characters ending in Z and decodes to the same instant."""
    text = format_timestamp(moment)
    assert len(text) == 27 and text.endswith("Z")
    assert parse_timestamp(text) == moment


def test_timestamps_in_other_zones_are_stored_as_utc() -> None:
    """A time with another offset is written as the same instant in UTC."""
    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(moment) == "2026-01-02T01:04:05.000006Z"


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05.000000+00:00",
        "2026-01-02 03:04:05.000000Z",
        "2026-01-02T03:04:05,000000Z",
        "2026-13-02T03:04:05.000000Z",
        "2026-01-02T24:00:00.000000Z",
        "0000-01-02T03:04:05.000000Z",
        "٢٠٢٦-01-02T03:04:05.000000Z",
    ],
)
def test_non_canonical_timestamps_are_rejected(text: str) -> None:
    """Only YYYY-MM-DDTHH:MM:SS.ffffffZ with a real date and time is accepted."""
    assert parse_timestamp(text) is None


@pytest.mark.parametrize(
    "path",
    ["api_key/openai/default", "a", "ssh/deploy key", "notes/ünïcödé/☃", "a/.b/c..", "x" * 512],
)
def test_valid_entry_paths_are_accepted(path: str) -> None:
    """Binding names and other ordinary paths are valid entry paths."""
    assert check_entry_path(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/a",
        "a/",
        "a//b",
        "./a",
        "a/../b",
        "..",
        "a\nb",
        "a\x00",
        "a\x7f",
        "a\x85",
        "a\ud800",
        "x" * 513,
        42,
        None,
    ],
)
def test_invalid_entry_paths_are_rejected(path: object) -> None:
    """Paths breaking the rules raise InvalidEntryPath (code invalid_entry_path)."""
    with pytest.raises(InvalidEntryPath) as caught:
        check_entry_path(path)
    assert caught.value.code == "invalid_entry_path"


@given(st.text(max_size=MAX_PATH_CHARS + 2))
def test_entry_path_rules_hold_for_every_accepted_string(text: str) -> None:
    """Whatever the validator accepts has non-empty, non-dot segments and no control chars."""
    if entry_path_problem(text) is None:
        assert 1 <= len(text) <= MAX_PATH_CHARS
        assert all(seg not in ("", ".", "..") for seg in text.split("/"))
        assert all(not (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) for c in text)
        text.encode("utf-8")
    else:
        with pytest.raises(InvalidEntryPath):
            check_entry_path(text)


@pytest.mark.parametrize(
    "metadata",
    [
        {"": "empty key"},
        {"k" * 65: "long key"},
        {"k": "v" * 1025},
        {f"k{i}": "v" for i in range(33)},
        {f"k{i}": "v" * 1000 for i in range(5)},
        {"k\n": "control in key"},
        {"k": "\udc80"},
        {"k": 1},
        ["not", "a", "mapping"],
    ],
)
def test_invalid_metadata_is_rejected(metadata: object) -> None:
    """Metadata breaking the bounds raises InvalidEntry (code invalid_entry)."""
    with pytest.raises(InvalidEntry) as caught:
        check_metadata(metadata)
    assert caught.value.code == "invalid_entry"


def test_put_rejects_bad_values_and_metadata(tmp_path: Path) -> None:
    """put refuses non-text values, oversized values and bad metadata, writing nothing."""
    vault = Vault.create(tmp_path / "vault.json", "pw", kdf=CHEAP)
    before = (tmp_path / "vault.json").read_bytes()
    for value, metadata in [
        ("\ud800", None),
        (12, None),
        (b"x" * (1024 * 1024 + 1), None),
        ("ok", {"k": 3}),
    ]:
        with pytest.raises(InvalidEntry):
            vault.put("a", value, metadata)  # type: ignore[arg-type]
    assert (tmp_path / "vault.json").read_bytes() == before
    assert vault.list() == []


@pytest.mark.parametrize(
    ("time_cost", "memory_kib", "parallelism"),
    [(0, 8, 1), (11, 8, 1), (1, 8, 0), (1, 136, 17), (1, 15, 2), (1, 1024 * 1024 + 1, 1)],
)
def test_kdf_params_outside_the_caps_cannot_be_built(
    time_cost: int, memory_kib: int, parallelism: int
) -> None:
    """KdfParams refuses parameters outside the documented caps."""
    with pytest.raises(ValueError, match="invalid Argon2id parameters"):
        KdfParams(time_cost=time_cost, memory_kib=memory_kib, parallelism=parallelism)


def test_kdf_params_refuse_non_integers() -> None:
    """KdfParams takes integers only (no bools, floats or strings)."""
    with pytest.raises(TypeError):
        KdfParams(time_cost=True, memory_kib=8, parallelism=1)
    with pytest.raises(TypeError):
        KdfParams(time_cost=1, memory_kib=8.0, parallelism=1)  # type: ignore[arg-type]
