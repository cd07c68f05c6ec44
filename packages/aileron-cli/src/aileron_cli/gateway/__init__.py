"""The LLM gateway (SPEC §10): agents reach OpenAI and Anthropic through the daemon.

The agent presents its session token as its API key; the daemon swaps in the real key from the
provider's binding (or passes the agent's own credential on), forwards the request to the
provider's base URL, relays the answer as it streams, and audits each request.

Modules: :mod:`~aileron_cli.gateway.config` (providers and ``[gateway.*]`` in ``config.toml``),
:mod:`~aileron_cli.gateway.auth` (who is calling, which credentials are its own),
:mod:`~aileron_cli.gateway.proxy` (forwarding and streaming),
:mod:`~aileron_cli.gateway.stream_end` (when a relayed event stream has ended),
:mod:`~aileron_cli.gateway.errors` (the gateway's own errors in the provider's shape), and
:mod:`~aileron_cli.gateway.fake_provider` (a local fake for tests, benchmarks and the demo).
The routes live in :mod:`aileron_cli.daemon.routes.gateway`.
"""

from __future__ import annotations

from aileron_cli.gateway.config import GatewayConfig, Provider, load_gateway_config

__all__ = ["GatewayConfig", "Provider", "load_gateway_config"]
