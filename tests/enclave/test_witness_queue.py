"""The daemon's WitnessQueue against a real `aileron-enclave serve`: marks, catch-up, refusals."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import time
from pathlib import Path

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from enclave.support import EnclaveProcess

from aileron_cli.daemon.enclave.witness import WitnessQueue, latest_mark, witness_key
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.attachments import Attachment, AttachmentStore
from aileron_core.audit import GENESIS_PREV
from aileron_core.audit_heads import (
    head_digest,
    parse_witness,
    sign_head,
    witness_signature_ok,
)
from aileron_core.enclave.attestation import AttestationError, verify_attestation
from aileron_core.paths import Layout

VAULT = secrets.token_hex(16)
AUDIT_KEY = Ed25519PrivateKey.generate()
"""Stands in for the vault's audit key (whoever holds the passphrase can use it)."""


def attach(enclave: EnclaveProcess, layout: Layout) -> Ed25519PrivateKey:
    """Register a client and record the attachment as `aileron enclave attach` does."""
    key = enclave.register()
    nonce = os.urandom(32).hex()
    with enclave.client() as http:
        payload = http.post("/v1/attest", json={"nonce": nonce}).json()
    document = verify_attestation(payload, nonce=nonce, fingerprint=enclave.fingerprint)
    layout.ensure()
    AttachmentStore(layout.enclave).save(
        Attachment(
            url=enclave.url,
            fingerprint=enclave.fingerprint,
            certificate=(enclave.data_dir / "tls-cert.pem").read_text(),
            client_id="ck_test",
            signing_key=document.signing_key,
            sealing_key=document.sealing_key,
            measurement=document.measurement,
            provider=document.provider,
            debug=document.debug,
            enclave_version=document.enclave_version,
            attached_at=document.issued_at,
        )
    )
    return key


def heads(count: int, *, start: int = 1, prev: bytes | None = None) -> list[bytes]:
    """``count`` real signed head lines, n = start.., chained from ``prev``."""
    lines: list[bytes] = []
    digest = GENESIS_PREV if prev is None else head_digest(prev)
    for n in range(start, start + count):
        _, line = sign_head(
            AUDIT_KEY,
            n=n,
            seq=n * 10,
            hash=secrets.token_hex(32),
            vault_id=VAULT,
            generation=1,
            reason="periodic",
            prev=digest,
        )
        lines.append(line)
        digest = head_digest(line)
    return lines


def marks(path: Path) -> list[tuple[int, str]]:
    """``(n, digest)`` of each mark line of ``path``, in file order."""
    if not path.exists():
        return []
    return [(m.n, m.digest) for m in map(parse_witness, path.read_bytes().splitlines(True))]


def expected(lines: list[bytes]) -> list[tuple[int, str]]:
    """``(n, digest)`` of consecutive heads 1.. ``lines``."""
    return [(n, head_digest(line)) for n, line in enumerate(lines, start=1)]


async def witnessed(layout: Layout, client: Ed25519PrivateKey, lines: list[bytes]) -> WitnessQueue:
    """Submit ``lines`` (heads of VAULT) through a fresh queue, wait until all were answered,
    close it and return it (its ``refusals`` say what the enclave refused)."""
    queue = WitnessQueue.attached(layout, client)
    assert queue is not None
    for line in lines:
        queue.submit(VAULT, json.loads(line)["n"], head_digest(line))
    assert await queue.drain(30)
    await queue.aclose()
    return queue


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "home").ensure()


def test_submitted_heads_get_valid_marks_in_order(enclave: EnclaveProcess, layout: Layout) -> None:
    """Each submitted head gets a mark, in order, that verifies under witness_key(); the file
    is 0600 and a mark moved to another digest does not verify."""
    client = attach(enclave, layout)
    lines = heads(3)

    async def main() -> bytes | None:
        queue = await witnessed(layout, client, lines)
        assert queue.refusals == []
        return await witness_key(layout)

    public = asyncio.run(main())
    assert public is not None
    assert marks(layout.audit_witness) == expected(lines)
    assert layout.audit_witness.stat().st_mode & 0o777 == 0o600
    found = [parse_witness(x) for x in layout.audit_witness.read_bytes().splitlines(True)]
    assert all(witness_signature_ok(mark, public) for mark in found)
    moved = attrs.evolve(found[0], digest=head_digest(b"a rewritten head"))
    assert not witness_signature_ok(moved, public)


