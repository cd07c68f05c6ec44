"""Schemathesis fuzzes the real daemon from its own /openapi.json: no 5xx, no schema violation."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import script

from aileron_core.discovery import DaemonInfo

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    )
)


# The one operation that contacts a host the caller names (the enclave to attach): for a
# well-formed URL of a host that does not answer, 502 `enclave_unreachable` is the right answer,
# so that operation is fuzzed without the no-5xx check (malformed URLs are still 422: see
# tests/enclave/test_attach_url.py); every other operation gets every check.
REMOTE = "^/v1/enclave/attach$"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("selection", "excluded"),
    [
        (["--exclude-path-regex", REMOTE], ""),
        (["--include-path-regex", REMOTE], "not_a_server_error"),
    ],
    ids=["all-but-remote", "remote"],
)
def test_fuzzing_the_real_daemon_finds_nothing(
    real_daemon: DaemonInfo, tmp_path: Path, selection: list[str], excluded: str
) -> None:
    """Generated and mutated requests to every operation never get a 5xx or an off-schema answer."""
    checks = ",".join(c for c in CHECKS.split(",") if c != excluded)
    done = subprocess.run(
        [
            script("st"),
            "run",
            f"{real_daemon.url}/openapi.json",
            *selection,
            "--header",
            f"Authorization: Bearer {real_daemon.token}",
            "--checks",
            checks,
            "--max-examples",
            "10",
            "--max-time",
            "90",
            "--seed",
            "20261128",
            "--workers",
            # one worker: with two, CPython 3.11's ast.parse (used by Hypothesis to describe
            # lambdas) can fail with "AST constructor recursion depth mismatch".
            "1",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "passed" in done.stdout.lower()
