"""from_api: the daemon's JSON answers become models; anything malformed is a ShimError."""

from __future__ import annotations

from typing import Any

import pytest
from actions.support import echo_spec, manifest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aileron_shims import Action, Argument, Connector, Operation, ShimError, from_api

PROPERTY = settings(
    deadline=None, max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def test_the_daemons_own_answers_parse(api: TestClient) -> None:
    """GET /v1/connectors and GET /v1/actions of the in-process daemon give the models."""
    assert api.post("connectors", json={"spec": echo_spec("127.0.0.1:9")}).status_code == 201
    for name in ("echo-say", "echo-careful"):
        assert api.post("actions", json={"manifest": manifest(name)}).status_code == 201
    assert api.patch("actions/echo-careful", json={"enabled": False}).status_code == 200
    connectors, actions = from_api(
        api.get("connectors").json(), api.get("actions").json()["actions"]
    )
    message = Argument("message", "string", True, "The text to echo.")
    # say-carefully is left out: the disabled echo-careful wraps it (ADR 0017).
    assert connectors == (
        Connector(
            "local://echo",
            "A local echo server for demos and tests: it answers with what it was sent.",
            (Operation("echo", "say", "Echo a message.", (message,)),),
        ),
    )
    [say] = actions
    assert (say.name, say.connectors) == ("echo-say", ("local://echo",))
    assert say.inputs == (Argument("message", "string", True, "The text to echo back."),)
    assert say.description.startswith("Echo a message through the local echo server")


def test_defaults_and_extra_keys() -> None:
    """required defaults to true, description to "", enabled to true; unknown keys are ignored."""
    connectors, actions = from_api(
        [{"fqn": "local://a", "new": 1, "tools": [{"name": "t", "operations": [{"name": "o"}]}]}],
        [{"name": "x", "inputs": [{"name": "k", "type": "array"}], "connectors": [], "y": None}],
    )
    assert connectors == (Connector("local://a", "", (Operation("t", "o", "", ()),)),)
    assert actions == (Action("x", "", (Argument("k", "array", True, ""),), ()),)


@pytest.mark.parametrize(
    ("connectors", "actions", "where"),
    [
        ({"fqn": "x"}, [], "connectors: expected a list"),
        (["local://a"], [], "connectors[0]: expected an object"),
        ([{"tools": []}], [], "connectors[0]: missing key 'fqn'"),
        ([{"fqn": 1, "tools": []}], [], "connectors[0].fqn: expected str, got int"),
        ([{"fqn": "a", "tools": "x"}], [], "connectors[0].tools: expected a list"),
        ([{"fqn": "a", "tools": [{"name": "t"}]}], [], "connectors[0].tools[0]: missing key"),
        (
            [{"fqn": "a", "tools": [{"name": "t", "operations": [{"name": "o", "inputs": [{}]}]}]}],
            [],
            "connectors[0].tools[0].operations[0].inputs[0]: missing key 'type'",
        ),
        ([], {"actions": []}, "got the whole answer"),
        ([], [{"name": "a", "connectors": [1]}], "actions[0].connectors[0]: expected str"),
        ([], [{"name": "a", "connectors": [], "enabled": 1}], "actions[0].enabled: expected bool"),
        (
            [],
            [{"name": "a", "connectors": [], "inputs": [{"name": "k", "type": "date"}]}],
            "actions[0].inputs[0].type: 'date' is not one of",
        ),
        (
            [],
            [
                {
                    "name": "a",
                    "connectors": [],
                    "inputs": [{"name": "k", "type": "string", "required": 1}],
                }
            ],
            "actions[0].inputs[0].required: expected bool",
        ),
    ],
)
def test_malformed_answers_are_shim_errors_naming_the_place(
    connectors: Any, actions: Any, where: str
) -> None:
    """A wrong shape, a missing key or a bad type names its place, in one line."""
    with pytest.raises(ShimError) as caught:
        from_api(connectors, actions)
    assert where in str(caught.value)
    assert "\n" not in str(caught.value)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    ["fqn", "description", "tools", "name", "operations", "summary", "inputs", "type", "required"]
    + ["connectors", "enabled"]
)
SHAPED = st.recursive(
    st.none() | st.booleans() | st.text(max_size=5) | st.sampled_from(["string", "array"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=20,
)


@PROPERTY
@given(st.one_of(JSON, SHAPED), st.one_of(JSON, SHAPED))
def test_any_json_gives_models_or_a_shim_error(connectors: Any, actions: Any) -> None:
    """Whatever JSON comes in, from_api returns models or raises ShimError, nothing else."""
    try:
        built_connectors, built_actions = from_api(connectors, actions)
    except ShimError:
        return
    assert all(isinstance(c, Connector) for c in built_connectors)
    assert all(isinstance(a, Action) for a in built_actions)
