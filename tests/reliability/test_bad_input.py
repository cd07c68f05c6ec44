"""Hostile input: CLI arguments and files, and JSON bodies holding lone surrogates. A clear
error every time: never a traceback, never a 500.

Fuzzed HTTP bodies (schemathesis) and fuzzed manifests, specs and vault files (Hypothesis)
live in tests/daemon, tests/specs and tests/vault; see tests/reliability/README.md. What is here
fills their gaps: the CLI's own argument handling and strings that are not valid Unicode
(which schemathesis never generates); test_bad_files.py covers config.toml and daemon.json.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from actions.support import echo_spec, manifest
from helpers import aileron, kill_daemon
from hypothesis import HealthCheck, settings
from reliability.support import (
    EITHER,
    ERROR,
    USAGE,
    cli,
    client,
    echo_server,
    handled,
    log_problems,
    set_up,
)

from aileron_core.discovery import DaemonInfo, read_daemon_info
from aileron_core.paths import Layout

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LONE = "\ud800"  # a lone surrogate: a str, but not Unicode that UTF-8 can encode
BIG = 120 << 10  # Linux caps one argv string at 128 KiB (MAX_ARG_STRLEN)
FuzzDaemon = tuple[DaemonInfo, dict[str, str]]


# -- the CLI -----------------------------------------------------------------------------------


def _files(tmp_path: Path) -> dict[str, Path]:
    """Hostile files to install: non-UTF-8, NUL bytes, binary junk, 1 MiB, deep nesting."""
    contents = {
        "non-utf8.json": b'{"schema_version": "\xff\xfe"}',
        "nul.json": b'{"schema_version": "aileron.connector.v1\x00"}',
        "junk.json": bytes(range(256)) * 8,
        "huge.json": json.dumps({"description": "x" * (1 << 20)}).encode(),
        "non-utf8.md": b'+++\nname = "\xff"\n+++\n',
        "nul.md": b'+++\nname = "a\x00b"\nversion = "1.0.0"\n+++\nhi\n',
        "huge.md": b'+++\nname = "' + b"x" * (1 << 20) + b'"\n+++\nhi\n',
        "empty.md": b"",
    }
    paths = {}
    for name, data in contents.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    return paths


@pytest.mark.slow
def test_hostile_arguments_and_files_get_one_line_errors(
    layout: Layout, real_daemon: DaemonInfo, tmp_path: Path
) -> None:
    """Malformed, empty, NUL-holding, huge and repeated arguments, and hostile files for
    `connector install` / `action install`: exit 0 or one error line (or argparse's usage
    error), never a traceback, and no error in daemon.log."""
    files = _files(tmp_path)
    with echo_server() as echo:
        set_up(real_daemon, echo.host)
        cases: list[tuple[tuple[str | bytes, ...], bytes, frozenset[int]]] = [
            (("action", "run", "echo-say", "--args", "[1]"), b"", ERROR),
            (("action", "run", "echo-say", "--args", "{"), b"", ERROR),
            (("action", "run", "echo-say", "--arg", "message"), b"", ERROR),
            (("action", "run", "echo-say", "--arg", "=x"), b"", ERROR),
            (("action", "run", "echo-say", "--arg", "nope=1"), b"", ERROR),
            (("action", "run", "echo-say", "--args", '{"message": 5}'), b"", ERROR),
            (("action", "run", "echo-say", "--args", '{"message": "a\\u0000b"}'), b"", EITHER),
            (("action", "run", "echo-say", "--arg", "message=" + "x" * BIG), b"", EITHER),
            (("action", "run", "echo-say", *["--arg", "message=x"] * 10_000), b"", EITHER),
            (("action", "run", "echo-say", "--arg", "message="), b"", EITHER),
            (("vault", "put", "reliability/empty"), b"", ERROR),
            (("vault", "put", "reliability/nul"), b"a\x00b", EITHER),
            (("vault", "put", "reliability/huge"), b"x" * (1 << 20), EITHER),
            (("vault", "put", ""), b"v", ERROR),
            (("binding", "add", "token/echo/empty"), b"", ERROR),
            (("binding", "add", "token/echo/huge"), b"x" * (1 << 20), ERROR),
            (("binding", "add", "../../etc/passwd"), b"v", ERROR),
            (("binding", "add", "token/echo/" + "x" * BIG), b"v", ERROR),
            (("audit", "list", "--limit", "-1"), b"", ERROR),
            (("audit", "list", "--limit", "x"), b"", USAGE),
            (("audit", "list", "--since", "yesterday"), b"", ERROR),
            (("action", "run"), b"", USAGE),
            (("action",), b"", USAGE),
            *(
                ((group, "install", str(files[name])), b"", ERROR)
                for group, name in (
                    ("connector", "non-utf8.json"),
                    ("connector", "nul.json"),
                    ("connector", "junk.json"),
                    ("connector", "huge.json"),
                    ("action", "non-utf8.md"),
                    ("action", "nul.md"),
                    ("action", "huge.md"),
                    ("action", "empty.md"),
                )
            ),
            (("connector", "install", str(tmp_path / "missing.json")), b"", ERROR),
            (("action", "install", str(tmp_path)), b"", ERROR),
        ]
        # A few at a time: each is a whole CLI process, and they are independent.
        with ThreadPoolExecutor(max_workers=3) as pool:
            done = list(pool.map(lambda case: cli(*case[0], stdin=case[1]), cases))
    problems = [
        f"{[str(a)[:60] for a in args][:6]}: {problem}"
        for (args, _, codes), result in zip(cases, done, strict=True)
        if (problem := handled(result, codes)) is not None
    ]
    assert problems == []
    assert log_problems(layout) == []


@pytest.mark.slow
def test_names_with_dot_segments_never_reach_another_resource(real_daemon: DaemonInfo) -> None:
    """Names holding `..`, `?` or nothing at all are refused in one line and touch nothing."""
    with echo_server() as echo:
        set_up(real_daemon, echo.host)
        for args, stdin in (
            (("action", "remove", "../bindings/token/echo/default"), b""),
            (("vault", "put", "reliability/../stray"), b"v"),
            (("action", "run", "../vault/lock?"), b""),
            (("action", "show", "../vault/status"), b""),
            (("action", "show", ""), b""),
            (("sessions", "show", ".."), b""),
        ):
            done = cli(*args, stdin=stdin)
            assert handled(done, ERROR) is None, (args, done.stdout, done.stderr)
        with client(real_daemon) as api:
            assert [b["name"] for b in api.get("bindings").json()] == ["token/echo/default"]
            assert "stray" not in {e["path"] for e in api.get("vault/entries").json()}
            assert api.get("vault/status").json()["state"] == "unlocked"


@pytest.mark.slow
def test_arguments_the_cli_cannot_send_get_one_line_errors(
    real_daemon: DaemonInfo, tmp_path: Path
) -> None:
    """Non-UTF-8, control characters, over-long names and deep nesting: one error line."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    cases: list[tuple[tuple[str | bytes, ...], bytes]] = [
        (("vault", "put", b"reliability/\xff"), b"v"),
        (("vault", "put", "reliability/x"), b"\xff\xfe"),
        (("vault", "put", "reliability/\x01"), b"v"),
        (("binding", "show", b"\xff"), b""),
        (("binding", "add", "token/echo/x"), b"\xff"),
        (("action", "run", b"\xff"), b""),
        (("action", "run", "x" * BIG), b""),
        (("action", "run", "echo-say", "--args", '{"message": "\\ud800"}'), b""),
        (("action", "run", "echo-say", "--args", "[" * 100_000), b""),
        (("audit", "list", "--since", b"\xff"), b""),
        (("audit", "list", "--type", "x" * BIG), b""),
        (("connector", "install", str(deep)), b""),
    ]
    problems = []
    for args, stdin in cases:
        problem = handled(cli(*args, stdin=stdin), ERROR)
        if problem is not None:
            problems.append(f"{[str(a)[:40] for a in args]}: {problem[-200:]}")
    assert problems == []


