"""The audit log's settings: ``[audit]`` in ``config.toml``.

::

    [audit]
    segment_size = "64 MiB"     # or an integer number of bytes; the default

``segment_size`` is how large ``audit.jsonl`` grows before it is rotated to the next
``audit.NNNNNN.jsonl`` (ADR 0021): an integer of bytes, or a string ``"<number> <unit>"`` with
the unit one of B, KiB, MiB, GiB (also KB/MB/GB, taken as the same powers of 1024, and any
case). It must lie between ``MIN_SEGMENT_BYTES`` and ``MAX_SEGMENT_BYTES``. An unknown key, a
value of the wrong type or out of range is a ``ConfigError`` naming the setting and the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from aileron_cli.config_file import read_settings
from aileron_cli.daemon.audit.log import DEFAULT_SEGMENT_BYTES
from aileron_core.errors import ConfigError

__all__ = [
    "MAX_SEGMENT_BYTES",
    "MIN_SEGMENT_BYTES",
    "AuditConfig",
    "load_audit_config",
    "parse_audit_config",
    "parse_size",
]

MIN_SEGMENT_BYTES = 64 << 10
"""Smaller segments would only multiply files."""

MAX_SEGMENT_BYTES = 1 << 40

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_SIZE = re.compile(r"\s*(\d+)\s*(?:([kmg])i?b?|(b)?)\s*", re.IGNORECASE)
_HINT = 'write an integer number of bytes or a size such as "64 MiB" or "512 KiB"'


@attrs.frozen
class AuditConfig:
    """What ``[audit]`` sets."""

    segment_bytes: int = DEFAULT_SEGMENT_BYTES


def load_audit_config(config_path: Path) -> AuditConfig:
    """The ``[audit]`` settings of ``config.toml`` at ``config_path`` (defaults if absent)."""
    settings = read_settings(config_path)
    if settings is None:
        return AuditConfig()
    return parse_audit_config(settings, str(config_path))


def parse_audit_config(settings: Mapping[str, Any], source: str) -> AuditConfig:
    """Read the ``[audit]`` table of parsed ``config.toml`` settings from ``source``."""
    table = settings.get("audit", {})
    if not isinstance(table, dict):
        raise ConfigError(f"`audit` in {source} must be a table")
    unknown = sorted(set(table) - {"segment_size"})
    if unknown:
        raise ConfigError(
            f"[audit] in {source}: unknown setting {unknown[0]!r}", hint="known: segment_size"
        )
    if "segment_size" not in table:
        return AuditConfig()
    where = f"audit.segment_size in {source}"
    size = parse_size(table["segment_size"], where)
    if not MIN_SEGMENT_BYTES <= size <= MAX_SEGMENT_BYTES:
        raise ConfigError(f"{where} must be between 64 KiB and 1 TiB, not {size} bytes", hint=_HINT)
    return AuditConfig(segment_bytes=size)


def parse_size(value: object, where: str) -> int:
    """Bytes from an integer or a string like ``"64 MiB"``; ``ConfigError`` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{where} must be an integer or a string, not {value!r}", hint=_HINT)
    if isinstance(value, int):
        return value
    matched = _SIZE.fullmatch(value)
    if matched is None:
        raise ConfigError(f"{where} is not a size: {value!r}", hint=_HINT)
    number, unit, plain = matched.groups()
    return int(number) * _UNITS[(unit or plain or "").lower()]
