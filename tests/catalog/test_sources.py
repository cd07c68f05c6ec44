"""The catalog's ready connectors and actions (catalog/sources/<name>/) parse with Aileron's
own parsers, fit together, and default to honest approvals: what writes or sends waits for a
human, what only reads does not."""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable

import pytest

from aileron_core.actions import (
    ActionManifest,
    check_requirements,
    parse_action_manifest,
    render_step_args,
)
from aileron_core.arguments import validate_args
from aileron_core.connectors import ConnectorSpec, parse_connector_spec
from aileron_core.templating import single_reference

SOURCES = files("aileron_cli") / "catalog" / "sources"
NAMES = ["github", "google-calendar", "jira", "linear", "slack"]
HOSTS = {
    "github": "api.github.com",
    "google-calendar": "www.googleapis.com",
    "jira": "your-domain.atlassian.net",
    "linear": "api.linear.app",
    "slack": "slack.com",
}
READ_METHODS = frozenset({"GET", "HEAD"})


def source(name: str) -> Traversable:
    return SOURCES / name


def spec_of(name: str) -> ConnectorSpec:
    item = source(name) / "connector.json"
    return parse_connector_spec(item.read_bytes(), source=f"{name}/connector.json")


def actions_of(name: str) -> list[tuple[str, ActionManifest]]:
    folder = source(name) / "actions"
    found = sorted((item for item in folder.iterdir() if item.name.endswith(".md")), key=str)
    return [
        (item.name, parse_action_manifest(item.read_text(), source=f"{name}/{item.name}"))
        for item in found
    ]


def action(name: str, file: str) -> ActionManifest:
    return dict(actions_of(name))[file]


def test_every_source_is_shipped_in_the_package() -> None:
    """The five ready connectors are package data, each a connector.json and its actions."""
    present = sorted(item.name for item in SOURCES.iterdir() if item.is_dir())
    assert [name for name in present if not name.startswith(("_", "."))] == NAMES
    for name in NAMES:
        assert (source(name) / "connector.json").is_file()
        assert actions_of(name), name


@pytest.mark.parametrize("name", NAMES)
def test_actions_parse_and_fit_their_connector(name: str) -> None:
    """Every action parses, is named after its file, needs only its own connector (in the
    shipped version) and fits that connector's operations and inputs."""
    spec = spec_of(name)
    assert spec.fqn == f"github://aileron-catalog/{name}"
    for file, manifest in actions_of(name):
        assert f"{manifest.name}.md" == file
        assert manifest.name.startswith(f"{name}-")
        assert [(req.fqn, req.version) for req in manifest.requires.connectors] == [
            (spec.fqn, spec.version)
        ]
        check_requirements(manifest, {spec.fqn: spec}, source=file)


