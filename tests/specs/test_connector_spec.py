"""Connector specs parse strictly, report every problem by its JSON path, and round-trip."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aileron_core.canonical import canonical_json
from aileron_core.connectors import (
    ConnectorSpec,
    Input,
    SpecError,
    UnknownOperation,
    host_problem,
    parse_connector_spec,
    spec_digest,
    spec_to_json,
)
from aileron_core.convert import converter

PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

Doc = dict[str, Any]


def valid_doc() -> Doc:
    """A small valid spec as JSON data, fresh on every call."""
    return {
        "schema_version": "aileron.connector.v1",
        "connector": {"fqn": "github://acme/tracker", "version": "1.2.0", "description": "Acme."},
        "credential": {"service": "acme", "kind": "bearer"},
        "tools": [
            {
                "name": "issues",
                "description": "Issues.",
                "operations": [
                    {
                        "name": "list",
                        "summary": "List issues.",
                        "method": "GET",
                        "path": "/repos/{owner}/{repo}/issues",
                        "hosts": ["api.acme.test"],
                        "inputs": [
                            {"name": "owner", "type": "string", "in": "path"},
                            {"name": "repo", "type": "string", "in": "path"},
                            {"name": "state", "type": "string", "in": "query", "required": False},
                        ],
                    },
                    {
                        "name": "create",
                        "summary": "Create an issue.",
                        "method": "POST",
                        "path": "/issues",
                        "hosts": ["api.acme.test", "uploads.acme.test:8443"],
                        "inputs": [{"name": "title", "type": "string", "in": "body"}],
                        "approval": "required",
                    },
                ],
            }
        ],
    }


def parse(doc: Any) -> ConnectorSpec:
    return parse_connector_spec(json.dumps(doc), source="acme.json")


def op_doc(doc: Doc, tool: int = 0, op: int = 0) -> Doc:
    result: Doc = doc["tools"][tool]["operations"][op]
    return result


def test_valid_spec_parses_into_the_model_with_defaults_filled() -> None:
    """A valid spec becomes the attrs model, and omitted optional fields take their defaults."""
    spec = parse(valid_doc())
    assert spec.fqn == "github://acme/tracker"
    assert spec.version == "1.2.0"
    assert spec.credential.kind == "bearer" and spec.credential.name is None
    listing = spec.find_operation("issues", "list")
    assert listing.method == "GET"
    assert listing.hosts == ("api.acme.test",)
    assert listing.inputs[0] == Input(name="owner", type="string", location="path")
    assert listing.inputs[2].required is False
    assert listing.approval == "none" and not listing.approval_required
    assert listing.scheme == "https"
    assert listing.base_url == "https://api.acme.test"
    assert [i.name for i in listing.inputs_in("path")] == ["owner", "repo"]
    create = spec.find_operation("issues", "create")
    assert create.approval_required
    assert create.find_input("title") is not None and create.find_input("nope") is None


def test_idempotency_defaults_follow_the_http_method() -> None:
    """GET defaults to idempotent, POST to non_idempotent, and an explicit value wins."""
    spec = parse(valid_doc())
    assert spec.find_operation("issues", "list").idempotency == "idempotent"
    assert spec.find_operation("issues", "create").idempotency == "non_idempotent"
    doc = valid_doc()
    op_doc(doc, 0, 1)["idempotency"] = "idempotent"
    assert parse(doc).find_operation("issues", "create").idempotency == "idempotent"


def test_find_operation_names_what_is_missing() -> None:
    """An unknown tool or operation raises UnknownOperation naming it and listing the offer."""
    spec = parse(valid_doc())
    with pytest.raises(UnknownOperation) as tool:
        spec.find_operation("pulls", "list")
    assert tool.value.code == "unknown_operation"
    assert "no tool 'pulls'" in tool.value.message
    assert tool.value.hint == "it offers: issues.list, issues.create"
    with pytest.raises(UnknownOperation) as op:
        spec.find_operation("issues", "delete")
    assert "no operation 'delete' in tool 'issues'" in op.value.message
    assert op.value.details == {"fqn": spec.fqn, "tool": "issues", "operation": "delete"}


def test_expand_path_percent_encodes_every_value() -> None:
    """Path values are encoded so that they can never add a segment or a query."""
    listing = parse(valid_doc()).find_operation("issues", "list")
    path = listing.expand_path({"owner": "a/b", "repo": "x y?z", "state": "ignored"})
    assert path == "/repos/a%2Fb/x%20y%3Fz/issues"


# --- errors, table-driven -------------------------------------------------------------------


def setting(path: tuple[Any, ...], value: Any) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        target: Any = doc
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return apply


def deleting(path: tuple[Any, ...]) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        target: Any = doc
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return apply


OP = ("tools", 0, "operations", 0)
OP_PATH = "$.tools[0].operations[0]"

BROKEN: list[tuple[str, Callable[[Doc], None], str, str]] = [
    (
        "newer schema",
        setting(("schema_version",), "aileron.connector.v2"),
        "$.schema_version",
        "unsupported schema version",
    ),
    ("unknown top-level key", setting(("extras",), 1), "$.extras", "unknown key"),
    ("missing fqn", deleting(("connector", "fqn")), "$.connector.fqn", "required but missing"),
    (
        "fqn with a scheme of its own",
        setting(("connector", "fqn"), "https://acme/x"),
        "$.connector.fqn",
        "github://<owner>/<repo>",
    ),
    (
        "uppercase fqn",
        setting(("connector", "fqn"), "github://Acme/x"),
        "$.connector.fqn",
        "is not valid here",
    ),
    (
        "fqn too deep",
        setting(("connector", "fqn"), "github://a/b/c/d"),
        "$.connector.fqn",
        "is not valid here",
    ),
    (
        "local fqn with two segments",
        setting(("connector", "fqn"), "local://a/b"),
        "$.connector.fqn",
        "is not valid here",
    ),
    ("empty version", setting(("connector", "version"), ""), "$.connector.version", "not valid"),
    (
        "description of the wrong type",
        setting(("connector", "description"), 5),
        "$.connector.description",
        "must be a string, not an integer",
    ),
    (
        "unknown credential kind",
        setting(("credential", "kind"), "oauth"),
        "$.credential.kind",
        "is not one of bearer, header, basic, query",
    ),
    (
        "header credential without a name",
        setting(("credential", "kind"), "header"),
        "$.credential.name",
        "is required for kind 'header'",
    ),
    (
        "bearer credential with a name",
        setting(("credential", "name"), "X-Key"),
        "$.credential.name",
        "must be absent for kind 'bearer'",
    ),
    ("no tools", setting(("tools",), []), "$.tools", "must not be empty"),
    ("tools not a list", setting(("tools",), {}), "$.tools", "must be an array, not an object"),
    ("bad tool name", setting(("tools", 0, "name"), "two words"), "$.tools[0].name", "letters"),
    (
        "tool name that looks like a flag",
        setting(("tools", 0, "name"), "--help"),
        "$.tools[0].name",
        "starting with a letter or digit",
    ),
    (
        "lowercase method",
        setting((*OP, "method"), "get"),
        f"{OP_PATH}.method",
        "is not one of GET, POST",
    ),
    (
        "multi-line summary",
        setting((*OP, "summary"), "a\nb"),
        f"{OP_PATH}.summary",
        "single line",
    ),
    ("relative path", setting((*OP, "path"), "repos"), f"{OP_PATH}.path", "must start with '/'"),
    (
        "path with a query",
        setting((*OP, "path"), "/repos/{owner}/{repo}?x=1"),
        f"{OP_PATH}.path",
        "query or fragment",
    ),
    (
        "dot-dot segment",
        setting((*OP, "path"), "/repos/{owner}/../{repo}"),
        f"{OP_PATH}.path",
        "'..' segments",
    ),
    (
        "unencoded space in path",
        setting((*OP, "path"), "/repos/{owner}/{repo}/my issues"),
        f"{OP_PATH}.path",
        "contains ' '",
    ),
    ("no hosts", setting((*OP, "hosts"), []), f"{OP_PATH}.hosts", "must not be empty"),
    (
        "host with scheme",
        setting((*OP, "hosts"), ["https://api.acme.test"]),
        f"{OP_PATH}.hosts[0]",
        "no scheme",
    ),
    (
        "wildcard host",
        setting((*OP, "hosts"), ["*.acme.test"]),
        f"{OP_PATH}.hosts[0]",
        "wildcards are not allowed",
    ),
    (
        "uppercase host",
        setting((*OP, "hosts"), ["API.acme.test"]),
        f"{OP_PATH}.hosts[0]",
        "lowercase",
    ),
    (
        "port out of range",
        setting((*OP, "hosts"), ["api.acme.test:70000"]),
        f"{OP_PATH}.hosts[0]",
        "port '70000'",
    ),
    (
        "bad IPv4",
        setting((*OP, "hosts"), ["10.0.0.256"]),
        f"{OP_PATH}.hosts[0]",
        "IPv4 address",
    ),
    (
        "plain http to a remote host",
        setting((*OP, "scheme"), "http"),
        f"{OP_PATH}.hosts[0]",
        "not a loopback host",
    ),
    ("unknown scheme", setting((*OP, "scheme"), "ftp"), f"{OP_PATH}.scheme", "https, http"),
    (
        "unknown input type",
        setting((*OP, "inputs", 2, "type"), "str"),
        f"{OP_PATH}.inputs[2].type",
        "is not one of string, number",
    ),
    (
        "optional path input",
        setting((*OP, "inputs", 0, "required"), False),
        f"{OP_PATH}.inputs[0].required",
        "always required",
    ),
    (
        "array path input",
        setting((*OP, "inputs", 0, "type"), "array"),
        f"{OP_PATH}.inputs[0].type",
        "must be a scalar",
    ),
    (
        "body input on GET",
        setting((*OP, "inputs", 2, "in"), "body"),
        f"{OP_PATH}.inputs[2].in",
        "GET request has no body",
    ),
    (
        "required as a string",
        setting((*OP, "inputs", 2, "required"), "yes"),
        f"{OP_PATH}.inputs[2].required",
        "must be true or false, not a string",
    ),
    (
        "unknown input key",
        setting((*OP, "inputs", 2, "default"), "open"),
        f"{OP_PATH}.inputs[2].default",
        "unknown key (allowed here: name, type, in, required, description)",
    ),
    ("unknown approval", setting((*OP, "approval"), "maybe"), f"{OP_PATH}.approval", "none"),
    (
        "unknown idempotency",
        setting((*OP, "idempotency"), "safe"),
        f"{OP_PATH}.idempotency",
        "idempotent, non_idempotent",
    ),
    (
        "odd key is quoted in the path",
        setting((*OP, "a b"), 1),
        f'{OP_PATH}["a b"]',
        "unknown key",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path", "problem"),
    [pytest.param(m, p, q, id=name) for name, m, p, q in BROKEN],
)
def test_each_broken_spec_is_reported_at_its_path(
    mutate: Callable[[Doc], None], path: str, problem: str
) -> None:
    """Each kind of mistake raises SpecError naming the JSON path and saying what is wrong."""
    doc = valid_doc()
    mutate(doc)
    with pytest.raises(SpecError) as caught:
        parse(doc)
    error = caught.value
    assert error.code == "invalid_connector_spec"
    assert error.details["source"] == "acme.json"
    assert error.details["path"] == path
    assert problem in error.details["problem"]
    assert error.message == f"acme.json: {path}: {error.details['problem']}"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff\xfe", "is not UTF-8 text"),
        ("{", "is not valid JSON: Expecting property name"),
        ('{"a": 1, "a": 2}', "repeats the key 'a'"),
        ('{"x": NaN}', "is not valid JSON"),
        ("[" * 100_000, "is not valid JSON"),
        ("[]", "must be an object, not an array"),
        ("null", "must be an object, not null"),
        (b" " * (1 << 20) + b"{}", "is larger than"),
    ],
)
def test_unreadable_documents_are_reported_at_the_root(data: bytes | str, problem: str) -> None:
    """Text that is not a JSON object at all is a SpecError at path `$`."""
    with pytest.raises(SpecError) as caught:
        parse_connector_spec(data)
    assert caught.value.details["path"] == "$"
    assert problem in caught.value.details["problem"]
    assert caught.value.message.startswith("<spec>: $: ")


@pytest.mark.parametrize(
    ("mutate", "path", "first"),
    [
        pytest.param(
            lambda d: d["tools"].append(copy.deepcopy(d["tools"][0])),
            "$.tools[1].name",
            "$.tools[0].name",
            id="tool",
        ),
        pytest.param(
            lambda d: setting((*OP[:3], 1, "name"), "list")(d),
            "$.tools[0].operations[1].name",
            "$.tools[0].operations[0].name",
            id="operation",
        ),
        pytest.param(
            lambda d: op_doc(d)["inputs"].append(
                {"name": "state", "type": "string", "in": "query"}
            ),
            f"{OP_PATH}.inputs[3].name",
            f"{OP_PATH}.inputs[2].name",
            id="input",
        ),
        pytest.param(
            lambda d: op_doc(d)["hosts"].append("api.acme.test"),
            f"{OP_PATH}.hosts[1]",
            f"{OP_PATH}.hosts[0]",
            id="host",
        ),
    ],
)
def test_duplicates_are_refused_at_every_level(
    mutate: Callable[[Doc], None], path: str, first: str
) -> None:
    """A repeated tool, operation, input or host is reported at the repeat, naming the first."""
    doc = valid_doc()
    mutate(doc)
    with pytest.raises(SpecError) as caught:
        parse(doc)
    assert caught.value.details["path"] == path
    assert "duplicate" in caught.value.details["problem"]
    assert f"(first at {first})" in caught.value.details["problem"]


def test_the_same_name_may_repeat_at_different_levels() -> None:
    """Uniqueness is per level: two tools may each have an operation called `list`."""
    doc = valid_doc()
    second = copy.deepcopy(doc["tools"][0])
    second["name"] = "pulls"
    doc["tools"].append(second)
    assert [t.name for t in parse(doc).tools] == ["issues", "pulls"]


# --- path placeholders ----------------------------------------------------------------------


def with_path(path: str, inputs: list[Doc]) -> Doc:
    doc = valid_doc()
    op_doc(doc)["path"] = path
    op_doc(doc)["inputs"] = inputs
    return doc


def path_input(name: str, **extra: Any) -> Doc:
    return {"name": name, "type": "string", "in": "path", **extra}


@pytest.mark.parametrize(
    ("path", "inputs", "where", "problem"),
    [
        ("/a/{x}", [], "path", "placeholder {x} names no input"),
        (
            "/a/{x}",
            [{"name": "x", "type": "string", "in": "query"}],
            "path",
            'names no input with "in": "path"',
        ),
        ("/a/{x}/{x}", [path_input("x")], "path", "appears more than once"),
        ("/a/{x", [path_input("x")], "path", "unbalanced"),
        ("/a/x}", [], "path", "unbalanced"),
        ("/a/{}", [], "path", "placeholder {} names no input"),
        ("/a", [path_input("x")], "inputs[0].name", "does not appear in the path as {x}"),
        ("/a/%zz", [], "path", "'%' that is not followed by two hex digits"),
    ],
)
def test_path_placeholders_and_path_inputs_must_match(
    path: str, inputs: list[Doc], where: str, problem: str
) -> None:
    """Every placeholder names one path input, once, and every path input appears."""
    with pytest.raises(SpecError) as caught:
        parse(with_path(path, inputs))
    assert caught.value.details["path"] == f"{OP_PATH}.{where}"
    assert problem in caught.value.details["problem"]


def test_placeholders_may_share_a_segment_with_text() -> None:
    """A placeholder need not fill a whole segment, and integer path inputs are allowed."""
    doc = with_path(
        "/files/{name}.json/v{n}", [path_input("name"), path_input("n", type="integer")]
    )
    op = parse(doc).find_operation("issues", "list")
    assert op.expand_path({"name": "a.b", "n": 2}) == "/files/a.b.json/v2"


# --- hosts and scheme -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["api.github.com", "localhost", "localhost:8765", "127.0.0.1:8765", "10.1.2.3", "a-b.c9.io"],
)
def test_valid_hosts_are_accepted(host: str) -> None:
    """DNS names, IPv4 literals and localhost, each with an optional port, are valid hosts."""
    assert host_problem(host) is None


@pytest.mark.parametrize(
    "host",
    [
        "",
        "api.github.com/",
        "user@host",
        "[::1]",
        "::1",
        "host:",
        "host:08",
        "-bad.com",
        "bad-.com",
        "a..b",
        "1.2.3",
        "01.2.3.4",
        "example.123",
        "a b",
        "tab\there",
        "x" * 64 + ".com",
    ],
)
def test_invalid_hosts_are_refused(host: str) -> None:
    """Malformed hosts (schemes, paths, IPv6, bad ports, bad labels, short IPv4) are refused."""
    assert host_problem(host) is not None


@pytest.mark.parametrize("host", ["localhost", "localhost:3000", "127.0.0.1:8765", "127.9.9.9"])
def test_plain_http_is_allowed_for_loopback_hosts(host: str) -> None:
    """scheme http is accepted when every host is loopback, and shows in base_url."""
    doc = valid_doc()
    op_doc(doc)["scheme"] = "http"
    op_doc(doc)["hosts"] = [host]
    assert parse(doc).find_operation("issues", "list").base_url == f"http://{host}"


def test_plain_http_is_refused_when_any_host_is_remote() -> None:
    """One non-loopback host among loopback ones is enough to refuse scheme http."""
    doc = valid_doc()
    op_doc(doc)["scheme"] = "http"
    op_doc(doc)["hosts"] = ["127.0.0.1", "10.0.0.1"]
    with pytest.raises(SpecError) as caught:
        parse(doc)
    assert caught.value.details["path"] == f"{OP_PATH}.hosts[1]"


# --- credentials ----------------------------------------------------------------------------


def test_header_and_query_credentials_carry_their_name() -> None:
    """kind header/query keep the header or query parameter name that carries the secret."""
    doc = valid_doc()
    doc["credential"] = {"service": "acme", "kind": "header", "name": "X-Api-Key"}
    assert parse(doc).credential.name == "X-Api-Key"
    doc["credential"] = {"service": "acme", "kind": "query", "name": "api_key"}
    assert parse(doc).credential.name == "api_key"
    doc["credential"] = {"service": "acme", "kind": "basic", "name": None}
    assert parse(doc).credential.name is None


@pytest.mark.parametrize(
    ("credential", "path", "problem"),
    [
        ({"service": "acme", "kind": "header", "name": "Host"}, "name", "managed by the HTTP"),
        ({"service": "acme", "kind": "header", "name": "X Key"}, "name", "HTTP header name"),
        ({"service": "a b", "kind": "bearer"}, "service", "letters"),
        ({"service": "acme", "kind": "query", "name": "state"}, None, "collides"),
    ],
)
def test_credential_rules(credential: Doc, path: str | None, problem: str) -> None:
    """Reserved or malformed header names, bad services and query clashes are refused."""
    doc = valid_doc()
    doc["credential"] = credential
    with pytest.raises(SpecError) as caught:
        parse(doc)
    expected = f"$.credential.{path}" if path else f"{OP_PATH}.inputs[2].name"
    assert caught.value.details["path"] == expected
    assert problem in caught.value.details["problem"]


# --- round trip and digest ------------------------------------------------------------------


def test_spec_to_json_round_trips_and_spells_in_as_in() -> None:
    """spec_to_json gives JSON data with every default explicit that parses back equal."""
    spec = parse(valid_doc())
    data = spec_to_json(spec)
    assert data["tools"][0]["operations"][0]["inputs"][0] == {
        "name": "owner",
        "type": "string",
        "in": "path",
        "required": True,
        "description": "",
    }
    assert data["tools"][0]["operations"][1]["idempotency"] == "non_idempotent"
    assert parse(data) == spec


def test_the_shared_converter_reads_spec_to_json_back() -> None:
    """converter.structure turns spec_to_json output (even without defaults) into the spec."""
    spec = parse(valid_doc())
    data = spec_to_json(spec)
    assert converter.structure(data, ConnectorSpec) == spec
    del data["tools"][0]["operations"][1]["idempotency"]
    assert converter.structure(data, ConnectorSpec) == spec


def reorder(value: Any) -> Any:
    """The same JSON value with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {key: reorder(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reorder(item) for item in value]
    return value


def test_spec_digest_is_a_content_address() -> None:
    """The digest ignores key order and explicit defaults, and changes with any content."""
    spec = parse(valid_doc())
    digest = spec_digest(spec)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert spec_digest(parse(reorder(valid_doc()))) == digest
    assert spec_digest(parse(spec_to_json(spec))) == digest
    changed = valid_doc()
    op_doc(changed)["summary"] = "List the issues."
    assert spec_digest(parse(changed)) != digest


# --- property tests -------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def assert_only_spec_error(data: bytes | str) -> None:
    try:
        parse_connector_spec(data, source="fuzz")
    except SpecError as error:
        assert error.message.startswith("fuzz: $")
        assert error.details["path"].startswith("$")
        json.dumps(error.details)  # the error travels in a JSON envelope


@PROPERTY
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_spec_errors(data: bytes) -> None:
    """Whatever the bytes, the parser raises SpecError and nothing else."""
    assert_only_spec_error(data)


@PROPERTY
@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_spec_errors(text: str) -> None:
    """Whatever the text, surrogates included, the parser raises SpecError and nothing else."""
    assert_only_spec_error(text)


@PROPERTY
@given(json_values)
def test_arbitrary_json_raises_only_spec_errors(value: Any) -> None:
    """Whatever JSON value, the parser raises SpecError and nothing else."""
    assert_only_spec_error(json.dumps(value))


def locations(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path inside ``value`` (containers and leaves)."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return found
    for key, item in items:
        found.append((*prefix, key))
        found.extend(locations(item, (*prefix, key)))
    return found


VALID_LOCATIONS = locations(valid_doc())


@PROPERTY
@given(
    where=st.sampled_from(VALID_LOCATIONS),
    how=st.sampled_from(["drop", "replace", "add"]),
    value=json_values,
)
def test_mutated_specs_raise_only_spec_errors(where: tuple[Any, ...], how: str, value: Any) -> None:
    """Dropping a key or element, changing a value, or adding a key gives a spec or a SpecError."""
    doc = valid_doc()
    parent: Any = doc
    for part in where[:-1]:
        parent = parent[part]
    if how == "drop":
        del parent[where[-1]]
    elif how == "replace":
        parent[where[-1]] = value
    elif isinstance(parent, dict):
        parent["unexpected"] = value
    else:
        parent.append(value)
    try:
        spec = parse(doc)
    except SpecError as error:
        assert error.details["path"].startswith("$")
    else:
        assert parse(spec_to_json(spec)) == spec


names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,10}", fullmatch=True)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1).filter(
    str.strip
)


