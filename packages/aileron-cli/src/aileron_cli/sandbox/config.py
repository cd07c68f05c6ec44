"""The sandbox's settings: ``[sandbox]`` in ``config.toml``.

::

    [sandbox]
    allow = ["github.com", "api.github.com:443", "*.npmjs.org"]

    expose = ["token/github/default"]

    [sandbox.pins]
    codex = "0.171.0"

    [sandbox.resolve]
    "api.github.test" = "127.0.0.1"

``allow`` is the egress allow-list every sandboxed session starts with (``aileron launch
--allow-host HOST`` adds to it for one session); the egress proxy denies everything else. An
entry is one of:

- ``host`` — that host on ports 443 and 80;
- ``host:port`` — that host on that port only;
- ``*.domain`` (or ``*.domain:port``) — every subdomain of ``domain``, not ``domain`` itself;
- an IP literal (``192.0.2.7``, ``[2001:db8::1]:8443``) — that address; the only way to reach
  a loopback, link-local or unspecified address, which a name never may.

``expose`` names the bindings every sandboxed session has brokered by its egress proxy
(``aileron launch --expose NAME`` adds to it; each must be exposed with ``aileron binding
expose``, ADR 0028). ``[sandbox.resolve]`` pins host names to addresses for the egress proxy: a
pinned name resolves to that IP literal only (loopback included: the user named it), e.g. a
local stand-in for a real service.

Host names are matched case-insensitively on their IDNA (ASCII) form. An unknown key, a value of
the wrong type or a malformed entry is a ``ConfigError`` naming the setting, the entry and the
file.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from aileron_cli.config_file import read_settings
from aileron_cli.sandbox.container import DEFAULT_MEMORY, DEFAULT_PIDS_LIMIT
from aileron_cli.sandbox.images import PINNABLE_AGENTS
from aileron_core.errors import ConfigError

__all__ = [
    "DEFAULT_PORTS",
    "AllowEntry",
    "SandboxConfig",
    "load_sandbox_config",
    "normalize_host",
    "parse_allow_entry",
    "parse_sandbox_config",
]

DEFAULT_PORTS = (443, 80)
"""The ports an entry without one allows: https and http."""

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_HINT = 'write "host", "host:port" or "*.domain", e.g. "github.com" or "api.github.com:443"'

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@attrs.frozen
class AllowEntry:
    """One allow-list entry: a host name, a ``*.`` domain or an IP literal, with a port or
    none (443 and 80)."""

    host: str
    """The IDNA form in lower case (the domain after ``*.`` for a wildcard), or an IP
    literal in its canonical form."""
    port: int | None = None
    wildcard: bool = False

    @property
    def address(self) -> IPAddress | None:
        """The IP address, when the entry is an IP literal."""
        return _ip(self.host)

    def allows_port(self, port: int) -> bool:
        return port in DEFAULT_PORTS if self.port is None else port == self.port

    def matches(self, host: str, port: int) -> bool:
        """Whether this entry allows ``host`` (as :func:`normalize_host` gives it) on ``port``."""
        if not self.allows_port(port):
            return False
        if self.wildcard:
            return host.endswith("." + self.host)
        return host == self.host

    def __str__(self) -> str:
        host = f"*.{self.host}" if self.wildcard else self.host
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        return host if self.port is None else f"{host}:{self.port}"


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@attrs.frozen
class SandboxConfig:
    """What ``[sandbox]`` sets."""

    allow: tuple[str, ...] = ()
    """The allow-list entries, each in the canonical form of :func:`parse_allow_entry`."""
    pids_limit: int = DEFAULT_PIDS_LIMIT
    """The most processes (and threads) the agent's container may hold (``--pids-limit``)."""
    memory: str = DEFAULT_MEMORY
    """The container's memory limit (``--memory``): a number of bytes with an optional unit
    ``b``, ``k``, ``m`` or ``g``."""
    pins: Mapping[str, str] = attrs.field(factory=dict)
    """``[sandbox.pins]``: the npm version (or dist-tag) each agent's image installs, e.g.
    ``codex = "0.171.0"``; an agent without a pin gets npm's latest."""
    expose: tuple[str, ...] = ()
    """Binding names brokered to every sandboxed session (``aileron binding expose``)."""
    resolve: Mapping[str, IPAddress] = attrs.field(factory=dict)
    """``[sandbox.resolve]``: normalized host name -> the only address the egress proxy
    resolves it to."""

    @property
    def allow_entries(self) -> tuple[AllowEntry, ...]:
        return tuple(parse_allow_entry(text) for text in self.allow)


