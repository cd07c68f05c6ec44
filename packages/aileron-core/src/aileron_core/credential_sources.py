"""What the vault holds for a binding whose secret comes from a source (issue #22).

The CLI writes these (``aileron binding add NAME --github-app …`` / ``--from-command …``) as
the binding's vault value, JSON; the daemon's sources (``aileron_cli.daemon.run.sources``) read
them back. One parser for both, so a value the CLI accepts is one the daemon can use.

- :class:`GitHubAppConfig` — ``{"app_id", "installation_id", "private_key" (PEM),
  "api_url"}``: the daemon mints installation tokens with the App's private key.
- :class:`CommandConfig` — ``{"argv": [...], "ttl_s": N}``: the daemon runs the command (no
  shell) and uses its output as the secret for ``ttl_s`` seconds.

A malformed value is :class:`SourceConfigError`, whose message never quotes the value (it may
hold a private key).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from aileron_core.errors import AileronError
from aileron_core.network import is_loopback_host

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = [
    "DEFAULT_GITHUB_API",
    "DEFAULT_TTL_S",
    "MAX_TTL_S",
    "CommandConfig",
    "GitHubAppConfig",
    "SourceConfigError",
    "check_api_url",
]

DEFAULT_GITHUB_API = "https://api.github.com"
DEFAULT_TTL_S = 300
MAX_TTL_S = 24 * 3600


class SourceConfigError(AileronError):
    """A source binding's stored value cannot be used (the value itself is never quoted)."""

    code = "invalid_source_config"


def _object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise SourceConfigError(f"the stored {what} settings are not JSON") from None
    if not isinstance(value, dict):
        raise SourceConfigError(f"the stored {what} settings are not a JSON object")
    return value


def _id(value: object, field: str) -> str:
    """A numeric GitHub id, given as a number or digits."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.isascii() or not text.isdigit() or len(text) > 20:
        raise SourceConfigError(f"{field} must be a number (GitHub shows it on the App's page)")
    return text


def check_api_url(url: str) -> str:
    """``url`` without a trailing slash: https, or http to this machine only."""
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and is_loopback_host(parts.hostname or "")
    )
    if not secure or not parts.hostname or parts.query or parts.fragment or parts.username:
        raise SourceConfigError(
            "the GitHub API URL must be https://HOST[/PATH] (http only to localhost)"
        )
    return url.rstrip("/")


@attrs.frozen
class GitHubAppConfig:
    """A GitHub App installation: who mints (the App), for what (the installation)."""

    app_id: str
    installation_id: str
    private_key: str = attrs.field(repr=False)
    api_url: str = DEFAULT_GITHUB_API

    @classmethod
    def parse(cls, raw: bytes) -> GitHubAppConfig:
        """The settings in the vault value ``raw``; :class:`SourceConfigError` if malformed."""
        value = _object(raw, "GitHub App")
        key = value.get("private_key")
        if not isinstance(key, str) or "PRIVATE KEY-----" not in key:
            raise SourceConfigError("private_key must be the App's private key in PEM")
        api_url = value.get("api_url", DEFAULT_GITHUB_API)
        if not isinstance(api_url, str):
            raise SourceConfigError("api_url must be a string")
        return cls(
            app_id=_id(value.get("app_id"), "app_id"),
            installation_id=_id(value.get("installation_id"), "installation_id"),
            private_key=key,
            api_url=check_api_url(api_url),
        )

    def signing_key(self) -> RSAPrivateKey:
        """The private key, loaded; :class:`SourceConfigError` unless it is an unencrypted RSA
        key in PEM (GitHub App keys are)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        try:
            key = serialization.load_pem_private_key(self.private_key.encode(), password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SourceConfigError(
                "the private key is not an unencrypted RSA key in PEM (GitHub App keys are)"
            )
        return key

    def dumps(self) -> str:
        """The vault value."""
        return json.dumps(attrs.asdict(self), sort_keys=True)


@attrs.frozen
class CommandConfig:
    """A command whose standard output is the secret, reused for ``ttl_s`` seconds."""

    argv: tuple[str, ...]
    ttl_s: int = DEFAULT_TTL_S

    @classmethod
    def parse(cls, raw: bytes) -> CommandConfig:
        """The settings in the vault value ``raw``; :class:`SourceConfigError` if malformed."""
        value = _object(raw, "command")
        argv = value.get("argv")
        if (
            not isinstance(argv, list)
            or not argv
            or not all(isinstance(a, str) and "\0" not in a for a in argv)
            or not argv[0]
        ):
            raise SourceConfigError("argv must be a non-empty list of strings")
        ttl = value.get("ttl_s", DEFAULT_TTL_S)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= MAX_TTL_S:
            raise SourceConfigError(f"ttl_s must be a whole number of seconds, 0 to {MAX_TTL_S}")
        return cls(argv=tuple(argv), ttl_s=ttl)

    def dumps(self) -> str:
        """The vault value."""
        return json.dumps({"argv": list(self.argv), "ttl_s": self.ttl_s}, sort_keys=True)
