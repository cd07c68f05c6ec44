"""Where a launched agent sends its LLM traffic: the daemon's gateway (SPEC §10).

This is the one place that spells the gateway's URLs; adjust them here.
"""

from __future__ import annotations

from typing import Literal

Provider = Literal["openai", "anthropic"]
PROVIDERS: tuple[Provider, ...] = ("openai", "anthropic")

# The path under the daemon's API base (``…/v1``) that each provider's SDK expects as its base
# URL: OpenAI clients add ``/responses`` (etc.) to a base that already ends in ``/v1``;
# Anthropic clients add ``/v1/messages`` themselves.
_GATEWAY_PATHS: dict[Provider, str] = {
    "openai": "gateway/openai/v1",
    "anthropic": "gateway/anthropic",
}

# Where an agent that keeps its own credential in ``Authorization``/``x-api-key`` presents its
# session token to the gateway (``aileron_cli.daemon.gateway.auth.SESSION_HEADER``; not imported
# from there because that module pulls in the web stack).
SESSION_TOKEN_HEADER = "X-Aileron-Session-Token"  # noqa: S105 (a header name)


def llm_base_url(api_url: str, provider: Provider) -> str:
    """The base URL of ``provider`` behind the gateway of the daemon at ``api_url`` (…/v1)."""
    return f"{api_url.rstrip('/')}/{_GATEWAY_PATHS[provider]}"


def llm_root_url(api_url: str, provider: Provider) -> str:
    """The root of ``provider`` behind the gateway: where the provider's own API paths
    (``v1/messages``, ``v1/responses`` …) are appended (clients that take a host)."""
    return f"{api_url.rstrip('/')}/gateway/{provider}"
