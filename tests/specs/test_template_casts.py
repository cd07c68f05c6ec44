"""Explicit casts in action templates: ``${one.id | string}``, ``| int``, ``| float``, ``| bool``
and ``| json`` — grammar, conversions, round trips and the errors of impossible casts."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aileron_core.actions import (
    ManifestError,
    check_requirements,
    parse_action_manifest,
    render_step_args,
)
from aileron_core.arguments import validate_args
from aileron_core.connectors import ConnectorSpec, parse_connector_spec
from aileron_core.templating import (
    CASTS,
    Placeholder,
    TemplateError,
    cast_value,
    parse_template,
    references,
    render,
    single_reference,
)

SPEC = {
    "schema_version": "aileron.connector.v1",
    "connector": {"fqn": "local://casts", "version": "1.0.0", "description": "Casts."},
    "credential": {"service": "casts", "kind": "bearer"},
    "tools": [
        {
            "name": "things",
            "description": "Things.",
            "operations": [
                {
                    "name": "get",
                    "summary": "Get a thing.",
                    "method": "GET",
                    "path": "/thing",
                    "hosts": ["127.0.0.1:9"],
                    "inputs": [],
                },
                {
                    "name": "put",
                    "summary": "Put a thing.",
                    "method": "POST",
                    "path": "/thing",
                    "hosts": ["127.0.0.1:9"],
                    "inputs": [
                        {"name": "name", "type": "string", "in": "body"},
                        {"name": "count", "type": "integer", "in": "body", "required": False},
                        {"name": "ratio", "type": "number", "in": "body", "required": False},
                        {"name": "flag", "type": "boolean", "in": "body", "required": False},
                        {"name": "raw", "type": "string", "in": "body", "required": False},
                    ],
                },
            ],
        }
    ],
}

PUT_ARGS = """\
name = "${one.id | string}"
count = "${one.size|int}"
ratio = "${one.share | float}"
flag = "${one.open | bool}"
raw = "${one | json}"
"""


def manifest_text(args: str = PUT_ARGS) -> str:
    return f"""+++
name = "casts"
version = "1.0.0"

[[inputs]]
name = "n"
type = "integer"
required = false

[[requires.connectors]]
fqn = "local://casts"
version = "1.0.0"

[[execute]]
id = "one"
connector = "local://casts"
tool = "things"
op = "get"

[[execute]]
id = "two"
connector = "local://casts"
tool = "things"
op = "put"

[execute.args]
{args}+++
Casts.
"""


def installed() -> dict[str, ConnectorSpec]:
    spec = parse_connector_spec(json.dumps(SPEC))
    return {spec.fqn: spec}


def render_put(one: Any, args: str = PUT_ARGS, given_args: dict[str, Any] | None = None) -> Any:
    manifest = parse_action_manifest(manifest_text(args), source="casts.md")
    check_requirements(manifest, installed(), source="casts.md")
    return render_step_args(manifest, manifest.execute[1], given_args or {}, {"one": one})


# --- grammar --------------------------------------------------------------------------------


@pytest.mark.parametrize("cast", CASTS)
@pytest.mark.parametrize("spelling", ["${a.b | %s}", "${a.b|%s}", "${a.b  |  %s}"])
def test_a_cast_parses_with_or_without_spaces(cast: str, spelling: str) -> None:
    """Each of the five casts parses after '|', spaces around it optional; the reference is
    what references() and single_reference() report, as without a cast."""
    text = spelling % cast
    assert parse_template(text) == (Placeholder(("a", "b"), cast),)  # type: ignore[arg-type]
    assert references({"k": [f"x{text}"]}) == [("a", "b")]
    assert single_reference(text) == ("a", "b")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("${a.b | integer}", "'integer' is not a cast (casts: string, int, float, bool, json)"),
        ("${a.b | String}", "'String' is not a cast"),
        ("${a.b |}", "'' is not a cast"),
        ("${a.b | int | string}", "is not a reference"),
        ("${a.b |\tint}", "is not a reference"),
        ("${ a.b | int}", "is not a reference"),
        ("${| int}", "is not a reference"),
    ],
)
def test_a_malformed_cast_is_a_template_error(text: str, problem: str) -> None:
    """An unknown cast lists the casts; two casts, tabs or a missing reference are refused."""
    with pytest.raises(TemplateError) as caught:
        parse_template(text)
    assert problem in caught.value.details["problem"]


def test_a_malformed_cast_in_a_manifest_names_the_key() -> None:
    """The manifest parser refuses an unknown cast with the step argument's key."""
    with pytest.raises(ManifestError) as caught:
        parse_action_manifest(manifest_text('name = "${one.id | str}"\n'), source="casts.md")
    assert caught.value.details["key"] == "execute[1].args.name"
    assert "'str' is not a cast" in caught.value.details["problem"]