# -- JSON bodies that are not valid Unicode ----------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzDaemon]:
    """One real daemon for the body tests (its own home), set up with the echo actions, a
    pending approval and two sessions; with the ids the routes' paths need."""
    home = tmp_path_factory.mktemp("fuzz") / ".aileron"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AILERON_")}
    env.update(HOME=str(home.parent), AILERON_HOME=str(home))
    started = aileron("daemon", "start", env=env)
    assert started.returncode == 0, started.stderr
    layout = Layout(home)
    info = read_daemon_info(layout.daemon_json)
    assert info is not None
    try:
        with echo_server() as echo:
            set_up(info, echo.host)
            with client(info) as api:
                api.post("actions", json={"manifest": manifest("echo-careful")})
                pending = api.post("actions/echo-careful/run", json={"args": {"message": "m"}})
                sessions = [
                    api.post("sessions", json={"agent": "codex", "working_dir": "/"}).json()["id"]
                    for _ in range(2)
                ]
            ids = {
                "approval_id": pending.json()["approval_id"],
                "session_id": sessions[0],
                "name": "echo-say",
                "fqn": "local://echo",
                "path": "reliability/x",
                "echo_host": echo.host,
            }
            yield info, ids
    finally:
        aileron("daemon", "stop", env=env)
        kill_daemon(layout)


def surrogate_variants(value: Any) -> Iterator[Any]:
    """``value`` with one string replaced by a lone surrogate, or one object given a lone
    surrogate key: every such variant, one at a time."""
    if isinstance(value, str):
        yield LONE
    elif isinstance(value, dict):
        yield {**value, LONE: "x"}
        for key, item in value.items():
            for variant in surrogate_variants(item):
                yield {**value, key: variant}
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for variant in surrogate_variants(item):
                yield [*value[:index], variant, *value[index + 1 :]]


