"""The strict parser of vault.json versions 1 and 2: bytes in, a validated ``Document`` out.

Checks, in this order, each failure raising ``VaultCorrupt`` naming the region:

1. size (at most ``MAX_FILE_BYTES``);
2. the checksum: the file starts with ``{"checksum":"<64 hex>",`` and the hex is the SHA-256 of
   the rest of the file with that member removed (random damage anywhere stops here);
3. JSON: strict UTF-8, no NaN/Infinity, an object;
4. ``vault.format`` and ``vault.version`` (an intact file of a version other than 1 or 2
   raises ``UnsupportedVersion``);
5. every field's type, encoding and bounds, including the KDF caps, so nothing is ever derived
   from out-of-bounds parameters; version 2 has exactly two members more (``generation``, an
   integer >= 1, and ``audit_key``), version 1 has neither;
6. canonical form: the file is byte-identical to what the writer makes of the parsed content.

Anything that needs a key (the wrapped key, the entries' tags, the audit seed, the MAC) is
checked by
``vault.py``. The parser raises nothing but ``VaultCorrupt`` and ``UnsupportedVersion``.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any, NoReturn

import attrs

from aileron_core.vault import entries as rules
from aileron_core.vault.encoding import b64decode_strict, parse_timestamp
from aileron_core.vault.errors import UnsupportedVersion, VaultCorrupt
from aileron_core.vault.format import (
    CHECKSUM_HEX_DIGITS,
    CHECKSUM_OPEN,
    FORMAT,
    HEAD_BYTES,
    MAX_FILE_BYTES,
    MAX_GENERATION,
    SUPPORTED_VERSIONS,
    AuditKey,
    Document,
    Header,
    SealedEntry,
    WrappedKey,
    assemble_entry,
    encode_file,
)
from aileron_core.vault.kdf import (
    KDF_NAME,
    MAX_SALT_BYTES,
    MIN_SALT_BYTES,
    KdfParams,
    kdf_params_problem,
)
from aileron_core.vault.keys import (
    AUDIT_PUBLIC_BYTES,
    AUDIT_SEED_BYTES,
    DATA_KEY_BYTES,
    MAC_BYTES,
    NONCE_BYTES,
    TAG_BYTES,
)

_HEX = re.compile(r"[0-9a-f]+")
_VAULT_ID_HEX = 32

_TOP_KEYS = frozenset({"checksum", "mac", "vault"})
_BODY_KEYS_V1 = frozenset(
    {"created_at", "entries", "format", "kdf", "updated_at", "vault_id", "version", "wrapped_key"}
)
_BODY_KEYS = {1: _BODY_KEYS_V1, 2: _BODY_KEYS_V1 | {"audit_key", "generation"}}
_AUDIT_KEY_KEYS = frozenset({"public", "sealed"})
_KDF_KEYS = frozenset({"memory_kib", "name", "parallelism", "salt", "time_cost"})
_SEALED_KEYS = frozenset({"ciphertext", "nonce"})
_ENTRY_KEYS = frozenset({"ciphertext", "created_at", "metadata", "nonce", "updated_at"})
_MAX_ENTRY_CIPHERTEXT = rules.MAX_VALUE_BYTES + TAG_BYTES


@attrs.frozen
class ParsedFile:
    """A file that passed every check that needs no key."""

    document: Document
    body: bytes  # the exact bytes of the "vault" member, for the MAC check
    mac: bytes


def parse_file(raw: bytes, source: str) -> ParsedFile:
    """Parse and validate vault.json bytes; ``source`` names the file in error messages."""
    fail = _Failer(source)
    if len(raw) > MAX_FILE_BYTES:
        fail("file", f"it is larger than {MAX_FILE_BYTES} bytes")
    _check_checksum(raw, fail)
    top = _load_json(raw, fail)
    body, version = _check_format_and_version(top, source, fail)
    _exact_keys(top, _TOP_KEYS, "file", fail)
    mac = _b64_field(top, "mac", "mac", fail, size=(MAC_BYTES, MAC_BYTES))
    _exact_keys(body, _BODY_KEYS[version], "header", fail)
    header = _parse_header(body, version, fail)
    generation, audit_key = (0, None) if version == 1 else _parse_v2_fields(body, fail)
    wrapped = _dict_field(body, "wrapped_key", "wrapped_key", fail)
    _exact_keys(wrapped, _SEALED_KEYS, "wrapped_key", fail)
    wrapped_key = WrappedKey(
        nonce=_b64_field(wrapped, "nonce", "wrapped_key", fail, size=(NONCE_BYTES, NONCE_BYTES)),
        ciphertext=_b64_field(
            wrapped, "ciphertext", "wrapped_key", fail, size=(DATA_KEY_BYTES + TAG_BYTES,) * 2
        ),
    )
    updated_at = _timestamp_field(body, "updated_at", "header", fail)
    entries = _parse_entries(_dict_field(body, "entries", "entries", fail), fail)
    document = Document(header, wrapped_key, updated_at, entries, generation, audit_key)
    # The canonical-form rule: the file must be exactly what the writer makes of its content.
    # This catches white space, key order, escapes, duplicate keys and number spellings, and
    # costs a join instead of a second full JSON encoding.
    encoded = document.body()
    if encode_file(encoded, mac) != raw:
        fail("file", "it is not in canonical form (sorted keys, no white space, minimal escapes)")
    return ParsedFile(document=document, body=encoded, mac=mac)


class _Failer:
    """Raises ``VaultCorrupt`` naming the file, the region and what is wrong."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __call__(self, region: str, problem: str, **details: Any) -> NoReturn:
        raise VaultCorrupt(
            f"{self.source} is damaged or was tampered with ({region}): {problem}",
            details={"file": self.source, "region": region, **details},
        )


