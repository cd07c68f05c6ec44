"""The plain Starlette routes first in the daemon's router agree with the FastAPI declarations
of the same paths: same limits, same errors for the same bad input, same authentication, and
``/openapi.json`` still describes the paths (ADR 0027)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Match, Route

from aileron_cli.daemon.daemon import DaemonConfig, create_app
from aileron_cli.daemon.http import fast
from aileron_cli.daemon.http.routes.actions import NAME_MAX, SESSION_HEADER, SESSION_ID_MAX
from aileron_core.__about__ import __version__
from aileron_core.paths import Layout
from aileron_core.vault import KdfParams

MASTER = "aim_fast-routes-test-token-0123456789"  # noqa: S105 (a test's own token)
HEADERS = {"Authorization": f"Bearer {MASTER}", "X-Aileron-Version": __version__}
CHEAP = KdfParams(time_cost=1, memory_kib=64, parallelism=1)
JSON = {"content-type": "application/json"}


def _is_fast(route: object) -> bool:
    return type(route) is Route and route.path in fast.PATHS


def _app(home: Path, *, with_fast: bool) -> FastAPI:
    config = DaemonConfig(layout=Layout(home), version=__version__, master_token=MASTER, kdf=CHEAP)
    app = create_app(config)
    if not with_fast:
        app.router.routes[:] = [r for r in app.router.routes if not _is_fast(r)]
    return app


@pytest.fixture
def both(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """The daemon app with its fast routes, and the same app without them (FastAPI only)."""
    with (
        TestClient(_app(tmp_path / "fast", with_fast=True), headers=HEADERS) as with_fast,
        TestClient(_app(tmp_path / "plain", with_fast=False), headers=HEADERS) as fastapi_only,
    ):
        yield with_fast, fastapi_only


def _answer(response: Any) -> tuple[int, Any]:
    """A response's status and JSON body."""
    return response.status_code, response.json()


RUN_CASES: list[tuple[str, str, dict[str, str], bytes | None]] = [
    ("a plain run of no installed action", "/v1/actions/nope/run", JSON, b'{"args": {}}'),
    ("an empty object", "/v1/actions/nope/run", JSON, b"{}"),
    ("the longest name", f"/v1/actions/{'n' * NAME_MAX}/run", JSON, b"{}"),
    ("a name too long", f"/v1/actions/{'n' * (NAME_MAX + 1)}/run", JSON, b"{}"),
    ("undecodable JSON", "/v1/actions/nope/run", JSON, b'{"args": '),
    ("a JSON array", "/v1/actions/nope/run", JSON, b"[]"),
    ("a body that is not UTF-8", "/v1/actions/nope/run", JSON, b"\x91\x02"),
    ("JSON nested too deep", "/v1/actions/nope/run", JSON, b"[" * 100_000),
    ("an unknown key", "/v1/actions/nope/run", JSON, b'{"args": {}, "extra": 1}'),
    ("args not an object", "/v1/actions/nope/run", JSON, b'{"args": [1]}'),
    ("no body", "/v1/actions/nope/run", JSON, None),
    ("no content type", "/v1/actions/nope/run", {}, b'{"args": {}}'),
    ("a text body", "/v1/actions/nope/run", {"content-type": "text/plain"}, b'{"args": {}}'),
    (
        "a +json content type",
        "/v1/actions/nope/run",
        {"content-type": "application/vnd.test+json; charset=utf-8"},
        b'{"args": {}}',
    ),
    (
        "the longest session header",
        "/v1/actions/nope/run",
        {**JSON, SESSION_HEADER: "s" * SESSION_ID_MAX},
        b"{}",
    ),
    (
        "a session header too long, a bad name and a bad body at once",
        f"/v1/actions/{'n' * (NAME_MAX + 1)}/run",
        {**JSON, SESSION_HEADER: "s" * (SESSION_ID_MAX + 1)},
        b'{"args": 1}',
    ),
]


@pytest.mark.parametrize(
    ("case", "path", "headers", "body"), RUN_CASES, ids=[c[0] for c in RUN_CASES]
)
def test_a_run_is_answered_as_fastapi_answers_it(
    both: tuple[TestClient, TestClient],
    case: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
) -> None:
    """``POST /v1/actions/{name}/run`` gets the same status and body from the fast route as
    from the FastAPI route, for a plain request and for every kind of bad input."""
    with_fast, fastapi_only = both
    answers = [_answer(c.post(path, content=body, headers=headers)) for c in both]
    assert answers[0] == answers[1], case
    assert answers[0][0] in (404, 422), answers[0]