@st.composite
def valid_specs(draw: st.DrawFn) -> Doc:
    """Random valid specs: several tools and operations, optional keys present or not."""
    tools = []
    for tool_name in draw(st.lists(names, min_size=1, max_size=3, unique=True)):
        operations = []
        for op_name in draw(st.lists(names, min_size=1, max_size=3, unique=True)):
            method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]))
            path_names = draw(st.lists(names, max_size=2, unique=True))
            op: Doc = {
                "name": op_name,
                "summary": draw(texts.filter(lambda t: len(t) <= 300)),
                "method": method,
                "path": "/" + "/".join("{" + n + "}" for n in path_names),
                "hosts": draw(
                    st.lists(st.sampled_from(["a.test", "b.test:444", "9.9.9.9"]), min_size=1).map(
                        lambda hosts: list(dict.fromkeys(hosts))
                    )
                ),
                "inputs": [{"name": n, "type": "string", "in": "path"} for n in path_names],
            }
            if draw(st.booleans()):
                op["approval"] = draw(st.sampled_from(["required", "none"]))
            if draw(st.booleans()):
                op["idempotency"] = draw(st.sampled_from(["idempotent", "non_idempotent"]))
            operations.append(op)
        tools.append({"name": tool_name, "description": draw(texts), "operations": operations})
    return {
        "schema_version": "aileron.connector.v1",
        "connector": {"fqn": "local://x", "version": "1", "description": draw(texts)},
        "credential": {"service": "svc", "kind": draw(st.sampled_from(["bearer", "basic"]))},
        "tools": tools,
    }


@PROPERTY
@given(valid_specs())
def test_generated_specs_round_trip_with_a_stable_digest(doc: Doc) -> None:
    """Any valid spec parses, re-parses equal from spec_to_json, and its digest ignores order."""
    spec = parse(doc)
    again = parse_connector_spec(canonical_json(spec_to_json(spec)))
    assert again == spec
    assert spec_digest(parse(reorder(doc))) == spec_digest(spec)
