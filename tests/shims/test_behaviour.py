"""What a shim does, run with real shells against a loopback server standing in for the daemon.

The real daemon tests (``test_daemon.py``) prove the wiring; these pin down every branch of the
script: argument encoding by type, usage errors, statuses, the environment, curl and wget.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shims.support import (
    BASH,
    DASH,
    SH,
    SHIM_UTILITIES,
    CaptureServer,
    closed_port,
    run_shim,
    toolbox,
)

from aileron_shims import __version__

TOKEN = "ais_test-session-token-0123456789"
SESSION = "01JTESTSESSION0000000000000"
SHELLS = [s for s in (SH, DASH, BASH) if s is not None]
FEW = settings(
    deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
JSON_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def shim_env(api_url: str, path: str | None = None, **extra: str) -> dict[str, str]:
    """Exactly the environment a sandboxed agent gives a shim."""
    env = {
        "PATH": path if path is not None else os.environ["PATH"],
        "AILERON_API_URL": api_url,
        "AILERON_TOKEN": TOKEN,
        "AILERON_SESSION_ID": SESSION,
    }
    return env | extra


@pytest.mark.parametrize("shell", SHELLS)
def test_typed_arguments_are_encoded_by_their_declared_type(
    golden_bin: Path, capture: CaptureServer, shell: str
) -> None:
    """string → JSON string; integer/number/boolean raw; array/object as given; headers set."""
    done = run_shim(
        golden_bin / "aileron-echo",
        "acme-shout",
        "--arg",
        'text=say "hi"\\\n\tnow\x01 é\n',
        "--arg=times=-3",
        "--arg",
        "ratio=1.5e-3",
        "--arg",
        "loud=true",
        "--arg",
        'tags=["a", 2]',
        "--arg",
        "extra={}",
        env=shim_env(capture.api_url),
        shell=shell,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == json.dumps(capture.answer) + "\n"
    [request] = capture.seen
    assert request.path == "/v1/actions/acme-shout/run"
    assert request.json() == {
        "args": {
            "text": 'say "hi"\\\n\tnow\x01 é\n',
            "times": -3,
            "ratio": 1.5e-3,
            "loud": True,
            "tags": ["a", 2],
            "extra": {},
        }
    }
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["X-Aileron-Session-Id"] == SESSION
    assert request.headers["X-Aileron-Version"] == __version__
    assert request.headers["Content-Type"] == "application/json"


def test_args_json_is_sent_verbatim_and_operations_name_their_target(
    golden_bin: Path, capture: CaptureServer
) -> None:
    """--args is the arguments object byte for byte; an operation's body names fqn/tool/op."""
    env = shim_env(capture.api_url + "/")
    action = run_shim(
        golden_bin / "aileron-echo-2", "echo-say", "--args", '{"message" : "x" }', env=env
    )
    operation = run_shim(
        golden_bin / "issues", "issues.create", "--arg", "owner=o", "--arg=title=T", env=env
    )
    assert [action.returncode, operation.returncode] == [0, 0]
    first, second = capture.seen
    assert (first.path, first.body) == ("/v1/actions/echo-say/run", b'{"args":{"message" : "x" }}')
    assert second.path == "/v1/connector-operations/run"
    assert second.json() == {
        "connector_fqn": "github://aileron-examples/issues",
        "tool": "issues",
        "operation": "create",
        "args": {"owner": "o", "title": "T"},
    }


def test_no_arguments_send_an_empty_object(golden_bin: Path, capture: CaptureServer) -> None:
    """A subcommand without --arg or --args sends {"args": {}}."""
    done = run_shim(golden_bin / "aileron-echo-2", "echo-say", env=shim_env(capture.api_url))
    assert done.returncode == 0
    assert capture.seen[0].body == b'{"args":{}}'