def test_action_names_are_unique_across_the_catalog() -> None:
    """No two catalog actions share a name (installing one would replace the other)."""
    names = [manifest.name for name in NAMES for _, manifest in actions_of(name)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", NAMES)
def test_operations_that_write_or_send_wait_for_approval(name: str) -> None:
    """An operation that is not a plain read (any method but GET/HEAD) requires approval;
    every read (GET) requires none."""
    for tool in spec_of(name).tools:
        for op in tool.operations:
            writes = op.method not in READ_METHODS
            assert op.approval_required is writes, f"{name}: {tool.name}.{op.name}"


@pytest.mark.parametrize("name", NAMES)
def test_an_action_over_an_approved_operation_says_so_itself(name: str) -> None:
    """An action runs without approval exactly when every operation it runs is a read; one
    that writes declares [approval] required = true itself, so its description and its
    listing tell the agent before it calls."""
    spec = spec_of(name)
    for file, manifest in actions_of(name):
        gated = any(
            spec.find_operation(step.tool, step.op).approval_required for step in manifest.execute
        )
        assert manifest.approval_required is gated, file
        if gated:
            assert "approv" in manifest.description, file


@pytest.mark.parametrize("name", NAMES)
def test_hosts_are_the_services_own_over_https(name: str) -> None:
    """Every operation goes to the service's one API host, over https."""
    for tool in spec_of(name).tools:
        for op in tool.operations:
            assert op.hosts == (HOSTS[name],)
            assert op.base_url == f"https://{HOSTS[name]}"


@pytest.mark.parametrize("name", NAMES)
def test_everything_an_agent_reads_is_described(name: str) -> None:
    """Each tool, operation, connector input and action input has a description."""
    spec = spec_of(name)
    assert spec.connector.description
    for tool in spec.tools:
        assert tool.description
        for op in tool.operations:
            assert op.summary
            assert all(item.description for item in op.inputs), f"{tool.name}.{op.name}"
    for file, manifest in actions_of(name):
        assert all(item.description for item in manifest.inputs), file


@pytest.mark.parametrize("name", NAMES)
def test_an_optional_action_input_never_fills_a_required_connector_input(name: str) -> None:
    """An omitted optional input renders as null and is left out of the request, so it may
    only feed an optional connector input (a required one would fail at run time)."""
    spec = spec_of(name)
    for file, manifest in actions_of(name):
        for step in manifest.execute:
            op = spec.find_operation(step.tool, step.op)
            for key, value in step.args.items():
                reference = single_reference(value) if isinstance(value, str) else None
                if reference is None or reference[0] != "args":
                    continue
                given = manifest.find_input(reference[1])
                target = op.find_input(key)
                assert given is not None and target is not None
                assert given.required or not target.required, f"{file}: {key}"


def test_github_offers_what_the_issue_asks_for() -> None:
    """GitHub: issues list/create/comment, pulls list/create/comment/merge, contents read and
    workflow runs; merging is a PUT that waits for approval and is never retried."""
    spec = spec_of("github")
    offered = {(tool.name, op.name) for tool in spec.tools for op in tool.operations}
    assert offered == {
        ("issues", "list"),
        ("issues", "create"),
        ("issues", "comment"),
        ("pulls", "list"),
        ("pulls", "create"),
        ("pulls", "comment"),
        ("pulls", "merge"),
        ("contents", "read"),
        ("actions", "runs"),
    }
    merge = spec.find_operation("pulls", "merge")
    assert (merge.method, merge.path) == ("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge")
    assert merge.approval_required and merge.idempotency == "non_idempotent"
    assert (spec.credential.service, spec.credential.kind) == ("github", "bearer")
    assert action("github", "github-merge-pull.md").approval_required


def test_github_contents_path_keeps_its_slashes_encoded() -> None:
    """A nested file path is one encoded path segment: it cannot climb out of /contents/."""
    op = spec_of("github").find_operation("contents", "read")
    path = op.expand_path({"owner": "o", "repo": "r", "path": "../../orgs/x"})
    assert path == "/repos/o/r/contents/..%2F..%2Forgs%2Fx"


def test_slack_posts_json_and_reads_with_a_query() -> None:
    """slack-post-message sends channel, text and an optional thread; the history read
    carries the channel in the query."""
    manifest = action("slack", "slack-post-message.md")
    args = validate_args(manifest, {"channel": "C1", "text": "hi"})
    rendered = render_step_args(manifest, manifest.execute[0], args, {})
    assert rendered == {"channel": "C1", "text": "hi"}
    history = spec_of("slack").find_operation("conversations", "history")
    assert [item.name for item in history.inputs_in("query")][0] == "channel"


def test_linear_writes_through_its_one_endpoint_so_every_call_is_approved() -> None:
    """Linear has one GraphQL endpoint for queries and mutations, so its operation requires
    approval (an agent could send a mutation as a 'query'); create fills IssueCreateInput."""
    spec = spec_of("linear")
    assert spec.credential.kind == "header" and spec.credential.name == "Authorization"
    manifest = action("linear", "linear-create-issue.md")
    args = validate_args(manifest, {"team_id": "t-1", "title": "Broken"})
    rendered = render_step_args(manifest, manifest.execute[0], args, {})
    assert rendered["query"].startswith("mutation CreateIssue")
    assert rendered["variables"] == {
        "input": {"teamId": "t-1", "title": "Broken", "description": None}
    }


def test_jira_creates_with_fields_and_its_host_is_a_placeholder_to_edit() -> None:
    """jira-create-issue renders Jira's fields object; the shipped host is a placeholder the
    description tells the user to replace, and a copy with a real site's host is valid."""
    manifest = action("jira", "jira-create-issue.md")
    args = validate_args(
        manifest,
        {"project": "ENG", "summary": "S", "description": "D", "issue_type": "Bug"},
    )
    rendered = render_step_args(manifest, manifest.execute[0], args, {})
    assert rendered == {
        "fields": {
            "project": {"key": "ENG"},
            "summary": "S",
            "description": "D",
            "issuetype": {"name": "Bug"},
        }
    }
    spec = spec_of("jira")
    assert "your-domain.atlassian.net" in spec.connector.description
    data = json.loads((source("jira") / "connector.json").read_text())
    for operation in data["tools"][0]["operations"]:
        operation["hosts"] = ["example-corp.atlassian.net"]
    edited = parse_connector_spec(json.dumps(data))
    assert edited.find_operation("issues", "search").base_url == (
        "https://example-corp.atlassian.net"
    )
    check_requirements(manifest, {edited.fqn: edited})


def test_google_calendar_event_times_become_date_time_objects() -> None:
    """google-calendar-add-event turns its start and end strings into {dateTime} objects and
    leaves omitted optional fields out."""
    manifest = action("google-calendar", "google-calendar-add-event.md")
    args = validate_args(
        manifest,
        {
            "calendar": "primary",
            "summary": "Review",
            "start": "2025-01-31T10:00:00+01:00",
            "end": "2025-01-31T11:00:00+01:00",
        },
    )
    rendered = render_step_args(manifest, manifest.execute[0], args, {})
    assert rendered == {
        "calendarId": "primary",
        "summary": "Review",
        "start": {"dateTime": "2025-01-31T10:00:00+01:00"},
        "end": {"dateTime": "2025-01-31T11:00:00+01:00"},
    }
