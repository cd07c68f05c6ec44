"""The providers' real keys: the binding a provider names, and its key as a header value.

The key is read through the daemon's one credential resolver
(:class:`aileron_cli.daemon.run.credentials.CredentialResolver`, the same the runner uses: the
vault service's one cache, one set of errors); a key that cannot be had becomes a
:class:`~aileron_cli.daemon.gateway.auth.GatewayRefused` with the resolver's code, message and
reason, which the gateway audits and answers in the provider's error shape.
"""

from __future__ import annotations

from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.gateway.auth import GatewayRefused
from aileron_cli.daemon.gateway.config import Provider
from aileron_cli.daemon.run.credentials import CredentialResolver, CredentialUnavailable
from aileron_cli.daemon.store.bindings import Binding, BindingStore

__all__ = ["ProviderKeys"]


class ProviderKeys:
    """Each provider's binding and its key (refusals as :class:`GatewayRefused`)."""

    def __init__(self, bindings: BindingStore, credentials: CredentialResolver) -> None:
        self._bindings = bindings
        self._credentials = credentials

    def binding(self, provider: Provider) -> Binding | None:
        """The binding ``provider`` names, if it exists."""
        try:
            return self._bindings.get(provider.binding)
        except DaemonError:
            return None

    async def key(self, binding: Binding) -> str:
        """The key of ``binding``, ready to travel as a header value."""
        try:
            return await self._credentials.header_key(binding)
        except CredentialUnavailable as error:
            raise GatewayRefused(
                error.code,
                error.message,
                reason=error.reason,
                hint=error.hint,
                details=error.details,
            ) from None
