"""Action manifests parse strictly and report problems by line (TOML syntax) or by key."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aileron_core.actions import (
    ActionApproval,
    ActionInput,
    ActionManifest,
    ConnectorRequirement,
    ManifestError,
    Step,
    check_requirements,
    parse_action_manifest,
    render_step_args,
)
from aileron_core.connectors import ConnectorSpec, parse_connector_spec
from aileron_core.convert import converter

PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

FRONT = """\
name = "file-issue"
version = "1.0.0"

[[inputs]]
name = "title"
type = "string"
description = "Issue title."

[[inputs]]
name = "labels"
type = "array"
required = false

[[requires.connectors]]
fqn = "github://acme/tracker"
version = "1.2.0"
binding = "token/acme/work"

[[execute]]
id = "find"
connector = "github://acme/tracker"
tool = "issues"
op = "list"
args = { owner = "acme", repo = "tracker" }

[[execute]]
id = "create"
connector = "github://acme/tracker"
tool = "issues"
op = "create"

[execute.args]
title = "${args.title}"
body = "Seen ${find.0.title}; costs $${price}"
labels = "${args.labels}"

[approval]
required = true
"""

BODY = "\n\n  File an issue in the **tracker**.\n\nMore text.\n\n"


def manifest_text(front: str = FRONT, body: str = BODY) -> str:
    return f"+++\n{front}+++\n{body}"


def parse(text: str) -> Any:
    return parse_action_manifest(text, source="file-issue.md")


def test_valid_manifest_parses_into_the_model() -> None:
    """Front matter becomes the model, defaults are filled, and the body is the description."""
    manifest = parse(manifest_text())
    assert manifest.name == "file-issue"
    assert manifest.version == "1.0.0"
    assert manifest.description == "File an issue in the **tracker**.\n\nMore text."
    assert manifest.inputs == (
        ActionInput(name="title", type="string", description="Issue title."),
        ActionInput(name="labels", type="array", required=False),
    )
    assert manifest.requires.connectors == (
        ConnectorRequirement(
            fqn="github://acme/tracker", version="1.2.0", binding="token/acme/work"
        ),
    )
    assert manifest.execute[0] == Step(
        id="find",
        connector="github://acme/tracker",
        tool="issues",
        op="list",
        args={"owner": "acme", "repo": "tracker"},
    )
    assert manifest.execute[1].args["body"] == "Seen ${find.0.title}; costs $${price}"
    assert manifest.approval == ActionApproval(required=True)
    assert manifest.approval_required
    assert manifest.requirement("github://acme/tracker") is not None
    assert manifest.find_input("labels") is not None and manifest.find_input("x") is None


def test_the_shared_converter_round_trips_a_manifest() -> None:
    """A manifest unstructures to JSON data shaped like its front matter, and back."""
    manifest = parse(manifest_text())
    data = converter.unstructure(manifest)
    assert data["requires"]["connectors"][0]["binding"] == "token/acme/work"
    assert data["approval"] == {"required": True}
    assert converter.structure(json.loads(json.dumps(data)), ActionManifest) == manifest


def test_bytes_crlf_and_a_bom_are_accepted() -> None:
    """UTF-8 bytes with a BOM and CRLF line endings parse like plain text."""
    text = manifest_text().replace("\n", "\r\n")
    manifest = parse_action_manifest(b"\xef\xbb\xbf" + text.encode())
    assert manifest.name == "file-issue"
    assert manifest.description == "File an issue in the **tracker**.\n\nMore text."


def test_optional_tables_default() -> None:
    """Without [[inputs]], [approval] or args, the manifest has no inputs, no approval, {} args."""
    front = """\
