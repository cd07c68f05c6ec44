"""Storage failures, in-process: a disk that refuses writes is a 503 envelope naming the cause,
documented in the OpenAPI document, and leaves what the API shows unchanged.

The real thing (a full tmpfs, a read-only ext4, as root) is in tests/reliability; here the
file system calls are made to fail, so every store and every kind of write is covered.
"""

from __future__ import annotations

import errno
import os
import shutil
from typing import Any, NoReturn

import pytest
from actions.support import echo_spec, manifest
from fastapi.testclient import TestClient


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS], ids=["full", "read-only"])
def test_writes_a_disk_refuses_are_503s_naming_the_cause(api: TestClient, error: int) -> None:
    """Store, vault, state-log and audit writes that fail (disk full, read-only) answer 503
    with their own code and the OS's reason, and nothing the API shows changes."""
    reason = os.strerror(error)

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise OSError(error, reason)

    assert api.post("connectors", json={"spec": echo_spec("127.0.0.1:1")}).status_code == 201
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", refuse)  # every atomic rewrite: stores and the vault
        patch.setattr(shutil, "rmtree", refuse)  # removing a connector's directory
        answers = {
            "install action": api.post("actions", json={"manifest": manifest("echo-say")}),
            "remove connector": api.delete("connectors/local:%2F%2Fecho"),
            "create vault": api.post("vault/init", json={"passphrase": "p"}),
        }
        patch.setattr(os, "fdatasync", refuse)  # every append: state logs and the audit log
        answers["start session"] = api.post("sessions", json={"agent": "a", "working_dir": "/"})
        answers["record event"] = api.post("audit/ack")
    codes = {what: answer.json()["error"]["code"] for what, answer in answers.items()}
    assert codes == {
        "install action": "store_write_failed",
        "remove connector": "store_write_failed",
        "create vault": "vault_error",
        "start session": "state_write_failed",
        "record event": "audit_write_failed",
    }
    for what, answer in answers.items():
        assert answer.status_code == 503, (what, answer.text)
        assert reason in answer.json()["error"]["message"], (what, answer.text)
    assert [a["name"] for a in api.get("actions").json()["actions"]] == []
    assert [c["fqn"] for c in api.get("connectors").json()] == ["local://echo"]
    assert api.get("vault/status").json() == {"state": "missing"}
    assert api.get("sessions").json() == []


def test_the_openapi_document_lists_the_503_answer(api: TestClient) -> None:
    """Every operation that writes documents the 503 that storage failures answer."""
    document = api.get("http://testserver/openapi.json").json()
    writes = [
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in ("post", "put", "patch", "delete")
    ]
    assert writes
    missing = [w for w in writes if "503" not in document["paths"][w[0]][w[1]]["responses"]]
    assert missing == []
