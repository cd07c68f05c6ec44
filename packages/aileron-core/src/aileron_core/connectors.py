"""Connector specs (``aileron.connector.v1``): the model, its strict parser and its digest.

A connector spec is a JSON document that says which HTTP operations a connector offers, where
they may go, and which credential they need (SPEC §7)::

    {"schema_version": "aileron.connector.v1",
     "connector": {"fqn": "github://owner/repo", "version": "1.0.0", "description": "…"},
     "credential": {"service": "github", "kind": "bearer"},
     "tools": [{"name": "issues", "description": "…", "operations": [
         {"name": "list", "summary": "…", "method": "GET", "path": "/repos/{owner}/{repo}/issues",
          "hosts": ["api.github.com"],
          "inputs": [{"name": "owner", "type": "string", "in": "path", "description": "…"}],
          "approval": "none", "idempotency": "idempotent", "scheme": "https"}]}]}

The parser is strict (it reads with ``aileron_core.strict``): an unknown key, a missing key, a
value of the wrong JSON type or a broken rule is a ``SpecError`` that names the place
(``$.tools[1].operations[0].hosts[0]``) and says what is wrong. The rules beyond plain types:

- **Names** (tool, operation, input, credential service) match ``NAME_PATTERN``: letters,
  digits, ``.``, ``-`` and ``_``, starting with a letter or digit, at most 64 characters; they
  are unique at their level (tools in a spec, operations in a tool, inputs in an operation).
- **FQN**: ``github://<owner>/<repo>`` or ``github://<owner>/<repo>/<sub>``, or
  ``local://<name>``. Each segment is lowercase: ``[a-z0-9][a-z0-9._-]*``, at most 100
  characters. Lowercase only, so one connector cannot hide behind another's case variant.
- **Versions** match ``VERSION_PATTERN`` (``1.0.0``, ``2024-06-01``, ``v2``…).
- **Credential**: ``kind`` is ``bearer`` (``Authorization: Bearer …``), ``basic``, ``header``,
  ``query`` or ``oauth2``; ``name`` (the header or query parameter that carries the secret) is
  required for ``header``/``query`` and must be absent (or null) for the others. ``oauth2`` is
  injected as ``bearer`` (the binding's current access token) and needs an ``oauth2`` object:
  ``{"authorize_url", "token_url", "device_authorization_url"?, "scopes"?: [str]}`` (each URL
  ``https``, or ``http`` to a loopback host; scopes are distinct, without spaces), which only
  ``oauth2`` may have. A spec without ``oauth2`` normalizes without the key, so its digest is
  what it was before the kind existed.
- **Path**: starts with ``/``; only URL path characters; no ``.``/``..`` segments, no query or
  fragment. ``{input}`` placeholders must each name a declared ``"in": "path"`` input, once, and
  every path input must appear. Path inputs are required scalars (not arrays or objects).
- **Inputs** default to ``required: true`` and ``description: ""``. Query inputs may not be
  objects. ``GET`` and ``HEAD`` operations take no body inputs.
- **Hosts**: a non-empty list of distinct ``host`` or ``host:port`` entries — a lowercase DNS
  name, an IPv4 literal or ``localhost``; no scheme, path, user info, wildcard or IPv6. The
  first host is where requests go; together they are the only hosts the executor may contact.
- **Scheme**: ``"https"`` (the default) or ``"http"``, and ``"http"`` only when every host of
  the operation is a loopback host (``localhost`` or an IPv4 literal in 127.0.0.0/8, never a
  DNS name that merely looks local): plain HTTP never leaves the machine. Local test and demo
  servers use it.
- **Approval**: ``"required"`` or ``"none"`` (the default).
- **Idempotency**: ``"idempotent"`` or ``"non_idempotent"``; the default follows the method's
  HTTP semantics (RFC 9110 §9.2.2): idempotent for GET, HEAD, PUT and DELETE, non-idempotent
  for POST and PATCH. Only an idempotent operation may be retried.

The normalized spec (every default filled in) is what ``spec_to_json`` returns and what
``spec_digest`` hashes, so two spellings of the same spec share one content address.

Errors::

    AileronError
    ├── SpecError          invalid_connector_spec   the spec breaks a rule; details {"source",
    │                                               "path", "problem"}
    └── UnknownOperation   unknown_operation        the spec has no such tool or operation;
                                                    details {"fqn", "tool", "operation"}
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NoReturn, cast, get_args
from urllib.parse import quote

import attrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from aileron_core.canonical import canonical_sha256
from aileron_core.convert import converter
from aileron_core.errors import AileronError
from aileron_core.strict import (
    CONTROL_CHARS,
    DuplicateKey,
    Location,
    StrictReader,
    format_location,
    no_constants,
    no_duplicate_keys,
    show,
)

SCHEMA_VERSION = "aileron.connector.v1"
MAX_SPEC_BYTES = 1 << 20
"""Largest spec the parser reads (1 MiB)."""

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
VERSION_PATTERN = r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}"
_FQN_SEGMENT = r"[a-z0-9][a-z0-9._-]{0,99}"
FQN_PATTERN = rf"github://{_FQN_SEGMENT}/{_FQN_SEGMENT}(?:/{_FQN_SEGMENT})?|local://{_FQN_SEGMENT}"

NAME_RULE = "use letters, digits, '.', '-' and '_', starting with a letter or digit (at most 64)"
VERSION_RULE = "use letters, digits, '.', '+', '-' and '_', starting with a letter or digit"
FQN_RULE = (
    "write github://<owner>/<repo>[/<sub>] or local://<name>, lowercase segments of letters,"
    " digits, '.', '-' and '_'"
)

InputType = Literal["string", "number", "integer", "boolean", "array", "object"]
InputLocation = Literal["path", "query", "body"]
CredentialKind = Literal["bearer", "header", "basic", "query", "oauth2"]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
ApprovalPolicy = Literal["required", "none"]
Idempotency = Literal["idempotent", "non_idempotent"]
Scheme = Literal["https", "http"]

INPUT_TYPES: tuple[str, ...] = get_args(InputType)
INPUT_LOCATIONS: tuple[str, ...] = get_args(InputLocation)
CREDENTIAL_KINDS: tuple[str, ...] = get_args(CredentialKind)
HTTP_METHODS: tuple[str, ...] = get_args(HttpMethod)
APPROVAL_POLICIES: tuple[str, ...] = get_args(ApprovalPolicy)
IDEMPOTENCIES: tuple[str, ...] = get_args(Idempotency)
SCHEMES: tuple[str, ...] = get_args(Scheme)

_NAME = re.compile(NAME_PATTERN)
_VERSION = re.compile(VERSION_PATTERN)
_FQN = re.compile(FQN_PATTERN)
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
_SCALAR_TYPES = frozenset({"string", "number", "integer", "boolean"})
# RFC 9110 token characters, for a credential header name.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
# Headers the HTTP client owns; a credential carried in one of them would break the request.
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
# RFC 3986 path characters (unreserved, sub-delims, ':', '@', '/' and '%' for pct-encoding).
_PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PORT = re.compile(r"[1-9][0-9]{0,4}")
_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,200}")  # RFC 6749 §3.3 scope-token


class SpecError(AileronError):
    """A connector spec is not valid JSON or breaks a rule of ``aileron.connector.v1``."""

    code = "invalid_connector_spec"


class UnknownOperation(AileronError):
    """A connector spec has no tool or operation of the requested name."""

    code = "unknown_operation"


# --- the model -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ConnectorInfo:
    """Who the connector is: its fully qualified name, version and description."""

    fqn: str
    version: str
    description: str


@attrs.frozen(kw_only=True)
class OAuth2Endpoints:
    """Where an ``oauth2`` credential is authorized and refreshed (RFC 6749, RFC 8628)."""

    authorize_url: str
    token_url: str
    device_authorization_url: str | None = None
    scopes: tuple[str, ...] = ()
    """The scopes asked for unless the binding names its own."""


@attrs.frozen(kw_only=True)
class Credential:
    """The credential the connector needs: the service whose binding supplies it, and how."""

    service: str
    kind: CredentialKind
    name: str | None = None
    """The header (``kind="header"``) or query parameter (``kind="query"``) that carries it."""
    oauth2: OAuth2Endpoints | None = None
    """For ``kind="oauth2"``: where its tokens come from."""


@attrs.frozen(kw_only=True)
class Input:
    """One argument of an operation and where it goes in the request (JSON key ``in``)."""

    name: str
    type: InputType
    location: InputLocation
    required: bool = True
    description: str = ""


def _default_idempotency(operation: Operation) -> Idempotency:
    return "idempotent" if operation.method in _IDEMPOTENT_METHODS else "non_idempotent"


@attrs.frozen(kw_only=True)
class Operation:
    """One HTTP request a connector can make."""

    name: str
    summary: str
    method: HttpMethod
    path: str
    hosts: tuple[str, ...]
    inputs: tuple[Input, ...] = ()
    approval: ApprovalPolicy = "none"
    scheme: Scheme = "https"
    idempotency: Idempotency = attrs.field(
        default=attrs.Factory(_default_idempotency, takes_self=True)
    )

    @property
    def approval_required(self) -> bool:
        """Whether running this operation waits for a human's approval."""
        return self.approval == "required"

    @property
    def base_url(self) -> str:
        """``scheme://host[:port]`` of the first host: where requests go."""
        return f"{self.scheme}://{self.hosts[0]}"

    def find_input(self, name: str) -> Input | None:
        """The input called ``name``, or ``None``."""
        return next((item for item in self.inputs if item.name == name), None)

    def inputs_in(self, location: InputLocation) -> tuple[Input, ...]:
        """The inputs that go in the path, the query or the body, in declared order."""
        return tuple(item for item in self.inputs if item.location == location)

    def expand_path(self, values: Mapping[str, Any]) -> str:
        """The path with every ``{name}`` replaced by ``values[name]``, percent-encoded.

        Every character outside RFC 3986's unreserved set is encoded (``/`` included), so a
        value can never add a path segment or a query. Booleans are spelled ``true``/``false``.
        Raises ``KeyError`` for a missing value: validate the arguments first.
        """

        def replace(match: re.Match[str]) -> str:
            value = values[match.group(1)]
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            return quote(text, safe="")

        return _PLACEHOLDER.sub(replace, self.path)


