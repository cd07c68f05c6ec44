"""``/v1/vault/…``: create, unlock, lock, re-key and manage entries. Never returns a value."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from aileron_cli.daemon.access.tokens import ADMIN, Principal, require
from aileron_cli.daemon.errors import ERROR_RESPONSES
from aileron_cli.daemon.http import deps
from aileron_cli.daemon.http.schemas import (
    ChangePassphraseBody,
    Entry,
    EntryBody,
    PassphraseBody,
    UnlockBody,
    Unlocked,
    VaultStatus,
)
from aileron_core.vault import WrongPassphrase

router = APIRouter(prefix="/vault", tags=["vault"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require(ADMIN))]
EntryPath = Annotated[str, Path(min_length=1, max_length=512)]


@router.get("/status", response_model=VaultStatus)
async def vault_status(vault: deps.Vault, _: Admin) -> VaultStatus:
    """Whether the vault is missing, locked or unlocked."""
    return VaultStatus(state=vault.state())


@router.post("/init", response_model=VaultStatus, status_code=201)
async def vault_init(
    body: PassphraseBody, custody: deps.Custody, vault: deps.Vault, who: Admin
) -> VaultStatus:
    """Create the vault with this passphrase; it is left unlocked."""
    await custody.init(body.passphrase, who.actor)
    return VaultStatus(state=vault.state())


@router.post("/unlock", response_model=Unlocked)
async def vault_unlock(
    body: UnlockBody, custody: deps.Custody, audit: deps.Audit, who: Admin
) -> Unlocked:
    """Derive the key from the passphrase and open every entry; ``409 vault_rolled_back`` if
    the file is older than the audit log's last signed head saw (``accept_restore`` accepts
    it, audited)."""
    try:
        restored = await custody.unlock(
            body.passphrase, who.actor, accept_restore=body.accept_restore
        )
    except WrongPassphrase:
        await audit.record("vault.unlock_failed", who.actor, reason="wrong_passphrase")
        raise
    return Unlocked(state="unlocked", restore_accepted=restored)


@router.post("/lock", response_model=VaultStatus)
async def vault_lock(custody: deps.Custody, vault: deps.Vault, who: Admin) -> VaultStatus:
    """Forget the key, and every secret the request paths keep while it is unlocked."""
    await custody.lock(who.actor)
    return VaultStatus(state=vault.state())


@router.post("/passphrase", response_model=VaultStatus)
async def vault_passphrase(
    body: ChangePassphraseBody, vault: deps.Vault, audit: deps.Audit, who: Admin
) -> VaultStatus:
    """Re-wrap the data key under a new passphrase (entries untouched)."""
    await vault.change_passphrase(body.old, body.new)
    await audit.record("vault.passphrase_changed", who.actor)
    return VaultStatus(state=vault.state())


@router.post("/rotate", response_model=VaultStatus)
async def vault_rotate(vault: deps.Vault, audit: deps.Audit, who: Admin) -> VaultStatus:
    """New data key; every entry re-sealed."""
    await vault.rotate()
    await audit.record("vault.rotated", who.actor)
    return VaultStatus(state=vault.state())


@router.get("/entries", response_model=list[Entry])
async def vault_entries(vault: deps.Vault, _: Admin) -> list[Entry]:
    """Paths and metadata of every entry; never a value."""
    return [
        Entry(path=e.path, metadata=e.metadata, created_at=e.created_at, updated_at=e.updated_at)
        for e in await vault.entries()
    ]


@router.put("/entries/{path:path}", response_model=Entry)
async def vault_put(
    path: EntryPath, body: EntryBody, vault: deps.Vault, audit: deps.Audit, who: Admin
) -> Entry:
    """Store a value (the answer has only its path and metadata)."""
    info = await vault.put(path, body.value, body.metadata)
    await audit.record("vault.entry_put", who.actor, path=info.path)
    return Entry(
        path=info.path,
        metadata=info.metadata,
        created_at=info.created_at,
        updated_at=info.updated_at,
    )


@router.delete("/entries/{path:path}", status_code=204)
async def vault_delete(path: EntryPath, vault: deps.Vault, audit: deps.Audit, who: Admin) -> None:
    """Delete an entry."""
    await vault.delete(path)
    await audit.record("vault.entry_deleted", who.actor, path=path)
