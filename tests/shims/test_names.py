"""Tool names: derivation, de-duplication, reserved names, and the generator's refusals.

The name property: ``tool_name`` either raises ``ShimError`` or returns 1 to 48 characters of
``[a-z0-9]`` in groups joined by single hyphens (``^[a-z0-9]+(-[a-z0-9]+)*$``: no leading,
trailing or doubled ``-``). ``generate`` either raises ``ShimError`` or gives tools whose names
all have that shape, are unique, are neither reserved nor the agent's command, and each
connector is either a tool or ``Skipped``; it never raises anything else.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shims.strategies import inputs

from aileron_shims import (
    RESERVED_NAMES,
    Action,
    Argument,
    Connector,
    Operation,
    ShimError,
    generate,
    tool_name,
)

PROPERTY = settings(
    deadline=None, max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def is_name(name: str) -> bool:
    return len(name) <= 48 and NAME.fullmatch(name) is not None


@pytest.mark.parametrize(
    ("fqn", "name"),
    [
        ("github://owner/repo/sub", "sub"),
        ("github://owner/repo", "repo"),
        ("local://echo", "echo"),
        ("local://aileron-connector-echo", "echo"),
        ("github://acme/connector-jira", "jira"),
        ("github://acme/Connector-Jira", "jira"),
        ("github://acme/connector-connector-x", "connector-x"),
        ("local://my_tool.v2", "my-tool-v2"),
        ("local://--a__b--", "a-b"),
        ("local://echo/", "echo"),
        ("plain-text", "plain-text"),
        ("local://" + "a" * 47 + "-b", "a" * 47),
        ("local://" + "x" * 60, "x" * 48),
    ],
)
def test_tool_name_examples(fqn: str, name: str) -> None:
    """The FQN's last segment, prefix stripped, lowercased, hyphenated and cut to 48."""
    assert tool_name(fqn) == name


@pytest.mark.parametrize("fqn", ["local://connector-", "local://aileron-connector-._", "", "://"])
def test_tool_name_refuses_fqns_with_nothing_usable(fqn: str) -> None:
    """An FQN whose last segment leaves no letter or digit is a ShimError naming it."""
    with pytest.raises(ShimError, match="no usable tool name"):
        tool_name(fqn)


@PROPERTY
@given(st.text(max_size=120))
def test_tool_name_is_a_valid_name_or_a_shim_error(fqn: str) -> None:
    """For any text, tool_name gives ^[a-z0-9]+(-[a-z0-9]+)*$ of ≤ 48 chars, or ShimError."""
    try:
        name = tool_name(fqn)
    except ShimError:
        return
    assert is_name(name), name


@PROPERTY
@given(st.from_regex(r"[a-z0-9]{1,12}(-[a-z0-9]{1,12}){0,2}", fullmatch=True))
def test_a_clean_segment_is_its_own_name(segment: str) -> None:
    """A segment that is already a name (and has no prefix) is kept as it is."""
    if segment.startswith("connector-"):
        return
    assert tool_name(f"github://owner/repo/{segment}") == segment
    assert tool_name(f"local://connector-{segment}") == segment


# --- generate over arbitrary connector and action sets ---------------------------------------


@PROPERTY
@given(inputs())
def test_generate_gives_unique_valid_names_or_a_shim_error(
    case: tuple[list[Connector], list[Action], str],
) -> None:
    """Any input gives unique, valid, unreserved tool names (the rest Skipped), or ShimError."""
    connectors, actions, agent = case
    try:
        shims = generate(connectors, actions, agent_command=agent)
    except ShimError as error:
        assert str(error) and "\n" not in str(error)
        return
    names = list(shims.shims)
    assert names == sorted(set(names))
    for name in names:
        assert is_name(name), name
        assert name not in RESERVED_NAMES and name != agent
    lines = shims.tools_txt.splitlines(keepends=True)
    assert sorted(line.split("\t", 1)[0] for line in lines) == names
    assert all(line.endswith("\n") and line.count("\t") == 1 for line in lines)
    fqns_listed = [line.split("\t", 1)[1].split(" -- ", 1)[0] for line in lines]
    assert len(fqns_listed) == len(set(fqns_listed))
    skipped = {s.name for s in shims.skipped}
    for connector in connectors:
        assert connector.fqn in fqns_listed or connector.fqn in skipped