def test_an_escaped_cast_is_literal_text() -> None:
    """'$${a.b | int}' is the text '${a.b | int}', not a placeholder."""
    assert render("$${a.b | int}", {}) == "${a.b | int}"


# --- rendering ------------------------------------------------------------------------------


def test_casts_feed_typed_inputs_from_another_step_result() -> None:
    """An integer id feeds a string input, strings feed integer, number and boolean inputs, and
    a whole result feeds a string as JSON; the rendered arguments pass the operation's check."""
    one = {"id": 1234, "size": "7", "share": "0.25", "open": "true", "tags": ["a"]}
    rendered = render_put(one)
    assert rendered == {
        "name": "1234",
        "count": 7,
        "ratio": 0.25,
        "flag": True,
        "raw": '{"id":1234,"size":"7","share":"0.25","open":"true","tags":["a"]}',
    }
    operation = installed()["local://casts"].find_operation("things", "put")
    assert validate_args(operation, rendered) == rendered


def test_a_cast_inside_a_longer_string_renders_the_cast_value_as_text() -> None:
    """'#${one.id | int}' writes the converted value into the text: "007" → "#7"."""
    assert render_put({"id": "007"}, 'name = "#${one.id | int}"\n') == {"name": "#7"}
    assert render("${a | float}%", {"a": 5}) == "5.0%"


def test_null_stays_null_so_an_omitted_optional_input_stays_omitted() -> None:
    """Every cast keeps null, and a step argument that renders to null is left out."""
    assert [cast_value(None, cast) for cast in CASTS] == [None] * len(CASTS)
    rendered = render_put(None, 'name = "x"\ncount = "${args.n | int}"\n')
    assert rendered == {"name": "x"}
    assert render_put(None, 'name = "${args.n | string}"\n', {"n": 5}) == {"name": "5"}


@pytest.mark.parametrize(
    ("value", "cast", "expected"),
    [
        (3.0, "int", 3),
        ("-12", "int", -12),
        ("+5", "int", 5),
        (3, "float", 3.0),
        ("1e3", "float", 1000.0),
        (False, "bool", False),
        ("false", "bool", False),
        (True, "string", "true"),
        ([1, None], "string", "[1,null]"),
        ("é", "json", '"é"'),
        ("abc", "string", "abc"),
    ],
)
def test_cast_conversions(value: Any, cast: Any, expected: Any) -> None:
    """The documented conversions, type included (3.0 | int is the integer 3)."""
    result = cast_value(value, cast)
    assert result == expected
    assert type(result) is type(expected)


# --- impossible casts -----------------------------------------------------------------------

SECRETISH = "sk-not-a-number-8c1f"


@pytest.mark.parametrize(
    ("value", "cast", "problem"),
    [
        (SECRETISH, "int", "a string cannot be cast to int"),
        (True, "int", "a boolean cannot be cast to int"),
        (2.5, "int", "a number cannot be cast to int"),
        ("1e3", "int", "a string cannot be cast to int"),
        (" 4", "int", "a string cannot be cast to int"),
        ("9" * 5000, "int", "a string of 5000 digits is too long"),
        ([1], "float", "an array cannot be cast to float"),
        ("nan", "float", "a string cannot be cast to float"),
        ("Infinity", "float", "a string cannot be cast to float"),
        (False, "float", "a boolean cannot be cast to float"),
        (10**400, "float", "an integer is beyond a float's range"),
        ("1e999", "float", "a string is beyond a float's range"),
        ("yes", "bool", "a string cannot be cast to bool"),
        (0, "bool", "an integer cannot be cast to bool"),
        ({"a": 1}, "bool", "an object cannot be cast to bool"),
    ],
)
def test_an_impossible_cast_names_the_step_and_input_but_not_the_value(
    value: Any, cast: str, problem: str
) -> None:
    """An impossible cast is a TemplateError naming the step, the input, the placeholder and
    the value's type — never the value, which may be a secret an upstream echoed."""
    key = {"int": "count", "float": "ratio", "bool": "flag"}[cast]
    with pytest.raises(TemplateError) as caught:
        render_put({"x": value}, f'name = "x"\n{key} = "${{one.x | {cast}}}"\n')
    error = caught.value
    assert error.code == "template_error"
    assert error.details["step"] == "two"
    assert error.details["input"] == key
    assert error.details["reference"] == "one.x"
    assert str(error).startswith(f"step 'two', input '{key}': template '${{one.x | {cast}}}'")
    assert problem in str(error)
    assert SECRETISH not in str(error) and SECRETISH not in json.dumps(error.details)


