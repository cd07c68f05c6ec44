"""The example connectors and actions shipped with aileron-cli parse and fit together."""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable

import pytest

from aileron_core.actions import check_requirements, parse_action_manifest
from aileron_core.arguments import validate_args
from aileron_core.connectors import ConnectorSpec, parse_connector_spec, spec_digest

EXAMPLES = files("aileron_cli") / "examples"


def example_files(kind: str, suffix: str) -> list[Traversable]:
    return sorted(
        (item for item in (EXAMPLES / kind).iterdir() if item.name.endswith(suffix)),
        key=lambda item: item.name,
    )


def example_specs() -> dict[str, ConnectorSpec]:
    parsed = [
        parse_connector_spec(item.read_bytes(), source=item.name)
        for item in example_files("connectors", ".json")
    ]
    return {spec.fqn: spec for spec in parsed}


def test_the_examples_are_package_data() -> None:
    """Both example connectors and all three example actions are shipped in aileron_cli."""
    assert [item.name for item in example_files("connectors", ".json")] == [
        "github-issues.json",
        "local-echo.json",
    ]
    assert [item.name for item in example_files("actions", ".md")] == [
        "echo-careful.md",
        "echo-say.md",
        "github-list-issues.md",
    ]


def test_github_issues_connector() -> None:
    """github-issues offers issues.list (GET, no approval) and issues.create (POST, approval)."""
    spec = example_specs()["github://aileron-examples/issues"]
    assert spec.credential.service == "github" and spec.credential.kind == "bearer"
    listing = spec.find_operation("issues", "list")
    assert (listing.method, listing.path) == ("GET", "/repos/{owner}/{repo}/issues")
    assert [i.name for i in listing.inputs_in("path")] == ["owner", "repo"]
    assert [i.name for i in listing.inputs_in("query")] == ["state"]
    assert listing.base_url == "https://api.github.com" and not listing.approval_required
    create = spec.find_operation("issues", "create")
    assert create.method == "POST" and create.approval_required
    assert [i.name for i in create.inputs_in("body")] == ["title", "body"]


def test_local_echo_connector() -> None:
    """local-echo talks plain HTTP to 127.0.0.1:8765; say-carefully needs approval."""
    spec = example_specs()["local://echo"]
    say = spec.find_operation("echo", "say")
    assert say.base_url == "http://127.0.0.1:8765"
    assert (say.method, say.path, say.approval_required) == ("POST", "/echo", False)
    assert spec.find_operation("echo", "say-carefully").approval_required


def test_local_echo_can_be_pointed_at_another_local_port() -> None:
    """A copy with the host rewritten to another loopback port is still a valid spec."""
    data = json.loads((EXAMPLES / "connectors" / "local-echo.json").read_text())
    for operation in data["tools"][0]["operations"]:
        operation["hosts"] = ["127.0.0.1:50123"]
    spec = parse_connector_spec(json.dumps(data))
    assert spec.find_operation("echo", "say").base_url == "http://127.0.0.1:50123"
    original = example_specs()["local://echo"]
    assert spec_digest(spec) != spec_digest(original)


@pytest.mark.parametrize(
    ("file", "op", "approval"),
    [
        ("echo-say.md", "say", False),
        ("echo-careful.md", "say-carefully", True),
        ("github-list-issues.md", "list", False),
    ],
)
def test_example_actions_parse_and_fit_their_connectors(file: str, op: str, approval: bool) -> None:
    """Each example action parses, runs the intended operation, and fits the example specs."""
    item = EXAMPLES / "actions" / file
    manifest = parse_action_manifest(item.read_text(), source=file)
    assert f"{manifest.name}.md" == file
    assert manifest.execute[-1].op == op
    assert manifest.approval_required is approval
    assert manifest.description
    check_requirements(manifest, example_specs(), source=file)


def test_echo_say_takes_a_message() -> None:
    """echo-say requires a string message and passes it through as ${args.message}."""
    manifest = parse_action_manifest((EXAMPLES / "actions" / "echo-say.md").read_text())
    assert validate_args(manifest, {"message": "hi"}) == {"message": "hi"}
    assert manifest.execute[0].args == {"message": "${args.message}"}