@PROPERTY
@given(inputs(), st.randoms(use_true_random=False))
def test_generate_does_not_depend_on_input_order(
    case: tuple[list[Connector], list[Action], str], rng: object
) -> None:
    """Permuting the connectors and actions gives the same ShimSet, or the same ShimError."""
    import random

    assert isinstance(rng, random.Random)
    connectors, actions, agent = case
    shuffled_connectors = rng.sample(connectors, len(connectors))
    shuffled_actions = rng.sample(actions, len(actions))

    def outcome(cs: list[Connector], acts: list[Action]) -> object:
        try:
            shims = generate(cs, acts, agent_command=agent)
        except ShimError as error:
            return ("error", str(error))
        return shims.tools_txt, list(shims.shims.items()), shims.skipped

    assert outcome(connectors, actions) == outcome(shuffled_connectors, shuffled_actions)


# --- specific decisions ----------------------------------------------------------------------


def echo_op(tool: str = "echo", name: str = "say") -> Operation:
    return Operation(tool, name, "Say it.", (Argument("message", "string"),))


def test_duplicates_get_the_first_free_suffix() -> None:
    """Three connectors deriving one name become name, name-2, name-3 in FQN order."""
    connectors = [
        Connector("local://ping", "", (echo_op(),)),
        Connector("github://a/ping", "", (echo_op(),)),
        Connector("github://b/connector-ping", "", (echo_op(),)),
        Connector("local://ping-2", "", (echo_op(),)),
    ]
    shims = generate(connectors, [], agent_command="claude")
    assert [line.split(" --")[0] for line in shims.tools_txt.splitlines()] == [
        "ping\tgithub://a/ping",
        "ping-2\tgithub://b/connector-ping",
        "ping-2-2\tlocal://ping-2",
        "ping-3\tlocal://ping",
    ]


def test_action_derived_names_are_given_before_spec_derived_ones() -> None:
    """An action-derived connector keeps the plain name even when its FQN sorts later."""
    connectors = [
        Connector("github://a/ping", "", (echo_op(),)),
        Connector("local://ping", "", (echo_op(),)),
    ]
    actions = [Action("say", "Say.", (), ("local://ping",))]
    shims = generate(connectors, actions, agent_command="claude")
    assert shims.tools_txt.splitlines() == [
        "ping\tlocal://ping -- installed Aileron connector used by actions: say",
        "ping-2\tgithub://a/ping -- Aileron connector operations: echo.say",
    ]


def test_a_suffix_cut_keeps_the_name_within_48_characters() -> None:
    """A 48-character name that collides is cut so that name-2 still has 48 characters."""
    long = "a" * 48
    connectors = [
        Connector(f"local://{long}", "", (echo_op(),)),
        Connector(f"x://{long}", "", (echo_op(),)),
    ]
    names = list(generate(connectors, [], agent_command="claude").shims)
    assert names == ["a" * 46 + "-2", long]


@pytest.mark.parametrize(
    "fqn", ["local://goose", "local://connector-claude", "github://o/aileron-mcp"]
)
def test_spec_derived_tool_with_a_reserved_name_is_refused(fqn: str) -> None:
    """A spec-derived tool named like a reserved command or the agent is a ShimError."""
    with pytest.raises(ShimError, match="would be the tool"):
        generate([Connector(fqn, "", (echo_op(),))], [], agent_command="claude")


