"""Where the daemon's upstream traffic goes and which certificates it trusts (ADR 0025).

``Network`` is the one value the HTTP engine (:mod:`aileron_core.http_engine`) consults for
both: it is read once at daemon start from the environment (and ``[network]`` in
``config.toml``, read by the daemon) and handed to every engine.

**Proxies.** The variables curl and the agents honour, the lower-case form winning over the
upper-case one, as with curl; an empty value is unset::

    https_proxy / HTTPS_PROXY   the proxy for https origins
    http_proxy  / HTTP_PROXY    the proxy for plain-http origins
    all_proxy   / ALL_PROXY     the proxy for either, when the one above is unset
    no_proxy    / NO_PROXY      origins reached directly (below)

A proxy is ``http://[user:password@]host[:port]`` (``host:port`` alone means ``http://``, the
port defaults to 80, as in httpx and requests). Every origin — https and plain http alike — is
reached through an HTTP ``CONNECT`` tunnel, so the proxy sees the
``CONNECT host:port`` line and then only the bytes of the exchange (ciphertext for https). A
request, with the credential the daemon injected, is never handed to the proxy as a proxy
request. The proxy's own credentials (``user:password@``) travel only as
``Proxy-Authorization`` on the ``CONNECT``, and never appear in an error message.

**Direct.** A loopback destination (``localhost``, 127.0.0.0/8, ``::1``) is always reached
directly: local services and a local enclave are never proxied. ``NO_PROXY``
is a comma-separated list of:

- ``*``: every origin is direct;
- a domain, with or without a leading ``.`` or ``*.``: that name and every name under it;
- an IP address or a CIDR network (``10.0.0.0/8``, ``fd00::/8``): a host written as an
  address inside it (names are never resolved to be compared);
- any of the above with ``:port``: only that port.

**Certificates.** With ``SSL_CERT_FILE`` and/or ``SSL_CERT_DIR`` set, they are the trusted
roots (as in OpenSSL and Python); otherwise the certifi bundle httpx uses. ``[network]
ca_bundle`` adds a PEM file of further roots (a company's TLS-inspecting gateway) on top of
either. Host names are always checked, TLS 1.2 at least.

A malformed proxy URL, a missing certificate file or a bundle without a certificate is a
``ConfigError`` naming the variable or setting, raised when the settings are read.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

import attrs
import certifi

from aileron_core.errors import ConfigError

__all__ = ["Network", "NoProxy", "Proxy", "is_loopback_host"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PROXY_VARIABLES = (
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
)
CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")
VARIABLES = PROXY_VARIABLES + CA_VARIABLES
"""Every environment variable ``Network.from_environ`` reads."""

_PROXY_HINT = 'a proxy is "http://host:port" or "http://user:password@host:port"'


@attrs.frozen
class Proxy:
    """An HTTP proxy that tunnels with ``CONNECT``."""

    host: str
    port: int
    authorization: bytes | None = attrs.field(default=None, repr=False)
    """The ``Proxy-Authorization`` value (``Basic ...``), from the URL's user info."""

    @property
    def display(self) -> str:
        """The proxy as named in messages: never its credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def parse(cls, value: str, where: str) -> Proxy:
        """The proxy ``value`` names, or ``ConfigError`` naming ``where`` (not the value, which
        may hold a password)."""
        text = value.strip()
        if "://" not in text:
            text = "http://" + text
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise ConfigError(f"{where} is not a proxy URL", hint=_PROXY_HINT) from None
        if parts.scheme.lower() != "http":
            raise ConfigError(
                f"{where} uses {parts.scheme}://; only http:// proxies (CONNECT) are supported",
                hint=_PROXY_HINT,
            )
        if not parts.hostname or (parts.path not in ("", "/")) or parts.query or parts.fragment:
            raise ConfigError(f"{where} must be a proxy's address", hint=_PROXY_HINT)
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = b"Basic " + base64.b64encode(pair.encode("utf-8"))
        return cls(parts.hostname, port or 80, authorization)


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a bare name or address) is this machine: the name ``localhost`` or a
    loopback address (127.0.0.0/8, ``::1``, ``::ffff:127.x.y.z``). Another name is never
    taken for loopback, whatever it looks like: only a resolver knows where it goes."""
    name = host.strip("[]").lower().removesuffix(".")
    if name == "localhost":
        return True
    address = _ip(name)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@attrs.frozen
