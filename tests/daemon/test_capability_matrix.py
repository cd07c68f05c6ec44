"""Every operation of /openapi.json against a written capability matrix (issue #14, ADR 0017).

The matrix names, for each (method, path) the daemon declares, what each caller gets:

- ``none``: no token;
- ``session``: a session token, on its own session's resources;
- ``other``: the token of another session, on the first session's resources (its approval,
  its session id);
- ``master``: the master token from a process outside every agent's tree (the human);
- ``inside``: the master token from a process inside an agent's tree (the agent that read
  ``daemon.json``): 403 ``agent_process_refused`` for everything that needs a token.

``OK`` means the caller gets past authorization: any status but 401 and 403 (a 404 for a
placeholder name, or a 422 for the empty body sent, is still "allowed"). A route added to the
daemon without a row here fails the walk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from actions.support import SECRET, echo_spec, manifest
from fastapi.testclient import TestClient

from aileron_cli.daemon.access.peers import PEER_SCOPE_KEY, ConnectionPeer
from aileron_core.processes import ProcessRef

OK = "ok"
ROOT = "http://testserver"  # the api fixture's base URL is /v1/; the spec's paths are whole


class Row(NamedTuple):
    none: int | str
    session: int | str
    other: int | str
    master: int | str
    inside: int | str


ADMIN = Row(401, 403, 403, OK, 403)  # the human's operations
AGENT = Row(401, OK, OK, OK, 403)  # what a session token may do (and the human too)
GATEWAY = Row(401, OK, OK, 403, 403)  # the LLM gateway takes session tokens only
PUBLIC = Row(OK, OK, OK, OK, OK)

MATRIX: dict[tuple[str, str], Row] = {
    **{
        (method, f"/v1/gateway/{provider}/{{path}}"): GATEWAY
        for provider in ("openai", "anthropic")
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    },
    ("GET", "/v1/health"): PUBLIC,
    ("GET", "/v1/status"): ADMIN,
    ("GET", "/v1/vault/status"): ADMIN,
    ("POST", "/v1/vault/init"): ADMIN,
    ("POST", "/v1/vault/unlock"): ADMIN,
    ("POST", "/v1/vault/lock"): ADMIN,
    ("POST", "/v1/vault/passphrase"): ADMIN,
    ("POST", "/v1/vault/rotate"): ADMIN,
    ("GET", "/v1/vault/entries"): ADMIN,
    ("PUT", "/v1/vault/entries/{path}"): ADMIN,
    ("DELETE", "/v1/vault/entries/{path}"): ADMIN,
    ("POST", "/v1/sessions"): ADMIN,
    ("GET", "/v1/sessions"): ADMIN,
    ("GET", "/v1/sessions/{session_id}"): ADMIN,
    ("POST", "/v1/sessions/{session_id}/end"): ADMIN,
    ("POST", "/v1/sessions/{session_id}/agent"): ADMIN,  # the launcher names its agent
    ("POST", "/v1/sessions/{session_id}/listener"): ADMIN,
    ("POST", "/v1/sessions/{session_id}/egress"): ADMIN,
    ("GET", "/v1/audit"): ADMIN,
    ("GET", "/v1/audit/verify"): ADMIN,
    ("POST", "/v1/audit/ack"): ADMIN,
    ("GET", "/v1/audit/{record_id}"): ADMIN,
    ("GET", "/v1/usage"): ADMIN,
    ("GET", "/v1/providers"): ADMIN,
    ("GET", "/v1/connectors"): ADMIN,
    ("POST", "/v1/connectors"): ADMIN,
    ("GET", "/v1/connectors/{fqn}"): ADMIN,
    ("PATCH", "/v1/connectors/{fqn}"): ADMIN,
    ("DELETE", "/v1/connectors/{fqn}"): ADMIN,
    ("GET", "/v1/actions"): AGENT,
    ("POST", "/v1/actions"): ADMIN,
    ("GET", "/v1/actions/{name}"): AGENT,
    ("PATCH", "/v1/actions/{name}"): ADMIN,
    ("DELETE", "/v1/actions/{name}"): ADMIN,
    ("POST", "/v1/actions/{name}/run"): AGENT,
    # Allowed past the token; what it may run is agent_access's rule (tests/actions).
    ("POST", "/v1/connector-operations/run"): AGENT,
    ("GET", "/v1/bindings"): ADMIN,
    ("POST", "/v1/bindings"): ADMIN,
    ("POST", "/v1/bindings/{name}/escrow"): ADMIN,
    ("PUT", "/v1/bindings/{name}/exposure"): ADMIN,
    ("DELETE", "/v1/bindings/{name}/exposure"): ADMIN,
    ("GET", "/v1/bindings/{name}"): ADMIN,
    ("POST", "/v1/bindings/oauth2"): ADMIN,
    ("GET", "/v1/bindings/oauth2/{flow_id}"): ADMIN,
    ("POST", "/v1/bindings/{name}/reauthorize"): ADMIN,
    ("GET", "/v1/oauth/callback"): PUBLIC,  # the browser's redirect: a live state, once
    ("DELETE", "/v1/bindings/{name}"): ADMIN,
    ("GET", "/v1/approvals"): AGENT,  # a session lists its own approvals only
    ("GET", "/v1/approvals/{approval_id}"): Row(401, OK, 404, OK, 403),
    ("POST", "/v1/approvals/{approval_id}/decide"): ADMIN,
    ("GET", "/v1/approvals/events"): ADMIN,  # the live stream `approval watch` reads
    ("GET", "/v1/approvals/grants"): ADMIN,  # standing approvals: the human's only
    ("DELETE", "/v1/approvals/grants/{grant_id}"): ADMIN,
    ("POST", "/v1/ui/links"): ADMIN,  # the approvals page's login link: the human only
    ("GET", "/v1/enclave"): ADMIN,
    ("POST", "/v1/enclave/attach"): ADMIN,
    ("POST", "/v1/enclave/detach"): ADMIN,
}

# Safe ordering within one column: what removes or ends things runs last.
LAST = ("DELETE", "/end", "/lock", "/rotate", "/passphrase", "/detach")


class World(NamedTuple):
    """A daemon with a session A (owning a pending approval) and a session B."""

    client: TestClient
    tokens: dict[str, str | None]
    params: dict[str, str]


@pytest.fixture
def world(api: TestClient) -> Iterator[World]:
    """The in-process daemon set up with an echo connector, actions, a binding, two sessions."""
    assert api.post("vault/init", json={"passphrase": "pw"}).status_code == 201
    spec = echo_spec("127.0.0.1:9")  # nothing in the walk reaches it: every body is {}
    assert api.post("connectors", json={"spec": spec}).status_code == 201
    for name in ("echo-say", "echo-careful"):
        assert api.post("actions", json={"manifest": manifest(name)}).status_code == 201
    assert api.post("bindings", json={"name": "token/echo/default", "value": SECRET}).is_success
    session = {"agent": "codex", "working_dir": "/"}
    a, b = (api.post("sessions", json=session).json() for _ in range(2))
    pending = api.post(
        "actions/echo-careful/run",
        json={"args": {"message": "m"}},
        headers={"Authorization": f"Bearer {a['token']}"},
    )
    assert pending.status_code == 202, pending.text
    record = api.get("audit").json()[-1]["id"]
    master = api.headers["Authorization"].removeprefix("Bearer ")
    # A live stream answers at once once the feed is closed (TestClient reads whole answers).
    api.app.state.daemon.approvals.feed.close()  # type: ignore[attr-defined]
    yield World(
        api,
        {"none": None, "session": a["token"], "other": b["token"], "master": master},
        {
            "path": "token/echo/default",
            "session_id": a["id"],
            "record_id": record,
            "fqn": "local://echo",
            "name": "echo-say",
            "approval_id": pending.json()["approval_id"],
        },
    )


def operations(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path template) of the daemon's /openapi.json."""
    document: dict[str, Any] = client.get(f"{ROOT}/openapi.json").json()
    return [(method.upper(), path) for path, item in document["paths"].items() for method in item]


