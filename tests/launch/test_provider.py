"""``aileron launch AGENT --provider NAME``: choosing the gateway provider, and each agent's
wiring (host and sandbox) sending that kind's traffic to ``/v1/gateway/NAME/…``."""

from __future__ import annotations

import argparse
import json
from typing import Any

import attrs
import pytest
from launch.test_wiring import API, TOKEN, context

from aileron_cli.cli.errors import UsageError
from aileron_cli.cli.launch import _take_own_flags
from aileron_cli.launch import AGENTS, LaunchContext
from aileron_cli.launch.agents import wire_claude, wire_codex, wire_goose, wire_opencode
from aileron_cli.launch.check import check_key, routed_providers
from aileron_cli.launch.errors import ProviderUnusable, UnknownProvider
from aileron_cli.launch.routing import Route, Routes, named_route
from aileron_cli.sandbox.launch import container_command, container_env

LOCAL = Route("local", "api_key/local/default")
CORP = Route("corp", "api_key/corp/default")
PROVIDERS: list[dict[str, Any]] = [
    {"name": "openai", "kind": "openai", "binding": "api_key/openai/default", "bound": True},
    {"name": "anthropic", "kind": "anthropic", "binding": "x", "bound": False},
    {"name": "local", "kind": "openai", "binding": "api_key/local/default", "bound": True},
    {"name": "corp", "kind": "anthropic", "binding": "api_key/corp/default", "bound": False},
]


def routed(kind: str, route: Route, *builtin: str) -> Routes:
    return Routes.builtin(builtin).via(kind, route)  # type: ignore[arg-type]


def test_agents_speak_the_kinds_of_the_issue() -> None:
    """codex speaks openai, claude anthropic; goose and opencode either."""
    assert {name: set(agent.speaks) for name, agent in AGENTS.items()} == {
        "claude": {"anthropic"},
        "codex": {"openai"},
        "goose": {"openai", "anthropic"},
        "opencode": {"openai", "anthropic"},
    }


def test_named_route_is_the_provider_of_its_kind() -> None:
    """A bound provider of a kind the agent speaks is the route of that kind."""
    assert named_route("codex", ("openai",), PROVIDERS, "local") == ("openai", LOCAL)
    assert named_route("goose", ("openai", "anthropic"), PROVIDERS, "openai") == (
        "openai",
        Route.builtin("openai"),
    )


def test_named_route_refuses_an_unknown_name_listing_the_known_ones() -> None:
    """An unknown name is UnknownProvider whose hint lists every provider, sorted."""
    with pytest.raises(UnknownProvider) as caught:
        named_route("codex", ("openai",), PROVIDERS, "nope")
    assert "no gateway provider named 'nope'" in str(caught.value)
    assert "anthropic, corp, local, openai" in str(caught.value)


def test_named_route_refuses_another_kind_before_a_missing_binding() -> None:
    """A provider of a kind the agent does not speak is refused (naming both kinds); an unbound
    one the agent could speak names its binding and `aileron binding add`."""
    with pytest.raises(ProviderUnusable) as caught:
        named_route("codex", ("openai",), PROVIDERS, "corp")
    assert "it speaks the anthropic API and codex speaks openai" in str(caught.value)
    with pytest.raises(ProviderUnusable) as caught:
        named_route("opencode", ("anthropic", "openai"), PROVIDERS, "corp")
    assert "binding api_key/corp/default does not exist" in str(caught.value)
    assert "`aileron binding add api_key/corp/default`" in str(caught.value)


def test_routes_name_the_built_in_unless_a_provider_replaces_it() -> None:
    """An unrouted kind's URL is the built-in's; a routed one's is the named provider's, with
    the kind's own base suffix (/v1 for OpenAI SDKs)."""
    routes = routed("openai", LOCAL, "anthropic")
    assert routes.base_url(API, "openai") == f"{API}/gateway/local/v1"
    assert routes.root_url(API, "openai") == f"{API}/gateway/local"
    assert routes.base_url(API, "anthropic") == f"{API}/gateway/anthropic"
    assert list(routes) == ["openai", "anthropic"]
    assert list(Routes()) == [] and Routes().base_url(API, "openai") == f"{API}/gateway/openai/v1"


