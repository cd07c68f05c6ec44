"""``aileron audit verify`` by the daemon: the files on disk against the heads, with the
vault's authenticated key when it is unlocked, against what this process wrote (the log must
reach its newest record, and hold nothing after it) and, with ``witness``, against the newest
head the enclave countersigned."""

from __future__ import annotations

import asyncio
from typing import Any

from aileron_cli import audit_files
from aileron_cli.daemon.audit.log import AuditLog
from aileron_cli.daemon.enclave import witness as enclave_witness
from aileron_cli.daemon.enclave.service import EnclaveService
from aileron_cli.daemon.errors import DaemonError
from aileron_cli.daemon.store.vault import VaultService
from aileron_core.audit_verify import CompletenessReport, Finding
from aileron_core.paths import Layout
from aileron_core.vault import Vault, VaultLocked

__all__ = ["VERIFY_ATTEMPTS", "AuditVerifier"]

VERIFY_ATTEMPTS = 3
"""How often ``verify`` re-reads a log that grew while it read it, before reporting."""


class AuditVerifier:
    """Verifies the audit files of this daemon's home while the daemon writes them."""

    def __init__(
        self, layout: Layout, *, audit: AuditLog, vault: VaultService, enclave: EnclaveService
    ) -> None:
        self._layout = layout
        self._audit = audit
        self._vault = vault
        self._enclave = enclave

    async def verify(self, *, witness: bool) -> dict[str, Any]:
        """The completeness report, as JSON; see the module docstring."""
        layout = self._layout
        await self._audit.drain()
        before = self._audit.tip()
        witness_key = None
        if witness:
            witness_key = await enclave_witness.witness_key(layout, network=self._enclave.network)
            if witness_key is None:
                raise DaemonError(
                    "enclave_not_attached",
                    "--witness needs an attached enclave, and none is attached",
                    hint="`aileron enclave attach URL` (heads are countersigned from then on)",
                )
        try:
            vault: Vault | None = self._vault.unlocked()
        except VaultLocked:
            vault = None
        for attempt in range(VERIFY_ATTEMPTS):
            report, source = await asyncio.to_thread(
                audit_files.verify_home, layout, vault=vault, witness_key=witness_key, tip=before
            )
            after = self._audit.tip()
            if after == before:
                break
            # Records were appended while the file was read: the tip moved under the check.
            # Verify again against the new tip (the last attempt keeps what it found).
            if attempt + 1 < VERIFY_ATTEMPTS:
                await self._audit.drain()
                before = self._audit.tip()
            elif before[0] <= (report.last_seq or 0) <= after[0]:
                report = audit_files.tip_raced(report, before[0], after[0])
        if witness and vault is not None:
            report = await self._check_latest_mark(report, vault)
        return audit_files.report_json(report, source)

    async def _check_latest_mark(
        self, report: CompletenessReport, vault: Vault
    ) -> CompletenessReport:
        """The enclave remembers the newest head it countersigned: the heads file must reach
        it (else heads, and the records they covered, were cut off the end together)."""
        mark = await enclave_witness.latest_mark(
            self._layout, vault.vault_id, await self._enclave.client_key(), self._enclave.network
        )
        if mark is None or mark.n <= report.heads:
            return report
        return audit_files.with_problem(
            report,
            Finding(
                code="witness_ahead",
                seq=report.signed_seq,
                message=(
                    f"the enclave countersigned head n {mark.n} but the heads file ends at head "
                    f"n {report.heads}: heads, and the records they covered, were removed from "
                    "the end (or the files were restored from an older copy)"
                ),
            ),
        )