@attrs.frozen(kw_only=True)
class Tool:
    """A named group of operations (the unit a shim or MCP tool exposes)."""

    name: str
    description: str
    operations: tuple[Operation, ...]

    def find_operation(self, name: str) -> Operation | None:
        """The operation called ``name``, or ``None``."""
        return next((op for op in self.operations if op.name == name), None)


@attrs.frozen(kw_only=True)
class ConnectorSpec:
    """A parsed, validated and normalized ``aileron.connector.v1`` spec."""

    connector: ConnectorInfo
    credential: Credential
    tools: tuple[Tool, ...]
    schema_version: str = SCHEMA_VERSION

    @property
    def fqn(self) -> str:
        """The connector's fully qualified name."""
        return self.connector.fqn

    @property
    def version(self) -> str:
        """The connector's version."""
        return self.connector.version

    def find_tool(self, name: str) -> Tool | None:
        """The tool called ``name``, or ``None``."""
        return next((tool for tool in self.tools if tool.name == name), None)

    def find_operation(self, tool: str, operation: str) -> Operation:
        """The operation ``operation`` of tool ``tool``; ``UnknownOperation`` if there is none."""
        found = self.find_tool(tool)
        op = found.find_operation(operation) if found else None
        if op is None:
            offered = ", ".join(f"{t.name}.{o.name}" for t in self.tools for o in t.operations)
            what = f"operation {operation!r} in tool {tool!r}" if found else f"tool {tool!r}"
            raise UnknownOperation(
                f"connector {self.fqn} has no {what}",
                hint=f"it offers: {offered}",
                details={"fqn": self.fqn, "tool": tool, "operation": operation},
            )
        return op


