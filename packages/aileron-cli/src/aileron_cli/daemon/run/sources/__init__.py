"""Where a binding's secret comes from when the vault does not simply hold it (issue #22).

A binding whose ``metadata["source"]`` names a source gets its secret from that source at use
time: ``oauth2`` (an access token refreshed from the refresh token the vault holds),
``github_app`` (an installation token minted with the App's private key the vault holds),
``command`` (the output of a command run on the host, cached for a while). A binding without a
``source`` is the vault's plain secret, as before.

Every source is a :class:`CredentialSource`; the composition root
(:mod:`aileron_cli.daemon.daemon`) builds them and hands them to the
:class:`~aileron_cli.daemon.run.credentials.CredentialResolver`, which asks the binding's
source for the secret and, after the upstream answered 401 to it, tells the source to forget
it (the runner then tries once more with a fresh one).
"""

from __future__ import annotations

from typing import Protocol

from aileron_cli.daemon.store.bindings import Binding

__all__ = ["SOURCE_KEY", "CredentialSource"]

SOURCE_KEY = "source"
"""The binding metadata key that names a binding's source."""


class CredentialSource(Protocol):
    """A source of bindings' secrets that change over time."""

    name: str
    """The value of ``metadata["source"]`` this source serves."""

    async def secret(self, binding: Binding) -> bytes:
        """A secret of ``binding`` that is good now (refreshed, minted or re-read as needed);
        ``CredentialUnavailable`` (from :mod:`aileron_cli.daemon.run.credentials`) when none
        can be had, with a hint that names the command that fixes it."""
        ...

    def invalidate(self, binding: Binding) -> None:
        """The upstream refused ``binding``'s current secret (401): the next :meth:`secret`
        must not return it."""
        ...