@FEW
@given(text=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")))
def test_any_string_argument_round_trips(
    golden_bin: Path, capture: CaptureServer, text: str
) -> None:
    """Whatever text a string --arg holds (quotes, newlines, controls), the daemon gets it."""
    capture.seen.clear()
    done = run_shim(
        golden_bin / "aileron-echo-2",
        "echo-say",
        "--arg",
        f"message={text}",
        env=shim_env(capture.api_url),
    )
    assert done.returncode == 0, done.stderr
    assert capture.seen[0].json() == {"args": {"message": text}}


NUMERIC = st.text(alphabet="0123456789.eE+-x ", max_size=7)


@FEW
@given(value=st.one_of(NUMERIC, st.from_regex(JSON_NUMBER, fullmatch=True)))
def test_number_arguments_are_exactly_json_numbers(
    golden_bin: Path, capture: CaptureServer, value: str
) -> None:
    """A number --arg is accepted iff it is a JSON number, and is sent as that number."""
    capture.seen.clear()
    done = run_shim(
        golden_bin / "aileron-echo",
        "acme-shout",
        "--arg",
        f"ratio={value}",
        env=shim_env(capture.api_url),
    )
    if JSON_NUMBER.fullmatch(value):
        assert done.returncode == 0, done.stderr
        assert capture.seen[0].json()["args"]["ratio"] == json.loads(value)
    else:
        assert done.returncode == 64, value
        assert "must be a JSON number" in done.stderr and capture.seen == []


@FEW
@given(value=st.one_of(NUMERIC, st.from_regex(JSON_INTEGER, fullmatch=True)))
def test_integer_arguments_are_exactly_json_integers(
    golden_bin: Path, capture: CaptureServer, value: str
) -> None:
    """An integer --arg is accepted iff it is a JSON integer (no sign +, no leading zero)."""
    capture.seen.clear()
    done = run_shim(
        golden_bin / "aileron-echo",
        "acme-shout",
        "--arg",
        f"times={value}",
        env=shim_env(capture.api_url),
    )
    if JSON_INTEGER.fullmatch(value):
        assert done.returncode == 0, done.stderr
        assert capture.seen[0].json()["args"]["times"] == int(value)
    else:
        assert done.returncode == 64, value
        assert "must be an integer" in done.stderr and capture.seen == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "aileron-echo: no action given"),
        (["nope"], "aileron-echo: unknown action 'nope' (run 'aileron-echo --help' for the list)"),
        (["--bogus"], "aileron-echo: unknown option '--bogus'"),
        (["acme-shout", "--verbose"], "aileron-echo: unexpected '--verbose'"),
        (["acme-shout", "text"], "aileron-echo: unexpected 'text'"),
        (["acme-shout", "--arg", "text"], "aileron-echo: --arg takes NAME=VALUE, not 'text'"),
        (
            ["acme-shout", "--arg", "colour=red"],
            "aileron-echo: acme-shout has no argument 'colour'",
        ),
        (["acme-shout", "--arg", "text=a", "--arg", "text=b"], "argument 'text' is given twice"),
        (["acme-shout", "--args", "{}", "--arg", "text=a"], "use either --args or --arg"),
        (["acme-shout", "--arg", "text=a", "--args", "{}"], "use either --args or --arg"),
        (["acme-shout", "--args", "{}", "--args", "{}"], "give --args once"),
        (["acme-shout", "--args"], "--args needs a JSON object"),
        (["acme-shout", "--arg"], "--arg needs NAME=VALUE"),
        (["acme-shout", "--arg", "loud=yes"], "argument 'loud' must be true or false"),
        (["acme-shout", "--arg", "times=1.5"], "argument 'times' must be an integer"),
    ],
)
def test_bad_usage_exits_64_with_the_usage_and_sends_nothing(
    golden_bin: Path, capture: CaptureServer, args: list[str], message: str
) -> None:
    """Unknown subcommands, options and arguments and bad values: exit 64, usage on stderr."""
    done = run_shim(golden_bin / "aileron-echo", *args, env=shim_env(capture.api_url))
    assert done.returncode == 64
    assert done.stdout == ""
    assert message in done.stderr
    assert "usage: aileron-echo ACTION [--args JSON | --arg NAME=VALUE]..." in done.stderr
    assert capture.seen == []


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["help"]])
def test_tool_help_lists_subcommands_and_arguments_without_any_environment(
    golden_bin: Path, args: list[str]
) -> None:
    """--help/-h/help print every subcommand with its summary and typed arguments, exit 0."""
    done = run_shim(golden_bin / "issues", *args, env={"PATH": os.environ["PATH"]})
    assert (done.returncode, done.stderr) == (0, "")
    assert "  issues.create  Open a new issue in a repository." in done.stdout
    assert "  issues.list  List the issues of a repository." in done.stdout
    assert "      state (string, optional): open, closed or all (default open)." in done.stdout
    assert "      labels (array, optional): Label names, as a JSON array." in done.stdout


