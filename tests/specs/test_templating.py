"""`${…}` placeholders render typed, substitute into text, nest, escape, and fail loudly."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aileron_core.templating import (
    Placeholder,
    TemplateError,
    parse_template,
    references,
    render,
    single_reference,
)

PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Text rich in the characters the template syntax cares about, and text of any kind.
template_texts = st.text(alphabet="${}.ab_0- ", max_size=40) | st.text(max_size=40)

CONTEXT: dict[str, Any] = {
    "args": {"title": "Bug", "count": 3, "flag": True, "none": None, "tags": ["a", "b"]},
    "find": {"items": [{"id": 7, "name": "first"}], "meta": {"total": 1.5}},
}


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("${args.count}", 3),
        ("${args.flag}", True),
        ("${args.none}", None),
        ("${args.tags}", ["a", "b"]),
        ("${find.items.0}", {"id": 7, "name": "first"}),
        ("${find.items.0.id}", 7),
        ("${args}", CONTEXT["args"]),
    ],
)
def test_a_single_placeholder_keeps_the_value_type(template: str, value: Any) -> None:
    """A string that is exactly one placeholder renders to the referenced value itself."""
    assert render(template, CONTEXT) == value


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("Title: ${args.title}", "Title: Bug"),
        ("${args.count} items", "3 items"),
        ("${args.title}${args.count}", "Bug3"),
        ("flag=${args.flag}, none=${args.none}", "flag=true, none=null"),
        ("tags=${args.tags}", 'tags=["a","b"]'),
        ("total ${find.meta.total}", "total 1.5"),
        ("${find.items.0.name}!", "first!"),
        ("no placeholders", "no placeholders"),
        ("", ""),
    ],
)
def test_mixed_text_substitutes_each_value_as_text(template: str, text: str) -> None:
    """In longer text, strings are inserted as is and other values as compact JSON."""
    assert render(template, CONTEXT) == text


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("$${args.title}", "${args.title}"),
        ("cost: $${x} and ${args.count}", "cost: ${x} and 3"),
        ("$$${args.title}", "$${args.title}"),
        ("$5 and $$ and $}", "$5 and $$ and $}"),
        ("{args.title}", "{args.title}"),
    ],
)
def test_escapes_and_lone_dollars(template: str, text: str) -> None:
    """`$${` is a literal `${`, and a `$` not followed by `{` is ordinary text."""
    assert render(template, CONTEXT) == text


def test_an_escaped_placeholder_is_text_not_a_single_reference() -> None:
    """`$${a.b}` is not a placeholder, so it renders as a string and lists no reference."""
    assert single_reference("$${args.count}") is None
    assert references("$${args.count}") == []


def test_nested_structures_render_recursively() -> None:
    """Lists and object values render recursively; keys and other scalars stay as they are."""
    value = {"a": ["${args.count}", {"${args.title}": "x ${args.title}"}], "n": 5, "b": False}
    assert render(value, CONTEXT) == {"a": [3, {"${args.title}": "x Bug"}], "n": 5, "b": False}
    assert render(("${args.count}",), CONTEXT) == [3]


def test_references_lists_every_reference_in_order() -> None:
    """references() walks strings, lists and object values and returns parsed references."""
    value = {"a": "${args.x} and ${s1.y.0}", "b": ["${args.z}"], "c": 1}
    assert references(value) == [("args", "x"), ("s1", "y", "0"), ("args", "z")]
    assert parse_template("a${b.c}d") == ("a", Placeholder(("b", "c")), "d")


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("${nowhere.x}", "nothing named 'nowhere'"),
        ("${args.missing}", "args (an object) has no field 'missing'"),
        ("${args.title.length}", "args.title (a str) has no field 'length'"),
        ("${find.items.3}", "find.items (an array of 1) has no element '3'"),
        ("${find.items.01}", "has no element '01'"),
        ("${args.none.x}", "args.none (null) has no field 'x'"),
        ("x ${nowhere.x}", "nothing named 'nowhere'"),
    ],
)
def test_unknown_references_raise_template_errors(template: str, problem: str) -> None:
    """A reference that resolves to nothing is a TemplateError naming where it stopped."""
    with pytest.raises(TemplateError) as caught:
        render(template, CONTEXT)
    assert caught.value.code == "template_error"
    assert problem in caught.value.details["problem"]
    assert caught.value.details["template"] == template
    assert "reference" in caught.value.details


@pytest.mark.parametrize(
    "template",
    [
        "${",
        "${args.title",
        "${}",
        "${ args.x }",
        "${args..x}",
        "${args.x-y!}",
        "${1abc}",
        "${a}}${",
    ],
)
def test_malformed_placeholders_raise_template_errors(template: str) -> None:
    """A `${` that does not start a well-formed reference is an error, never literal text."""
    with pytest.raises(TemplateError) as caught:
        references(template)
    assert "'${'" in caught.value.details["problem"]


def test_values_that_are_not_json_cannot_be_written_into_text() -> None:
    """Putting a non-JSON value into mixed text is a TemplateError, not a Python repr."""
    with pytest.raises(TemplateError) as caught:
        render("x ${v.w}", {"v": {"w": {1, 2}}})
    assert "a set cannot be written as text" in caught.value.details["problem"]


@PROPERTY
@given(template_texts)
def test_arbitrary_text_raises_only_template_errors(text: str) -> None:
    """Whatever the text, parsing and rendering raise TemplateError and nothing else."""
    try:
        render(text, CONTEXT)
    except TemplateError as error:
        assert error.details["template"] == text


@PROPERTY
@given(st.text(alphabet=st.characters(blacklist_characters="$"), max_size=40))
def test_text_without_dollars_renders_unchanged(text: str) -> None:
    """Text with no `$` is never changed by rendering."""
    assert render(text, CONTEXT) == text


@PROPERTY
@given(template_texts)
def test_escaping_every_dollar_brace_renders_the_original_text(text: str) -> None:
    """Writing `$${` for each `${` makes any text render back to itself."""
    assert render(text.replace("${", "$${"), {}) == text