def load_sandbox_config(config_path: Path) -> SandboxConfig:
    """The ``[sandbox]`` settings of ``config.toml`` at ``config_path`` (defaults if absent)."""
    settings = read_settings(config_path)
    if settings is None:
        return SandboxConfig()
    return parse_sandbox_config(settings, str(config_path))


_KNOWN = ("allow", "pids_limit", "memory", "pins", "expose", "resolve")
_MEMORY = re.compile(r"[1-9][0-9]*[bkmg]?")


def parse_sandbox_config(settings: Mapping[str, Any], source: str) -> SandboxConfig:
    """Read the ``[sandbox]`` table of parsed ``config.toml`` settings from ``source``."""
    table = settings.get("sandbox", {})
    if not isinstance(table, dict):
        raise ConfigError(f"`sandbox` in {source} must be a table")
    unknown = sorted(set(table) - set(_KNOWN))
    if unknown:
        raise ConfigError(
            f"[sandbox] in {source}: unknown setting {unknown[0]!r}",
            hint="known: " + ", ".join(_KNOWN),
        )
    fields: dict[str, Any] = {}
    if "allow" in table:
        fields["allow"] = _parse_allow(table["allow"], f"sandbox.allow in {source}")
    if "pids_limit" in table:
        fields["pids_limit"] = _parse_pids_limit(table["pids_limit"], source)
    if "memory" in table:
        fields["memory"] = _parse_memory(table["memory"], source)
    if "pins" in table:
        fields["pins"] = _parse_pins(table["pins"], source)
    if "expose" in table:
        fields["expose"] = _parse_expose(table["expose"], source)
    if "resolve" in table:
        fields["resolve"] = _parse_resolve(table["resolve"], source)
    return SandboxConfig(**fields)


def _parse_expose(value: object, source: str) -> tuple[str, ...]:
    # Imported here: aileron_core.actions costs a sandbox launch tens of ms (B11) when unused.
    from aileron_core.actions import BINDING_PATTERN

    binding = re.compile(BINDING_PATTERN)
    hint = 'e.g. expose = ["token/github/default"] (see `aileron binding list`)'
    if not isinstance(value, list):
        raise ConfigError(
            f"sandbox.expose in {source} must be a list of binding names, not {value!r}",
            hint=hint,
        )
    for item in value:
        if not isinstance(item, str) or not binding.fullmatch(item):
            raise ConfigError(
                f"sandbox.expose in {source}: {item!r} is not a binding name", hint=hint
            )
    return tuple(dict.fromkeys(value))


def _parse_resolve(value: object, source: str) -> dict[str, IPAddress]:
    hint = 'e.g. [sandbox.resolve] then "api.github.test" = "127.0.0.1"'
    if not isinstance(value, dict):
        raise ConfigError(f"sandbox.resolve in {source} must be a table, not {value!r}", hint=hint)
    pins: dict[str, IPAddress] = {}
    for name, address in value.items():
        where = f"sandbox.resolve in {source}"
        try:
            host = normalize_host(name)
        except ValueError as error:
            raise ConfigError(
                f"{where}: {name!r} is not a host name ({error})", hint=hint
            ) from None
        if _ip(host) is not None:
            raise ConfigError(f"{where}: {name!r} is an address, not a name", hint=hint)
        pinned = _ip(address.strip("[]")) if isinstance(address, str) else None
        if pinned is None:
            raise ConfigError(f"{where}: {name} = {address!r} is not an IP address", hint=hint)
        pins[host] = pinned
    return pins


def _parse_pids_limit(value: object, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"sandbox.pids_limit in {source} must be a whole number of at least 1, not {value!r}",
            hint=f"e.g. pids_limit = {DEFAULT_PIDS_LIMIT}",
        )
    return value