def _check_checksum(raw: bytes, fail: _Failer) -> None:
    head = raw[:HEAD_BYTES]
    digest = head[len(CHECKSUM_OPEN) : len(CHECKSUM_OPEN) + CHECKSUM_HEX_DIGITS]
    if (
        not head.startswith(CHECKSUM_OPEN)
        or not head.endswith(b'",')
        or len(head) != HEAD_BYTES
        or not _HEX.fullmatch(digest.decode("ascii", "replace"))
    ):
        fail("checksum", "it does not start with a vault checksum (is this a vault file?)")
    actual = hashlib.sha256(b"{" + raw[HEAD_BYTES:]).hexdigest().encode("ascii")
    if actual != digest:
        fail("checksum", "its checksum does not match its content")


def _load_json(raw: bytes, fail: _Failer) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeError are ValueErrors
        fail("file", f"it is not valid JSON ({type(exc).__name__})")
    if not isinstance(value, dict):
        fail("file", "it is not a JSON object")
    return value


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _check_format_and_version(
    top: dict[str, Any], source: str, fail: _Failer
) -> tuple[dict[str, Any], int]:
    body = _dict_field(top, "vault", "header", fail)
    if body.get("format") != FORMAT:
        fail("header", f'it is not an Aileron vault ("format" is not "{FORMAT}")')
    version = body.get("version")
    if type(version) is not int or version < 1:
        fail("header", '"version" is not a positive integer')
    if version not in SUPPORTED_VERSIONS:
        supported = " and ".join(str(v) for v in SUPPORTED_VERSIONS)
        raise UnsupportedVersion(
            f"{source} is a vault of format version {version}; this Aileron reads versions "
            f"{supported}",
            details={"file": source, "version": version, "supported": list(SUPPORTED_VERSIONS)},
        )
    return body, version


def _parse_v2_fields(body: dict[str, Any], fail: _Failer) -> tuple[int, AuditKey]:
    generation = body["generation"]
    if type(generation) is not int or not 1 <= generation <= MAX_GENERATION:
        fail("header", f'"generation" is not an integer from 1 to {MAX_GENERATION}')
    raw = _dict_field(body, "audit_key", "audit_key", fail)
    _exact_keys(raw, _AUDIT_KEY_KEYS, "audit_key", fail)
    sealed = _dict_field(raw, "sealed", "audit_key", fail)
    _exact_keys(sealed, _SEALED_KEYS, "audit_key", fail)
    audit_key = AuditKey(
        public=_b64_field(raw, "public", "audit_key", fail, size=(AUDIT_PUBLIC_BYTES,) * 2),
        nonce=_b64_field(sealed, "nonce", "audit_key", fail, size=(NONCE_BYTES, NONCE_BYTES)),
        ciphertext=_b64_field(
            sealed, "ciphertext", "audit_key", fail, size=(AUDIT_SEED_BYTES + TAG_BYTES,) * 2
        ),
    )
    return generation, audit_key


def _parse_header(body: dict[str, Any], version: int, fail: _Failer) -> Header:
    vault_id = body.get("vault_id")
    if not (
        isinstance(vault_id, str) and len(vault_id) == _VAULT_ID_HEX and _HEX.fullmatch(vault_id)
    ):
        fail("header", '"vault_id" is not 32 lowercase hex digits')
    kdf = _dict_field(body, "kdf", "kdf", fail)
    _exact_keys(kdf, _KDF_KEYS, "kdf", fail)
    if kdf["name"] != KDF_NAME:
        fail("kdf", f'the key derivation is not "{KDF_NAME}"')
    costs = [kdf["time_cost"], kdf["memory_kib"], kdf["parallelism"]]
    if any(type(cost) is not int for cost in costs):
        fail("kdf", "the key derivation costs are not integers")
    problem = kdf_params_problem(*costs)
    if problem:  # checked here, long before anything could be derived
        fail("kdf", f"the key derivation parameters are out of bounds: {problem}")
    salt = _b64_field(kdf, "salt", "kdf", fail, size=(MIN_SALT_BYTES, MAX_SALT_BYTES))
    params = KdfParams(time_cost=costs[0], memory_kib=costs[1], parallelism=costs[2])
    created_at = _timestamp_field(body, "created_at", "header", fail)
    return Header(vault_id=vault_id, kdf=params, salt=salt, created_at=created_at, version=version)


