"""The daemon's network settings: the environment's proxies and CA roots, plus ``[network]`` of
``config.toml`` (ADR 0025).

One setting lives in ``config.toml``, for a company whose TLS-inspecting gateway re-signs
traffic with its own root::

    [network]
    ca_bundle = "/etc/company/root-ca.pem"   # further roots, trusted on top of the defaults

A relative path is relative to the folder of ``config.toml``; ``~`` is expanded. Proxies come
from the environment only (``HTTPS_PROXY``, ``NO_PROXY``, ... — :mod:`aileron_core.network`),
which the CLI passes on to the daemon it spawns. An unknown key, a value of the wrong type, a
missing file or one without a PEM certificate is a ``ConfigError`` at daemon start naming the
setting and the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aileron_cli.config_file import read_settings
from aileron_core.errors import ConfigError
from aileron_core.network import Network

__all__ = ["load_network"]

SETTINGS = ("ca_bundle",)


def load_network(config_path: Path, environ: Mapping[str, str] | None = None) -> Network:
    """The network settings of ``environ`` (default: this process's) and of ``config.toml``
    at ``config_path``; ``ConfigError`` for a malformed one."""
    settings = read_settings(config_path) or {}
    table = settings.get("network", {})
    if not isinstance(table, dict):
        raise ConfigError(f"`network` in {config_path} must be a table")
    for key in table:
        if key not in SETTINGS:
            raise ConfigError(
                f"[network] in {config_path}: unknown setting {key!r}",
                hint=f"settings are: {', '.join(SETTINGS)}",
            )
    bundle = table.get("ca_bundle")
    where = f"network.ca_bundle in {config_path}"
    if bundle is not None and (not isinstance(bundle, str) or not bundle.strip()):
        raise ConfigError(f"{where} must be the path of a PEM file")
    path = None
    if bundle is not None:
        path = Path(bundle).expanduser()
        if not path.is_absolute():
            path = config_path.parent / path
    return Network.from_environ(environ, ca_bundle=path, ca_bundle_source=where)
