"""Authorizing an OAuth2 binding: the authorization code flow with PKCE through the daemon's
loopback callback (RFC 6749 §4.1, RFC 7636, RFC 8252), or the device flow (RFC 8628).

:meth:`OAuth2Flows.start` opens a flow for a binding name and the connector whose ``oauth2``
endpoints it uses. A code flow makes a PKCE verifier (``secrets.token_urlsafe(64)``), its S256
challenge and a ``state`` (``secrets.token_urlsafe(32)``), and answers the authorize URL, whose
``redirect_uri`` is the daemon's own ``/v1/oauth/callback`` on 127.0.0.1. The browser comes
back there; :meth:`OAuth2Flows.callback` accepts a ``state`` only while its flow lives
(:data:`FLOW_TTL_S`) and only once, exchanges the code with the verifier, and stores the
binding (the vault holds the token state, the binding's metadata ``source = oauth2`` and the
connector). A device flow asks the device authorization endpoint for a user code; each
:meth:`OAuth2Flows.status` call after the server's interval polls the token endpoint once
(the CLI polls, so nothing runs in the background).

Reauthorizing (``reauthorize=True``) runs the same flow for an existing binding with the
client id and secret the vault holds, then replaces its token state. Flows live in memory:
a restarted daemon forgets them (the user runs the command again).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Literal
from urllib.parse import urlencode

import attrs

from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.run.sources import SOURCE_KEY
from aileron_cli.daemon.run.sources.oauth2 import (
    OAuth2Source,
    TokenEndpoint,
    TokenRefused,
    TokenState,
    TokenUnreachable,
)
from aileron_cli.daemon.store.bindings import BindingStore, check_name
from aileron_cli.daemon.store.connectors import ConnectorStore
from aileron_cli.daemon.store.vault import VaultService
from aileron_core.audit import Actor
from aileron_core.connectors import OAuth2Endpoints
from aileron_core.vault import EntryNotFound, VaultLocked

__all__ = ["CALLBACK_PATH", "FLOW_TTL_S", "Flow", "OAuth2Flows"]

CALLBACK_PATH = "/v1/oauth/callback"
FLOW_TTL_S = 600.0
"""How long a flow waits for its browser (or its device user)."""
MAX_DEVICE_TTL_S = 1800.0
MAX_FLOWS = 64
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

Status = Literal["pending", "done", "failed"]


@attrs.define(kw_only=True)
class Flow:
    """One authorization under way."""

    flow_id: str
    binding: str
    connector: str
    client_id: str
    client_secret: str | None
    scopes: tuple[str, ...]
    endpoints: OAuth2Endpoints
    actor: Actor
    reauthorize: bool
    expires: float
    redirect_uri: str | None = None
    verifier: str | None = None
    authorize_url: str | None = None
    device_code: str | None = None
    user_code: str | None = None
    verification_uri: str | None = None
    interval: int = 5
    next_poll: float = 0.0
    status: Status = "pending"
    reason: str | None = None
    poll_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock)


def challenge_of(verifier: str) -> str:
    """The PKCE S256 challenge of ``verifier`` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OAuth2Flows:
    """The authorizations under way, by flow id and by ``state``."""

    def __init__(
        self,
        *,
        source: OAuth2Source,
        endpoint: TokenEndpoint,
        vault: VaultService,
        bindings: BindingStore,
        connectors: ConnectorStore,
        audit: AuditLog,
        base_url: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._endpoint = endpoint
        self._vault = vault
        self._bindings = bindings
        self._connectors = connectors
        self._audit = audit
        self._base_url = base_url.rstrip("/")
        self._clock = clock
        self._flows: dict[str, Flow] = {}
        self._states: dict[str, str] = {}

    @property
    def redirect_uri(self) -> str:
        """Where the authorization server sends the browser back: the daemon itself."""
        return self._base_url + CALLBACK_PATH

    async def start(
        self,
        *,
        name: str,
        connector: str,
        client_id: str,
        client_secret: str | None,
        scopes: tuple[str, ...] | None,
        device: bool,
        actor: Actor,
        reauthorize: bool = False,
    ) -> Flow:
        """Open a flow for binding ``name`` with ``connector``'s endpoints."""
        self._sweep()
        if self._vault.state() != "unlocked":
            raise VaultLocked("the vault is locked", hint="run `aileron vault unlock`")
        kind, service, _ = check_name(name)
        if not reauthorize:
            self._bindings.ensure_absent(name)
        spec = self._connectors.get(connector).spec
        endpoints = spec.credential.oauth2
        if endpoints is None:
            raise DaemonError(
                "invalid_request",
                f"connector {connector} does not use OAuth2 (its credential is"
                f" {spec.credential.kind!r})",
                hint=f"add a plain binding: `aileron binding add token/{service}/default`",
                details={"connector": connector},
            )
        if service != spec.credential.service:
            raise DaemonError(
                "invalid_binding_name",
                f"binding {name} is for service {service!r} but {connector} uses"
                f" {spec.credential.service!r}",
                hint=f"name it {kind}/{spec.credential.service}/<identity>",
                details={"connector": connector},
            )
        if len(self._flows) >= MAX_FLOWS:
            raise DaemonError(
                "rate_limited",
                f"{MAX_FLOWS} authorizations are already under way",
                hint="finish or wait out one of them (each lives 10 minutes)",
            )
        flow = Flow(
            flow_id="oaf_" + secrets.token_urlsafe(12),
            binding=name,
            connector=connector,
            client_id=client_id,
            client_secret=client_secret,
            scopes=endpoints.scopes if scopes is None else scopes,
            endpoints=endpoints,
            actor=actor,
            reauthorize=reauthorize,
            expires=self._clock() + FLOW_TTL_S,
        )
        if device:
            await self._start_device(flow)
        else:
            self._start_code(flow)
        self._flows[flow.flow_id] = flow
        return flow

    async def reauthorize(self, name: str, *, device: bool, actor: Actor) -> Flow:
        """Open a flow that replaces the token state of the OAuth2 binding ``name``."""
        binding = self._bindings.get(name)
        connector = binding.metadata.get("connector")
        if binding.metadata.get(SOURCE_KEY) != "oauth2" or connector is None:
            raise DaemonError(
                "invalid_request",
                f"binding {name} is not an OAuth2 binding",
                hint=f"revoke it and add it again: `aileron binding revoke {name}`",
                details={"binding": name},
            )
        try:
            state = TokenState.from_vault(await self._vault.get(name))
        except (ValueError, EntryNotFound):
            raise DaemonError(
                "binding_required",
                f"the vault holds no OAuth2 client for binding {name}",
                hint=f"revoke it and add it again: `aileron binding revoke {name}`",
                details={"binding": name},
            ) from None
        return await self.start(
            name=name,
            connector=connector,
            client_id=state.client_id,
            client_secret=state.client_secret,
            scopes=state.scopes or None,
            device=device,
            actor=actor,
            reauthorize=True,
        )

    def _start_code(self, flow: Flow) -> None:
        flow.verifier = secrets.token_urlsafe(64)
        state = secrets.token_urlsafe(32)
        flow.redirect_uri = self.redirect_uri
        query = {
            "response_type": "code",
            "client_id": flow.client_id,
            "redirect_uri": flow.redirect_uri,
            "state": state,
            "code_challenge": challenge_of(flow.verifier),
            "code_challenge_method": "S256",
        }
        if flow.scopes:
            query["scope"] = " ".join(flow.scopes)
        base = flow.endpoints.authorize_url
        flow.authorize_url = base + ("&" if "?" in base else "?") + urlencode(query)
        self._states[state] = flow.flow_id

    async def _start_device(self, flow: Flow) -> None:
        url = flow.endpoints.device_authorization_url
        if url is None:
            raise DaemonError(
                "invalid_request",
                f"connector {flow.connector} offers no device authorization endpoint",
                hint="authorize in a browser (without --device); --no-browser prints the URL",
                details={"connector": flow.connector},
            )
        form = {"client_id": flow.client_id}
        if flow.scopes:
            form["scope"] = " ".join(flow.scopes)
        try:
            answer = await self._endpoint.post(url, form, expect="device_code")
        except (TokenRefused, TokenUnreachable) as error:
            raise DaemonError(
                "upstream_error",
                f"the device authorization endpoint of {flow.connector} failed: {error}",
                hint="check the client id, then try again",
                details={"connector": flow.connector},
            ) from None
        user_code = answer.get("user_code")
        verification = answer.get("verification_uri") or answer.get("verification_url")
        if not isinstance(user_code, str) or not isinstance(verification, str):
            raise DaemonError(
                "upstream_bad_response",
                f"the device authorization endpoint of {flow.connector} answered no user code"
                " or verification URI",
                details={"connector": flow.connector},
            )
        flow.device_code = answer["device_code"]
        flow.user_code = user_code
        flow.verification_uri = verification
        flow.interval = _seconds(answer.get("interval"), 5, 1, 60)
        expires_in = _seconds(answer.get("expires_in"), int(FLOW_TTL_S), 1, int(MAX_DEVICE_TTL_S))
        flow.expires = self._clock() + expires_in
        flow.next_poll = self._clock() + flow.interval

    def _sweep(self) -> None:
        now = self._clock()
        for flow in list(self._flows.values()):
            if flow.expires + FLOW_TTL_S < now:  # done or failed: kept a while to be read
                self._flows.pop(flow.flow_id, None)
        for state, flow_id in list(self._states.items()):
            found = self._flows.get(flow_id)
            if found is None or found.status != "pending" or found.expires < now:
                self._states.pop(state, None)

    async def status(self, flow_id: str) -> Flow:
        """The flow (polled once at the token endpoint if it is a device flow due for it)."""
        flow = self._flows.get(flow_id)
        if flow is None:
            raise DaemonError(
                "not_found",
                f"no authorization {flow_id!r} is under way",
                hint="flows live 10 minutes and not across a daemon restart: start again",
            )
        if flow.status == "pending" and self._clock() > flow.expires:
            self._fail(flow, "expired")
        if flow.status == "pending" and flow.device_code is not None:
            async with flow.poll_lock:
                if flow.status == "pending" and self._clock() >= flow.next_poll:
                    await self._poll_device(flow)
        return flow

    async def _poll_device(self, flow: Flow) -> None:
        assert flow.device_code is not None
        form = {"grant_type": DEVICE_GRANT, "device_code": flow.device_code}
        flow.next_poll = self._clock() + flow.interval
        try:
            answer = await self._token(flow, form)
        except TokenRefused as refused:
            if refused.error == "authorization_pending":
                return
            if refused.error == "slow_down":
                flow.interval += 5
                flow.next_poll = self._clock() + flow.interval
                return
            self._fail(flow, refused.error)
            return
        except TokenUnreachable:
            return  # the next poll tries again, until the flow expires
        await self._store(flow, answer)

    async def callback(self, *, state: str, code: str | None, error: str | None) -> Flow:
        """The browser is back with ``code`` (or ``error``) for ``state``: finish its flow.
        ``DaemonError`` ``not_found`` for a state that is unknown, used or expired."""
        self._sweep()
        flow_id = self._states.pop(state, None)
        flow = self._flows.get(flow_id) if flow_id is not None else None
        if flow is None or flow.status != "pending":
            raise DaemonError(
                "not_found",
                "this authorization is unknown, finished or expired",
                hint="start again: `aileron binding add` (or `aileron binding reauthorize`)",
            )
        if error is not None or not code:
            self._fail(flow, error if error and error.isidentifier() else "no_code")
            return flow
        assert flow.verifier is not None and flow.redirect_uri is not None
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.verifier,
        }
        try:
            answer = await self._token(flow, form)
        except TokenRefused as refused:
            self._fail(flow, refused.error)
            return flow
        except TokenUnreachable:
            self._fail(flow, "token_endpoint_unreachable")
            return flow
        await self._store(flow, answer)
        return flow

    async def _token(self, flow: Flow, form: dict[str, str]) -> dict[str, object]:
        form["client_id"] = flow.client_id
        if flow.client_secret is not None:
            form["client_secret"] = flow.client_secret
        return await self._endpoint.post(flow.endpoints.token_url, form)

    def _fail(self, flow: Flow, reason: str) -> None:
        flow.status = "failed"
        flow.reason = reason
        flow.verifier = None
        flow.device_code = None

    async def _store(self, flow: Flow, answer: dict[str, object]) -> None:
        blank = TokenState(
            client_id=flow.client_id,
            client_secret=flow.client_secret,
            token_url=flow.endpoints.token_url,
            access_token="",
            scopes=flow.scopes,
        )
        state = blank.answered(answer, self._source.now())
        metadata = {SOURCE_KEY: "oauth2", "connector": flow.connector}
        name = flow.binding
        try:
            if flow.reauthorize:
                binding = self._bindings.get(name)
                await self._vault.put(
                    name, state.to_vault(), {"binding": "true", **binding.metadata}
                )
                self._source.forget(name)
                await self._audit.record("binding.reauthorized", flow.actor, binding=name)
            else:
                self._bindings.ensure_absent(name)
                await self._vault.put(name, state.to_vault(), {"binding": "true", **metadata})
                self._bindings.add(name, metadata)
                self._source.forget(name)
                await self._audit.record(
                    "binding.created", flow.actor, binding=name, source="oauth2"
                )
        except DaemonError as error:
            self._fail(flow, error.code)
            return
        except VaultLocked:
            self._fail(flow, "vault_locked")
            return
        flow.status = "done"
        flow.verifier = None
        flow.device_code = None


def _seconds(value: object, default: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        return default
    return max(low, min(high, int(value)))