converter.register_unstructure_hook(
    Input, make_dict_unstructure_fn(Input, converter, location=override(rename="in"))
)
# Absent rather than null: specs without OAuth2 keep the digest they had before it existed
# (the endpoints' hook first: the credential's is generated around it).
converter.register_unstructure_hook(
    OAuth2Endpoints,
    make_dict_unstructure_fn(
        OAuth2Endpoints, converter, device_authorization_url=override(omit_if_default=True)
    ),
)
converter.register_unstructure_hook(
    Credential,
    make_dict_unstructure_fn(Credential, converter, oauth2=override(omit_if_default=True)),
)
converter.register_structure_hook(
    Input,
    make_dict_structure_fn(
        Input, converter, _cattrs_forbid_extra_keys=True, location=override(rename="in")
    ),
)


def spec_to_json(spec: ConnectorSpec) -> dict[str, Any]:
    """The normalized spec as JSON data (every default explicit); it parses back to ``spec``."""
    return cast(dict[str, Any], converter.unstructure(spec))


def spec_digest(spec: ConnectorSpec) -> str:
    """The spec's content address: hex sha256 of the canonical JSON of the normalized spec."""
    return canonical_sha256(spec_to_json(spec))


# --- the parser ----------------------------------------------------------------------------


def host_problem(host: str) -> str | None:
    """Why ``host`` is not a valid ``host`` or ``host:port`` entry, or ``None`` when it is."""
    if "*" in host:
        return "wildcards are not allowed: list every host"
    if any(mark in host for mark in "/?#@\\[] ") or CONTROL_CHARS.search(host):
        return "write a bare host or host:port (no scheme, path, user info or spaces)"
    if host.count(":") > 1:
        return "IPv6 literals are not supported"
    name, colon, port = host.partition(":")
    if colon and (not _PORT.fullmatch(port) or int(port) > 65535):
        return f"port {show(port)} is not a number from 1 to 65535"
    if name != name.lower():
        return "must be lowercase"
    if name == "localhost":
        return None
    labels = name.split(".")
    if all(label.isdigit() for label in labels):
        if len(labels) != 4 or not all(
            _OCTET.fullmatch(label) and int(label) <= 255 for label in labels
        ):
            return "an IPv4 address is four numbers 0-255 without leading zeros"
        return None
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return "is not a DNS name (labels of a-z, 0-9 and inner '-', separated by '.')"
    if labels[-1].isdigit():
        return "a DNS name's last label must not be all digits"
    return None