def test_codex_with_a_named_provider_talks_to_its_gateway_url() -> None:
    """codex's gateway provider and OPENAI_BASE_URL point at /gateway/local/v1; its key is the
    session token, as for the built-in."""
    invocation = wire_codex(_with(routed("openai", LOCAL), "exec", "hi"))
    assert f'model_providers.aileron.base_url="{API}/gateway/local/v1"' in invocation.argv
    assert invocation.env["OPENAI_BASE_URL"] == f"{API}/gateway/local/v1"
    assert invocation.env["OPENAI_API_KEY"] == TOKEN


def test_claude_goose_and_opencode_with_a_named_provider() -> None:
    """claude's, goose's and opencode's traffic of the provider's kind goes to its gateway URL
    with the session token as key; the other kind is left as it was."""
    ctx = _with(routed("anthropic", CORP))
    claude = wire_claude(ctx).env
    assert claude["ANTHROPIC_BASE_URL"] == f"{API}/gateway/corp"
    assert claude["ANTHROPIC_AUTH_TOKEN"] == TOKEN
    goose = wire_goose(_with(routed("openai", LOCAL, "anthropic"))).env
    assert (goose["OPENAI_HOST"], goose["OPENAI_API_KEY"]) == (f"{API}/gateway/local", TOKEN)
    assert goose["ANTHROPIC_HOST"] == f"{API}/gateway/anthropic"
    config = json.loads(wire_opencode(ctx).env["OPENCODE_CONFIG_CONTENT"])
    assert config["provider"] == {
        "anthropic": {"options": {"baseURL": f"{API}/gateway/corp/v1", "apiKey": TOKEN}}
    }


def test_the_sandbox_sends_the_named_providers_kind_to_it() -> None:
    """In a container, codex's gateway provider and OPENAI_BASE_URL name /gateway/local/v1;
    the key variable is the session token."""
    from sandbox.test_container_spec import _plan

    routes = routed("openai", LOCAL)
    command = container_command(_plan("codex", ("exec", "hi")), API, routes)
    assert f'model_providers.aileron.base_url="{API}/gateway/local/v1"' in command
    env = container_env(
        api_url=API, session_id="S", token=TOKEN, image_env=(), routes=routes, term=None
    )
    assert env["OPENAI_BASE_URL"] == f"{API}/gateway/local/v1"
    assert env["OPENAI_API_KEY"] == TOKEN
    assert env["ANTHROPIC_BASE_URL"] == f"{API}/gateway/anthropic"
    assert "ANTHROPIC_API_KEY" not in env


def test_check_reports_the_named_providers_route_and_binding() -> None:
    """--check finds the named provider's URL in the invocation and its binding as the key."""
    routes = routed("openai", LOCAL)
    invocation = wire_codex(_with(routes))
    assert routed_providers(invocation, API, routes) == ("openai",)
    assert routed_providers(invocation, API, Routes.builtin({"openai"})) == ()
    key = check_key("codex", ("openai",), routes, {})
    assert (key.source, key.finding.detail) == ("binding", "binding api_key/local/default")


@pytest.mark.parametrize(
    ("words", "provider", "rest"),
    [
        (["--provider", "local", "--", "exec", "hi"], "local", ["exec", "hi"]),
        (["--provider=local", "exec"], "local", ["exec"]),
        (["--check", "--provider", "local"], "local", []),
        (["--", "--provider", "local"], None, ["--", "--provider", "local"]),
        (["exec", "--provider", "local"], None, ["exec", "--provider", "local"]),
    ],
)
def test_provider_after_the_agent_is_aileron_s_until_the_agent_s_arguments(
    words: list[str], provider: str | None, rest: list[str]
) -> None:
    """`--provider NAME` right after AGENT is Aileron's; after `--` or an agent argument it
    stays the agent's."""
    args = argparse.Namespace(agent_args=words, provider=None, check=False, json=False)
    _take_own_flags(args)
    assert (args.provider, args.agent_args) == (provider, rest)


def test_provider_without_a_value_is_a_usage_error() -> None:
    """`aileron launch codex --provider` (nothing after it) is a usage error."""
    args = argparse.Namespace(agent_args=["--provider"], provider=None, check=False, json=False)
    with pytest.raises(UsageError):
        _take_own_flags(args)


def _with(routes: Routes, *args: str) -> LaunchContext:
    return attrs.evolve(context(*args), routes=routes)
