"""Binding metadata in ``bindings.json``; the secret itself lives in the vault at the same path.

A binding's name is ``<kind>/<service>/<identity>`` (e.g. ``token/github/default``) and is also
its vault path. This file never holds a secret value.

A binding may carry an :class:`Exposure` (``aileron binding expose``, issue #19, ADR 0028): the
hosts a sandboxed session's egress proxy brokers it for, the variable the container gets a
per-session *sentinel* in, and how the real secret goes into a request.
"""

from __future__ import annotations

import builtins
import ipaddress
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import attrs

from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.files import writing
from aileron_cli.sandbox.config import normalize_host
from aileron_core.actions import BINDING_PATTERN
from aileron_core.convert import converter
from aileron_core.fileio import atomic_write

_NAME = re.compile(BINDING_PATTERN)

FORMS = ("replace", "header", "basic")
"""How a brokered secret enters a request: ``replace`` the sentinel where it stands in the
``Authorization`` header (also inside ``Basic`` credentials); ``header`` sets one header from a
template; ``basic`` sets ``Authorization: Basic`` from a ``user:password`` template."""
MAX_HOSTS = 16
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
RESERVED_VARIABLES = frozenset(
    {
        "HOME",
        "PATH",
        "TERM",
        "SHELL",
        "USER",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS",
        "NODE_OPTIONS",
        "GIT_SSL_CAINFO",
        "CURL_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_CUSTOM_HEADERS",
    }
)
"""Variables the launcher sets itself (compared upper-cased; ``AILERON_*`` and ``LD_*`` too)."""


@attrs.frozen
class Exposure:
    """Where and how a binding is brokered to sandboxed sessions that expose it."""

    hosts: tuple[str, ...]
    """Canonical ``name`` (port 443) or ``name:port``: exact names, never a wildcard or an IP."""
    variable: str
    """The container variable holding the session's sentinel (e.g. ``GH_TOKEN``)."""
    form: str = "replace"
    template: str | None = None
    """``header``: ``"Name: value with {}"``; ``basic``: ``"user:{}"``; ``None`` for
    ``replace``."""

    def host_ports(self) -> tuple[tuple[str, int], ...]:
        """``(name, port)`` of every host."""
        pairs = []
        for text in self.hosts:
            name, colon, port = text.partition(":")
            pairs.append((name, int(port) if colon else 443))
        return tuple(pairs)


def _invalid(message: str, hint: str) -> DaemonError:
    return DaemonError("invalid_exposure", message, hint=hint)


def _exposure_host(text: str) -> str:
    """``text`` as a canonical exposure host, or ``invalid_exposure``."""
    hint = 'name an exact host, e.g. "github.com" or "git.example.test:8443"'
    name, colon, port_text = text.strip().partition(":")
    if "*" in name:
        raise _invalid(f"exposure host {text!r} is a wildcard", hint)
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        raise _invalid(f"exposure host {text!r} is an IP address", hint)
    try:
        name = normalize_host(name)
    except ValueError as error:
        raise _invalid(f"exposure host {text!r} is not a host name ({error})", hint) from None
    if not colon:
        return name
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise _invalid(f"exposure host {text!r} has a bad port", hint)
    port = int(port_text)
    return name if port == 443 else f"{name}:{port}"


def _template(form: str, template: str) -> str:
    if "\r" in template or "\n" in template or template.count("{}") != 1:
        raise _invalid(
            f"the --{form} template must hold {{}} exactly once, on one line",
            'e.g. --header "Authorization: Bearer {}" or --basic "x-access-token:{}"',
        )
    if form == "header":
        name, colon, _ = template.partition(":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise _invalid(
                f'--header {template!r} is not "Name: value"',
                'e.g. --header "Authorization: Bearer {}"',
            )
    elif ":" not in template:
        raise _invalid(
            f'--basic {template!r} is not "user:password"', 'e.g. --basic "x-access-token:{}"'
        )
    return template


