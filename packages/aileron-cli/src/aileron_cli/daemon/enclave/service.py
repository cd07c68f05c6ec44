"""The daemon's side of the enclave (SPEC §12): attach, status, detach, escrow, execute.

**Attach** (``POST /v1/enclave/attach``, master token): with the vault unlocked, fetch the
enclave's certificate and compare it with the fingerprint the user gave; over a connection
pinned to it, ask for an attestation with a fresh random nonce and verify it
(``aileron_core.enclave.attestation``: signature, nonce echoed, certificate, provider, and the
measurement when the user gave one); generate an Ed25519 client key and register it with the
enclave's one-time registration code; keep the private key in the vault
(``enclave/client-key``) and the rest in ``enclave.json``. Audited ``enclave.attached``.

**Escrow** (``POST /v1/bindings/{name}/escrow``): the scope is the binding, the hosts of every
installed connector whose credential service is the binding's (or the hosts given), and their
credential kind. After a fresh attestation that still shows the pinned keys, the daemon reads
the secret from the vault one last time, seals it to the enclave's X25519 key with the scope as
associated data, stores it in the enclave, records the escrow id in ``enclave.json`` and
deletes the secret from the vault. Audited ``binding.escrowed``.

**Execute.** For an escrowed binding the runner gets an :class:`Escrowed` instead of a secret:
the escrow record and the client key. ``EnclaveService.sender`` yields an httpx client whose
transport sends each request the executor builds to the enclave's ``/v1/execute``. There is no
code path that reads an escrowed secret back: the enclave API has none, and the vault no longer
holds it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aileron_cli.__about__ import __version__
from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.enclave.client import (
    EnclaveConnection,
    EnclaveTransport,
    connect,
    fetch_certificate,
)
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.attachments import (
    CLIENT_KEY_PATH,
    Attachment,
    AttachmentStore,
    EscrowRecord,
    not_attached,
)
from aileron_cli.daemon.store.bindings import BindingStore
from aileron_cli.daemon.store.connectors import ConnectorStore
from aileron_cli.daemon.store.vault import VaultService
from aileron_core.audit import Actor
from aileron_core.enclave.attestation import (
    AttestationDocument,
    public_ed25519,
    verify_attestation,
)
from aileron_core.enclave.encoding import b64decode, b64encode
from aileron_core.enclave.sealing import Scope, seal_credential
from aileron_core.errors import AileronError
from aileron_core.network import Network
from aileron_core.vault import EntryNotFound, VaultLocked

__all__ = ["PROVIDERS", "EnclaveService", "Escrowed"]

PROVIDERS = ("local",)
"""Attestation providers the daemon accepts."""


@attrs.frozen(repr=False)
class Escrowed:
    """A binding whose secret the enclave holds: what the runner gets instead of a secret."""

    record: EscrowRecord
    client_key: Ed25519PrivateKey

    def __repr__(self) -> str:
        return f"Escrowed({self.record.binding!r}, {self.record.escrow_id!r})"


async def _attest(
    connection: EnclaveConnection,
    *,
    measurement: str | None,
    signing_key: str | None = None,
) -> AttestationDocument:
    nonce = secrets.token_hex(32)
    payload = await connection.call("POST", "/v1/attest", {"nonce": nonce})
    return verify_attestation(
        payload,
        nonce=nonce,
        fingerprint=connection.fingerprint,
        providers=PROVIDERS,
        measurement=measurement,
        signing_key=signing_key,
    )


async def _reattest(connection: EnclaveConnection, attachment: Attachment) -> None:
    """A fresh attestation that still shows the keys and code verified at attach time."""
    document = await _attest(
        connection, measurement=attachment.measurement, signing_key=attachment.signing_key
    )
    if document.sealing_key != attachment.sealing_key:
        raise DaemonError(
            "attestation_invalid",
            "the enclave's sealing key changed since it was attached",
            hint="detach and attach again if the enclave was re-created on purpose",
        )


class EnclaveService:
    """The daemon's side of the enclave; see the module docstring.

    ``gateway_bindings`` names the bindings that hold LLM gateway keys (which cannot be
    escrowed): the gateway sits above this room, so the composition root passes it in.
    """

    def __init__(
        self,
        path: Path,
        *,
        vault: VaultService,
        bindings: BindingStore,
        connectors: ConnectorStore,
        audit: AuditLog,
        gateway_bindings: Callable[[], Collection[str]],
        network: Network | None = None,
    ) -> None:
        self.attachments = AttachmentStore(path)
        """The ``enclave.json`` store of this daemon's home."""
        self._vault = vault
        self._bindings = bindings
        self._connectors = connectors
        self._audit = audit
        self._gateway_bindings = gateway_bindings
        self.network = network
        """The daemon's proxies and CA roots (ADR 0025): a remote enclave is reached through
        the proxy, the pin holding inside the tunnel."""

    @property
    def attached(self) -> bool:
        """Whether ``enclave.json`` exists (without reading it)."""
        return self.attachments.path.exists()

    def _attached(self) -> Attachment:
        attachment = self.attachments.load()
        if attachment is None:
            raise not_attached()
        return attachment

    def escrow_for(self, binding: str) -> EscrowRecord | None:
        """The escrow of ``binding``, or ``None`` when the daemon's vault holds its secret."""
        attachment = self.attachments.load()
        return attachment.escrows.get(binding) if attachment is not None else None

    async def client_key(self) -> Ed25519PrivateKey:
        """This daemon's client key, from the vault (``VaultLocked`` while it is locked)."""
        vault = self._vault
        try:
            raw = await vault.get(CLIENT_KEY_PATH)
        except EntryNotFound:
            raise DaemonError(
                "enclave_client_key_missing",
                "the enclave client key is missing from the vault",
                hint="run `aileron enclave detach --force`, then attach again",
            ) from None
        return Ed25519PrivateKey.from_private_bytes(b64decode(raw.decode(), what="client key"))

    def _ensure_unlocked(self) -> None:
        if self._vault.state() != "unlocked":
            raise VaultLocked("the vault is locked", hint="run `aileron vault unlock`")

    async def attach(
        self,
        *,
        url: str,
        fingerprint: str,
        registration_code: str,
        measurement: str | None,
        actor: Actor,
    ) -> Attachment:
        """Pin, verify and register with the enclave at ``url``; see the module docstring."""
        current = self.attachments.load()
        if current is not None:
            raise DaemonError(
                "enclave_attached",
                f"this daemon is already attached to the enclave at {current.url}",
                hint="run `aileron enclave detach` first",
            )
        self._ensure_unlocked()
        certificate = await fetch_certificate(url, fingerprint)
        key = Ed25519PrivateKey.generate()
        public = b64encode(public_ed25519(key))
        async with EnclaveConnection(
            url, certificate, fingerprint, network=self.network
        ) as connection:
            document = await _attest(connection, measurement=measurement)
            label = f"aileron-daemon {__version__} on {socket.gethostname()} (pid {os.getpid()})"
            registered = await connection.call(
                "POST",
                "/v1/clients",
                {"public_key": public, "registration_code": registration_code, "label": label},
            )
        private = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        await self._vault.put(
            CLIENT_KEY_PATH,
            b64encode(private),
            {"enclave": "client-key", "client_id": str(registered["client_id"])},
        )
        attachment = Attachment(
            url=url.rstrip("/"),
            fingerprint=fingerprint,
            certificate=certificate,
            client_id=str(registered["client_id"]),
            signing_key=document.signing_key,
            sealing_key=document.sealing_key,
            measurement=document.measurement,
            provider=document.provider,
            debug=document.debug,
            enclave_version=document.enclave_version,
            attached_at=datetime.now(UTC),
        )
        self.attachments.save(attachment)
        await self._audit.record(
            "enclave.attached",
            actor,
            url=attachment.url,
            fingerprint=fingerprint,
            provider=document.provider,
            debug=document.debug,
            measurement=document.measurement,
            client_id=attachment.client_id,
        )
        return attachment

    async def status(self, *, verify: bool) -> dict[str, Any]:
        """The attachment (never a secret) and, with ``verify``, a fresh attestation's verdict."""
        attachment = self.attachments.load()
        if attachment is None:
            return {"attached": False, "escrows": []}
        result: dict[str, Any] = {
            "attached": True,
            "url": attachment.url,
            "fingerprint": attachment.fingerprint,
            "provider": attachment.provider,
            "debug": attachment.debug,
            "measurement": attachment.measurement,
            "client_id": attachment.client_id,
            "enclave_version": attachment.enclave_version,
            "attached_at": attachment.attached_at,
            "escrows": sorted(attachment.escrows.values(), key=lambda r: r.binding),
        }
        if verify:
            try:
                async with connect(attachment, None, self.network) as connection:
                    await _reattest(connection, attachment)
                result.update(verified=True, problem=None)
            except AileronError as error:  # unreachable, mismatched, attestation refused
                result.update(verified=False, problem=str(error))
        return result

    async def detach(self, *, force: bool, actor: Actor) -> dict[str, Any]:
        """Unregister from the enclave and forget it; escrowed bindings need ``force``."""
        attachment = self._attached()
        dropped = sorted(attachment.escrows)
        if dropped and not force:
            raise DaemonError(
                "enclave_in_use",
                f"bindings are escrowed in this enclave: {', '.join(dropped)}",
                hint="revoke them first, or detach with --force (their credentials become"
                " unusable)",
                details={"bindings": dropped},
            )
        unregistered = False
        try:
            key = await self.client_key()
            async with connect(attachment, key, self.network) as connection:
                await connection.call("DELETE", "/v1/clients/self")
            unregistered = True
        except (DaemonError, VaultLocked):
            if not force:
                raise
        if self._vault.state() == "unlocked":
            with contextlib.suppress(EntryNotFound):
                await self._vault.delete(CLIENT_KEY_PATH)
        self.attachments.remove()
        await self._audit.record(
            "enclave.detached",
            actor,
            url=attachment.url,
            fingerprint=attachment.fingerprint,
            unregistered=unregistered,
            escrows_dropped=dropped,
        )
        return {"detached": True, "unregistered": unregistered, "escrows_dropped": dropped}

    def _scope_for(self, binding: str, hosts: list[str] | None) -> Scope:
        found = self._bindings.get(binding)
        specs = [
            s for s in self._connectors.specs().values() if s.credential.service == found.service
        ]
        kinds = {(s.credential.kind, s.credential.name) for s in specs}
        if not kinds:
            raise DaemonError(
                "escrow_scope_unknown",
                f"no installed connector uses service {found.service!r}, so the credential's"
                " kind and hosts are unknown",
                hint="install the connector that uses this binding first",
                details={"binding": binding, "service": found.service},
            )
        if len(kinds) > 1:
            raise DaemonError(
                "escrow_scope_unknown",
                f"connectors for service {found.service!r} disagree on the credential kind",
                hint="escrow needs one kind per binding; remove the connector that differs",
                details={"binding": binding, "kinds": sorted(k for k, _ in kinds)},
            )
        kind, name = kinds.pop()
        if hosts is None:
            hosts = sorted(
                {h for s in specs for t in s.tools for op in t.operations for h in op.hosts}
            )
        return Scope(binding=binding, hosts=hosts, kind=kind, name=name)

    async def escrow_binding(
        self, binding: str, *, hosts: list[str] | None, actor: Actor
    ) -> EscrowRecord:
        """Move ``binding``'s secret into the enclave; see the module docstring."""
        attachment = self._attached()
        if binding in attachment.escrows:
            raise DaemonError(
                "binding_escrowed",
                f"binding {binding!r} is already escrowed"
                f" ({attachment.escrows[binding].escrow_id})",
                hint="nothing to do; revoke and add it again to change its secret",
            )
        if binding in self._gateway_bindings():
            raise DaemonError(
                "escrow_scope_unknown",
                f"binding {binding!r} holds an LLM gateway key, which the gateway injects itself",
                hint="escrow of gateway keys is not supported yet; keep it in the vault",
                details={"binding": binding},
            )
        scope = self._scope_for(binding, hosts)
        self._ensure_unlocked()
        key = await self.client_key()
        vault = self._vault
        async with connect(attachment, key, self.network) as connection:
            await _reattest(connection, attachment)
            try:
                secret = await vault.get(binding)
            except EntryNotFound:
                raise DaemonError(
                    "binding_required",
                    f"binding {binding!r} has no secret in the vault",
                    hint=f"add it again with `aileron binding add {binding}`",
                    details={"binding": binding},
                ) from None
            sealed = seal_credential(secret, scope, b64decode(attachment.sealing_key, what="key"))
            del secret
            created = await connection.call(
                "POST", "/v1/escrow", {"scope": scope.to_json(), "sealed": b64encode(sealed)}
            )
        record = EscrowRecord(
            binding=binding,
            escrow_id=str(created["id"]),
            hosts=scope.hosts,
            kind=scope.kind,
            name=scope.name,
            escrowed_at=datetime.now(UTC),
        )
        self.attachments.with_escrow(record)
        await vault.delete(binding)
        await self._audit.record(
            "binding.escrowed",
            actor,
            binding=binding,
            escrow_id=record.escrow_id,
            hosts=list(record.hosts),
            kind=record.kind,
            enclave=attachment.fingerprint,
        )
        return record

    async def forget_escrow(self, binding: str) -> dict[str, Any] | None:
        """On revoke: delete the binding's escrow in the enclave (best effort) and forget it."""
        record = self.escrow_for(binding)
        if record is None:
            return None
        attachment = self._attached()
        deleted = False
        with contextlib.suppress(DaemonError, VaultLocked):
            key = await self.client_key()
            async with connect(attachment, key, self.network) as connection:
                await connection.call("DELETE", f"/v1/escrow/{record.escrow_id}")
            deleted = True
        self.attachments.without_escrow(binding)
        return {"escrow_id": record.escrow_id, "enclave_deleted": deleted}

    @contextlib.asynccontextmanager
    async def sender(self, escrowed: Escrowed) -> AsyncIterator[httpx.AsyncClient]:
        """An httpx client that sends every request through the enclave for ``escrowed``."""
        attachment = self._attached()
        async with (
            connect(attachment, escrowed.client_key, self.network) as connection,
            httpx.AsyncClient(transport=EnclaveTransport(connection, escrowed.record)) as client,
        ):
            yield client
