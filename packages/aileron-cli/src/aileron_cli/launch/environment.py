"""The environment a host-launched agent starts with (ADR 0018).

The agent inherits the user's environment (it runs as the user, in the user's shell context)
with two changes: every Aileron variable is dropped — ``AILERON_VAULT_PASSPHRASE`` would open
the vault, ``AILERON_HOME`` says where it is, ``AILERON_API_URL``/``AILERON_TOKEN`` may carry the
master token — and the session's own coordinates are set for ``aileron-mcp`` and any
Aileron-aware tool the agent runs. A variable whose value contains the master token goes too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from aileron_cli.environment import without_aileron_variables

URL_VAR = "AILERON_URL"
TOKEN_VAR = "AILERON_TOKEN"  # noqa: S105 (a variable name)
SESSION_VAR = "AILERON_SESSION_ID"
SESSION_VARS = (URL_VAR, TOKEN_VAR, SESSION_VAR)
"""The only Aileron variables an agent (and the ``aileron-mcp`` it starts) gets."""


def session_variables(api_url: str, session_id: str, session_token: str) -> dict[str, str]:
    """``AILERON_URL``, ``AILERON_TOKEN`` (the session token) and ``AILERON_SESSION_ID``."""
    return {URL_VAR: api_url, TOKEN_VAR: session_token, SESSION_VAR: session_id}


def agent_environment(
    inherited: Mapping[str, str],
    session: Mapping[str, str],
    *,
    secrets: Collection[str] = (),
) -> dict[str, str]:
    """``inherited`` without any ``AILERON_*`` variable and without any variable whose value
    contains one of ``secrets`` (the master token), plus the ``session`` variables."""
    env = {
        name: value
        for name, value in without_aileron_variables(inherited).items()
        if not any(secret in value for secret in secrets if secret)
    }
    env.update(session)
    return env