def test_an_unreachable_enclave_is_caught_up_once_it_answers(
    enclave: EnclaveProcess, layout: Layout
) -> None:
    """With the enclave down nothing is marked and submit does not block; once it is back on
    its address the queued heads are marked in order."""
    client = attach(enclave, layout)
    enclave.listen = enclave.url.removeprefix("https://")
    enclave.stop()
    lines = heads(2)

    async def main() -> None:
        queue = WitnessQueue.attached(layout, client, retry_initial_s=0.05, retry_max_s=0.3)
        assert queue is not None
        started = time.monotonic()
        for line in lines:
            queue.submit(VAULT, json.loads(line)["n"], head_digest(line))
        assert time.monotonic() - started < 0.1
        await asyncio.sleep(0.5)
        assert queue.pending == 2 and not layout.audit_witness.exists()
        await asyncio.to_thread(enclave.start)
        assert await queue.drain(30)
        await queue.aclose()

    asyncio.run(main())
    assert marks(layout.audit_witness) == [(1, head_digest(lines[0])), (2, head_digest(lines[1]))]


def test_catch_up_sends_the_heads_without_a_mark(enclave: EnclaveProcess, layout: Layout) -> None:
    """After a restart, catch_up submits exactly the heads the witness file lacks, in order."""
    client = attach(enclave, layout)
    first = heads(2)
    rest = heads(2, start=3, prev=first[-1])
    layout.audit_heads.write_bytes(b"".join(first))

    async def run(expected: int) -> None:
        queue = WitnessQueue.attached(layout, client)
        assert queue is not None
        assert await queue.catch_up(layout.audit_heads, layout.audit_witness) == expected
        assert await queue.drain(30)
        await queue.aclose()

    asyncio.run(run(2))
    with layout.audit_heads.open("ab") as handle:
        handle.write(b"".join(rest))
    asyncio.run(run(2))
    asyncio.run(run(0))
    assert marks(layout.audit_witness) == expected(first + rest)


def test_a_rewritten_history_is_not_countersigned(enclave: EnclaveProcess, layout: Layout) -> None:
    """Heads re-signed with the vault's own key over another history are refused (rollback
    below the latest head, conflict for the same n) and get no mark."""
    client = attach(enclave, layout)
    honest = heads(3)
    forged = heads(3)  # the same n, re-signed by someone holding the passphrase

    async def main() -> list[str]:
        await witnessed(layout, client, honest)
        forger = await witnessed(layout, client, forged)
        return [problem.split(":")[0] for _, problem in forger.refusals]

    assert asyncio.run(main()) == ["witness_rollback", "witness_rollback", "witness_conflict"]
    assert marks(layout.audit_witness) == expected(honest)


def test_witness_key_and_latest_mark_come_from_the_pinned_enclave(
    enclave: EnclaveProcess, layout: Layout
) -> None:
    """witness_key is None without an attachment and refuses an enclave.json whose signing key
    was replaced; latest_mark is the last mark, None for a vault never witnessed."""
    assert asyncio.run(witness_key(layout)) is None
    client = attach(enclave, layout)
    lines = heads(2)

    async def main() -> None:
        await witnessed(layout, client, lines)
        latest = await latest_mark(layout, VAULT, client)
        assert latest is not None and (latest.n, latest.digest) == (2, head_digest(lines[1]))
        assert await latest_mark(layout, secrets.token_hex(16), client) is None

    asyncio.run(main())
    store = AttachmentStore(layout.enclave)
    attachment = store.load()
    assert attachment is not None
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    store.save(attrs.evolve(attachment, signing_key=base64.b64encode(other).decode()))
    assert asyncio.run(witness_key(layout, attest=False)) == other
    with pytest.raises(AttestationError):
        asyncio.run(witness_key(layout))
    with pytest.raises(DaemonError) as raised:
        asyncio.run(latest_mark(layout, VAULT, client))
    assert raised.value.code == "witness_invalid"
