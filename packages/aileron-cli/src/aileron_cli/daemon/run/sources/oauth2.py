"""OAuth2 bindings: an access token kept fresh from the refresh token the vault holds.

A binding with ``metadata["source"] = "oauth2"`` holds, in the vault under its name, the JSON
of a :class:`TokenState` (client id and secret, token URL, refresh and access tokens, when the
access token expires, scopes). :class:`OAuth2Source` hands out the access token until
:data:`REFRESH_MARGIN_S` before it expires, then refreshes it at the token URL (RFC 6749 §6),
one refresh at a time per binding, stores what the server answered (a rotated refresh token
included) and audits ``binding.refreshed`` — never a token. After the upstream answered 401 to
an access token (:meth:`OAuth2Source.invalidate`), that token is not handed out again.

A refresh the server refuses (``invalid_grant``: revoked, expired or already used) is
``412 binding_required`` with ``reason: refresh_failed`` and the command that fixes it,
``aileron binding reauthorize NAME``. The token endpoint is reached through the daemon's
network settings (proxies, ``[network] ca_bundle``); the client authenticates with
``client_secret`` in the form body when it has one (``client_secret_post``), as GitHub, Google,
Slack and Linear accept. How a binding is first authorized is
:mod:`aileron_cli.daemon.run.sources.oauth2_flows`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import attrs
import httpx

from aileron_cli.daemon.access.sessions import SERVICE
from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.run.credentials import CredentialUnavailable
from aileron_cli.daemon.run.sources.bounded import post_bounded
from aileron_cli.daemon.store.bindings import Binding
from aileron_cli.daemon.store.vault import VaultService
from aileron_core.convert import converter
from aileron_core.http_engine import HttpEngine
from aileron_core.network import Network
from aileron_core.vault import VaultLocked

__all__ = [
    "REFRESH_MARGIN_S",
    "OAuth2Source",
    "TokenEndpoint",
    "TokenRefused",
    "TokenState",
    "TokenUnreachable",
]

REFRESH_MARGIN_S = 60.0
"""An access token this close to its expiry is refreshed before use."""

TIMEOUT_S = 30.0
MAX_ANSWER_BYTES = 1 << 16
_ERROR_CODE = re.compile(r"[a-z0-9_.:-]{1,64}")


@attrs.frozen(kw_only=True)
class TokenState:
    """What the vault holds for an OAuth2 binding (as JSON)."""

    client_id: str
    token_url: str
    access_token: str
    expires_at: datetime | None = None
    """``None``: the server did not say; the token is used until the upstream refuses it."""
    refresh_token: str | None = None
    client_secret: str | None = None
    scopes: tuple[str, ...] = ()

    def to_vault(self) -> str:
        """The JSON text the vault keeps."""
        return json.dumps(converter.unstructure(self), separators=(",", ":"))

    @classmethod
    def from_vault(cls, value: bytes) -> TokenState:
        """The state from the vault's bytes (``ValueError`` if they are not one)."""
        try:
            return converter.structure(json.loads(value), cls)
        except Exception as error:  # cattrs raises its own groups; none holds a value
            raise ValueError("not an OAuth2 token state") from error

    def fresh(self, now: datetime) -> bool:
        """Whether the access token is good for at least :data:`REFRESH_MARGIN_S` more."""
        return self.expires_at is None or self.expires_at - now > timedelta(
            seconds=REFRESH_MARGIN_S
        )

    def answered(self, answer: Mapping[str, Any], now: datetime) -> TokenState:
        """This state after the token endpoint's successful ``answer``."""
        expires_in = answer.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float | str) and str(expires_in).isdigit():
            expires_at = now + timedelta(seconds=int(expires_in))
        scope = answer.get("scope")
        return attrs.evolve(
            self,
            access_token=answer["access_token"],
            expires_at=expires_at,
            refresh_token=answer.get("refresh_token") or self.refresh_token,
            scopes=tuple(scope.split()) if isinstance(scope, str) and scope else self.scopes,
        )


class TokenRefused(Exception):
    """The token endpoint refused the grant; ``error`` is its OAuth2 error code (RFC 6749
    §5.2), checked to be a plain code so that it may be shown and audited."""

    def __init__(self, error: str, status: int) -> None:
        super().__init__(f"the token endpoint refused the grant: {error} (HTTP {status})")
        self.error = error
        self.status = status


class TokenUnreachable(Exception):
    """The token endpoint could not be reached or answered something that is not a token."""


class TokenEndpoint:
    """POSTs forms to OAuth2 endpoints through the daemon's network settings."""

    def __init__(
        self,
        network: Network,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        timeout_s: float = TIMEOUT_S,
    ):
        self._network = network
        self._transport = transport
        self._timeout_s = timeout_s

    async def post(
        self, url: str, form: Mapping[str, str], *, expect: str = "access_token"
    ) -> dict[str, Any]:
        """The JSON object the endpoint answered with 2xx, holding the string ``expect``;
        :class:`TokenRefused` for an OAuth2 error answer, :class:`TokenUnreachable` for
        anything else. No value of ``form`` or of the answer is ever put in an exception."""
        transport = self._transport or HttpEngine(
            max_connections=2, max_idle=0, network=self._network
        )
        try:
            async with httpx.AsyncClient(
                transport=transport, timeout=self._timeout_s, trust_env=False
            ) as client:
                response, body = await post_bounded(
                    client,
                    url,
                    limit=MAX_ANSWER_BYTES,
                    deadline_s=self._timeout_s,
                    data=form,
                    headers={"Accept": "application/json", "Accept-Encoding": "identity"},
                )
        except httpx.HTTPError as error:
            raise TokenUnreachable(f"{type(error).__name__} from {_origin(url)}") from None
        if len(body) > MAX_ANSWER_BYTES:
            raise TokenUnreachable(f"{_origin(url)} answered more than {MAX_ANSWER_BYTES} bytes")
        answer = _document(body)
        if response.is_success and "error" not in answer:
            if isinstance(answer.get(expect), str) and answer[expect]:
                return answer
            raise TokenUnreachable(
                f"{_origin(url)} answered {response.status_code} without {expect}"
            )
        code = answer.get("error")
        if isinstance(code, str) and _ERROR_CODE.fullmatch(code):
            raise TokenRefused(code, response.status_code)
        raise TokenUnreachable(f"{_origin(url)} answered {response.status_code}")


