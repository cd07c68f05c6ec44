"""The gateway's providers, their policies and prices: ``[gateway.*]`` in ``config.toml``.

Two providers are built in. Each has a *kind* (the API it speaks: the header its key travels
in, the shape of its errors, where its answers report token usage), a default base URL and the
binding that holds its real key::

    openai      openai      https://api.openai.com      api_key/openai/default     Bearer <key>
    anthropic   anthropic   https://api.anthropic.com   api_key/anthropic/default  x-api-key

Any other provider that speaks one of the two APIs (a local server, a router, a deployment) is
configured by name; the built-ins take the same settings::

    [gateway.providers.local]
    kind = "openai"                      # or "anthropic"
    base_url = "http://127.0.0.1:8400"   # https, or http to a loopback host only
    binding = "api_key/local/default"    # the default: api_key/<name>/default
    models.allow = ["gpt-5*"]            # globs; absent: every model
    models.deny = ["*-preview"]          # a denied model is refused even when allowed

    [gateway.providers.local.agents.codex]
    models.allow = ["gpt-5-mini"]        # an agent's own rule narrows the provider's

    [gateway.providers.local.limits]
    requests_per_minute = 60             # per session (429 with Retry-After)
    session_tokens = 2_000_000           # per session, input + output
    session_cost = 5.0                   # per session, in the price table's currency
    daily_tokens = 10_000_000            # per provider and UTC day, every session
    daily_cost = 20.0

    [gateway.prices.local."gpt-5*"]      # per provider and model glob, per million tokens
    input = 1.25
    output = 10.0
    cached_input = 0.125                 # default: input's price

The older ``[gateway.openai] base_url = …`` still moves a built-in. A base URL must be
``https://host[:port][/prefix]``, or ``http://`` to a loopback host only (a real key never
crosses a network in clear text); no user info, query or fragment. Anything else — an unknown
setting, a value of the wrong type, a price for a provider that does not exist — is a
``ConfigError`` naming the setting and the file, so a typo is never silently ignored (a model
policy or a budget that silently did nothing would be worse than none).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from aileron_cli.config_file import read_settings
from aileron_cli.daemon.gateway.usage import Price
from aileron_core.connectors import is_loopback
from aileron_core.errors import ConfigError

Kind = Literal["openai", "anthropic"]
KINDS: tuple[Kind, ...] = ("openai", "anthropic")
KeyStyle = Literal["bearer", "x-api-key"]

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\Z")
"""A provider's name: also a path segment of its gateway URL (``/v1/gateway/<name>/…``)."""
AGENT = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}\Z")
BINDING = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){1,4}\Z")
MAX_GLOB = 200


@attrs.frozen
class ModelRule:
    """Which model names pass: any ``allow`` glob (every name when ``allow`` is ``None``) and
    no ``deny`` glob. Globs are ``fnmatch``'s, case-sensitive."""

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()

    def refuses(self, model: str) -> str | None:
        """Why ``model`` does not pass (``"deny"`` or ``"allow"``: the list that decided), or
        ``None`` when it does."""
        if any(fnmatch.fnmatchcase(model, glob) for glob in self.deny):
            return "deny"
        if self.allow is not None and not any(
            fnmatch.fnmatchcase(model, glob) for glob in self.allow
        ):
            return "allow"
        return None

    @property
    def restricts(self) -> bool:
        return self.allow is not None or bool(self.deny)


@attrs.frozen
class ModelPolicy:
    """A provider's model rule and its agents' own (each narrows the provider's)."""

    rule: ModelRule = ModelRule()
    agents: Mapping[str, ModelRule] = attrs.field(factory=dict)

    @property
    def restricts(self) -> bool:
        return self.rule.restricts or any(rule.restricts for rule in self.agents.values())

    def refuses(self, model: str, agent: str) -> str | None:
        """The setting that refuses ``model`` for ``agent`` (e.g. ``models.deny`` or
        ``agents.codex.models.allow``), or ``None`` when it passes."""
        which = self.rule.refuses(model)
        if which is not None:
            return f"models.{which}"
        rule = self.agents.get(agent)
        which = rule.refuses(model) if rule is not None else None
        return f"agents.{agent}.models.{which}" if which is not None else None


