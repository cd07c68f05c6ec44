"""The connector catalog shipped with the CLI: signed entries (a connector spec and its ready
actions), the publisher keys trusted to sign them, and refreshing it from ``[catalog] url``.

The entries' sources are ``sources/<name>/`` (``connector.json`` + ``actions/*.md``);
``scripts/sign-catalog`` builds and signs ``catalog.json`` from them.
"""

from __future__ import annotations

from aileron_cli.catalog.entries import (
    Catalog,
    CatalogEntry,
    CatalogError,
    load_catalog,
    version_key,
)
from aileron_cli.catalog.keys import (
    BUILTIN_KEYS,
    CatalogKeyError,
    TrustedKeys,
    decode_public_key,
    load_keys,
    revoke_key,
    trust_key,
)
from aileron_cli.catalog.signing import EntryRefused, sign_entry, signed_bytes, verify_entry

__all__ = [
    "BUILTIN_KEYS",
    "Catalog",
    "CatalogEntry",
    "CatalogError",
    "CatalogKeyError",
    "EntryRefused",
    "TrustedKeys",
    "decode_public_key",
    "load_catalog",
    "load_keys",
    "revoke_key",
    "sign_entry",
    "signed_bytes",
    "trust_key",
    "verify_entry",
    "version_key",
]