# Every operation of /openapi.json that takes a JSON body, with a valid body (a callable gets
# the fixture's ids, which also fill the "{…}" of the path).
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/vault/init"): {"passphrase": "p"},
    ("POST", "/v1/vault/unlock"): {"passphrase": "wrong", "accept_restore": False},
    ("POST", "/v1/vault/passphrase"): {"old": "wrong", "new": "n"},
    ("PUT", "/v1/vault/entries/{path}"): {"value": "v", "metadata": {"k": "v"}},
    ("POST", "/v1/sessions"): {
        "agent": "codex",
        "working_dir": "/tmp",
        "sandbox": {"runtime": "podman", "image": "i"},
    },
    ("POST", "/v1/sessions/{session_id}/end"): {"exit_code": 0},
    ("POST", "/v1/sessions/{session_id}/listener"): {"host": "127.0.0.1"},
    ("POST", "/v1/sessions/{session_id}/egress"): {"allow": ["example.com", "*.example.org:443"]},
    ("POST", "/v1/sessions/{session_id}/agent"): {"pid": 4242},
    ("POST", "/v1/connectors"): lambda ids: {"spec": echo_spec(ids["echo_host"])},
    ("POST", "/v1/actions"): lambda ids: {"manifest": manifest("echo-say")},
    ("PATCH", "/v1/actions/{name}"): {"enabled": True},
    ("PATCH", "/v1/connectors/{fqn}"): {"agents": True, "tool": "echo", "operation": "say"},
    ("POST", "/v1/actions/{name}/run"): {"args": {"message": "m"}},
    ("POST", "/v1/connector-operations/run"): {
        "connector_fqn": "local://echo",
        "tool": "echo",
        "operation": "say",
        "args": {"message": "m"},
    },
    ("POST", "/v1/bindings"): {"name": "token/echo/other", "value": "v", "metadata": {"k": "v"}},
    ("POST", "/v1/bindings/{name}/escrow"): {"hosts": ["127.0.0.1:1"]},
    ("POST", "/v1/bindings/oauth2"): {
        "name": "oauth2/echo/other",
        "connector": "local://echo",
        "client_id": "c",
        "client_secret": "s",
        "scopes": ["a"],
        "device": False,
    },
    ("POST", "/v1/bindings/{name}/reauthorize"): {"device": False},
    ("PUT", "/v1/bindings/{name}/exposure"): {
        "hosts": ["git.example.test", "api.example.test:8443"],
        "variable": "GH_TOKEN",
        "header": None,
        "basic": "x-access-token:{}",
    },
    ("POST", "/v1/ui/links"): {"approval": None},
    ("POST", "/v1/approvals/{approval_id}/decide"): {"approved": False, "reason": "r"},
    ("POST", "/v1/enclave/attach"): {
        "url": "https://127.0.0.1:1",
        "fingerprint": "0" * 64,
        "registration_code": "c",
    },
    ("POST", "/v1/enclave/detach"): {"force": False},
}


@pytest.mark.slow
def test_every_json_body_operation_has_a_body_here(fuzz_daemon: FuzzDaemon) -> None:
    """The body test below covers every operation of /openapi.json that takes a JSON body."""
    info, _ = fuzz_daemon
    document = httpx.get(f"{info.url}/openapi.json").json()
    operations = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    }
    assert operations - set(BODIES) == set()


@pytest.mark.slow
@pytest.mark.parametrize(
    "operation",
    [pytest.param(key, id=f"{key[0]} {key[1]}") for key in BODIES],
)
def test_lone_surrogates_in_json_bodies_never_get_a_500(
    fuzz_daemon: FuzzDaemon, operation: tuple[str, str]
) -> None:
    """Each string of a valid body replaced by a lone surrogate, and each object given a lone
    surrogate key, one at a time: a 4xx (or an upstream 502), never a 500."""
    info, ids = fuzz_daemon
    method, template = operation
    document = httpx.get(f"{info.url}/openapi.json").json()
    if template not in document["paths"]:
        pytest.skip(f"{template} is not served by this build")
    body = BODIES[operation]
    if callable(body):
        body = body(ids)
    path = template.removeprefix("/v1/").format(**ids)
    failures = []
    # One connection per request: after a 500 the server closes the connection.
    with client(info) as api:
        api.headers["Connection"] = "close"
        for variant in surrogate_variants(body):
            answer = api.request(
                method,
                path,
                content=json.dumps(variant),
                headers={"Content-Type": "application/json"},
            )
            code = answer.json().get("error", {}).get("code", "")
            if (
                answer.status_code == 500
                or code == "internal_error"
                or (answer.status_code > 500 and not code.startswith(("upstream_", "enclave_")))
            ):
                failures.append(f"{json.dumps(variant)[:120]} -> {answer.status_code} {code}")
    assert failures == []