@attrs.frozen
class Limits:
    """A provider's rate limit and budgets (``None``: no limit)."""

    requests_per_minute: int | None = None
    session_tokens: int | None = None
    session_cost: float | None = None
    daily_tokens: int | None = None
    daily_cost: float | None = None

    @property
    def budgets(self) -> bool:
        """Whether any token or cost budget is set (usage must then be counted)."""
        return any(
            value is not None
            for value in (
                self.session_tokens,
                self.session_cost,
                self.daily_tokens,
                self.daily_cost,
            )
        )


LIMIT_TYPES: dict[str, type] = {
    "requests_per_minute": int,
    "session_tokens": int,
    "session_cost": float,
    "daily_tokens": int,
    "daily_cost": float,
}


@attrs.frozen
class Provider:
    """One LLM provider the gateway forwards to."""

    name: str
    base_url: str
    binding: str
    kind: Kind
    models: ModelPolicy = ModelPolicy()
    limits: Limits = Limits()

    @property
    def key_style(self) -> KeyStyle:
        return "bearer" if self.kind == "openai" else "x-api-key"

    @property
    def key_header(self) -> str:
        """The (lower-case) header that carries this provider's key."""
        return "authorization" if self.key_style == "bearer" else "x-api-key"

    def key_value(self, key: str) -> str:
        """The header value that presents ``key`` to this provider."""
        return f"Bearer {key}" if self.key_style == "bearer" else key


DEFAULTS: dict[str, Provider] = {
    "openai": Provider("openai", "https://api.openai.com", "api_key/openai/default", "openai"),
    "anthropic": Provider(
        "anthropic", "https://api.anthropic.com", "api_key/anthropic/default", "anthropic"
    ),
}

LEGACY_SETTINGS = ("base_url",)
PROVIDER_SETTINGS = ("kind", "base_url", "binding", "models", "agents", "limits")
PRICE_SETTINGS = ("input", "output", "cached_input")


@attrs.frozen
class GatewayConfig:
    """The providers the gateway serves, by name, and the price table."""

    providers: Mapping[str, Provider] = attrs.field(factory=lambda: dict(DEFAULTS))
    prices: Mapping[str, Mapping[str, Price]] = attrs.field(factory=dict)
    """Per provider: model glob → price (per million tokens)."""

    def provider(self, name: str) -> Provider:
        return self.providers[name]

    def price(self, provider: str, model: str | None) -> tuple[str, Price] | None:
        """The price of ``model`` at ``provider`` and the glob that set it: the model's own
        entry, else the longest glob that matches; ``None`` when none does."""
        table = self.prices.get(provider, {})
        if model is None or not table:
            return None
        if model in table:
            return model, table[model]
        matching = [glob for glob in table if fnmatch.fnmatchcase(model, glob)]
        if not matching:
            return None
        glob = max(matching, key=len)
        return glob, table[glob]


def load_gateway_config(path: Path) -> GatewayConfig:
    """The gateway settings of ``config.toml`` at ``path`` (defaults when it does not exist)."""
    settings = read_settings(path)
    if settings is None:
        return GatewayConfig()
    return parse_gateway_config(settings, str(path))


def parse_gateway_config(settings: Mapping[str, Any], source: str) -> GatewayConfig:
    """Read the ``[gateway]`` table of parsed ``config.toml`` settings from ``source``."""
    table = settings.get("gateway", {})
    if not isinstance(table, dict):
        raise ConfigError(f"`gateway` in {source} must be a table")
    providers = dict(DEFAULTS)
    moved: set[str] = set()
    for name, entry in table.items():
        if name in ("providers", "prices"):
            continue
        if name not in DEFAULTS:
            raise ConfigError(
                f"[gateway.{name}] in {source}: unknown provider",
                hint=f"configure a provider of your own as [gateway.providers.{name}] with a"
                " kind and a base_url",
            )
        _table(entry, f"gateway.{name}", source, LEGACY_SETTINGS)
        base_url = entry.get("base_url", providers[name].base_url)
        where = f"gateway.{name}.base_url in {source}"
        providers[name] = attrs.evolve(providers[name], base_url=check_base_url(base_url, where))
        moved.add(name)
    named = table.get("providers", {})
    if not isinstance(named, dict):
        raise ConfigError(f"gateway.providers in {source} must be a table of providers")
    for name, entry in named.items():
        providers[name] = _provider(name, entry, providers.get(name), moved, source)
    _check_shared_bindings(providers, source)
    prices = _prices(table.get("prices", {}), providers, source)
    return GatewayConfig(providers, prices)