@pytest.mark.parametrize("first_too_long", [False, True])
def test_a_repeated_session_header_is_judged_as_fastapi_judges_it(
    both: tuple[TestClient, TestClient], first_too_long: bool
) -> None:
    """With two ``X-Aileron-Session-Id`` headers both routes judge the first one: one too long
    in first place is a 422, in second place it is ignored."""
    values = ["s" * (SESSION_ID_MAX + 1), "ok"]
    if not first_too_long:
        values.reverse()
    headers = [("content-type", "application/json")] + [(SESSION_HEADER, v) for v in values]
    answers = [
        _answer(c.post("/v1/actions/nope/run", content=b"{}", headers=headers)) for c in both
    ]
    assert answers[0] == answers[1]
    assert answers[0][0] == (422 if first_too_long else 404)


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b'{"args": {}}', 401), (b'{"args": [1]}', 401), (b'{"args": ', 422)],
)
def test_the_token_is_checked_where_fastapi_checks_it(
    both: tuple[TestClient, TestClient], body: bytes, expected: int
) -> None:
    """Without a token a run is refused 401 before its parameters are validated, but an
    undecodable JSON body is a 422 first (FastAPI decodes the body before its dependencies)."""
    answers = [
        _answer(
            c.post(
                "/v1/actions/nope/run",
                content=body,
                headers={**JSON, "Authorization": "Bearer aim_wrong"},
            )
        )
        for c in both
    ]
    assert answers[0] == answers[1]
    assert answers[0][0] == expected


def test_health_and_status_answer_as_fastapi_answers(
    both: tuple[TestClient, TestClient],
) -> None:
    """Health, status, and status without a token: same status and same fields."""
    health = [_answer(c.get("/v1/health")) for c in both]
    assert (
        health[0]
        == health[1]
        == (200, {"status": "ok", "service": "aileron", "version": __version__})
    )
    status = [c.get("/v1/status").json() for c in both]
    assert status[0].keys() == status[1].keys()
    varying = {"pid", "started_at", "uptime_s", "url"}
    assert {k: v for k, v in status[0].items() if k not in varying} == {
        k: v for k, v in status[1].items() if k not in varying
    }
    refused = [_answer(c.get("/v1/status", headers={"Authorization": ""})) for c in both]
    assert refused[0] == refused[1]
    assert refused[0][0] == 401


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/v1/gateway/nope/v1/chat", {}),
        ("POST", "/v1/gateway/openai/v1/chat/completions", {"Authorization": ""}),
        ("POST", "/v1/gateway/anthropic/v1/messages", {"Authorization": "", "x-api-key": "ais_x"}),
        ("GET", "/v1/gateway/openai/v1/models", {"Authorization": "Bearer ais_unknown"}),
        ("OPTIONS", "/v1/gateway/openai/v1/models", {}),
    ],
)
def test_a_gateway_refusal_is_answered_as_fastapi_answers_it(
    both: tuple[TestClient, TestClient], method: str, path: str, headers: dict[str, str]
) -> None:
    """An unknown provider, a missing or unknown credential and a method the gateway does not
    forward get the same status and body from both routes."""
    answers = [_answer(c.request(method, path, headers=headers)) for c in both]
    assert answers[0] == answers[1]
    assert answers[0][0] in (401, 404, 405)


def test_the_fast_routes_come_first_for_exactly_their_paths(
    both: tuple[TestClient, TestClient],
) -> None:
    """The first route that fully matches each of the four paths is a fast route, and no other
    path is matched by one."""
    app = both[0].app
    assert isinstance(app, FastAPI)
    requests = [
        ("GET", "/v1/health", True),
        ("GET", "/v1/status", True),
        ("POST", "/v1/actions/echo/run", True),
        ("POST", "/v1/gateway/openai/v1/chat/completions", True),
        ("DELETE", "/v1/gateway/anthropic/v1/files/f", True),
        ("GET", "/v1/actions/echo", False),
        ("POST", "/v1/actions", False),
        ("POST", "/v1/connector-operations/run", False),
        ("GET", "/v1/audit", False),
    ]
    for method, path, expected in requests:
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
        first = next(r for r in app.router.routes if r.matches(dict(scope))[0] is Match.FULL)
        assert _is_fast(first) is expected, (method, path)


def test_openapi_still_describes_the_four_paths(both: tuple[TestClient, TestClient]) -> None:
    """``/openapi.json`` is the same with and without the fast routes, and lists their paths
    with the FastAPI declarations' limits."""
    documents = [c.get("/openapi.json").json() for c in both]
    assert documents[0] == documents[1]
    paths = documents[0]["paths"]
    assert {"/v1/health", "/v1/status", "/v1/actions/{name}/run"} <= paths.keys()
    assert "/v1/gateway/openai/{path}" in paths
    run = paths["/v1/actions/{name}/run"]["post"]
    limits = {p["name"]: p["schema"] for p in run["parameters"]}
    assert limits["name"]["maxLength"] == NAME_MAX
    assert limits[SESSION_HEADER]["anyOf"][0]["maxLength"] == SESSION_ID_MAX