def _parse_entries(raw_entries: dict[str, Any], fail: _Failer) -> dict[str, SealedEntry]:
    entries: dict[str, SealedEntry] = {}
    problems: dict[str, str] = {}
    for path, raw_entry in raw_entries.items():
        try:
            entries[path] = _parse_entry(path, raw_entry)
        except _EntryProblem as exc:
            problems[path] = str(exc)
    if problems:
        names = sorted(problems)
        fail(
            "entries",
            f"{len(names)} entr{'y is' if len(names) == 1 else 'ies are'} malformed: "
            + "; ".join(f"{name!r}: {problems[name]}" for name in names[:10]),
            entries=names,
        )
    return entries


class _EntryProblem(Exception):
    pass


def _parse_entry(path: str, raw: object) -> SealedEntry:
    # The hot loop of opening a large vault: keep it to plain checks and C-level helpers.
    problem = rules.entry_path_problem(path)
    if problem:
        raise _EntryProblem(problem)
    if type(raw) is not dict or raw.keys() != _ENTRY_KEYS:
        raise _EntryProblem(f"an entry is an object with exactly the keys {sorted(_ENTRY_KEYS)}")
    nonce_b64, ciphertext_b64 = raw["nonce"], raw["ciphertext"]
    created_text, updated_text = raw["created_at"], raw["updated_at"]
    if not (
        type(nonce_b64) is str
        and type(ciphertext_b64) is str
        and type(created_text) is str
        and type(updated_text) is str
    ):
        raise _EntryProblem("nonce, ciphertext and times must be strings")
    nonce = b64decode_strict(nonce_b64)
    if nonce is None or len(nonce) != NONCE_BYTES:
        raise _EntryProblem("the nonce is not 12 bytes of canonical base64")
    ciphertext = b64decode_strict(ciphertext_b64)
    if ciphertext is None or not TAG_BYTES <= len(ciphertext) <= _MAX_ENTRY_CIPHERTEXT:
        raise _EntryProblem("the ciphertext is not canonical base64 of a sealed value")
    created_at = parse_timestamp(created_text)
    updated_at = created_at if updated_text == created_text else parse_timestamp(updated_text)
    if created_at is None or updated_at is None:
        raise _EntryProblem("a time is not a UTC timestamp of the form YYYY-MM-DDTHH:MM:SS.ffffffZ")
    metadata = raw["metadata"]
    empty = type(metadata) is dict and not metadata  # the common case, valid without checks
    problem = None if empty else rules.metadata_problem(metadata)
    if problem:
        raise _EntryProblem(problem)
    return assemble_entry(
        path,
        nonce,
        ciphertext,
        metadata,
        created_at,
        updated_at,
        nonce_b64,
        ciphertext_b64,
        created_text,
        updated_text,
    )


def _exact_keys(obj: dict[str, Any], keys: frozenset[str], region: str, fail: _Failer) -> None:
    if obj.keys() != keys:
        fail(region, f"expected exactly the keys {sorted(keys)}, found {sorted(obj)}")


def _dict_field(obj: dict[str, Any], key: str, region: str, fail: _Failer) -> dict[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        fail(region, f'"{key}" is not a JSON object')
    return value


def _b64_field(
    obj: dict[str, Any], key: str, region: str, fail: _Failer, *, size: tuple[int, int]
) -> bytes:
    value = obj.get(key)
    data = b64decode_strict(value) if isinstance(value, str) else None
    if data is None or not size[0] <= len(data) <= size[1]:
        fail(region, f'"{key}" is not canonical base64 of {size[0]}-{size[1]} bytes')
    return data


def _timestamp_field(obj: dict[str, Any], key: str, region: str, fail: _Failer) -> datetime:
    value = obj.get(key)
    moment = parse_timestamp(value) if isinstance(value, str) else None
    if moment is None:
        fail(region, f'"{key}" is not a UTC timestamp of the form YYYY-MM-DDTHH:MM:SS.ffffffZ')
    return moment


__all__ = ["ParsedFile", "parse_file"]