def _check_shared_bindings(providers: Mapping[str, Provider], source: str) -> None:
    """Providers that use one binding must have one policy and one set of limits: the agent
    picks the provider by its URL, so it would pick the laxer one."""
    by_binding: dict[str, list[Provider]] = {}
    for provider in providers.values():
        by_binding.setdefault(provider.binding, []).append(provider)
    for binding, sharing in by_binding.items():
        first = sharing[0]
        for other in sharing[1:]:
            if (other.models, other.limits) != (first.models, first.limits):
                raise ConfigError(
                    f"gateway.providers.{first.name} and gateway.providers.{other.name} in"
                    f" {source} use the same binding {binding} with different models or"
                    " limits: an agent could reach that key through the laxer one",
                    hint=f"give one of them its own binding (e.g. api_key/{other.name}/default)"
                    " or the same models and limits",
                )


def _table(value: object, where: str, source: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """``value`` as a table with no key outside ``keys``, or ``ConfigError``."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} in {source} must be a table")
    for key in value:
        if key not in keys:
            raise ConfigError(
                f"[{where}] in {source}: unknown setting {key!r}",
                hint=f"settings are: {', '.join(keys)}",
            )
    return value


def _provider(
    name: str, entry: object, built_in: Provider | None, moved: set[str], source: str
) -> Provider:
    where = f"gateway.providers.{name}"
    if not NAME.match(name):
        raise ConfigError(
            f"[{where}] in {source}: a provider's name is 1-32 of a-z, 0-9, `_` and `-`,"
            " starting with a letter or digit"
        )
    entry = _table(entry, where, source, PROVIDER_SETTINGS)
    kind = entry.get("kind", built_in.kind if built_in else None)
    if kind not in KINDS:
        raise ConfigError(
            f'{where}.kind in {source} must be "openai" or "anthropic" (the API the provider'
            " speaks)" + ("" if "kind" in entry else "; it is required for a provider of your own")
        )
    if built_in is not None and kind != built_in.kind:
        raise ConfigError(f"{where}.kind in {source}: the built-in {name} is {built_in.kind}")
    if "base_url" in entry and name in moved:
        raise ConfigError(
            f"{where}.base_url in {source}: also set in [gateway.{name}]; keep one",
        )
    if built_in is None and "base_url" not in entry:
        raise ConfigError(f"{where}.base_url in {source} is required")
    base_url = check_base_url(
        entry.get("base_url", built_in.base_url if built_in else None),
        f"{where}.base_url in {source}",
    )
    binding = entry.get("binding", built_in.binding if built_in else f"api_key/{name}/default")
    if not isinstance(binding, str) or not BINDING.match(binding):
        raise ConfigError(
            f'{where}.binding in {source} must be a binding name like "api_key/{name}/default"'
        )
    rule = _rule(entry.get("models", {}), f"{where}.models", source)
    agents_table = entry.get("agents", {})
    if not isinstance(agents_table, dict):
        raise ConfigError(f"{where}.agents in {source} must be a table of agents")
    agents: dict[str, ModelRule] = {}
    for agent, agent_entry in agents_table.items():
        if not AGENT.match(agent):
            raise ConfigError(f"[{where}.agents.{agent}] in {source}: not an agent name")
        agent_entry = _table(agent_entry, f"{where}.agents.{agent}", source, ("models",))
        agents[agent] = _rule(
            agent_entry.get("models", {}), f"{where}.agents.{agent}.models", source
        )
    limits = _limits(entry.get("limits", {}), f"{where}.limits", source)
    return Provider(name, base_url, binding, kind, ModelPolicy(rule, agents), limits)


def _rule(value: object, where: str, source: str) -> ModelRule:
    table = _table(value, where, source, ("allow", "deny"))
    allow = _globs(table["allow"], f"{where}.allow", source) if "allow" in table else None
    deny = _globs(table.get("deny", []), f"{where}.deny", source)
    return ModelRule(allow, deny)


def _globs(value: object, where: str, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(glob, str) and 0 < len(glob) <= MAX_GLOB for glob in value
    ):
        raise ConfigError(
            f"{where} in {source} must be a list of model names or globs (1-{MAX_GLOB}"
            " characters each)",
            hint='e.g. ["gpt-5*", "claude-sonnet-4-5"]',
        )
    return tuple(value)


def _number(value: object, kind: type, where: str, source: str) -> int | float:
    ok = not isinstance(value, bool) and (
        isinstance(value, int) if kind is int else isinstance(value, int | float)
    )
    if not ok or not value > 0:  # type: ignore[operator]
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{where} in {source} must be {what} above 0, not {value!r}")
    return kind(value)  # type: ignore[no-any-return]


def _limits(value: object, where: str, source: str) -> Limits:
    table = _table(value, where, source, tuple(LIMIT_TYPES))
    found: dict[str, Any] = {
        key: _number(table[key], kind, f"{where}.{key}", source)
        for key, kind in LIMIT_TYPES.items()
        if key in table
    }
    return Limits(**found)


def _prices(
    value: object, providers: Mapping[str, Provider], source: str
) -> dict[str, dict[str, Price]]:
    if not isinstance(value, dict):
        raise ConfigError(f"gateway.prices in {source} must be a table of providers")
    prices: dict[str, dict[str, Price]] = {}
    for provider, table in value.items():
        where = f"gateway.prices.{provider}"
        if provider not in providers:
            raise ConfigError(
                f"[{where}] in {source}: no provider {provider!r}",
                hint=f"providers are: {', '.join(sorted(providers))}",
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{where} in {source} must be a table of model globs")
        prices[provider] = {}
        for glob, entry in table.items():
            at = f'{where}."{glob}"'
            if not 0 < len(glob) <= MAX_GLOB:
                raise ConfigError(f"{at} in {source}: a model glob is 1-{MAX_GLOB} characters")
            entry = _table(entry, at, source, PRICE_SETTINGS)
            for key in ("input", "output"):
                if key not in entry:
                    raise ConfigError(f"{at}.{key} in {source} is required (per million tokens)")
            numbers = {
                key: _price_number(entry[key], f"{at}.{key}", source)
                for key in PRICE_SETTINGS
                if key in entry
            }
            prices[provider][glob] = Price(**numbers)
    return prices


def _price_number(value: object, where: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where} in {source} must be a number, 0 or more (per million tokens)")
    return float(value)


def check_base_url(value: object, where: str) -> str:
    """``value`` as a base URL without a trailing slash, or ``ConfigError`` naming ``where``."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a non-empty string")
    hint = 'e.g. "https://api.openai.com" or "http://127.0.0.1:8400"'
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        raise ConfigError(f"{where} is not a URL: {error}", hint=hint) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where} must be an http(s) URL with a host, not {value!r}", hint=hint)
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"{where} must not contain user info",
            hint="keys belong in a binding: `aileron binding add api_key/<provider>/default`",
        )
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ConfigError(f"{where} must not have a query or a fragment", hint=hint)
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        raise ConfigError(f"{where} must not contain spaces or control characters", hint=hint)
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        raise ConfigError(
            f"{where} uses plain http to {parts.hostname}, which would send the real key in"
            " clear text",
            hint="use https, or http only to a loopback address (127.0.0.1, ::1, localhost)",
        )
    del port  # parsed only to reject a malformed port
    return value.rstrip("/")
