"""``github_app``: GitHub App installation tokens, minted by the daemon (issue #22).

The vault holds the App's settings (:class:`aileron_core.credential_sources.GitHubAppConfig`:
app id, installation id, private key in PEM, API URL). To use the binding the daemon signs a
JSON Web Token with the private key (RS256: RSASSA-PKCS1-v1_5 with SHA-256; ``iat`` a minute in
the past against clock drift, ``exp`` nine minutes on, ``iss`` the App id), exchanges it at
``POST {api_url}/app/installations/{id}/access_tokens`` for an installation token (GitHub gives
it an hour), and injects that. The token is kept in memory and reused until five minutes
before its ``expires_at``; an upstream 401 drops it (:meth:`GitHubAppSource.invalidate`).

The private key never leaves the vault and this process: it signs here, is never sent, logged,
audited or put in an error. ``binding.minted`` records each token minted (binding, installation,
expiry; never the token). A failed exchange is ``binding_required`` naming GitHub's status.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from datetime import datetime

import attrs
import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from aileron_cli.__about__ import __version__
from aileron_cli.daemon.access.sessions import SERVICE
from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.run.sources.bounded import post_bounded
from aileron_cli.daemon.run.sources.stored import settings, unavailable
from aileron_cli.daemon.store.bindings import Binding
from aileron_cli.daemon.store.vault import VaultService
from aileron_core.credential_sources import GitHubAppConfig, SourceConfigError
from aileron_core.http_engine import HttpEngine
from aileron_core.network import Network

__all__ = ["REFRESH_BEFORE_S", "GitHubAppSource", "app_jwt"]

REFRESH_BEFORE_S = 300
"""A token is not used in its last five minutes (GitHub: refresh "shortly before" expiry)."""
JWT_BACKDATE_S = 60
JWT_LIFETIME_S = 540
MAX_ANSWER_BYTES = 64 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def app_jwt(app_id: str, key: rsa.RSAPrivateKey, now: float) -> str:
    """The App's JWT (RS256) good from a minute before ``now`` for nine minutes after it."""
    header = {"alg": "RS256", "typ": "JWT"}
    issued = int(now)
    claims = {
        "iat": issued - JWT_BACKDATE_S,
        "exp": issued + JWT_LIFETIME_S,
        "iss": int(app_id),
    }
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


@attrs.frozen
class _Minted:
    settings: bytes = attrs.field(repr=False)
    token: bytes = attrs.field(repr=False)
    good_until: float


class GitHubAppSource:
    """Installation tokens of ``github_app`` bindings, minted and cached per binding."""

    name = "github_app"

    def __init__(
        self,
        vault: VaultService,
        audit: AuditLog,
        *,
        network: Network | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 30.0,
    ) -> None:
        self._vault = vault
        self._audit = audit
        self._network = network
        self._transport = transport
        self._clock = clock
        self._timeout = httpx.Timeout(timeout_s)
        self._deadline_s = timeout_s
        self._minted: dict[str, _Minted] = {}
        self._keys: dict[str, tuple[bytes, rsa.RSAPrivateKey]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def secret(self, binding: Binding) -> bytes:
        """A token of ``binding``'s installation good for five more minutes at least."""
        raw = await settings(self._vault, binding)
        async with self._locks.setdefault(binding.name, asyncio.Lock()):
            minted = self._minted.get(binding.name)
            if minted is not None and minted.settings == raw and self._clock() < minted.good_until:
                return minted.token
            minted = await self._mint(binding, raw)
            self._minted[binding.name] = minted
            return minted.token

    def invalidate(self, binding: Binding) -> None:
        """GitHub refused the token: the next :meth:`secret` mints another."""
        self._minted.pop(binding.name, None)

    def _config(self, binding: Binding, raw: bytes) -> tuple[GitHubAppConfig, rsa.RSAPrivateKey]:
        try:
            config = GitHubAppConfig.parse(raw)
            kept = self._keys.get(binding.name)
            key = kept[1] if kept is not None and kept[0] == raw else config.signing_key()
        except SourceConfigError as error:
            raise unavailable(
                binding, "invalid_source_config", f"binding {binding.name}: {error.message}"
            ) from None
        self._keys[binding.name] = (raw, key)
        return config, key

    async def _mint(self, binding: Binding, raw: bytes) -> _Minted:
        config, key = self._config(binding, raw)
        now = self._clock()
        url = f"{config.api_url}/app/installations/{config.installation_id}/access_tokens"
        headers = {
            "Authorization": f"Bearer {app_jwt(config.app_id, key, now)}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": f"aileron/{__version__}",
        }
        transport = self._transport or HttpEngine(
            max_connections=1, max_idle=0, network=self._network
        )
        # trust_env off: the engine applies the daemon's proxies and CA roots.
        client = httpx.AsyncClient(
            transport=transport, timeout=self._timeout, trust_env=False, follow_redirects=False
        )
        try:
            answer, body = await post_bounded(
                client,
                url,
                limit=MAX_ANSWER_BYTES,
                deadline_s=self._deadline_s,
                headers=headers | {"Accept-Encoding": "identity"},
            )
        except httpx.HTTPError as error:
            raise unavailable(
                binding,
                "github_app_unreachable",
                f"binding {binding.name} could not reach {config.api_url} to mint an"
                f" installation token ({type(error).__name__})",
                hint="check the network and `aileron binding show` for its API URL",
            ) from None
        finally:
            if self._transport is None:
                await client.aclose()
        token, expires = _token(body) if answer.status_code == 201 else (None, None)
        if token is None or expires is None:
            raise unavailable(
                binding,
                "github_app_refused",
                f"GitHub answered {answer.status_code} to binding {binding.name}'s request"
                f" for an installation token of installation {config.installation_id}"
                f"{_message(body)}",
                hint="check the App id, the installation id and the App's private key, then"
                f" add the binding again: `aileron binding revoke {binding.name}`",
                status=answer.status_code,
            )
        await self._audit.record(
            "binding.minted",
            SERVICE,
            binding=binding.name,
            installation_id=config.installation_id,
            expires_at=expires.isoformat(),
        )
        return _Minted(raw, token, expires.timestamp() - REFRESH_BEFORE_S)


def _token(body: bytes) -> tuple[bytes | None, datetime | None]:
    try:
        answer = json.loads(body)
        token, expires_at = answer["token"], answer["expires_at"]
        expires = datetime.fromisoformat(expires_at)
    except (ValueError, KeyError, TypeError):
        return None, None
    if not isinstance(token, str) or not token or not token.isascii() or not token.isprintable():
        return None, None
    if expires.tzinfo is None or " " in token:
        return None, None
    return token.encode("ascii"), expires


def _message(body: bytes) -> str:
    """GitHub's own error message, short (``": Bad credentials"``), if it gave one."""
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(message, str) or not message.isprintable():
        return ""
    return f": {message[:200]}"
