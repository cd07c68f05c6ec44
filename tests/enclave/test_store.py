"""The escrow store: sealed at rest, survives a restart, and a tampered file is detected."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from enclave.support import SECRET, EnclaveProcess, echo_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aileron_cli.examples.echo_server import EchoServer
from aileron_core.enclave.sealing import Scope
from aileron_enclave.datadir import DataDir
from aileron_enclave.store import Client, Escrow, EscrowStore, StoreCorrupt

STORAGE_KEY = os.urandom(32)


def test_escrows_and_clients_survive_a_restart(enclave: EnclaveProcess, echo: EchoServer) -> None:
    """After a restart the client, its escrow and the certificate are unchanged and usable."""
    key = enclave.register()
    scope = Scope(binding="token/echo/default", hosts=[echo.host], kind="bearer")
    escrow_id = enclave.escrow(key, scope)
    fingerprint = enclave.fingerprint
    stored = (enclave.data_dir / "escrow-store.json").read_bytes()
    assert SECRET.encode() not in stored and b"token/echo/default" not in stored
    enclave.stop()
    enclave.start()
    assert enclave.fingerprint == fingerprint
    with enclave.client(key) as http:
        assert [e["id"] for e in http.get("/v1/escrow").json()["escrows"]] == [escrow_id]
        answer = http.post(
            "/v1/execute", json={"escrow_id": escrow_id, "request": echo_request(echo.host)}
        )
    assert answer.status_code == 200, answer.text
    assert json.loads(base64.b64decode(answer.json()["body"]))["authorized"] is True


def test_a_tampered_escrow_store_stops_the_enclave(
    enclave: EnclaveProcess, echo: EchoServer
) -> None:
    """A store changed on disk while the enclave was down stops its start with a clear error."""
    key = enclave.register()
    enclave.escrow(key, Scope(binding="token/echo/default", hosts=[echo.host], kind="bearer"))
    enclave.stop()
    path = enclave.data_dir / "escrow-store.json"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x04  # inside the base64 ciphertext
    path.write_bytes(bytes(data))
    with pytest.raises(AssertionError) as failed:
        enclave.start()
    message = str(failed.value)
    assert "aileron-enclave: error: the escrow store" in message
    assert "failed its integrity check" in message
    assert "restore it from a backup" in message


def make_store(tmp_path: Path) -> tuple[DataDir, bytes]:
    data_dir = DataDir(tmp_path / "data").ensure()
    store = EscrowStore.open(data_dir, STORAGE_KEY)
    now = datetime.now(UTC)
    store.add_client(Client(id="ck_1", public_key="A" * 43 + "=", label="t", registered_at=now))
    store.add_escrow(
        Escrow(
            id="esc_1",
            client_id="ck_1",
            scope=Scope(binding="token/echo/default", hosts=["127.0.0.1:1"], kind="bearer"),
            sealed="QUVDMQ==",
            created_at=now,
        )
    )
    return data_dir, store.path.read_bytes()


def test_the_store_round_trips(tmp_path: Path) -> None:
    """What is written opens again to the same clients and escrows."""
    data_dir, _ = make_store(tmp_path)
    store = EscrowStore.open(data_dir, STORAGE_KEY)
    assert [c.id for c in store.clients()] == ["ck_1"]
    assert store.escrow("esc_1", "ck_1").scope.hosts == ("127.0.0.1:1",)
    with pytest.raises(StoreCorrupt, match="does not authenticate"):
        EscrowStore.open(data_dir, os.urandom(32))


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_change_to_the_store_file_is_detected(tmp_path: Path, data: st.DataObject) -> None:
    """Flipping any bit, truncating or appending anywhere in the store file is StoreCorrupt."""
    data_dir, original = make_store(tmp_path)
    index = data.draw(st.integers(0, len(original) - 1))
    choice = data.draw(st.sampled_from(["flip", "truncate", "append"]))
    if choice == "flip":
        mask = data.draw(st.integers(1, 255))
        changed = original[:index] + bytes([original[index] ^ mask]) + original[index + 1 :]
    elif choice == "truncate":
        changed = original[:index]
    else:
        changed = original + data.draw(st.binary(min_size=1, max_size=4))
    data_dir.store.write_bytes(changed)
    try:
        with pytest.raises(StoreCorrupt):
            EscrowStore.open(data_dir, STORAGE_KEY)
    finally:
        data_dir.store.write_bytes(original)
