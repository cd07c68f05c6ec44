"""The enclave's HTTP API (SPEC §12), served over HTTPS only by ``aileron_enclave.server``.

| Route | Auth | What |
|---|---|---|
| ``GET /health`` | none | ``{status, service, version, provider}`` |
| ``POST /v1/attest {nonce}`` | none | the signed attestation for that nonce (used once) |
| ``POST /v1/clients`` | registration code | register a client's Ed25519 public key |
| ``DELETE /v1/clients/self`` | signed | forget the calling client and its escrows |
| ``POST /v1/escrow {scope, sealed}`` | signed | store a credential sealed to the enclave |
| ``GET /v1/escrow`` | signed | the caller's escrows, metadata only |
| ``DELETE /v1/escrow/{id}`` | signed | revoke one |
| ``POST /v1/execute`` | signed | perform one HTTP request with the credential injected |
| ``POST /v1/witness {vault_id, n, digest}`` | signed | countersign an audit head, never backwards |
| ``GET /v1/witness/latest?vault_id=`` | signed | the latest mark for that vault (404 if none) |

Errors are the JSON envelope of ``aileron_enclave.errors``.

**Audit witness** (``adr/0022-audit-witness.md``). The enclave countersigns a daemon's signed
audit heads with its attested signing key (the ``signing_key`` of the attestation document, so
a client that verified the attestation knows the witness key; the mark's message starts with
``aileron-audit-witness/v1`` and so can never be mistaken for an attestation). Per client and
vault id it keeps the latest ``(n, digest)`` in its store, written before it answers, and
refuses to go back: a lower ``n`` is 409 ``witness_rollback``, the same ``n`` with another
digest 409 ``witness_conflict``; the same ``n`` and digest again answers the stored mark (a
retry after a lost answer).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Path, Query, Request, Response
from starlette.datastructures import Headers

from aileron_core.audit_heads import parse_witness, sign_witness
from aileron_core.enclave.attestation import FORMAT as ATTESTATION_FORMAT
from aileron_core.enclave.attestation import (
    AttestationDocument,
    public_ed25519,
    sign_attestation,
)
from aileron_core.enclave.encoding import b64decode, b64encode
from aileron_core.enclave.sealing import Scope, SealError, open_credential, raw_public_key
from aileron_core.enclave.signing import client_id
from aileron_core.ids import new_ulid
from aileron_enclave.__about__ import __version__
from aileron_enclave.auth import WINDOW_S, RegistrationCodes, ReplayGuard, authenticate
from aileron_enclave.datadir import DataDir, Identity
from aileron_enclave.errors import EnclaveError, install_error_handlers
from aileron_enclave.events import EventLog
from aileron_enclave.execute import Performer
from aileron_enclave.schemas import (
    Attestation,
    AttestBody,
    EscrowBody,
    EscrowList,
    EscrowOut,
    ExecuteBody,
    ExecuteOut,
    Health,
    RegisterBody,
    Registered,
    Unregistered,
    WitnessBody,
)
from aileron_enclave.store import Client, Escrow, EscrowStore, Witnessed

__all__ = ["Enclave", "create_app"]


class Enclave:
    """Everything one running enclave holds."""

    def __init__(
        self,
        data_dir: DataDir,
        identity: Identity,
        store: EscrowStore,
        *,
        provider: str,
        measurement: str,
        performer: Performer | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.identity = identity
        self.store = store
        self.provider = provider
        self.measurement = measurement
        self.codes = RegistrationCodes(data_dir.registration_code)
        self.events = EventLog(data_dir.events)
        self.performer = performer or Performer()
        self.request_nonces = ReplayGuard(ttl_s=2 * WINDOW_S)
        self.attest_nonces = ReplayGuard(ttl_s=600)

    def attest(self, nonce: str) -> dict[str, object]:
        if not self.attest_nonces.first_use(nonce):
            raise EnclaveError(
                "this attestation nonce was already used",
                code="nonce_reused",
                hint="send a fresh random nonce with every attestation request",
            )
        identity = self.identity
        document = AttestationDocument(
            format=ATTESTATION_FORMAT,
            version=1,
            provider=self.provider,
            debug=True,  # the local provider: no hardware isolation, nothing to prove it
            measurement=self.measurement,
            nonce=nonce,
            signing_key=b64encode(public_ed25519(identity.signing_key)),
            sealing_key=b64encode(raw_public_key(identity.sealing_key)),
            cert_fingerprint=identity.fingerprint,
            enclave_version=__version__,
            issued_at=datetime.now(UTC),
        )
        return sign_attestation(document, identity.signing_key)

    def witness(self, client: Client, *, vault_id: str, n: int, digest: str) -> dict[str, Any]:
        """Countersign head ``n`` (``digest``) of ``vault_id`` for ``client``; never backwards."""
        latest = self.store.witnessed(client.id, vault_id)
        if latest is not None:
            details = {"vault_id": vault_id, "n": n, "latest_n": latest.n}
            if n < latest.n:
                raise EnclaveError(
                    f"head {n} is older than head {latest.n}, already witnessed for this vault",
                    code="witness_rollback",
                    hint="the audit heads were rolled back or rewritten; run"
                    " `aileron audit verify --witness`",
                    details=details,
                )
            if n == latest.n and digest != latest.digest:
                raise EnclaveError(
                    f"head {n} of this vault was already witnessed with another digest",
                    code="witness_conflict",
                    hint="the audit heads were rewritten; run `aileron audit verify --witness`",
                    details=details,
                )
            if n == latest.n:
                return _mark_json(latest.mark)
        _, line = sign_witness(self.identity.signing_key, vault_id=vault_id, n=n, digest=digest)
        mark = line.rstrip(b"\n").decode()
        self.store.set_witnessed(
            Witnessed(client_id=client.id, vault_id=vault_id, n=n, digest=digest, mark=mark)
        )
        self.events.append("witness.signed", client_id=client.id, vault_id=vault_id, n=n)
        return _mark_json(mark)

    def latest_witness(self, client: Client, vault_id: str) -> dict[str, Any]:
        """The latest mark for ``client`` and ``vault_id``; ``witness_not_found`` if none."""
        latest = self.store.witnessed(client.id, vault_id)
        if latest is None:
            raise EnclaveError(
                "this enclave has witnessed no audit head of that vault for this client",
                code="witness_not_found",
                details={"vault_id": vault_id},
            )
        return _mark_json(latest.mark)


def _mark_json(mark: str) -> dict[str, Any]:
    parse_witness(mark.encode() + b"\n")  # what the store holds is a well-formed mark
    data: dict[str, Any] = json.loads(mark)
    return data


def _enclave(request: Request) -> Enclave:
    enclave: Enclave = request.app.state.enclave
    return enclave


async def _signed(request: Request) -> Client:
    enclave = _enclave(request)
    query = request.scope.get("query_string", b"")
    target = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    if query:
        target += "?" + query.decode("latin-1")
    return authenticate(
        store=enclave.store,
        guard=enclave.request_nonces,
        fingerprint=enclave.identity.fingerprint,
        method=request.method,
        target=target,
        body=await request.body(),
        headers=Headers(scope=request.scope),
    )


State = Annotated[Enclave, Depends(_enclave)]
Signed = Annotated[Client, Depends(_signed)]


def _escrow_out(escrow: Escrow) -> EscrowOut:
    scope = escrow.scope
    return EscrowOut(
        id=escrow.id,
        binding=scope.binding,
        hosts=list(scope.hosts),
        kind=scope.kind,
        name=scope.name,
        created_at=escrow.created_at,
    )


def create_app(
    enclave: Enclave,
    *,
    on_ready: Callable[[], None] | None = None,
    on_stopped: Callable[[], None] | None = None,
) -> FastAPI:
    """The enclave's app around ``enclave``; ``on_ready`` runs as it starts serving,
    ``on_stopped`` once it has stopped (uvicorn may end the process right after)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            await enclave.performer.aclose()
            if on_stopped is not None:
                on_stopped()

    app = FastAPI(
        title="Aileron enclave",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.enclave = enclave
    install_error_handlers(app)

    @app.get("/health", response_model=Health)
    async def health(state: State) -> Health:
        return Health(
            status="ok", service="aileron-enclave", version=__version__, provider=state.provider
        )

    @app.post("/v1/attest", response_model=Attestation)
    async def attest(body: AttestBody, state: State) -> Attestation:
        return Attestation.model_validate(state.attest(body.nonce))

    @app.post("/v1/clients", response_model=Registered, status_code=201)
    async def register(body: RegisterBody, state: State) -> Registered:
        public = b64decode(body.public_key, what="public_key", size=32)
        state.codes.consume(body.registration_code)
        client = Client(
            id=client_id(public),
            public_key=body.public_key,
            label=body.label,
            registered_at=datetime.now(UTC),
        )
        state.store.add_client(client)
        state.events.append("client.registered", client_id=client.id, label=client.label)
        return Registered(client_id=client.id, registered_at=client.registered_at)

    @app.delete("/v1/clients/self", response_model=Unregistered)
    async def unregister(state: State, client: Signed) -> Unregistered:
        gone = state.store.remove_client(client.id)
        state.events.append("client.removed", client_id=client.id, escrows_deleted=len(gone))
        return Unregistered(client_id=client.id, escrows_deleted=len(gone))

    @app.post("/v1/escrow", response_model=EscrowOut, status_code=201)
    async def escrow(body: EscrowBody, state: State, client: Signed) -> EscrowOut:
        scope = Scope.from_json(body.scope.model_dump())
        try:
            sealed = b64decode(body.sealed, what="sealed")
        except ValueError as error:
            raise SealError(str(error)) from None
        # Opened once now so a bad seal is reported at escrow time; the value is dropped.
        open_credential(sealed, scope, state.identity.sealing_key)
        record = Escrow(
            id=f"esc_{new_ulid()}",
            client_id=client.id,
            scope=scope,
            sealed=body.sealed,
            created_at=datetime.now(UTC),
        )
        state.store.add_escrow(record)
        state.events.append(
            "escrow.created",
            client_id=client.id,
            escrow_id=record.id,
            binding=scope.binding,
            hosts=list(scope.hosts),
        )
        return _escrow_out(record)

    @app.get("/v1/escrow", response_model=EscrowList)
    async def list_escrows(state: State, client: Signed) -> EscrowList:
        return EscrowList(escrows=[_escrow_out(e) for e in state.store.escrows_of(client.id)])

    @app.delete("/v1/escrow/{escrow_id}", status_code=204)
    async def delete_escrow(
        escrow_id: Annotated[str, Path(max_length=64)], state: State, client: Signed
    ) -> Response:
        record = state.store.delete_escrow(escrow_id, client.id)
        state.events.append(
            "escrow.deleted", client_id=client.id, escrow_id=record.id, binding=record.scope.binding
        )
        return Response(status_code=204)

    @app.post("/v1/execute", response_model=ExecuteOut)
    async def execute(body: ExecuteBody, state: State, client: Signed) -> ExecuteOut:
        return await _execute(state, client, body)

    @app.post("/v1/witness")
    async def witness(body: WitnessBody, state: State, client: Signed) -> dict[str, Any]:
        return state.witness(client, vault_id=body.vault_id, n=body.n, digest=body.digest)

    @app.get("/v1/witness/latest")
    async def latest_witness(
        vault_id: Annotated[str, Query(pattern=r"^[0-9a-f]{32}$")], state: State, client: Signed
    ) -> dict[str, Any]:
        return state.latest_witness(client, vault_id)

    return app


async def _execute(state: Enclave, client: Client, body: ExecuteBody) -> ExecuteOut:
    record = state.store.escrow(body.escrow_id, client.id)
    outbound = body.request
    try:
        url = httpx.URL(outbound.url)
        payload = None if outbound.body is None else b64decode(outbound.body, what="body")
    except (httpx.InvalidURL, ValueError) as error:
        raise EnclaveError(f"invalid request: {error}", code="invalid_request") from None
    log = {
        "client_id": client.id,
        "escrow_id": record.id,
        "binding": record.scope.binding,
        "method": outbound.method,
        "scheme": url.scheme,
        "host": url.netloc.decode("ascii", errors="replace").rpartition("@")[2],
        "path": url.path,
    }
    try:
        secret = open_credential(
            b64decode(record.sealed, what="sealed"), record.scope, state.identity.sealing_key
        ).decode("utf-8")
        answer = await state.performer.perform(
            record.scope,
            secret,
            method=outbound.method,
            url=url,
            headers=[(name, value) for name, value in outbound.headers],
            body=payload,
        )
    except UnicodeDecodeError:
        state.events.append("execute", **log, outcome="invalid_credential")
        raise EnclaveError("the escrowed secret is not UTF-8", code="invalid_credential") from None
    except (EnclaveError, SealError) as error:
        state.events.append("execute", **log, outcome=error.code)
        raise
    state.events.append(
        "execute",
        **log,
        outcome="ok",
        status=answer.status,
        bytes_in=len(answer.body),
        bytes_out=answer.bytes_out,
        duration_ms=round(answer.duration_ms, 1),
    )
    return ExecuteOut(
        status=answer.status,
        headers=[[name, value] for name, value in answer.headers],
        body=b64encode(answer.body),
        duration_ms=answer.duration_ms,
    )
