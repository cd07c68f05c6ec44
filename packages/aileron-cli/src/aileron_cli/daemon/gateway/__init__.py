"""The LLM gateway (SPEC §10): agents reach their LLM providers through the daemon.

The agent presents its session token as its API key; the daemon swaps in the real key from the
provider's binding (or passes the agent's own credential on), forwards the request to the
provider's base URL, relays the answer as it streams, and audits each request.

Modules: :mod:`.config` (providers, policies, limits and prices: ``[gateway.*]`` in
``config.toml``), :mod:`.auth` (who is calling, which credentials are its own), :mod:`.leaks`
(no Aileron token in what is forwarded, no path tricks), :mod:`.governance` (model policy,
rate limits and budgets), :mod:`.proxy` (forwarding and streaming), :mod:`.usage` (the tokens
an answer reports), :mod:`.report` (usage summed from the audit log), :mod:`.stream_end` (when
a relayed event stream has ended) and :mod:`.errors` (the gateway's own errors in the
provider's shape); ADRs 0008 and 0030. The local fake provider of the tests and benchmarks is
``fakes.provider`` under ``tests/``, outside the wheel.
The routes live in :mod:`aileron_cli.daemon.http.routes.gateway`.
"""

from __future__ import annotations

from aileron_cli.daemon.gateway.config import GatewayConfig, Provider, load_gateway_config

__all__ = ["GatewayConfig", "Provider", "load_gateway_config"]
