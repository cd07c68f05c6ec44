"""The environment a host-launched agent starts with.

The agent inherits the user's environment (it runs as the user, in the user's shell context)
with two changes: whatever points at the daemon *as the CLI* is dropped — ``AILERON_API_URL``
and ``AILERON_TOKEN`` may carry the master token — and the session's own coordinates are set
for ``aileron-mcp`` and any Aileron-aware tool the agent runs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

URL_VAR = "AILERON_URL"
TOKEN_VAR = "AILERON_TOKEN"  # noqa: S105 (a variable name)
SESSION_VAR = "AILERON_SESSION_ID"
# The CLI's own way to reach a daemon (with the master token); never the agent's.
CLI_ONLY_VARS = ("AILERON_API_URL",)


def session_variables(api_url: str, session_id: str, session_token: str) -> dict[str, str]:
    """``AILERON_URL``, ``AILERON_TOKEN`` (the session token) and ``AILERON_SESSION_ID``."""
    return {URL_VAR: api_url, TOKEN_VAR: session_token, SESSION_VAR: session_id}


def agent_environment(
    inherited: Mapping[str, str],
    session: Mapping[str, str],
    *,
    secrets: Collection[str] = (),
) -> dict[str, str]:
    """``inherited`` without the CLI's daemon variables and without any variable whose value
    contains one of ``secrets`` (the master token), plus the ``session`` variables."""
    replaced = {*CLI_ONLY_VARS, *session}
    env = {
        name: value
        for name, value in inherited.items()
        if name not in replaced and not any(secret in value for secret in secrets if secret)
    }
    env.update(session)
    return env
