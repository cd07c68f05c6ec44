"""Refreshing the catalog from ``[catalog] url`` in ``config.toml``.

The URL serves a catalog document (``entries.FORMAT``) over https (http only to a loopback
host). The document is checked to be one and cached as ``~/.aileron/catalog/catalog.json``;
its entries are verified each time the catalog is read, exactly like the shipped ones — the
URL is a mirror, not a trust anchor.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from aileron_cli.catalog.entries import CACHE_FILE, CatalogError, parse_document
from aileron_cli.config_file import read_settings
from aileron_core.connectors import is_loopback
from aileron_core.fileio import atomic_write
from aileron_core.paths import ensure_private_dir

MAX_CATALOG_BYTES = 16 * 1024 * 1024


def configured_url(config: Path) -> str | None:
    """``[catalog] url`` of ``config.toml``, or ``None``."""
    settings = read_settings(config) or {}
    table = settings.get("catalog", {})
    url = table.get("url") if isinstance(table, dict) else None
    if url is not None and not isinstance(url, str):
        raise CatalogError(f"{config}: [catalog] url is not text")
    return url


def check_url(url: str) -> str:
    """``url`` if it is https, or http to a loopback host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host or parts.scheme == "http" and is_loopback(host):
        return url
    raise CatalogError(
        f"the catalog URL {url} is neither https nor http to a loopback host",
        hint="set [catalog] url in config.toml to an https URL",
    )


def refresh(url: str, directory: Path) -> int:
    """Fetch the catalog at ``url`` into ``directory``'s cache; returns its entry count."""
    import httpx

    check_url(url)
    try:
        with httpx.stream("GET", url, timeout=30.0, follow_redirects=False) as response:
            response.raise_for_status()
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_CATALOG_BYTES:
                    raise CatalogError(f"the catalog at {url} is larger than 16 MiB")
    except httpx.HTTPError as error:
        raise CatalogError(f"cannot fetch the catalog at {url}: {error}") from None
    count = len(parse_document(bytes(data), url))
    ensure_private_dir(directory)
    atomic_write(directory / CACHE_FILE, bytes(data), mode=0o600)
    return count
