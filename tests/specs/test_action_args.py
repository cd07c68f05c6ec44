"""Call arguments are checked against declared inputs, coerced from the CLI, and digested."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aileron_core.actions import ActionManifest, parse_action_manifest
from aileron_core.arguments import ArgsError, args_digest, coerce_cli_arg, validate_args
from aileron_core.canonical import canonical_sha256
from aileron_core.connectors import parse_connector_spec

PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

TYPES = ("string", "number", "integer", "boolean", "array", "object")


def manifest_with(inputs: list[tuple[str, str, bool]]) -> ActionManifest:
    """A manifest declaring ``inputs`` as (name, type, required)."""
    declared = "".join(
        f'[[inputs]]\nname = "{name}"\ntype = "{kind}"\nrequired = {str(required).lower()}\n'
        for name, kind, required in inputs
    )
    return parse_action_manifest(
        "+++\n"
        'name = "typed"\nversion = "1"\n'
        f"{declared}"
        '[[requires.connectors]]\nfqn = "local://echo"\nversion = "1"\n'
        '[[execute]]\nid = "s"\nconnector = "local://echo"\ntool = "echo"\nop = "say"\n'
        "+++\nTyped inputs."
    )


ALL = manifest_with([(kind, kind, True) for kind in TYPES] + [("maybe", "string", False)])
GOOD: dict[str, Any] = {
    "string": "s",
    "number": 1.5,
    "integer": 3,
    "boolean": False,
    "array": [1, "a", None, {"b": [True]}],
    "object": {"k": [1.0, {}]},
}


def test_valid_arguments_are_returned() -> None:
    """Arguments of the declared types pass and come back as a plain dict."""
    assert validate_args(ALL, GOOD) == GOOD
    assert validate_args(ALL, {**GOOD, "maybe": "x"}) == {**GOOD, "maybe": "x"}


def test_null_for_an_optional_input_means_not_given() -> None:
    """None for an optional input is dropped; for a required one it is an error."""
    assert "maybe" not in validate_args(ALL, {**GOOD, "maybe": None})
    with pytest.raises(ArgsError) as caught:
        validate_args(ALL, {**GOOD, "string": None})
    assert caught.value.details == {
        "fields": [{"name": "string", "problem": "is required, got null"}]
    }


def test_integral_floats_count_as_integers() -> None:
    """3.0 is accepted for an integer input and normalized to 3, as JSON Schema does."""
    result = validate_args(ALL, {**GOOD, "integer": 3.0})
    assert result["integer"] == 3 and isinstance(result["integer"], int)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("string", 1, "expected a string, got an integer"),
        ("integer", True, "expected an integer, got a boolean"),
        ("integer", 1.5, "expected an integer, got a number"),
        ("integer", "3", "expected an integer, got a string"),
        ("number", False, "expected a number, got a boolean"),
        ("number", "1.5", "expected a number, got a string"),
        ("number", math.inf, "NaN or infinity"),
        ("boolean", 0, "expected a boolean, got an integer"),
        ("boolean", "true", "expected a boolean, got a string"),
        ("array", (1, 2), "expected an array, got a tuple"),
        ("array", {"a": 1}, "expected an array, got an object"),
        ("array", [1, {2}], "holds a set, which is not JSON data"),
        ("object", [], "expected an object, got an array"),
        ("object", {1: "a"}, "object key that is not a string"),
        ("object", {"a": math.nan}, "NaN or infinity"),
        ("string", "\ud800", "lone surrogate"),
    ],
)
def test_each_wrong_type_is_named(name: str, value: Any, problem: str) -> None:
    """A value of the wrong type (or not JSON data) is reported against its input's name."""
    with pytest.raises(ArgsError) as caught:
        validate_args(ALL, {**GOOD, name: value})
    assert caught.value.code == "invalid_arguments"
    [field] = caught.value.details["fields"]
    assert field["name"] == name
    assert problem in field["problem"]


def test_every_bad_field_is_named_at_once() -> None:
    """Missing, mistyped and unknown arguments are all reported in one error."""
    args = {k: v for k, v in GOOD.items() if k not in ("array", "object")}
    args.update(integer="x", extra=1)
    with pytest.raises(ArgsError) as caught:
        validate_args(ALL, args)
    fields = caught.value.details["fields"]
    assert fields == [
        {"name": "integer", "problem": "expected an integer, got a string"},
        {"name": "array", "problem": "is required but missing"},
        {"name": "object", "problem": "is required but missing"},
        {"name": "extra", "problem": "unknown argument for action 'typed'"},
    ]
    assert "integer: expected an integer" in caught.value.message
    assert caught.value.hint is not None and "maybe (string)" in caught.value.hint


def test_arguments_that_are_not_an_object_are_refused() -> None:
    """A non-object argument list is one ArgsError, not a crash."""
    with pytest.raises(ArgsError) as caught:
        validate_args(ALL, ["a"])  # type: ignore[arg-type]
    assert "must be an object, not an array" in caught.value.message


