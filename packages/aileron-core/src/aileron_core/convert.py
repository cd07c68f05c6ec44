"""The one cattrs converter that (un)structures Aileron's attrs models to and from JSON data.

Import it as ``from aileron_core.convert import converter``; never hand-write ``to_dict``.
Datetimes travel as ISO 8601 strings in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

import cattrs

converter = cattrs.Converter(forbid_extra_keys=True)


def _structure_datetime(value: object, _: type) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 timestamp string, got {type(value).__name__}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return parsed.astimezone(UTC)


converter.register_unstructure_hook(datetime, lambda value: value.isoformat())
converter.register_structure_hook(datetime, _structure_datetime)

__all__ = ["converter"]