def outcome(status: int) -> int | str:
    return status if status in (401, 403, 404) else OK


def observe(world: World, column: str) -> dict[tuple[str, str], int | str]:
    """What ``column``'s caller gets on every operation, in the matrix's terms."""
    token = world.tokens[column]
    headers = {"Authorization": f"Bearer {token}"} if token else {"Authorization": ""}
    seen: dict[tuple[str, str], int | str] = {}
    ordered = sorted(
        operations(world.client), key=lambda op: any(w in op[1] or w == op[0] for w in LAST)
    )
    for method, template in ordered:
        path = template
        for key, value in world.params.items():
            path = path.replace(f"{{{key}}}", value)
        if "/gateway/" in path:
            path = path.replace("{path}", "v1/models")
        body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
        answer = world.client.request(method, ROOT + path, json=body, headers=headers)
        got = outcome(answer.status_code)
        expected = MATRIX.get((method, template))
        if got == 404 and expected is not None and getattr(expected, column) == OK:
            got = OK  # a placeholder that names nothing: past authorization all the same
        seen[(method, template)] = got
    return seen


def test_the_matrix_names_every_operation_of_openapi(api: TestClient) -> None:
    """Every (method, path) of /openapi.json has a row, and every row is a real operation."""
    assert sorted(operations(api)) == sorted(MATRIX)


