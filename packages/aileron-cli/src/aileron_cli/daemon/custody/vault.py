"""The vault's life with the audit key: create, unlock, lock, and the heads it signs.

Unlocking arms the head signer with the vault's audit key (so every human decision and every
batch of records is signed) and starts the witness when an enclave is attached (each signed
head is countersigned there); locking signs the head that covers the lock, stops the witness
and forgets every key and every cached secret (:meth:`VaultCustody.forget_keys`, also the
daemon's last step when it stops). An unlocked vault older than the last signed head saw is
refused (``vault_rolled_back``) unless the user accepts the restore, audited.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.audit.signer import HeadSigner
from aileron_cli.daemon.enclave.service import EnclaveService
from aileron_cli.daemon.enclave.witness import WitnessQueue
from aileron_cli.daemon.store.vault import VaultService
from aileron_core.audit import Actor
from aileron_core.audit_heads import Head, head_digest
from aileron_core.errors import AileronError
from aileron_core.paths import Layout
from aileron_core.vault import Vault, VaultRolledBack

__all__ = ["VaultCustody"]

log = logging.getLogger("aileron.daemon")


class VaultCustody:
    """Who holds the vault's keys, and what holding them starts and stops."""

    def __init__(
        self,
        layout: Layout,
        *,
        vault: VaultService,
        heads: HeadSigner,
        audit: AuditLog,
        enclave: EnclaveService,
    ) -> None:
        self._layout = layout
        self._vault = vault
        self._heads = heads
        self._audit = audit
        self._enclave = enclave
        self.witness: WitnessQueue | None = None
        """Sends each signed head to the attached enclave, while the vault is unlocked."""
        heads.on_signed = self._signed

    def _signed(self, head: Head, line: bytes) -> None:
        """A head was signed: have it countersigned when an enclave is attached."""
        if self.witness is not None:
            self.witness.submit(head.vault_id, head.n, head_digest(line))

    async def init(self, passphrase: str, actor: Actor) -> None:
        """Create the vault (left unlocked); heads of an earlier vault are moved aside."""
        await self._vault.init(passphrase)
        vault = self._vault.unlocked()
        archived = await asyncio.to_thread(self._heads.archive, vault.vault_id)
        payload: dict[str, Any] = {"vault_id": vault.vault_id}
        if archived is not None:
            payload["archived_heads"] = archived.name
        await self._audit.record("vault.initialized", actor, **payload)
        await self._arm_heads("unlock")

    async def unlock(self, passphrase: str, actor: Actor, *, accept_restore: bool) -> bool:
        """Unlock; refuse (``vault_rolled_back``) a vault older than the last signed head saw,
        unless ``accept_restore``: then move its generation past the head's, audited. Returns
        whether a restore was accepted."""
        await self._vault.unlock(passphrase)
        vault = self._vault.unlocked()
        last = self._heads.last
        expected = self._rolled_back_from(vault)
        if expected is not None and not accept_restore:
            found = vault.generation
            self.forget_keys()
            await self._audit.record(
                "vault.unlock_failed",
                actor,
                reason="vault_rolled_back",
                generation=found,
                expected=expected,
            )
            raise VaultRolledBack(
                f"vault.json is at generation {found} but the audit log's last signed head "
                f"saw generation {expected}: an older copy of the vault was put back (deleted "
                "entries and old secrets would return)",
                hint="if you restored it on purpose, accept it with `aileron vault "
                "restore-accept`; otherwise put the newest vault.json back",
                details={"generation": found, "expected": expected},
            )
        if await self._vault.ensure_audit_key():
            log.info("vault: created its audit key (the file was format 1)")
        archived = await asyncio.to_thread(self._heads.archive, vault.vault_id)
        if archived is not None:  # another vault of the user's was put in place and unlocked
            await self._audit.record("audit.heads_archived", actor, kept_as=archived.name)
        await self._audit.record("vault.unlocked", actor)
        if expected is not None:
            found = vault.generation
            now = await self._vault.bump_generation(expected + 1)
            await self._audit.record(
                "vault.restore_accepted",
                actor,
                found_generation=found,
                head_generation=expected,
                head_seq=last.seq if last is not None else None,
                generation=now,
            )
        await self._arm_heads("restore" if expected is not None else "unlock")
        return expected is not None

    def _rolled_back_from(self, vault: Vault) -> int | None:
        """The generation the last signed head saw, if this unlocked vault is older than
        that (``None`` if it is not, or no head of this vault holds)."""
        last = self._heads.last
        if last is None or last.vault_id != vault.vault_id:
            return None
        public = vault.audit_public_key
        if public is None:
            # A copy from before the vault had its audit key, though heads signed with it exist.
            return last.generation
        if self._heads.last_trusted(public) is None or vault.generation >= last.generation:
            return None
        return last.generation

    async def _arm_heads(self, reason: str) -> None:
        vault = self._vault.unlocked()
        highest = vault.generation

        def generation() -> int:
            nonlocal highest
            highest = max(highest, vault.generation)
            return highest

        self._heads.arm(vault.audit_signing_key(), vault.vault_id, generation)
        await self.start_witness()
        await self._heads.asign(reason)

    async def start_witness(self) -> None:
        """Start countersigning heads if an enclave is attached (its client key is in the
        vault, so this needs the vault unlocked), and send the heads it has not marked yet."""
        layout = self._layout
        if self.witness is not None or not self._enclave.attached:
            return
        try:
            key = await self._enclave.client_key()
        except AileronError as error:
            log.warning("audit witness: not started: %s", error)
            return
        queue = WitnessQueue.attached(layout, key, network=self._enclave.network)
        if queue is None:
            return
        queue.start()
        self.witness = queue
        await queue.catch_up(layout.audit_heads, layout.audit_witness)

    async def stop_witness(self) -> None:
        """Stop countersigning (the vault locks, the enclave is detached, or the daemon
        stops); what was not sent yet is sent by the next :meth:`start_witness`."""
        queue, self.witness = self.witness, None
        if queue is not None:
            await queue.aclose()

    async def lock(self, actor: Actor) -> None:
        """Record the lock, sign the head that covers it, then forget every key (a vault
        that is not unlocked is only made sure of: no record)."""
        if self._heads.armed:  # else already locked: nothing happens, nothing to record
            await self._audit.record("vault.locked", actor)
            await self._heads.asign("lock")
        await self.stop_witness()
        self.forget_keys()

    def forget_keys(self) -> None:
        """Forget the vault's keys, the audit key and every secret cached while unlocked."""
        self._heads.disarm()
        self._vault.lock()
