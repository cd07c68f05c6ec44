"""The error envelope and its handlers, shared by the daemon and the enclave (ADR 0026),
rendered through a small real FastAPI app."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from aileron_cli.daemon.errors import DaemonError
from aileron_core.errors import AileronError
from aileron_core.http_errors import (
    DEFAULT_STATUS,
    STATUS_BY_CODE,
    error_document,
    install_error_handlers,
)
from aileron_enclave.errors import EnclaveError


class Body(BaseModel):
    count: int


def app(*, challenge: str | None = "Bearer") -> FastAPI:
    """An app with one route per kind of failure."""
    built = FastAPI()
    install_error_handlers(
        built, unexpected="the test app failed", log=logging.getLogger("test"), challenge=challenge
    )

    @built.get("/daemon/{code}")
    def daemon(code: str) -> None:
        raise DaemonError(
            code, "refused", details={"why": "\ud800"}, retriable=code == "upstream_timeout"
        )

    @built.get("/enclave/{code}")
    def enclave(code: str) -> None:
        raise EnclaveError("refused", code=code)

    @built.get("/plain")
    def plain() -> None:
        raise AileronError("no code of its own")

    @built.get("/locked")
    def locked() -> None:
        raise DaemonError("too_many_attempts", "wait", details={"retry_after": 2.4})

    @built.post("/body")
    def body(body: Body) -> dict[str, Any]:
        return {"count": body.count}

    @built.get("/crash")
    def crash() -> None:
        raise RuntimeError("a secret traceback")

    return built


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(app(), raise_server_exceptions=False) as client:
        yield client


def test_the_envelope_holds_only_what_the_error_says() -> None:
    """details only when there are some, retriable and audit_id only when given."""
    assert error_document("not_found", "gone") == {
        "error": {"code": "not_found", "message": "gone"}
    }
    assert error_document("x", "m", details={"a": 1}, retriable=False, audit_id="A1") == {
        "error": {
            "code": "x",
            "message": "m",
            "details": {"a": 1},
            "retriable": False,
            "audit_id": "A1",
        }
    }


def test_an_error_is_answered_with_the_status_of_its_code(client: TestClient) -> None:
    """A DaemonError's code picks the status from the table; the body is the envelope."""
    answer = client.get("/daemon/binding_required")
    assert answer.status_code == 412
    assert answer.json() == {
        "error": {
            "code": "binding_required",
            "message": "refused",
            "details": {"why": "\\ud800"},
            "retriable": False,
        }
    }


def test_invalid_credential_is_412_for_the_daemon_and_the_enclave(client: TestClient) -> None:
    """The code both services raise has one status (they disagreed before: 412 and 422)."""
    assert STATUS_BY_CODE["invalid_credential"] == 412
    assert client.get("/daemon/invalid_credential").status_code == 412
    enclave = client.get("/enclave/invalid_credential")
    assert enclave.status_code == 412
    assert enclave.json()["error"] == {
        "code": "invalid_credential",
        "message": "refused",
        "retriable": False,
    }


def test_a_401_names_the_challenge_only_when_there_is_one() -> None:
    """The daemon's 401 says WWW-Authenticate: Bearer; the enclave's (signed requests) none."""
    with TestClient(app()) as bearer, TestClient(app(challenge=None)) as signed:
        assert bearer.get("/daemon/unauthorized").headers["www-authenticate"] == "Bearer"
        answer = signed.get("/enclave/bad_signature")
    assert answer.status_code == 401
    assert "www-authenticate" not in answer.headers


def test_a_429_says_when_to_retry(client: TestClient) -> None:
    """too_many_attempts carries Retry-After from its retry_after detail, rounded, at least 1."""
    answer = client.get("/locked")
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "2"


def test_an_error_without_its_own_code_is_answered(client: TestClient) -> None:
    """A bare AileronError has a status too (aileron_error), never a crash."""
    answer = client.get("/plain")
    assert answer.status_code == STATUS_BY_CODE["aileron_error"]
    assert answer.json()["error"]["code"] == "aileron_error"


def test_an_unknown_code_gets_the_default_status(client: TestClient) -> None:
    """A code missing from the table gets DEFAULT_STATUS (the scan keeps none missing)."""
    answer = client.get("/daemon/no_such_code")
    assert answer.status_code == DEFAULT_STATUS == 400


def test_a_bad_body_is_422_naming_the_field(client: TestClient) -> None:
    """A validation failure is invalid_request with the field's location; bad JSON too."""
    answer = client.post("/body", json={"count": "many"})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"] == "invalid body.count"
    assert error["details"]["fields"][0]["location"] == ["body", "count"]
    broken = client.post("/body", content=b"{", headers={"content-type": "application/json"})
    assert broken.status_code == 422
    assert broken.json()["error"]["code"] == "invalid_request"


def test_unknown_routes_and_methods_are_enveloped(client: TestClient) -> None:
    """404 not_found and 405 method_not_allowed answer in the envelope."""
    assert client.get("/nowhere").json() == {
        "error": {"code": "not_found", "message": "no such route"}
    }
    answer = client.delete("/plain")
    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "method_not_allowed"


def test_an_unexpected_exception_is_a_500_without_its_traceback(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Anything unexpected is logged and answered 500 internal_error with the given message."""
    with caplog.at_level(logging.ERROR, logger="test"):
        answer = client.get("/crash")
    assert answer.status_code == 500
    assert answer.json() == {"error": {"code": "internal_error", "message": "the test app failed"}}
    assert "a secret traceback" not in answer.text
    assert "a secret traceback" in caplog.text