def test_a_reference_to_nothing_also_names_the_step_and_input() -> None:
    """Rendering errors that are not casts carry the step and input too."""
    with pytest.raises(TemplateError) as caught:
        render_put({"id": 1}, 'name = "${one.missing}"\n')
    assert caught.value.details["step"] == "two"
    assert caught.value.details["input"] == "name"
    assert "has no field 'missing'" in str(caught.value)


# --- fitting to the connector before running ------------------------------------------------


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ('name = "x"\ncount = "${one.id | string}"\n', "is string, but input 'count' takes"),
        ('name = "${one.id | int}"\n', "is integer, but input 'name' takes string"),
        ('name = "x"\ncount = "${one.id | float}"\n', "is number, but input 'count' takes"),
        ('name = "x"\nflag = "${one.id | json}"\n', "is string, but input 'flag' takes boolean"),
        ('name = "x"\nratio = "${one.id | bool}"\n', "is boolean, but input 'ratio' takes"),
    ],
)
def test_a_whole_value_cast_has_its_type_when_checked_against_the_connector(
    args: str, problem: str
) -> None:
    """check_requirements knows a cast's result type before running and refuses a mismatch."""
    manifest = parse_action_manifest(manifest_text(args), source="casts.md")
    with pytest.raises(ManifestError) as caught:
        check_requirements(manifest, installed(), source="casts.md")
    assert problem in caught.value.details["problem"]


def test_a_cast_lets_an_integer_input_feed_a_string_input() -> None:
    """Without a cast an integer argument cannot feed a string input; with '| string' it can."""
    with pytest.raises(ManifestError):
        render_put({}, 'name = "${args.n}"\n', {"n": 5})
    assert render_put({}, 'name = "${args.n | string}"\n', {"n": 5}) == {"name": "5"}


# --- round trips ----------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@given(st.integers(min_value=-(10**100), max_value=10**100))
def test_an_integer_round_trips_through_string(number: int) -> None:
    """int → string → int is the identity, and the text is the decimal spelling."""
    text = render("${a | string}", {"a": number})
    assert text == str(number)
    assert render("${a | int}", {"a": text}) == number


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_round_trips_through_string(number: float) -> None:
    """float → string → float is the identity (the text is JSON's shortest spelling)."""
    text = cast_value(number, "string")
    result = cast_value(text, "float")
    assert result == number and math.copysign(1, result) == math.copysign(1, number)


@given(st.booleans())
def test_a_boolean_round_trips_through_string(flag: bool) -> None:
    """bool → string → bool is the identity ("true" / "false")."""
    assert cast_value(cast_value(flag, "string"), "bool") is flag


@given(JSON_VALUES)
def test_json_cast_round_trips_any_json_value(value: Any) -> None:
    """json.loads of a '| json' result gives the value back; null stays null."""
    rendered = render("${a | json}", {"a": value})
    if value is None:
        assert rendered is None
    else:
        assert isinstance(rendered, str) and json.loads(rendered) == value


@given(st.text())
def test_string_cast_keeps_a_string_as_is(text: str) -> None:
    """'| string' on a string is the identity (no quotes added, nothing escaped)."""
    assert render("${a | string}", {"a": text}) == text


@given(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)))
def test_int_cast_never_loses_value_silently(number: float) -> None:
    """'| int' either keeps the number's exact value or refuses: it never rounds."""
    try:
        result = cast_value(number, "int")
    except ValueError:
        assert isinstance(number, float) and not number.is_integer()
    else:
        assert isinstance(result, int) and result == number