def endpoint_problem(url: str) -> str | None:
    """Why ``url`` cannot be an OAuth2 endpoint, or ``None`` when it can: an absolute
    ``https`` URL (``http`` only to a loopback host), without user info or fragment."""
    if len(url) > 2000 or CONTROL_CHARS.search(url) or " " in url:
        return "write a URL of at most 2000 characters, without spaces or control characters"
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        return "must be an https:// URL"
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    if "#" in url or "@" in authority:
        return "must not hold user info or a fragment"
    problem = host_problem(authority)
    if problem:
        return f"host {show(authority)} {problem}"
    if scheme == "http" and not is_loopback(authority):
        return "plain http is allowed only to a loopback host; use https"
    return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (``host[:port]``, ``[v6]:port`` or a bare IPv6 literal) is the name
    ``localhost`` (any case, one trailing dot allowed) or an IP literal of the loopback
    interface: 127.0.0.0/8, ``::1``, or ``::ffff:127.x.y.z``.

    A DNS name is never loopback whatever it looks like (``127.attacker.example.com`` or
    ``localhost.attacker.example`` resolve wherever their owner likes): only the literal
    address, or the one name every resolver keeps local, may carry plain http.
    """
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        name = host.partition(":")[0]
    else:
        name = host
    if name.lower().removesuffix(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class _SpecParser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.reader = StrictReader(self.fail, locate=format_location)

    def fail(self, at: Location, problem: str) -> NoReturn:
        path = format_location(at)
        raise SpecError(
            f"{self.source}: {path}: {problem}",
            details={"source": self.source, "path": path, "problem": problem},
        )

    def decode(self, data: object) -> Any:
        if isinstance(data, bytes | bytearray):
            if len(data) > MAX_SPEC_BYTES:
                self.fail((), f"is larger than {MAX_SPEC_BYTES} bytes")
            try:
                text = bytes(data).decode("utf-8")
            except UnicodeDecodeError as exc:
                self.fail((), f"is not UTF-8 text (bad byte at offset {exc.start})")
        elif isinstance(data, str):
            if len(data) > MAX_SPEC_BYTES:
                self.fail((), f"is larger than {MAX_SPEC_BYTES} characters")
            text = data
        else:
            self.fail((), f"must be JSON text (bytes or str), not {type(data).__name__}")
        try:
            return json.loads(
                text, object_pairs_hook=no_duplicate_keys, parse_constant=no_constants
            )
        except DuplicateKey as exc:
            self.fail((), f"is not valid JSON: an object repeats the key {show(exc.key)}")
        except json.JSONDecodeError as exc:
            self.fail((), f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
        except (ValueError, RecursionError) as exc:
            self.fail((), f"is not valid JSON: {show(str(exc) or type(exc).__name__)}")

    def parse(self, data: object) -> ConnectorSpec:
        r = self.reader
        document = self.decode(data)
        if isinstance(document, dict) and "schema_version" in document:
            version = r.string(document["schema_version"], ("schema_version",))
            if version != SCHEMA_VERSION:
                self.fail(
                    ("schema_version",),
                    f"unsupported schema version {show(version)}; this Aileron reads"
                    f" {SCHEMA_VERSION!r}",
                )
        root = r.table(
            document, (), required=("schema_version", "connector", "credential", "tools")
        )
        connector = self.connector(root["connector"], ("connector",))
        credential = self.credential(root["credential"], ("credential",))
        tools_at: Location = ("tools",)
        tools = tuple(
            self.tool(item, (*tools_at, index))
            for index, item in enumerate(r.array(root["tools"], tools_at))
        )
        r.unique(((tool.name, (*tools_at, i, "name")) for i, tool in enumerate(tools)), "tool")
        if credential.kind == "query":
            self.check_query_credential(credential, tools)
        return ConnectorSpec(connector=connector, credential=credential, tools=tools)

    def connector(self, value: Any, at: Location) -> ConnectorInfo:
        r = self.reader
        table = r.table(value, at, required=("fqn", "version", "description"))
        return ConnectorInfo(
            fqn=r.matching(table["fqn"], (*at, "fqn"), _FQN, FQN_RULE),
            version=r.matching(table["version"], (*at, "version"), _VERSION, VERSION_RULE),
            description=r.text(table["description"], (*at, "description")),
        )

    def credential(self, value: Any, at: Location) -> Credential:
        r = self.reader
        table = r.table(value, at, required=("service", "kind"), optional=("name", "oauth2"))
        service = r.matching(table["service"], (*at, "service"), _NAME, NAME_RULE)
        kind = cast(CredentialKind, r.choice(table["kind"], (*at, "kind"), CREDENTIAL_KINDS))
        name_at = (*at, "name")
        raw_name = table.get("name")
        oauth2_at = (*at, "oauth2")
        if kind == "oauth2":
            if raw_name is not None:
                self.fail(name_at, "must be absent for kind 'oauth2' (it sets its own header)")
            if table.get("oauth2") is None:
                self.fail(oauth2_at, "is required for kind 'oauth2': its authorize and token URLs")
            return Credential(
                service=service, kind=kind, oauth2=self.oauth2(table["oauth2"], oauth2_at)
            )
        if table.get("oauth2") is not None:
            self.fail(oauth2_at, f"must be absent for kind {kind!r}; only 'oauth2' has one")
        if kind in ("bearer", "basic"):
            if raw_name is not None:
                self.fail(name_at, f"must be absent for kind {kind!r} (it sets its own header)")
            return Credential(service=service, kind=kind)
        if raw_name is None:
            self.fail(name_at, f"is required for kind {kind!r}: the {_carrier(kind)} to use")
        if kind == "header":
            name = r.matching(raw_name, name_at, _HEADER_NAME, "use an HTTP header name")
            if name.lower() in _RESERVED_HEADERS:
                self.fail(name_at, f"{show(name)} is managed by the HTTP client; pick another")
        else:
            name = r.matching(raw_name, name_at, _NAME, NAME_RULE)
        return Credential(service=service, kind=kind, name=name)

    def oauth2(self, value: Any, at: Location) -> OAuth2Endpoints:
        r = self.reader
        table = r.table(
            value,
            at,
            required=("authorize_url", "token_url"),
            optional=("device_authorization_url", "scopes"),
        )
        device = table.get("device_authorization_url")
        scopes_at = (*at, "scopes")
        scopes = tuple(
            r.matching(item, (*scopes_at, index), _SCOPE, "a scope is printable ASCII, no spaces")
            for index, item in enumerate(
                r.array(table.get("scopes", []), scopes_at, non_empty=False)
            )
        )
        r.unique(((scope, (*scopes_at, i)) for i, scope in enumerate(scopes)), "scope")
        return OAuth2Endpoints(
            authorize_url=self.endpoint(table["authorize_url"], (*at, "authorize_url")),
            token_url=self.endpoint(table["token_url"], (*at, "token_url")),
            device_authorization_url=(
                None if device is None else self.endpoint(device, (*at, "device_authorization_url"))
            ),
            scopes=scopes,
        )

    def endpoint(self, value: Any, at: Location) -> str:
        url = self.reader.string(value, at)
        problem = endpoint_problem(url)
        if problem:
            self.fail(at, f"{show(url)}: {problem}")
        return url

    def tool(self, value: Any, at: Location) -> Tool:
        r = self.reader
        table = r.table(value, at, required=("name", "description", "operations"))
        name = r.matching(table["name"], (*at, "name"), _NAME, NAME_RULE)
        description = r.text(table["description"], (*at, "description"))
        ops_at = (*at, "operations")
        operations = tuple(
            self.operation(item, (*ops_at, index))
            for index, item in enumerate(r.array(table["operations"], ops_at))
        )
        r.unique(((op.name, (*ops_at, i, "name")) for i, op in enumerate(operations)), "operation")
        return Tool(name=name, description=description, operations=operations)

    def operation(self, value: Any, at: Location) -> Operation:
        r = self.reader
        table = r.table(
            value,
            at,
            required=("name", "summary", "method", "path", "hosts"),
            optional=("inputs", "approval", "idempotency", "scheme"),
        )
        fields: dict[str, Any] = {
            "name": r.matching(table["name"], (*at, "name"), _NAME, NAME_RULE),
            "summary": r.line(table["summary"], (*at, "summary")),
            "method": r.choice(table["method"], (*at, "method"), HTTP_METHODS),
        }
        inputs_at = (*at, "inputs")
        inputs = tuple(
            self.input(item, (*inputs_at, index), method=fields["method"])
            for index, item in enumerate(
                r.array(table.get("inputs", []), inputs_at, non_empty=False)
            )
        )
        r.unique(((item.name, (*inputs_at, i, "name")) for i, item in enumerate(inputs)), "input")
        fields["inputs"] = inputs
        fields["path"] = self.path(table["path"], (*at, "path"), inputs, inputs_at)
        hosts_at = (*at, "hosts")
        hosts = tuple(
            self.host(item, (*hosts_at, index))
            for index, item in enumerate(r.array(table["hosts"], hosts_at))
        )
        r.unique(((host, (*hosts_at, i)) for i, host in enumerate(hosts)), "host")
        fields["hosts"] = hosts
        if "approval" in table:
            fields["approval"] = r.choice(table["approval"], (*at, "approval"), APPROVAL_POLICIES)
        if "idempotency" in table:
            fields["idempotency"] = r.choice(
                table["idempotency"], (*at, "idempotency"), IDEMPOTENCIES
            )
        if "scheme" in table:
            fields["scheme"] = r.choice(table["scheme"], (*at, "scheme"), SCHEMES)
            if fields["scheme"] == "http":
                for index, host in enumerate(hosts):
                    if not is_loopback(host):
                        self.fail(
                            (*hosts_at, index),
                            f"{show(host)} is not a loopback host, and scheme 'http' is allowed"
                            " only for localhost and IP literals in 127.0.0.0/8 (a DNS name"
                            " that looks local may resolve anywhere); use https",
                        )
        return Operation(**fields)

    def input(self, value: Any, at: Location, *, method: str) -> Input:
        r = self.reader
        table = r.table(
            value, at, required=("name", "type", "in"), optional=("required", "description")
        )
        name = r.matching(table["name"], (*at, "name"), _NAME, NAME_RULE)
        kind = cast(InputType, r.choice(table["type"], (*at, "type"), INPUT_TYPES))
        location = cast(InputLocation, r.choice(table["in"], (*at, "in"), INPUT_LOCATIONS))
        required = r.boolean(table["required"], (*at, "required")) if "required" in table else True
        description = (
            r.text(table["description"], (*at, "description"), allow_empty=True)
            if "description" in table
            else ""
        )
        if location == "path":
            if kind not in _SCALAR_TYPES:
                self.fail((*at, "type"), f"a path input must be a scalar, not {kind!r}")
            if not required:
                self.fail((*at, "required"), "a path input is always required")
        elif location == "query" and kind == "object":
            self.fail((*at, "type"), "a query input cannot be an object")
        elif location == "body" and method in ("GET", "HEAD"):
            self.fail((*at, "in"), f"a {method} request has no body; use 'query'")
        return Input(
            name=name, type=kind, location=location, required=required, description=description
        )

    def path(self, value: Any, at: Location, inputs: Sequence[Input], inputs_at: Location) -> str:
        path = self.reader.string(value, at)
        if not path.startswith("/"):
            self.fail(at, "must start with '/'")
        if len(path) > 2000:
            self.fail(at, "must be at most 2000 characters")
        pieces = _PLACEHOLDER.split(path)
        literals, names = pieces[0::2], pieces[1::2]
        for literal in literals:
            if "{" in literal or "}" in literal:
                self.fail(at, "has an unbalanced '{' or '}'; placeholders look like {name}")
            if "?" in literal or "#" in literal:
                self.fail(at, "must not contain a query or fragment; declare query inputs")
            if not _PATH_CHARS.fullmatch(literal):
                bad = next(c for c in literal if not _PATH_CHARS.fullmatch(c))
                self.fail(at, f"contains {show(bad)}, which a URL path may not hold unencoded")
            if _BAD_PERCENT.search(literal):
                self.fail(at, "has a '%' that is not followed by two hex digits")
        if any(segment in (".", "..") for segment in _PLACEHOLDER.sub("x", path).split("/")):
            self.fail(at, "must not contain '.' or '..' segments")
        declared = {item.name: item for item in inputs}
        seen: set[str] = set()
        for name in names:
            if name in seen:
                self.fail(at, f"placeholder {{{name}}} appears more than once")
            seen.add(name)
            item = declared.get(name)
            if item is None or item.location != "path":
                self.fail(at, f'placeholder {{{name}}} names no input with "in": "path"')
        for index, item in enumerate(inputs):
            if item.location == "path" and item.name not in seen:
                self.fail(
                    (*inputs_at, index, "name"),
                    f"path input {show(item.name)} does not appear in the path as {{{item.name}}}",
                )
        return path

    def host(self, value: Any, at: Location) -> str:
        host = self.reader.string(value, at)
        problem = host_problem(host)
        if problem:
            self.fail(at, f"{show(host)}: {problem}")
        return host

    def check_query_credential(self, credential: Credential, tools: Sequence[Tool]) -> None:
        for t, tool in enumerate(tools):
            for o, op in enumerate(tool.operations):
                for i, item in enumerate(op.inputs):
                    if item.location == "query" and item.name == credential.name:
                        self.fail(
                            ("tools", t, "operations", o, "inputs", i, "name"),
                            f"query input {show(item.name)} collides with the credential's"
                            " query parameter",
                        )


def _carrier(kind: str) -> str:
    return "header" if kind == "header" else "query parameter"


def parse_connector_spec(data: bytes | str, *, source: str = "<spec>") -> ConnectorSpec:
    """Parse and validate an ``aileron.connector.v1`` spec; ``SpecError`` names any problem.

    ``source`` (a file name or URL) starts every error message. Nothing but ``SpecError`` is
    raised, whatever the input.
    """
    return _SpecParser(source).parse(data)