def parse_exposure(
    hosts: Sequence[str], variable: str, *, header: str | None = None, basic: str | None = None
) -> Exposure:
    """The exposure these arguments describe, or ``invalid_exposure`` saying what is wrong."""
    if not hosts:
        raise _invalid("an exposure needs at least one host", "add --host NAME")
    if len(hosts) > MAX_HOSTS:
        raise _invalid(f"at most {MAX_HOSTS} hosts per exposure", "expose fewer hosts")
    canonical = tuple(dict.fromkeys(_exposure_host(text) for text in hosts))
    upper = variable.upper()
    if not _VARIABLE.fullmatch(variable):
        raise _invalid(f"{variable!r} is not a variable name", "e.g. --as GH_TOKEN")
    if upper in RESERVED_VARIABLES or upper.startswith(("AILERON_", "LD_")):
        raise _invalid(f"{variable} is set by Aileron itself", "choose another name")
    if header is not None and basic is not None:
        raise _invalid("--header and --basic exclude each other", "choose one")
    if header is not None:
        return Exposure(canonical, variable, "header", _template("header", header))
    if basic is not None:
        return Exposure(canonical, variable, "basic", _template("basic", basic))
    return Exposure(canonical, variable)


@attrs.frozen
class Binding:
    name: str
    kind: str
    service: str
    identity: str
    created_at: datetime
    metadata: dict[str, str] = attrs.field(factory=dict)
    exposure: Exposure | None = None


def check_name(name: str) -> tuple[str, str, str]:
    if not _NAME.fullmatch(name):
        raise DaemonError(
            "invalid_binding_name",
            f"{name!r} is not a binding name",
            hint="use <kind>/<service>/<identity>, e.g. token/github/default",
        )
    kind, service, identity = name.split("/")
    return kind, service, identity


class BindingStore:
    """Binding metadata by name, rewritten atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._bindings: dict[str, Binding] = {}

    def load(self) -> None:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            raw = {}
        self._bindings = {
            name: converter.structure(value, Binding)
            for name, value in raw.get("bindings", {}).items()
        }

    def _save(self, bindings: dict[str, Binding]) -> None:
        """Write ``bindings`` to the file, then make them the store's."""
        body = {"bindings": {n: converter.unstructure(b) for n, b in sorted(bindings.items())}}
        with writing(self.path):
            atomic_write(self.path, json.dumps(body, indent=2).encode() + b"\n")
        self._bindings = bindings

    def ensure_absent(self, name: str) -> None:
        if name in self._bindings:
            raise DaemonError(
                "binding_exists",
                f"binding {name!r} already exists",
                hint=f"revoke it first with `aileron binding revoke {name}`",
            )

    def add(self, name: str, metadata: dict[str, str]) -> Binding:
        kind, service, identity = check_name(name)
        self.ensure_absent(name)
        binding = Binding(name, kind, service, identity, datetime.now(UTC), dict(metadata))
        self._save({**self._bindings, name: binding})
        return binding

    def get(self, name: str) -> Binding:
        try:
            return self._bindings[name]
        except KeyError:
            raise DaemonError(
                "binding_not_found",
                f"no binding {name!r}",
                hint=f"add it with `aileron binding add {name}`",
            ) from None

    def remove(self, name: str) -> Binding:
        binding = self.get(name)
        self._save({n: b for n, b in self._bindings.items() if n != name})
        return binding

    def set_exposure(self, name: str, exposure: Exposure | None) -> Binding:
        """Give ``name`` this exposure (``None`` removes it); the binding as it now is."""
        binding = attrs.evolve(self.get(name), exposure=exposure)
        self._save({**self._bindings, name: binding})
        return binding

    def find_default(self, service: str) -> builtins.list[Binding]:
        """Bindings named ``*/<service>/default``."""
        return [
            b for b in self._bindings.values() if b.service == service and b.identity == "default"
        ]

    def list(self) -> builtins.list[Binding]:
        return [self._bindings[name] for name in sorted(self._bindings)]