def _document(body: bytes) -> dict[str, Any]:
    """The answer as a dict: JSON, or a form (GitHub without ``Accept``); ``{}`` otherwise."""
    try:
        found = json.loads(body)
    except ValueError:
        try:
            found = dict(parse_qsl(body.decode("utf-8"), strict_parsing=True))
        except ValueError:
            return {}
    return found if isinstance(found, dict) else {}


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii', 'replace')}"


def refresh_failed(name: str, why: str, error: str) -> CredentialUnavailable:
    """The refusal of a binding whose token cannot be refreshed: reauthorize it."""
    return CredentialUnavailable(
        "binding_required",
        f"binding {name} cannot get a new access token: {why}",
        reason="refresh_failed",
        hint=f"run `aileron binding reauthorize {name}`",
        details={"binding": name, "error": error},
    )


class OAuth2Source:
    """Access tokens of ``oauth2`` bindings, refreshed before they expire and after a 401."""

    name = "oauth2"

    def __init__(
        self,
        *,
        vault: VaultService,
        audit: AuditLog,
        endpoint: TokenEndpoint,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._vault = vault
        self._audit = audit
        self._endpoint = endpoint
        self._clock = clock
        self._states: dict[str, tuple[datetime, TokenState]] = {}
        self._refused: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def now(self) -> datetime:
        """The source's clock, as an aware UTC datetime."""
        return datetime.fromtimestamp(self._clock(), UTC)

    async def secret(self, binding: Binding) -> bytes:
        """The binding's access token, refreshed first when it is about to expire or the
        upstream refused it."""
        if self._vault.state() != "unlocked":
            self._states.clear()
            raise VaultLocked("the vault is locked", hint="run `aileron vault unlock`")
        state = await self._state(binding)
        if not self._needs_refresh(binding.name, state):
            return state.access_token.encode()
        async with self._locks.setdefault(binding.name, asyncio.Lock()):
            state = await self._state(binding)  # another request may have refreshed it
            if self._needs_refresh(binding.name, state):
                state = await self._refresh(binding, state)
            return state.access_token.encode()

    def invalidate(self, binding: Binding) -> None:
        """The upstream refused the current access token: refresh before the next use."""
        cached = self._states.get(binding.name)
        if cached is not None:
            self._refused[binding.name] = cached[1].access_token

    def forget(self, name: str) -> None:
        """The vault's state of ``name`` was replaced (reauthorized) or removed."""
        self._states.pop(name, None)
        self._refused.pop(name, None)

    def _needs_refresh(self, name: str, state: TokenState) -> bool:
        return self._refused.get(name) == state.access_token or not state.fresh(self.now())

    async def _state(self, binding: Binding) -> TokenState:
        cached = self._states.get(binding.name)
        if cached is not None and cached[0] == binding.created_at:
            return cached[1]
        try:
            state = TokenState.from_vault(await self._vault.get(binding.name))
        except ValueError:
            raise refresh_failed(
                binding.name, "the vault does not hold an OAuth2 token for it", "no_state"
            ) from None
        self._states[binding.name] = (binding.created_at, state)
        return state

    async def _refresh(self, binding: Binding, state: TokenState) -> TokenState:
        name = binding.name
        if state.refresh_token is None:
            raise refresh_failed(name, "the server gave it no refresh token", "no_refresh_token")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": state.refresh_token,
            "client_id": state.client_id,
        }
        if state.client_secret is not None:
            form["client_secret"] = state.client_secret
        if state.scopes:
            form["scope"] = " ".join(state.scopes)
        try:
            answer = await self._endpoint.post(state.token_url, form)
        except TokenRefused as refused:
            raise refresh_failed(
                name,
                f"the token endpoint refused its refresh token ({refused.error})",
                refused.error,
            ) from None
        except TokenUnreachable as error:
            raise CredentialUnavailable(
                "upstream_unreachable",
                f"binding {name} needs a new access token and its token endpoint failed: {error}",
                reason="token_endpoint_unreachable",
                hint="check the network (and `[network]` in config.toml), then try again",
                details={"binding": name},
            ) from None
        fresh = state.answered(answer, self.now())
        await self._vault.put(name, fresh.to_vault(), {"binding": "true", **binding.metadata})
        self._states[name] = (binding.created_at, fresh)
        self._refused.pop(name, None)
        await self._audit.record(
            "binding.refreshed",
            SERVICE,
            binding=name,
            expires_at=None if fresh.expires_at is None else fresh.expires_at.isoformat(),
            refresh_token_rotated=fresh.refresh_token != state.refresh_token,
        )
        return fresh