def test_subcommand_help_shows_the_whole_description_and_arguments(golden_bin: Path) -> None:
    """<tool> <sub> --help prints its description and arguments, exit 0."""
    done = run_shim(
        golden_bin / "aileron-echo-2", "echo-careful", "-h", env={"PATH": os.environ["PATH"]}
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[:9] == [
        "usage: aileron-echo-2 echo-careful [--args JSON | --arg NAME=VALUE]...",
        "",
        "Echo a message, but only after a human approves it.",
        "",
        "The call returns an approval id at once; nothing is sent until",
        "`aileron approval approve ID` is run.",
        "",
        "arguments:",
        "  message (string, required): The text to echo back once approved.",
    ]


@pytest.mark.parametrize("client", ["curl", "wget"])
def test_statuses_map_to_exit_codes(
    golden_bin: Path, capture: CaptureServer, tmp_path: Path, client: str
) -> None:
    """200 → body, 0; 202 → body and approval hint, 75; other → error line, 1 (curl and wget)."""
    path = os.fspath(toolbox(tmp_path / "path", (*SHIM_UTILITIES, client)))
    env = shim_env(capture.api_url, path)
    capture.answer = {"status": "pending_approval", "approval_id": "01APPROVAL", "message": "m"}
    capture.status = 202
    pending = run_shim(golden_bin / "aileron-echo-2", "echo-careful", "--arg", "message=x", env=env)
    assert pending.returncode == 75
    assert json.loads(pending.stdout) == capture.answer
    assert pending.stderr == (
        "aileron-echo-2: approval 01APPROVAL is pending — ask the user to run:"
        " aileron approval approve 01APPROVAL\n"
    )
    for status in (401, 404, 422, 500, 502):
        capture.status, capture.answer = status, {"error": {"code": "x", "message": "no"}}
        failed = run_shim(golden_bin / "aileron-echo-2", "echo-say", env=env)
        assert failed.returncode == 1, (status, failed.stderr)
        assert failed.stdout == ""
        assert failed.stderr.startswith(f"aileron-echo-2: error (HTTP {status}): ")
    capture.status, capture.answer = 200, {"audit_id": "01AUDIT", "result": [1, "two"]}
    done = run_shim(golden_bin / "aileron-echo-2", "echo-say", env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, json.dumps(capture.answer) + "\n", "")
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in capture.seen)
    assert all(r.headers["Content-Type"] == "application/json" for r in capture.seen)


@pytest.mark.parametrize("client", ["curl", "wget"])
def test_an_unreachable_daemon_exits_69(golden_bin: Path, tmp_path: Path, client: str) -> None:
    """Nothing listening on the port: `<tool>: Aileron daemon unreachable at <url>`, exit 69."""
    path = os.fspath(toolbox(tmp_path / "path", (*SHIM_UTILITIES, client)))
    url = f"http://127.0.0.1:{closed_port()}/v1"
    done = run_shim(golden_bin / "aileron-echo-2", "echo-say", env=shim_env(url, path))
    assert (done.returncode, done.stdout) == (69, "")
    assert done.stderr == f"aileron-echo-2: Aileron daemon unreachable at {url}\n"


@pytest.mark.parametrize(
    ("drop", "set_", "message"),
    [
        ("AILERON_API_URL", {}, "AILERON_API_URL is not set"),
        ("AILERON_TOKEN", {}, "AILERON_TOKEN is not set"),
        (None, {"AILERON_API_URL": "127.0.0.1:1/v1"}, "must be an http:// or https:// URL"),
        (None, {"AILERON_TOKEN": "a\nb"}, "holds a line break"),
    ],
)
def test_a_missing_or_bad_environment_exits_69(
    golden_bin: Path,
    capture: CaptureServer,
    drop: str | None,
    set_: dict[str, str],
    message: str,
) -> None:
    """Unset AILERON_API_URL or AILERON_TOKEN, a non-HTTP URL, a line break: exit 69."""
    env = shim_env(capture.api_url) | set_
    env.pop(drop or "", None)
    done = run_shim(golden_bin / "aileron-echo-2", "echo-say", env=env)
    assert done.returncode == 69
    assert message in done.stderr and done.stderr.startswith("aileron-echo-2: ")
    assert capture.seen == []


def test_without_curl_or_wget_the_shim_exits_69(golden_bin: Path, tmp_path: Path) -> None:
    """With neither HTTP client on PATH: a message naming both, exit 69."""
    path = os.fspath(toolbox(tmp_path / "path", SHIM_UTILITIES))
    done = run_shim(
        golden_bin / "aileron-echo-2", "echo-say", env=shim_env("http://127.0.0.1:9/v1", path)
    )
    assert done.returncode == 69
    assert "neither curl nor wget is on PATH" in done.stderr


@pytest.mark.parametrize("client", ["curl", "wget"])
def test_the_token_is_on_no_command_line_and_temp_files_go(
    golden_bin: Path, capture: CaptureServer, tmp_path: Path, client: str
) -> None:
    """The client's argv never holds the token; the private temp directory is removed."""
    path = toolbox(tmp_path / "path", SHIM_UTILITIES)
    log = tmp_path / "argv.log"
    real = shutil.which(client)
    assert real is not None
    wrapper = path / client
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >>"{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = shim_env(capture.api_url, os.fspath(path), TMPDIR=os.fspath(temp))
    done = run_shim(golden_bin / "aileron-echo-2", "echo-say", "--arg", "message=m", env=env)
    assert done.returncode == 0, done.stderr
    assert capture.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    argv = log.read_text()
    assert f"{capture.api_url}/actions/echo-say/run" in argv.splitlines()
    assert TOKEN not in argv
    assert list(temp.iterdir()) == []
