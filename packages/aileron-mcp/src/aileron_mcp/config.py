"""The settings of ``aileron-mcp``, read from its environment.

``AILERON_URL``         the daemon: ``http://127.0.0.1:PORT`` or ``http://127.0.0.1:PORT/v1``
``AILERON_TOKEN``       a *session* token (``aileron launch`` or ``POST /v1/sessions`` mints it)
``AILERON_SESSION_ID``  the session the token belongs to
``AILERON_MCP_POLL_SECONDS``  optional: how often to look for added or removed actions while
                        connected (default 2; 0 turns the poll off)
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs

from aileron_core.discovery import API_PREFIX
from aileron_core.errors import ConfigError

REQUIRED = ("AILERON_URL", "AILERON_TOKEN", "AILERON_SESSION_ID")
POLL_VARIABLE = "AILERON_MCP_POLL_SECONDS"
DEFAULT_POLL_SECONDS = 2.0
# The daemon mints its master token as ``aim_…`` and session tokens as ``ais_…``. The master
# token never belongs in an agent's MCP server (SPEC §5.1), so it is refused before any call.
MASTER_TOKEN_PREFIX = "aim_"  # noqa: S105 (a prefix, not a credential)
WHERE_TOKENS_COME_FROM = "mint one with `aileron launch` or `POST /v1/sessions`"


@attrs.frozen
class Settings:
    """Where the daemon is and who this server speaks for."""

    api_url: str
    token: str = attrs.field(repr=False)
    session_id: str
    poll_seconds: float = DEFAULT_POLL_SECONDS


def api_url(url: str) -> str:
    """The daemon's API base, ending in ``/v1``, from a URL with or without it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"AILERON_URL must be an http(s) URL such as http://127.0.0.1:PORT, not {url!r}",
            hint="`aileron daemon status` prints the daemon's URL",
        )
    base = url.strip().rstrip("/")
    return base if base.endswith(API_PREFIX) else base + API_PREFIX


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Read and check the settings; a :class:`ConfigError` names everything that is wrong."""
    missing = [name for name in REQUIRED if not env.get(name, "").strip()]
    if missing:
        raise ConfigError(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set",
            hint=f"set AILERON_URL, AILERON_TOKEN (a session token) and AILERON_SESSION_ID;"
            f" {WHERE_TOKENS_COME_FROM}",
        )
    token = env["AILERON_TOKEN"].strip()
    if token.startswith(MASTER_TOKEN_PREFIX):
        raise ConfigError(
            "AILERON_TOKEN is the daemon's master token; aileron-mcp takes a session token",
            hint=WHERE_TOKENS_COME_FROM,
        )
    raw_poll = env.get(POLL_VARIABLE, "").strip()
    try:
        poll = float(raw_poll) if raw_poll else DEFAULT_POLL_SECONDS
    except ValueError:
        poll = -1.0
    if not poll >= 0:  # also refuses NaN
        raise ConfigError(
            f"{POLL_VARIABLE} must be a number of seconds (0 turns the poll off), not {raw_poll!r}"
        )
    return Settings(
        api_url=api_url(env["AILERON_URL"]),
        token=token,
        session_id=env["AILERON_SESSION_ID"].strip(),
        poll_seconds=poll,
    )
