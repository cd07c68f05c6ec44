"""Where a launched agent sends its LLM traffic: the daemon's gateway (SPEC §10).

This is the one place that spells the gateway's URLs and decides which gateway provider an
agent's traffic of each kind of API goes to; adjust them here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import attrs

from aileron_cli.launch.errors import ProviderUnusable, UnknownProvider

Kind = Literal["openai", "anthropic"]
"""The kind of API a provider speaks (OpenAI's or Anthropic's): an agent's SDK speaks one."""
KINDS: tuple[Kind, ...] = ("openai", "anthropic")

# The path under the gateway provider's root that each kind's SDK expects as its base URL:
# OpenAI clients add ``/responses`` (etc.) to a base that already ends in ``/v1``; Anthropic
# clients add ``/v1/messages`` themselves.
_BASE_SUFFIX: dict[Kind, str] = {"openai": "/v1", "anthropic": ""}

# Where an agent that keeps its own credential in ``Authorization``/``x-api-key`` presents its
# session token to the gateway (``aileron_cli.daemon.gateway.auth.SESSION_HEADER``; not imported
# from there because that module pulls in the web stack).
SESSION_TOKEN_HEADER = "X-Aileron-Session-Token"  # noqa: S105 (a header name)


def llm_root_url(api_url: str, name: str) -> str:
    """The root of the gateway provider ``name`` behind the daemon at ``api_url`` (…/v1): where
    the provider's own API paths (``v1/messages``, ``v1/responses`` …) are appended (clients
    that take a host)."""
    return f"{api_url.rstrip('/')}/gateway/{name}"


def llm_base_url(api_url: str, kind: Kind, name: str | None = None) -> str:
    """The base URL a ``kind`` SDK is given for the gateway provider ``name`` (default: the
    built-in provider of that kind) behind the daemon at ``api_url`` (…/v1)."""
    return llm_root_url(api_url, name or kind) + _BASE_SUFFIX[kind]


@attrs.frozen
class Route:
    """One gateway provider an agent's traffic goes to, and the binding holding its key."""

    name: str
    binding: str

    @classmethod
    def builtin(cls, kind: Kind) -> Route:
        return cls(kind, f"api_key/{kind}/default")


@attrs.frozen
class Routes:
    """Per kind, the gateway provider a launched agent's traffic of that kind goes to, with the
    session token as the agent's key: only kinds whose provider's key Aileron holds. A kind
    not routed keeps the agent's own key (and, where the agent is pointed at the gateway
    anyway, the built-in provider's URL)."""

    routes: Mapping[Kind, Route] = attrs.field(factory=dict)

    @classmethod
    def builtin(cls, kinds: Iterable[Kind] = ()) -> Routes:
        """The built-in provider of each of ``kinds``."""
        chosen = frozenset(kinds)
        return cls({kind: Route.builtin(kind) for kind in KINDS if kind in chosen})

    def via(self, kind: Kind, route: Route) -> Routes:
        """These routes with ``kind``'s traffic going to ``route`` instead."""
        return Routes({**self.routes, kind: route})

    def __contains__(self, kind: object) -> bool:
        return kind in self.routes

    def __iter__(self) -> Iterator[Kind]:
        return (kind for kind in KINDS if kind in self.routes)

    def __bool__(self) -> bool:
        return bool(self.routes)

    def name(self, kind: Kind) -> str:
        """The gateway provider ``kind``'s traffic goes to (the built-in when not routed)."""
        route = self.routes.get(kind)
        return route.name if route is not None else kind

    def base_url(self, api_url: str, kind: Kind) -> str:
        """The base URL a ``kind`` SDK is given (:func:`llm_base_url`)."""
        return llm_base_url(api_url, kind, self.name(kind))

    def root_url(self, api_url: str, kind: Kind) -> str:
        """The root of ``kind``'s gateway provider (:func:`llm_root_url`)."""
        return llm_root_url(api_url, self.name(kind))


def named_route(
    agent: str, speaks: Iterable[Kind], providers: Iterable[Mapping[str, Any]], name: str
) -> tuple[Kind, Route]:
    """The kind and route of the gateway provider ``name``, among the daemon's ``providers``
    (``GET /v1/providers``), for an agent that ``speaks`` these kinds: it must exist
    (:class:`UnknownProvider`), speak a kind the agent speaks and have its key bound
    (:class:`ProviderUnusable`)."""
    by_name = {str(entry["name"]): entry for entry in providers}
    entry = by_name.get(name)
    if entry is None:
        known = ", ".join(sorted(by_name)) or "none"
        raise UnknownProvider(
            f"no gateway provider named {name!r}",
            hint=f"the daemon's providers are: {known} (add one as [gateway.providers.{name}]"
            " in config.toml)",
        )
    kind, binding = entry.get("kind"), str(entry.get("binding"))
    kinds = tuple(speaks)
    if kind not in kinds:
        speakable = " or ".join(kinds)
        raise ProviderUnusable(
            f"{agent} cannot use provider {name!r}: it speaks the {kind} API and {agent}"
            f" speaks {speakable}",
            hint=f"choose a provider of kind {speakable}",
        )
    if not entry.get("bound"):
        raise ProviderUnusable(
            f"provider {name!r} has no key: binding {binding} does not exist",
            hint=f"store its key where only Aileron reads it: `aileron binding add {binding}`"
            " (reads the key from stdin)",
        )
    return kind, Route(name, binding)