@pytest.mark.parametrize("column", ["none", "session", "other", "master"])
def test_every_operation_answers_as_the_matrix_says(world: World, column: str) -> None:
    """Each caller gets exactly the matrix's outcome (401/403/404, or past authorization)."""
    seen = observe(world, column)
    expected = {op: getattr(row, column) for op, row in MATRIX.items()}
    wrong = {op: (seen.get(op), want) for op, want in expected.items() if seen.get(op) != want}
    assert wrong == {}, f"(got, expected) for {column}: {wrong}"


def test_master_token_from_inside_an_agent_tree_answers_as_the_matrix_says(
    world: World,
) -> None:
    """The master token from a process in a live session's tree gets the ``inside`` column:
    403 for every operation that needs a token, each refusal audited with the process."""
    state = world.client.app.state.daemon  # type: ignore[attr-defined]
    launcher = ProcessRef.of(os.getppid())  # this test runs "below the launcher", as an agent
    assert launcher is not None
    state.gate.trees.add(launcher, world.params["session_id"])
    peer = ConnectionPeer("unix", os.getpid(), os.getuid())
    inside = World(
        TestClient(_with_peer(world.client.app, peer)),
        {**world.tokens, "inside": world.tokens["master"]},
        world.params,
    )
    seen = observe(inside, "inside")
    expected = {op: row.inside for op, row in MATRIX.items()}
    wrong = {op: (seen.get(op), want) for op, want in expected.items() if seen.get(op) != want}
    assert wrong == {}, f"(got, expected) for inside: {wrong}"
    refused = [r for r in world.client.get("audit").json() if r["type"] == "auth.refused"]
    needing_master = [op for op, row in MATRIX.items() if row.inside == 403 and row.master == OK]
    assert len(refused) == len(needing_master)
    assert {r["payload"]["process"]["pid"] for r in refused} == {os.getpid()}
    assert {r["session_id"] for r in refused} == {world.params["session_id"]}


def test_master_token_from_outside_every_agent_tree_is_the_human(world: World) -> None:
    """The same master token from a process outside the live session's tree (its launcher
    is some other process) is admitted on every admin operation."""
    state = world.client.app.state.daemon  # type: ignore[attr-defined]
    state.gate.trees.add(ProcessRef(1, 0), world.params["session_id"])  # not our ancestor
    peer = ConnectionPeer("unix", os.getpid(), os.getuid())
    outside = World(TestClient(_with_peer(world.client.app, peer)), world.tokens, world.params)
    seen = observe(outside, "master")
    expected = {op: row.master for op, row in MATRIX.items()}
    wrong = {op: (seen.get(op), want) for op, want in expected.items() if seen.get(op) != want}
    assert wrong == {}, f"(got, expected) for master outside: {wrong}"


def _with_peer(app: Any, peer: ConnectionPeer) -> Any:
    """The app as the daemon's socket protocol serves it: every request names ``peer``."""

    async def named(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope[PEER_SCOPE_KEY] = peer
        await app(scope, receive, send)

    return named