@pytest.mark.parametrize(
    ("fqn", "name"),
    [
        ("local://curl", "aileron-curl"),
        ("github://o/git", "aileron-git"),
        ("x://echo", "aileron-echo"),
    ],
)
def test_system_command_names_get_the_aileron_prefix(fqn: str, name: str) -> None:
    """A tool that would be named like a shell built-in or common command is aileron-<name>."""
    shims = generate([Connector(fqn, "", (echo_op(),))], [], agent_command="claude")
    assert list(shims.shims) == [name]


def test_action_derived_tool_with_a_reserved_name_is_skipped() -> None:
    """An action-derived tool named like the agent command is left out with a reason."""
    connectors = [Connector("local://my-agent", "", (echo_op(),))]
    actions = [Action("honk", "Honk.", (), ("local://my-agent",))]
    for agent in ("my-agent", "/usr/local/bin/my-agent"):
        shims = generate(connectors, actions, agent_command=agent)
        assert shims.shims == {} and shims.tools_txt == ""
        assert [(s.name, f"agent's command {agent!r}" in s.reason) for s in shims.skipped] == [
            ("local://my-agent", True)
        ]
    assert list(generate(connectors, actions, agent_command="codex").shims) == ["my-agent"]


def test_a_suffixed_name_skips_reserved_names() -> None:
    """When name-2 is the agent's command, the duplicate gets name-3."""
    connectors = [Connector("local://x", "", (echo_op(),)), Connector("y://x", "", (echo_op(),))]
    assert list(generate(connectors, [], agent_command="x-2").shims) == ["x", "x-3"]


@pytest.mark.parametrize(
    ("connectors", "actions", "message"),
    [
        ([Connector("local://a\nb", "", (echo_op(),))], [], "holds the character"),
        ([Connector("local://a\u202eb", "", (echo_op(),))], [], "holds the character"),
        ([Connector("local://a", "", (echo_op("t", "x\ty"),))], [], "holds the character"),
        ([], [Action("bad\x1bname", "", (), ("local://a",))], "holds the character"),
        ([], [Action("-x", "", (), ("local://a",))], "starts with '-'"),
        ([], [Action("a", "", (Argument("k=v", "string"),), ("local://a",))], "holds '='"),
        ([], [Action("a", "", (Argument("k", "date"),), ("local://a",))], "has the type"),
        ([], [Action("a", "", (Argument("k", "string"),) * 2, ("local://a",))], "twice"),
        ([Connector("local://a", "", (echo_op("a.b", "c"), echo_op("a", "b.c")))], [], "spell"),
        ([Connector("local://a", "", ()), Connector("local://a", "", ())], [], "given twice"),
        ([], [Action("a", "", (), ()), Action("a", "", (), ())], "given twice"),
    ],
)
def test_malformed_input_is_a_one_line_shim_error(
    connectors: list[Connector], actions: list[Action], message: str
) -> None:
    """Control characters, option-like names, bad types and duplicates are ShimErrors."""
    with pytest.raises(ShimError, match=re.escape(message)) as caught:
        generate(connectors, actions, agent_command="claude")
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_actions_that_cannot_run_are_skipped() -> None:
    """No connector, a missing connector, or the name 'help' → Skipped, never an error."""
    connectors = [Connector("local://echo", "", (echo_op(),))]
    actions = [
        Action("lonely", "", (), ()),
        Action("orphan", "", (), ("local://echo", "local://gone")),
        Action("help", "", (), ("local://echo",)),
    ]
    shims = generate(connectors, actions, agent_command="claude")
    reasons = {s.name: s.reason for s in shims.skipped}
    assert sorted(reasons) == ["help", "lonely", "orphan"]
    assert "local://gone" in reasons["orphan"] and "not installed" in reasons["orphan"]
    assert shims.tools_txt == (
        "aileron-echo\tlocal://echo -- Aileron connector operations: echo.say\n"
    )


def test_empty_input_gives_nothing() -> None:
    """No connectors and no actions: empty tools.txt, no shims, nothing skipped."""
    shims = generate([], [], agent_command="claude")
    assert (shims.tools_txt, dict(shims.shims), shims.skipped) == ("", {}, ())
