"""Who is calling the gateway, and which of the credentials it sent are its own.

An agent presents its **session token** where an SDK puts an API key: ``Authorization: Bearer
<token>`` (OpenAI style) or ``x-api-key: <token>`` (Anthropic style), either form for either
provider. An agent whose ``Authorization`` must carry a credential of its own (a subscription
login's OAuth bearer token) sends the session token in ``X-Aileron-Session-Token`` or
``x-api-key`` instead. The rule, value by value over those three headers:

- the master token → refused (403 ``forbidden``): it is never an LLM key;
- a live session token → the caller; the header that carried it is never forwarded;
- anything else in ``X-Aileron-Session-Token``, or any value shaped like an Aileron token
  (``ais_…``, ``aim_…``) → refused (401): a dead or foreign Aileron token is never sent on;
- anything else in ``Authorization`` (Bearer or another scheme) or ``x-api-key`` → the agent's
  own credential, forwarded when no binding replaces it.

No session token at all, or tokens of two different sessions, → 401. Every refusal names its
``reason`` for the audit log; no token ever appears in a message or a record.
"""

from __future__ import annotations

import attrs
from starlette.datastructures import Headers

from aileron_cli.daemon.access.tokens import Principal, TokenRegistry
from aileron_cli.daemon.errors import Refusal

SESSION_HEADER = "x-aileron-session-token"
CREDENTIAL_HEADERS = ("authorization", "x-api-key")
TOKEN_PREFIXES = ("ais_", "aim_")

KEY_HINT = (
    "use the session token as the API key (OPENAI_API_KEY / ANTHROPIC_API_KEY), or send it in"
    " X-Aileron-Session-Token"
)


class GatewayRefused(Refusal):
    """The gateway will not forward this request; ``reason`` goes into ``gateway.refused``."""


@attrs.frozen
class Caller:
    """The session behind a gateway request and what it sent."""

    principal: Principal
    token_headers: frozenset[str]
    """Headers that carried the session token: never forwarded."""
    own_credentials: frozenset[str]
    """Credential headers that carry something else: the agent's own, forwarded without a
    binding."""

    @property
    def session_id(self) -> str:
        assert self.principal.session_id is not None
        return self.principal.session_id


def _presented(headers: Headers) -> list[tuple[str, str]]:
    """Every (header, value) that might be a token, in a fixed order."""
    found: list[tuple[str, str]] = []
    for value in headers.getlist("authorization"):
        scheme, _, rest = value.partition(" ")
        if scheme.lower() == "bearer" and rest.strip():
            found.append(("authorization", rest.strip()))
        else:
            found.append(("authorization", ""))  # another scheme: the agent's own credential
    for name in ("x-api-key", SESSION_HEADER):
        found.extend((name, value.strip()) for value in headers.getlist(name))
    return found


def identify(headers: Headers, registry: TokenRegistry) -> Caller:
    """The calling session, or ``GatewayRefused`` (see the module docstring for the rule)."""
    sessions: dict[str, Principal] = {}
    token_headers: set[str] = set()
    own: set[str] = set()
    for name, value in _presented(headers):
        principal = registry.resolve(value) if value else None
        if principal is not None and principal.kind == "master":
            raise GatewayRefused(
                "forbidden",
                "the master token is not accepted as an LLM key",
                reason="master_token",
                hint="launch the agent with `aileron launch`, which gives it a session token",
            )
        if principal is not None:
            assert principal.session_id is not None
            sessions[principal.session_id] = principal
            token_headers.add(name)
        elif name == SESSION_HEADER or value.startswith(TOKEN_PREFIXES):
            raise GatewayRefused(
                "unauthorized",
                "unknown or ended session token",
                reason="unknown_token",
                hint="the session may have ended; start the agent again with `aileron launch`",
            )
        else:
            own.add(name)
    if not sessions:
        raise GatewayRefused(
            "unauthorized", "no session token in the request", reason="no_token", hint=KEY_HINT
        )
    if len(sessions) > 1:
        raise GatewayRefused(
            "unauthorized",
            "the request carries the tokens of two sessions",
            reason="conflicting_tokens",
            hint="send one session token",
        )
    (principal,) = sessions.values()
    return Caller(principal, frozenset(token_headers), frozenset(own - token_headers))
