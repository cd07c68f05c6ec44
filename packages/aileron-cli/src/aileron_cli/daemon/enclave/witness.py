"""The attached enclave as the outside witness of the audit heads (``audit.witness.jsonl``).

Every signed head (``aileron_core.audit_heads``) is also sent to the attached enclave's
``POST /v1/witness {vault_id, n, digest}``, signed with the daemon's client key; the enclave
answers a *witness mark* signed with its attested signing key and remembers, per client and
vault, the latest head it countersigned, refusing to go back (``witness_rollback``) or to sign
another digest for the same head (``witness_conflict``). So someone who holds the vault
passphrase can re-sign heads over a rewritten log, but cannot get them countersigned
(``adr/0022-audit-witness.md``).

:class:`WitnessQueue` sends in the background and in order: :meth:`WitnessQueue.submit` never
blocks head signing; while the enclave is unreachable it retries with backoff, and each mark is
checked (the pinned enclave key, the head asked for) before it is appended, one canonical line,
fdatasynced, to the witness file (0600). After a restart :meth:`WitnessQueue.catch_up` submits
the heads that have no mark yet. A refusal that retrying cannot fix (rollback, conflict, an
unknown client) is logged and kept in :attr:`WitnessQueue.refusals`; that head stays unmarked,
which ``aileron audit verify --witness`` reports.

:func:`witness_key` gives verify the key to check marks with: the enclave's signing key, from a
fresh attestation checked as attach checks it (the pinned certificate, the nonce, the provider,
the measurement and the signing key recorded at attach).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import secrets
import threading
from pathlib import Path

import attrs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aileron_cli.daemon.enclave.client import EnclaveConnection, EnclaveRefusal, connect
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.attachments import Attachment, AttachmentStore
from aileron_core.audit_heads import (
    HeadError,
    WitnessMark,
    head_digest,
    key_id,
    parse_head,
    parse_witness,
    witness_signature_ok,
)
from aileron_core.canonical import canonical_json
from aileron_core.enclave.attestation import verify_attestation
from aileron_core.enclave.encoding import b64decode
from aileron_core.network import Network
from aileron_core.paths import SECRET_FILE_MODE, Layout

__all__ = ["WitnessQueue", "WitnessRequest", "latest_mark", "witness_key"]

log = logging.getLogger("aileron.daemon")

PROVIDERS = ("local",)
"""Attestation providers accepted (as for attach)."""

_RETRIED_CODES = frozenset({"stale_request", "replayed_request"})


@attrs.frozen
class WitnessRequest:
    """One head to have countersigned."""

    vault_id: str
    n: int
    digest: str


def _pinned_key(attachment: Attachment) -> bytes:
    return b64decode(attachment.signing_key, what="signing_key", size=32)


def _checked_mark(answer: object, attachment: Attachment, wanted: WitnessRequest) -> bytes:
    """The mark line of an enclave answer, if it is the pinned key's mark of ``wanted``."""
    try:
        if not isinstance(answer, dict):
            raise HeadError("the answer is not a JSON object")
        line = canonical_json(answer) + b"\n"
        mark = parse_witness(line)
    except (HeadError, TypeError, ValueError) as error:
        raise DaemonError(
            "witness_invalid", f"the enclave's witness mark is malformed: {error}"[:300]
        ) from None
    public = _pinned_key(attachment)
    if (
        (mark.vault_id, mark.n, mark.digest) != (wanted.vault_id, wanted.n, wanted.digest)
        or mark.key != key_id(public)
        or not witness_signature_ok(mark, public)
    ):
        raise DaemonError(
            "witness_invalid",
            f"the enclave's mark for head {wanted.n} is not the pinned enclave key's"
            " signature of that head",
            hint="check the enclave with `aileron enclave status --verify`",
        )
    return line