name = "ping"
version = "1"
[[requires.connectors]]
fqn = "local://echo"
version = "1.0.0"
[[execute]]
id = "ping"
connector = "local://echo"
tool = "echo"
op = "say"
"""
    manifest = parse(manifest_text(front, "Ping."))
    assert manifest.inputs == ()
    assert not manifest.approval_required
    assert manifest.execute[0].args == {}


# --- errors ---------------------------------------------------------------------------------


def replace(old: str, new: str) -> str:
    assert old in FRONT
    return manifest_text(FRONT.replace(old, new, 1))


KEY_ERRORS: list[tuple[str, str, str, str]] = [
    ("unknown key", replace('version = "1.0.0"', 'version = "1.0.0"\nauthor = "me"'), "author",
     "unknown key"),
    ("missing name", replace('name = "file-issue"\n', ""), "name", "required but missing"),
    ("name not kebab", replace('"file-issue"', '"File_Issue"'), "name", "kebab-case"),
    ("name too long", replace('"file-issue"', '"' + "a" * 65 + '"'), "name", "at most 64"),
    ("version type", replace('version = "1.0.0"', "version = 1"), "version",
     "must be a string, not an integer"),
    ("input type", replace('type = "array"', 'type = "list"'), "inputs[1].type",
     "is not one of string"),
    ("input required type", replace("required = false", 'required = "no"'),
     "inputs[1].required", "must be true or false"),
    ("input name", replace('name = "title"', 'name = "ti.tle"'), "inputs[0].name", "letters"),
    ("duplicate input", replace('name = "labels"', 'name = "title"'), "inputs[1].name",
     "duplicate input 'title' (first at inputs[0].name)"),
    ("bad fqn", replace('fqn = "github://acme/tracker"', 'fqn = "acme"'),
     "requires.connectors[0].fqn", "github://<owner>/<repo>"),
    ("bad binding", replace('"token/acme/work"', '"acme"'), "requires.connectors[0].binding",
     "<kind>/<service>/<identity>"),
    ("requires not an array", replace(
        '[[requires.connectors]]\nfqn = "github://acme/tracker"\nversion = "1.2.0"\n'
        'binding = "token/acme/work"\n',
        '[requires]\nconnectors = "github://acme/tracker"\n'),
     "requires.connectors", "must be an array, not a string"),
    ("step connector not required", replace(
        'id = "find"\nconnector = "github://acme/tracker"', 'id = "find"\nconnector = "local://x"'),
     "execute[0].connector", "is not listed in [[requires.connectors]]"),
    ("step missing op", replace('op = "list"\n', ""), "execute[0].op", "required but missing"),
    ("step id reserved", replace('id = "find"', 'id = "args"'), "execute[0].id", "reserved"),
    ("duplicate step id", replace('id = "create"', 'id = "find"'), "execute[1].id",
     "duplicate step id 'find'"),
    ("args not a table", replace('args = { owner = "acme", repo = "tracker" }', "args = 3"),
     "execute[0].args", "must be an object, not an integer"),
    ("date in args", replace('owner = "acme"', "owner = 1979-05-27"), "execute[0].args.owner",
     "must be JSON data, not a date"),
    ("infinity in args", replace('owner = "acme"', "owner = inf"), "execute[0].args.owner",
     "finite number"),
    ("undeclared input", replace("${args.title}", "${args.tittle}"), "execute[1].args.title",
     "${args.tittle} names no declared input (declared: title, labels)"),
    ("later step", replace('owner = "acme"', 'owner = "${create.user}"'),
     "execute[0].args.owner", "refers to step 'create', which has not run yet"),
    ("unknown root", replace("${find.0.title}", "${nowhere.title}"), "execute[1].args.body",
     "'nowhere' is neither 'args' nor the id of an earlier step"),
    ("field of a scalar input", replace("${args.title}", "${args.title.x}"),
     "execute[1].args.title", "input 'title' is a string; it has no fields"),
    ("malformed placeholder", replace("${args.title}", "${args title}"),
     "execute[1].args.title", "is not a reference"),
    ("unclosed placeholder", replace("${args.title}", "${args.title"),
     "execute[1].args.title", "has no closing '}'"),
    ("nested placeholder key", replace('owner = "acme"', 'owner = ["${args.nope}"]'),
     "execute[0].args.owner", "names no declared input"),
    ("approval type", replace("required = true", 'required = "yes"'), "approval.required",
     "must be true or false"),
    ("approval unknown key", replace("required = true", "needed = true"), "approval.needed",
     "unknown key"),
    ("unused requirement", replace(
        'binding = "token/acme/work"\n',
        'binding = "token/acme/work"\n[[requires.connectors]]\nfqn = "local://echo"\n'
        'version = "1"\n'),
     "requires.connectors[1].fqn", "no step uses local://echo"),
    ("duplicate requirement", replace(
        'binding = "token/acme/work"\n',
        'binding = "token/acme/work"\n[[requires.connectors]]\nfqn = "github://acme/tracker"\n'
        'version = "1"\n'),
     "requires.connectors[1].fqn", "duplicate connector"),
    ("no steps", manifest_text(
        FRONT[: FRONT.index("[[execute]]")].replace("version = \"1.0.0\"\n",
                                                    "version = \"1.0.0\"\nexecute = []\n", 1)),
     "execute", "must not be empty"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [pytest.param(text, key, problem, id=name) for name, text, key, problem in KEY_ERRORS],
)
def test_each_semantic_error_names_its_key(text: str, key: str, problem: str) -> None:
    """A broken rule raises ManifestError whose message and details name the key."""
    with pytest.raises(ManifestError) as caught:
        parse(text)
    error = caught.value
    assert error.code == "invalid_action_manifest"
    assert error.details["key"] == key
    assert problem in error.details["problem"]
    assert "line" not in error.details
    assert error.message == f"file-issue.md: {key}: {error.details['problem']}"


LINE_ERRORS: list[tuple[str, str | bytes, int | None, str]] = [
    ("no opening fence", "name = 'x'\n", 1, "starts with a '+++' line"),
    ("fence with trailing text", "+++ toml\nname = 'x'\n+++\nBody", 1, "starts with a '+++'"),
    ("no closing fence", "+++\nname = 'x'\nversion = '1'\n", 4, "no closing '+++'"),
    ("toml syntax", "+++\nname = 'x'\nversion = \n+++\nBody", 3, "invalid TOML"),
    ("toml duplicate key", "+++\nname = 'x'\n\nname = 'y'\n+++\nBody", 4, "invalid TOML"),
    ("toml at end", "+++\nname = 'x\n+++\nBody", 2, "invalid TOML"),
    ("empty body", manifest_text(body="\n  \n"), len(FRONT.splitlines()) + 3, "body"),
    ("control char in body", manifest_text(body="\nok\nbad\x07\n"), len(FRONT.splitlines()) + 5,
     "control characters"),
    ("not utf-8", b"+++\n\xff\n+++\n", None, "not UTF-8"),
    ("lone surrogate", "+++\nname = '\ud800'\n+++\nBody", None, "lone surrogate"),
    ("too large", "+++\n" + "#" * 300_000, None, "larger than"),
    ("deep nesting", "+++\nx = " + "[" * 5000 + "\n+++\nBody", None, "nested"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [pytest.param(text, line, problem, id=name) for name, text, line, problem in LINE_ERRORS],
)
def test_syntax_errors_name_the_line(text: str | bytes, line: int | None, problem: str) -> None:
    """Fences, TOML syntax and the body are reported with the line of the file (when known)."""
    with pytest.raises(ManifestError) as caught:
        parse_action_manifest(text, source="m.md")
    error = caught.value
    assert error.details.get("line") == line
    assert problem in error.details["problem"]
    prefix = f"m.md:{line}: " if line is not None else "m.md: "
    assert error.message.startswith(prefix)
    assert "key" not in error.details


def test_toml_errors_keep_the_column() -> None:
    """A TOML syntax error is reported at the manifest's line, with tomllib's column."""
    with pytest.raises(ManifestError) as caught:
        parse_action_manifest("+++\nname = 'x'\nversion = @\n+++\nBody", source="m.md")
    assert re.fullmatch(r"m\.md:3: invalid TOML: .+ \(column 11\)", caught.value.message)


# --- fitting installed connectors -----------------------------------------------------------

SPEC = {
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
                        {"name": "per_page", "type": "integer", "in": "query", "required": False},
                    ],
                },
                {
                    "name": "create",
                    "summary": "Create an issue.",
                    "method": "POST",
                    "path": "/issues",
                    "hosts": ["api.acme.test"],
                    "inputs": [
                        {"name": "title", "type": "string", "in": "body"},
                        {"name": "body", "type": "string", "in": "body", "required": False},
                        {"name": "labels", "type": "array", "in": "body", "required": False},
                    ],
                },
            ],
        }
    ],
}


def specs(**changes: Any) -> dict[str, ConnectorSpec]:
    doc = json.loads(json.dumps(SPEC))
    doc["connector"].update(changes)
    spec = parse_connector_spec(json.dumps(doc))
    return {spec.fqn: spec}


def test_a_fitting_manifest_passes_check_requirements() -> None:
    """A manifest whose steps match the installed spec passes without error."""
    check_requirements(parse(manifest_text()), specs())


@pytest.mark.parametrize(
    ("text", "installed", "key", "problem"),
    [
        (manifest_text(), {}, "requires.connectors[0].fqn", "is not installed"),
        (manifest_text(), specs(version="2.0.0"), "requires.connectors[0].version", "2.0.0"),
        (replace("token/acme/work", "token/other/work"), specs(), "requires.connectors[0].binding",
         "is not for service 'acme'"),
        (replace('tool = "issues"', 'tool = "pulls"'), specs(), "execute[0].tool",
         "has no tool 'pulls' (issues)"),
        (replace('op = "list"', 'op = "delete"'), specs(), "execute[0].op",
         "has no operation 'delete' (list, create)"),
        (replace('repo = "tracker"', 'repo = "tracker", sort = "asc"'), specs(),
         "execute[0].args.sort", "has no input 'sort'"),
        (replace(', repo = "tracker"', ""), specs(), "execute[0].args.repo",
         "requires this input"),
        (replace('repo = "tracker"', 'repo = "tracker", per_page = "10"'), specs(),
         "execute[0].args.per_page", "is string, but input 'per_page' takes integer"),
        (replace('labels = "${args.labels}"', 'labels = "${args.title}"'), specs(),
         "execute[1].args.labels", "is string, but input 'labels' takes array"),
        (replace('repo = "tracker"', 'repo = true'), specs(), "execute[0].args.repo",
         "is boolean"),
    ],
)  # fmt: skip
def test_check_requirements_names_the_mismatch(
    text: str, installed: dict[str, ConnectorSpec], key: str, problem: str
) -> None:
    """Missing connectors, versions, bindings, tools, operations and arguments are named."""
    with pytest.raises(ManifestError) as caught:
        check_requirements(parse(text), installed, source="file-issue.md")
    assert caught.value.details["key"] == key
    assert problem in caught.value.details["problem"]


def test_typed_constants_and_step_results_pass_check_requirements() -> None:
    """Integer constants fit integer inputs, and step-result references are not judged early."""
    text = replace('repo = "tracker"', 'repo = "${args.title}", per_page = 10')
    check_requirements(parse(text), specs())


def test_render_step_args_renders_and_drops_omitted_optional_inputs() -> None:
    """Rendering uses args and earlier results, keeps types, and omits an unset optional input."""
    manifest = parse(manifest_text())
    results = {"find": [{"title": "Old bug"}]}
    rendered = render_step_args(manifest, manifest.execute[1], {"title": "New bug"}, results)
    assert rendered == {"title": "New bug", "body": "Seen Old bug; costs ${price}"}
    with_labels = render_step_args(
        manifest, manifest.execute[1], {"title": "T", "labels": ["a", "b"]}, results
    )
    assert with_labels["labels"] == ["a", "b"]


# --- property tests -------------------------------------------------------------------------


def assert_only_manifest_error(text: str | bytes) -> None:
    try:
        parse_action_manifest(text, source="fuzz.md")
    except ManifestError as error:
        assert error.message.startswith("fuzz.md")
        assert error.details["source"] == "fuzz.md"
        json.dumps(error.details)


@PROPERTY
@given(st.text(max_size=300))
def test_arbitrary_text_raises_only_manifest_errors(text: str) -> None:
    """Whatever the text, the parser raises ManifestError and nothing else."""
    assert_only_manifest_error(text)


@PROPERTY
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_manifest_errors(data: bytes) -> None:
    """Whatever the bytes, the parser raises ManifestError and nothing else."""
    assert_only_manifest_error(data)


@PROPERTY
@given(front=st.text(max_size=300), body=st.text(max_size=30))
def test_arbitrary_front_matter_raises_only_manifest_errors(front: str, body: str) -> None:
    """Arbitrary text between the fences raises ManifestError and nothing else."""
    assert_only_manifest_error(f"+++\n{front}\n+++\n{body}")


toml_atoms = st.sampled_from(
    [
        '"x"',
        '"${args.title}"',
        '"${find}"',
        '"${"',
        "1",
        "-1.5",
        "inf",
        "true",
        "[]",
        '["a", 1]',
        "{}",
        '{ a = "b" }',
        "1979-05-27",
        "07:32:00",
        '"file-issue"',
        '"github://acme/tracker"',
    ]
)
FRONT_LINES = FRONT.splitlines()


@PROPERTY
@given(
    index=st.integers(0, len(FRONT_LINES) - 1),
    how=st.sampled_from(["drop", "retype", "duplicate"]),
    atom=toml_atoms,
)
def test_mutated_manifests_raise_only_manifest_errors(index: int, how: str, atom: str) -> None:
    """Dropping, duplicating or retyping a front matter line gives a manifest or ManifestError."""
    lines = list(FRONT_LINES)
    if how == "drop":
        del lines[index]
    elif how == "duplicate":
        lines.insert(index, lines[index])
    elif "=" in lines[index]:
        key = lines[index].split("=", 1)[0]
        lines[index] = f"{key}= {atom}"
    else:
        lines[index] = atom
    try:
        manifest = parse("+++\n" + "\n".join(lines) + "\n+++\nBody.")
    except ManifestError as error:
        assert "key" in error.details or "line" in error.details
    else:
        assert manifest.description == "Body."