class _Rule:
    """One ``NO_PROXY`` entry."""

    domain: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def matches(self, host: str, address: IPAddress | None, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return (
                address is not None
                and address.version == self.network.version
                and (address in self.network)
            )
        assert self.domain is not None
        return host == self.domain or host.endswith("." + self.domain)


def _rule(entry: str) -> _Rule | None:
    """``entry`` of ``NO_PROXY`` as a rule; ``None`` for one that can match nothing."""
    text = entry.strip().lower()
    port: int | None = None
    if text.startswith("["):  # [v6] or [v6]:port
        inside, _, rest = text[1:].partition("]")
        text = inside
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif text.count(":") == 1:
        name, _, digits = text.partition(":")
        if not digits.isdigit():
            return None
        text, port = name, int(digits)
    try:
        return _Rule(network=ipaddress.ip_network(text, strict=False), port=port)
    except ValueError:
        pass
    domain = text.removeprefix("*").removeprefix(".").removesuffix(".")
    return _Rule(domain=domain, port=port) if domain else None


@attrs.frozen
class NoProxy:
    """The origins ``NO_PROXY`` sends directly (see the module)."""

    everything: bool = False
    rules: tuple[_Rule, ...] = ()

    @classmethod
    def parse(cls, value: str) -> NoProxy:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        if "*" in entries:
            return cls(everything=True)
        return cls(rules=tuple(rule for entry in entries if (rule := _rule(entry)) is not None))

    def matches(self, host: str, port: int) -> bool:
        """Whether ``host:port`` is to be reached directly."""
        if self.everything:
            return True
        name = host.strip("[]").lower().removesuffix(".")
        address = _ip(name)
        return any(rule.matches(name, address, port) for rule in self.rules)


def _first(environ: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """The first of ``names`` set to something in ``environ``: ``(name, value)``."""
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None


def _proxy(environ: Mapping[str, str], scheme: str) -> Proxy | None:
    found = _first(environ, f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY")
    return None if found is None else Proxy.parse(found[1], f"the environment variable {found[0]}")


def _check_file(path: str, where: str) -> Path:
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise ConfigError(f"{where} names {path}, which is not a file")
    return resolved


def _load_extra(context: ssl.SSLContext, bundle: Path, where: str) -> None:
    try:
        text = bundle.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{where}: cannot read {bundle}: {error}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"{where}: {bundle} holds no PEM certificate")
    try:
        context.load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError) as error:
        raise ConfigError(f"{where}: {bundle} is not a valid PEM bundle: {error}") from None


@attrs.frozen
class Network:
    """Proxies and trusted certificates for upstream traffic (see the module)."""

    https_proxy: Proxy | None = None
    http_proxy: Proxy | None = None
    no_proxy: NoProxy = NoProxy()
    ca_file: Path | None = None
    ca_dir: Path | None = None
    ca_bundle: Path | None = None
    """Further roots trusted on top of the defaults (``[network] ca_bundle``)."""
    ca_bundle_source: str = attrs.field(default="[network] ca_bundle", eq=False)
    """Where ``ca_bundle`` was set, for messages."""

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        ca_bundle: Path | None = None,
        ca_bundle_source: str = "[network] ca_bundle",
    ) -> Network:
        """The settings ``environ`` (default: this process's) gives, plus ``ca_bundle``;
        ``ConfigError`` for a malformed one."""
        env = os.environ if environ is None else environ
        no_proxy = _first(env, "no_proxy", "NO_PROXY")
        ca_file = _first(env, "SSL_CERT_FILE")
        ca_dir = _first(env, "SSL_CERT_DIR")
        if ca_dir is not None and not Path(ca_dir[1]).expanduser().is_dir():
            raise ConfigError(f"SSL_CERT_DIR names {ca_dir[1]}, which is not a directory")
        network = cls(
            https_proxy=_proxy(env, "https"),
            http_proxy=_proxy(env, "http"),
            no_proxy=NoProxy.parse(no_proxy[1]) if no_proxy is not None else NoProxy(),
            ca_file=_check_file(ca_file[1], "SSL_CERT_FILE") if ca_file is not None else None,
            ca_dir=Path(ca_dir[1]).expanduser() if ca_dir is not None else None,
            ca_bundle=_check_file(str(ca_bundle), ca_bundle_source) if ca_bundle else None,
            ca_bundle_source=ca_bundle_source,
        )
        if network.ca_bundle is not None:  # read now: a bad bundle fails at start, not later
            _load_extra(
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), network.ca_bundle, ca_bundle_source
            )
        return network

    def proxy_for(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy to tunnel through to ``scheme://host:port``, or ``None`` for direct."""
        proxy = self.https_proxy if scheme == "https" else self.http_proxy
        if proxy is None or is_loopback_host(host) or self.no_proxy.matches(host, port):
            return None
        return proxy

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting the configured roots, checking host names, TLS 1.2+,
        ALPN ``http/1.1``."""
        if self.ca_file is not None or self.ca_dir is not None:
            context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file else None,
                capath=str(self.ca_dir) if self.ca_dir else None,
            )
        else:  # httpx's own default
            context = ssl.create_default_context(cafile=certifi.where())
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.ca_bundle is not None:
            _load_extra(context, self.ca_bundle, self.ca_bundle_source)
        context.set_alpn_protocols(["http/1.1"])
        return context