def _append_line(path: Path, line: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, SECRET_FILE_MODE)
    try:
        os.write(fd, line)
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _read_lines(path: Path) -> list[bytes]:
    """Complete lines of ``path`` (a torn last line is left out); none if it is missing."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    return [line + b"\n" for line in lines[:-1] if line]


def witnessed_heads(witness_path: Path) -> set[tuple[str, int, str]]:
    """``(vault_id, n, digest)`` of every well-formed mark in ``witness_path``."""
    found: set[tuple[str, int, str]] = set()
    for line in _read_lines(witness_path):
        with contextlib.suppress(HeadError):
            mark = parse_witness(line)
            found.add((mark.vault_id, mark.n, mark.digest))
    return found


class WitnessQueue:
    """Sends signed heads to the attached enclave, in order, and keeps the marks it answers.

    Start it inside the daemon's event loop (:meth:`start`, or the first :meth:`submit` from
    the loop); :meth:`submit` may be called from any thread."""

    def __init__(
        self,
        attachment: Attachment,
        client_key: Ed25519PrivateKey,
        witness_path: Path,
        *,
        retry_initial_s: float = 0.25,
        retry_max_s: float = 30.0,
        network: Network | None = None,
    ) -> None:
        self.attachment = attachment
        self.network = network
        self.witness_path = witness_path
        self.refusals: list[tuple[WitnessRequest, str]] = []
        """Heads the enclave refused for good, with the refusal (code: message)."""
        self._client_key = client_key
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._pending: collections.deque[WitnessRequest] = collections.deque()
        self._done: dict[str, int] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._connection: EnclaveConnection | None = None

    @classmethod
    def attached(
        cls,
        layout: Layout,
        client_key: Ed25519PrivateKey,
        *,
        network: Network | None = None,
        **options: float,
    ) -> WitnessQueue | None:
        """A queue for the enclave attached in ``layout`` (``None`` when none is), writing to
        ``layout.audit_witness``."""
        attachment = AttachmentStore(layout.enclave).load()
        if attachment is None:
            return None
        return cls(attachment, client_key, layout.audit_witness, network=network, **options)

    @property
    def pending(self) -> int:
        """Heads submitted and not yet marked or refused."""
        with self._lock:
            return len(self._pending)

    def start(self) -> None:
        """Start the background sender (idempotent); must run inside the event loop."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._connection = connect(self.attachment, self._client_key, self.network)
        self._task = self._loop.create_task(self._run())
        self._wake.set()

    def submit(self, vault_id: str, n: int, digest: str) -> None:
        """Queue head ``n`` (line digest ``digest``) of ``vault_id``; returns at once."""
        with self._lock:
            self._pending.append(WitnessRequest(vault_id, n, digest))
        if self._loop is None:
            with contextlib.suppress(RuntimeError):  # not in a loop: start() sends it later
                asyncio.get_running_loop()
                self.start()
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: catch_up sends it later
            self._loop.call_soon_threadsafe(self._poke)

    def _poke(self) -> None:
        if self._wake is not None and self._idle is not None:
            self._idle.clear()
            self._wake.set()

    async def catch_up(self, heads_path: Path, witness_path: Path | None = None) -> int:
        """Submit, in order, every head of ``heads_path`` that ``witness_path`` (by default this
        queue's file) has no mark for; the number submitted. Stops at a malformed head line."""
        marked = witnessed_heads(witness_path or self.witness_path)
        submitted = 0
        for line in _read_lines(heads_path):
            try:
                head = parse_head(line)
            except HeadError:
                log.warning("audit witness: %s has a malformed head line; not sent", heads_path)
                break
            digest = head_digest(line)
            if (head.vault_id, head.n, digest) not in marked:
                self.submit(head.vault_id, head.n, digest)
                submitted += 1
        return submitted

    async def drain(self, timeout_s: float | None = None) -> bool:
        """Wait until every submitted head is marked or refused; ``False`` on timeout."""
        self.start()
        assert self._idle is not None
        while self.pending:
            self._poke()
            try:
                await asyncio.wait_for(self._idle.wait(), timeout_s)
            except TimeoutError:
                return False
        return True

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (for at most ``timeout_s``), then stop; what is left unsent
        is sent by :meth:`catch_up` after the next start."""
        if self._task is None:
            return
        with contextlib.suppress(Exception):
            await self.drain(timeout_s)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._connection is not None:
            await self._connection.__aexit__(None, None, None)
            self._connection = None
        self._loop = None

    async def _run(self) -> None:
        assert self._wake is not None and self._idle is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while True:
                with self._lock:
                    request = self._pending[0] if self._pending else None
                if request is None:
                    break
                await self._send(request)
                with self._lock:
                    self._pending.popleft()
            self._idle.set()

    async def _send(self, request: WitnessRequest) -> None:
        """Countersign ``request``, retrying until it is marked or refused for good."""
        if self._done.get(request.vault_id, 0) >= request.n:
            return  # already marked (a head submitted twice: by catch_up and live)
        delay = self._retry_initial_s
        body = {"vault_id": request.vault_id, "n": request.n, "digest": request.digest}
        assert self._connection is not None
        while True:
            try:
                answer = await self._connection.call("POST", "/v1/witness", body)
                line = _checked_mark(answer, self.attachment, request)
            except EnclaveRefusal as refusal:
                if not (refusal.retriable or refusal.enclave_code in _RETRIED_CODES):
                    self._refused(request, f"{refusal.enclave_code}: {refusal.enclave_message}")
                    return
                problem = str(refusal)
            except DaemonError as error:
                if not error.retriable:  # a wrong certificate or a bad mark: not the witness
                    self._refused(request, f"{error.code}: {error}")
                    return
                problem = str(error)
            else:
                await asyncio.to_thread(_append_line, self.witness_path, line)
                self._done[request.vault_id] = request.n
                return
            log.info("audit witness: head %d not sent yet (%s); retrying", request.n, problem)
            await asyncio.sleep(delay * (0.5 + secrets.randbelow(1000) / 1000))
            delay = min(delay * 2, self._retry_max_s)

    def _refused(self, request: WitnessRequest, problem: str) -> None:
        log.error("audit witness: the enclave did not countersign head %d: %s", request.n, problem)
        self.refusals.append((request, problem))


async def witness_key(
    layout: Layout, *, attest: bool = True, network: Network | None = None
) -> bytes | None:
    """The attached enclave's witness key (32 raw bytes), ``None`` when none is attached.

    With ``attest`` (the default) the enclave must answer a fresh attestation that passes the
    checks of attach with the certificate, measurement and signing key pinned then
    (``enclave_unreachable`` or ``attestation_invalid`` otherwise); without, the key recorded
    at attach is returned as is."""
    attachment = AttachmentStore(layout.enclave).load()
    if attachment is None:
        return None
    if attest:
        nonce = secrets.token_hex(32)
        async with connect(attachment, None, network) as connection:
            payload = await connection.call("POST", "/v1/attest", {"nonce": nonce})
        verify_attestation(
            payload,
            nonce=nonce,
            fingerprint=attachment.fingerprint,
            providers=PROVIDERS,
            measurement=attachment.measurement,
            signing_key=attachment.signing_key,
        )
    return _pinned_key(attachment)


async def latest_mark(
    layout: Layout, vault_id: str, client_key: Ed25519PrivateKey, network: Network | None = None
) -> WitnessMark | None:
    """The latest mark the attached enclave holds for ``vault_id`` (``None`` when it holds
    none, or no enclave is attached); ``witness_invalid`` unless the pinned key signed it."""
    attachment = AttachmentStore(layout.enclave).load()
    if attachment is None:
        return None
    async with connect(attachment, client_key, network) as connection:
        try:
            answer = await connection.call("GET", f"/v1/witness/latest?vault_id={vault_id}")
        except EnclaveRefusal as refusal:
            if refusal.enclave_code == "witness_not_found":
                return None
            raise
    if not isinstance(answer, dict):
        raise DaemonError("witness_invalid", "the enclave's latest mark is not a JSON object")
    mark = parse_witness(canonical_json(answer) + b"\n")
    _checked_mark(answer, attachment, WitnessRequest(mark.vault_id, mark.n, mark.digest))
    if mark.vault_id != vault_id:
        raise DaemonError("witness_invalid", "the enclave's latest mark is for another vault")
    return mark
