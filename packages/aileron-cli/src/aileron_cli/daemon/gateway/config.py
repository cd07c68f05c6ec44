"""The gateway's providers and where they live: ``[gateway.<provider>]`` in ``config.toml``.

Two providers are known. Each has a default base URL, the binding that holds its real key and
the header the key travels in::

    openai      https://api.openai.com      api_key/openai/default      Authorization: Bearer <key>
    anthropic   https://api.anthropic.com   api_key/anthropic/default   x-api-key: <key>

``config.toml`` may move a provider (tests and the demo point both at a local fake)::

    [gateway.openai]
    base_url = "http://127.0.0.1:8400"

A base URL must be ``https://host[:port][/prefix]``, or ``http://`` to a loopback host only (a
real key never crosses a network in clear text); no user info, query or fragment. Anything else
under ``[gateway]`` — an unknown provider, an unknown key, a value of the wrong type — is a
``ConfigError`` that names the setting and the file, so a typo is never silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from aileron_cli.config_file import read_settings
from aileron_core.connectors import is_loopback
from aileron_core.errors import ConfigError

KeyStyle = Literal["bearer", "x-api-key"]


@attrs.frozen
class Provider:
    """One LLM provider the gateway forwards to."""

    name: str
    base_url: str
    binding: str
    key_style: KeyStyle

    @property
    def key_header(self) -> str:
        """The (lower-case) header that carries this provider's key."""
        return "authorization" if self.key_style == "bearer" else "x-api-key"

    def key_value(self, key: str) -> str:
        """The header value that presents ``key`` to this provider."""
        return f"Bearer {key}" if self.key_style == "bearer" else key


DEFAULTS: dict[str, Provider] = {
    "openai": Provider("openai", "https://api.openai.com", "api_key/openai/default", "bearer"),
    "anthropic": Provider(
        "anthropic", "https://api.anthropic.com", "api_key/anthropic/default", "x-api-key"
    ),
}

SETTINGS = ("base_url",)


@attrs.frozen
class GatewayConfig:
    """The providers the gateway serves, by name."""

    providers: Mapping[str, Provider] = attrs.field(factory=lambda: dict(DEFAULTS))

    def provider(self, name: str) -> Provider:
        return self.providers[name]


def load_gateway_config(path: Path) -> GatewayConfig:
    """The gateway settings of ``config.toml`` at ``path`` (defaults when it does not exist)."""
    settings = read_settings(path)
    if settings is None:
        return GatewayConfig()
    return parse_gateway_config(settings, str(path))


def parse_gateway_config(settings: Mapping[str, Any], source: str) -> GatewayConfig:
    """Read the ``[gateway]`` table of parsed ``config.toml`` settings from ``source``."""
    table = settings.get("gateway", {})
    if not isinstance(table, dict):
        raise ConfigError(f"`gateway` in {source} must be a table of providers")
    providers = dict(DEFAULTS)
    for name, entry in table.items():
        if name not in DEFAULTS:
            known = ", ".join(sorted(DEFAULTS))
            raise ConfigError(
                f"[gateway.{name}] in {source}: unknown provider",
                hint=f"the gateway knows {known}",
            )
        if not isinstance(entry, dict):
            raise ConfigError(f"gateway.{name} in {source} must be a table")
        for key in entry:
            if key not in SETTINGS:
                raise ConfigError(
                    f"[gateway.{name}] in {source}: unknown setting {key!r}",
                    hint=f"settings are: {', '.join(SETTINGS)}",
                )
        base_url = entry.get("base_url", providers[name].base_url)
        where = f"gateway.{name}.base_url in {source}"
        providers[name] = attrs.evolve(providers[name], base_url=check_base_url(base_url, where))
    return GatewayConfig(providers)


def check_base_url(value: object, where: str) -> str:
    """``value`` as a base URL without a trailing slash, or ``ConfigError`` naming ``where``."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a non-empty string")
    hint = 'e.g. "https://api.openai.com" or "http://127.0.0.1:8400"'
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        raise ConfigError(f"{where} is not a URL: {error}", hint=hint) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where} must be an http(s) URL with a host, not {value!r}", hint=hint)
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"{where} must not contain user info",
            hint="keys belong in a binding: `aileron binding add api_key/<provider>/default`",
        )
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ConfigError(f"{where} must not have a query or a fragment", hint=hint)
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        raise ConfigError(f"{where} must not contain spaces or control characters", hint=hint)
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        raise ConfigError(
            f"{where} uses plain http to {parts.hostname}, which would send the real key in"
            " clear text",
            hint="use https, or http only to a loopback address (127.0.0.1, ::1, localhost)",
        )
    del port  # parsed only to reject a malformed port
    return value.rstrip("/")