def _parse_memory(value: object, source: str) -> str:
    if not isinstance(value, str) or not _MEMORY.fullmatch(value.strip().lower()):
        raise ConfigError(
            f'sandbox.memory in {source} must be a size like "4g" or "512m", not {value!r}',
            hint=f'e.g. memory = "{DEFAULT_MEMORY}" (units b, k, m, g)',
        )
    return value.strip().lower()


# An npm version, range-free, or a dist-tag: safe inside the image's `sh -c` install command.
_PIN = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}")


def _parse_pins(value: object, source: str) -> dict[str, str]:
    known = ", ".join(sorted(PINNABLE_AGENTS))
    if not isinstance(value, dict):
        raise ConfigError(
            f"sandbox.pins in {source} must be a table, not {value!r}",
            hint='e.g. [sandbox.pins] then codex = "0.171.0"',
        )
    pins: dict[str, str] = {}
    for agent, version in value.items():
        if agent not in PINNABLE_AGENTS:
            raise ConfigError(
                f"sandbox.pins in {source}: {agent!r} cannot be pinned",
                hint=f"pin one of {known} (the agents installed from npm)",
            )
        if not isinstance(version, str) or not _PIN.fullmatch(version):
            raise ConfigError(
                f"sandbox.pins.{agent} in {source} must be an npm version like"
                f' "0.171.0", not {version!r}',
                hint="an exact version or a dist-tag: letters, digits, `.`, `+`, `_`, `-`",
            )
        pins[agent] = version
    return pins


def _parse_allow(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list of strings, not {value!r}", hint=_HINT)
    entries: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ConfigError(f"{where}: {item!r} is not a string", hint=_HINT)
        entries.append(str(parse_allow_entry(item, where)))
    return tuple(entries)


def parse_allow_entry(text: str, where: str = "allow entry") -> AllowEntry:
    """One allow-list entry from ``text``; ``ConfigError`` naming ``where`` and the entry."""

    def bad(problem: str) -> ConfigError:
        return ConfigError(f"{where}: {text!r} {problem}", hint=_HINT)

    raw = text.strip()
    if not raw:
        raise bad("is empty")
    if "/" in raw or "@" in raw or any(c.isspace() for c in raw):
        raise bad("is not a host (no scheme, path, user or spaces)")
    host, port = _split_port(raw, bad)
    address = _ip(host)
    if address is not None:
        return AllowEntry(str(address), port)
    wildcard = host.startswith("*.")
    if wildcard:
        host = host[2:]
    if "*" in host:
        raise bad("may use `*` only as a whole first label (`*.example.com`)")
    try:
        name = normalize_host(host)
    except ValueError as error:
        raise bad(f"is not a valid host name ({error})") from None
    if _ip(name) is not None:
        raise bad("puts `*.` before an IP address")
    return AllowEntry(name, port, wildcard)


def _split_port(raw: str, bad: Callable[[str], ConfigError]) -> tuple[str, int | None]:
    """``(host, port)`` of ``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6."""
    if raw.startswith("["):
        host, bracket, rest = raw[1:].partition("]")
        if not bracket or _ip(host) is None or (rest and not rest.startswith(":")):
            raise bad("is not a bracketed IPv6 address")
        return host, _port(rest[1:], bad) if rest else None
    if raw.count(":") > 1:  # a bare IPv6 literal
        if _ip(raw) is None:
            raise bad("is not an IP address")
        return raw, None
    host, colon, port = raw.partition(":")
    return host, _port(port, bad) if colon else None


def _port(text: str, bad: Callable[[str], ConfigError]) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise bad("has no valid port (1-65535)")
    return int(text)


def normalize_host(host: str) -> str:
    """``host`` as matched: an IP literal in canonical form, else the lower-case IDNA name
    without a trailing dot. ``ValueError`` for something that is neither."""
    address = _ip(host.removeprefix("[").removesuffix("]"))
    if address is not None:
        return str(address)
    name = host.rstrip(".") if host.endswith(".") and not host.endswith("..") else host
    try:
        ascii_name = name.encode("idna").decode("ascii").lower()
    except UnicodeError as error:
        raise ValueError(f"not a valid IDNA name: {error}") from None
    if not ascii_name or len(ascii_name) > 253:
        raise ValueError("empty or longer than 253 characters")
    for label in ascii_name.split("."):
        if not _LABEL.fullmatch(label):
            raise ValueError(f"bad label {label!r}")
    return ascii_name