def test_connector_operations_are_validated_the_same_way() -> None:
    """validate_args also checks the inputs of a connector operation called directly."""
    spec = parse_connector_spec(
        json.dumps(
            {
                "schema_version": "aileron.connector.v1",
                "connector": {"fqn": "local://echo", "version": "1", "description": "Echo."},
                "credential": {"service": "echo", "kind": "bearer"},
                "tools": [
                    {
                        "name": "echo",
                        "description": "Echo.",
                        "operations": [
                            {
                                "name": "say",
                                "summary": "Say.",
                                "method": "POST",
                                "path": "/echo",
                                "hosts": ["localhost"],
                                "inputs": [{"name": "n", "type": "integer", "in": "body"}],
                            }
                        ],
                    }
                ],
            }
        )
    )
    operation = spec.find_operation("echo", "say")
    assert validate_args(operation, {"n": 1}) == {"n": 1}
    with pytest.raises(ArgsError) as caught:
        validate_args(operation, {"n": "1"})
    assert caught.value.details["fields"] == [
        {"name": "n", "problem": "expected an integer, got a string"}
    ]
    assert "operation 'say'" in caught.value.message
    assert coerce_cli_arg(operation, "n", "7") == 7


# --- property tests -------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=20),
    "number": st.integers() | st.floats(allow_nan=False, allow_infinity=False),
    "integer": st.integers(),
    "boolean": st.booleans(),
    "array": st.lists(json_values, max_size=3),
    "object": st.dictionaries(st.text(max_size=5), json_values, max_size=3),
}


def fits(kind: str, value: Any) -> bool:
    """Whether ``value`` is valid for ``kind`` by validate_args' documented rules."""
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return {
        "string": isinstance(value, str),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }[kind]


@st.composite
def declared_and_valid(draw: st.DrawFn) -> tuple[ActionManifest, dict[str, Any]]:
    names = draw(st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), unique=True))
    inputs = [(n, draw(st.sampled_from(TYPES)), draw(st.booleans())) for n in names]
    args = {
        name: draw(VALUES[kind])
        for name, kind, required in inputs
        if required or draw(st.booleans())
    }
    return manifest_with(inputs), args


@PROPERTY
@given(declared_and_valid())
def test_values_generated_from_the_declared_types_pass(
    case: tuple[ActionManifest, dict[str, Any]],
) -> None:
    """Any arguments drawn from the declared types are accepted unchanged."""
    manifest, args = case
    assert validate_args(manifest, args) == args


@PROPERTY
@given(kind=st.sampled_from(TYPES), value=json_values)
def test_a_value_of_another_type_is_named(kind: str, value: Any) -> None:
    """Any JSON value that does not fit the input's type is reported under the input's name."""
    manifest = manifest_with([("x", kind, True)])
    if value is None or fits(kind, value):
        return
    with pytest.raises(ArgsError) as caught:
        validate_args(manifest, {"x": value})
    assert [field["name"] for field in caught.value.details["fields"]] == ["x"]


# --- CLI coercion ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("string", " 3 ", " 3 "),
        ("integer", "3", 3),
        ("integer", "-12", -12),
        ("number", "3", 3),
        ("number", "2.5e3", 2500.0),
        ("number", "-.5", -0.5),
        ("boolean", "true", True),
        ("boolean", "FALSE", False),
        ("array", '[1, "a"]', [1, "a"]),
        ("object", '{"a": {"b": null}}', {"a": {"b": None}}),
    ],
)
def test_cli_text_is_coerced_to_the_declared_type(name: str, text: str, value: Any) -> None:
    """--arg text becomes the input's declared type."""
    result = coerce_cli_arg(ALL, name, text)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("integer", "3.5", "expected an integer, got '3.5'"),
        ("integer", "", "expected an integer"),
        ("number", "nan", "expected a number"),
        ("number", "1e999", "expected a number"),
        ("boolean", "yes", "expected a boolean, got 'yes'"),
        ("array", "{}", "expected an array, got an object"),
        ("array", "[1,", "expected an array as JSON"),
        ("object", "NaN", "expected an object as JSON"),
        ("nope", "1", "unknown argument for action 'typed'"),
    ],
)
def test_cli_text_of_the_wrong_type_is_refused(name: str, text: str, problem: str) -> None:
    """Text that does not spell the declared type, or an unknown name, is an ArgsError."""
    with pytest.raises(ArgsError) as caught:
        coerce_cli_arg(ALL, name, text)
    [field] = caught.value.details["fields"]
    assert field["name"] == name
    assert problem in field["problem"]


@PROPERTY
@given(st.integers(-(10**99), 10**99))
def test_cli_integers_round_trip(number: int) -> None:
    """Any integer's decimal text coerces back to the same integer."""
    assert coerce_cli_arg(ALL, "integer", str(number)) == number


# --- digest ---------------------------------------------------------------------------------


def test_args_digest_is_the_canonical_sha256_and_order_independent() -> None:
    """args_digest is sha256 of canonical JSON, so key order does not change it."""
    digest = args_digest({"b": 1, "a": [True, None]})
    assert digest == canonical_sha256({"a": [True, None], "b": 1})
    assert digest == args_digest({"a": [True, None], "b": 1})
    assert digest != args_digest({"a": [True, None], "b": 2})
