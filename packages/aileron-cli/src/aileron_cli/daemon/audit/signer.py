"""Signing the audit chain's head with the vault's audit key (``audit.heads.jsonl``).

A signed head says "the chain has ``seq`` records, the last hashing to ``hash``, and the vault
was at ``generation``", signed with the Ed25519 key sealed in the vault (``aileron_core.vault``,
format 2): only a holder of the passphrase can make one. Heads are appended, one canonical line
each, and fdatasynced; each names the digest of the one before (``prev``), so the heads form a
chain of their own. See ``aileron_core.audit_heads`` for the format and
``aileron_core.audit_verify`` for what ``aileron audit verify`` proves with them.

The daemon signs while the vault is unlocked: at unlock, every :data:`EVERY_RECORDS` records
(from the audit log's commit hook), at least every :data:`EVERY_SECONDS` seconds when records
were added, right after each record of ``SIGNED_TYPES`` (a human decision, an unlock or a lock),
and at a clean stop. Records written while the vault is locked are covered by the next head.
A head is always made from what this process wrote (``AuditLog.tip``), never from the file, so
a line appended to the log by someone else is never blessed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aileron_cli.daemon.audit.log import AuditLog
from aileron_core.audit import GENESIS_PREV
from aileron_core.audit_heads import (
    Head,
    HeadError,
    head_digest,
    head_signature_ok,
    parse_head,
    sign_head,
)
from aileron_core.fileio import fsync_dir
from aileron_core.paths import SECRET_FILE_MODE

log = logging.getLogger("aileron.daemon")

EVERY_RECORDS = 256
"""Sign a head at least this often, counted in records, while the vault is unlocked."""

EVERY_SECONDS = 10.0
"""Sign a head at least this often while the vault is unlocked and records were added."""

_TAIL_BYTES = 4096  # enough for the last head line


class HeadSigner:
    """The heads file of one daemon, and the key to sign with while the vault is unlocked."""

    def __init__(self, audit: AuditLog, path: Path) -> None:
        self._audit = audit
        self._path = path
        self._mutex = threading.Lock()
        self._key: Ed25519PrivateKey | None = None
        self._vault_id = ""
        self._generation: Callable[[], int] = lambda: 0
        self._count = 0  # records committed since the last head
        self._last: Head | None = None
        self._last_digest = GENESIS_PREV
        self._periodic: asyncio.Task[None] | None = None
        self.on_signed: Callable[[Head, bytes], None] | None = None
        """Called with each new head and its line (e.g. to have it witnessed)."""
        self.repaired_bytes = 0
        """Bytes of a torn last line cut from the heads file at open (a crash mid-write)."""
        self._open()

    def _open(self) -> None:
        """Read the last head (repairing a torn last line); its signature is checked later,
        by :meth:`last_trusted`, once the key is known."""
        try:
            with open(self._path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(max(0, size - _TAIL_BYTES))
                tail = handle.read()
        except FileNotFoundError:
            return
        if tail and not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n") + 1
            keep = size - (len(tail) - cut)
            self.repaired_bytes = size - keep
            with open(self._path, "r+b") as handle:
                handle.truncate(keep)
                os.fsync(handle.fileno())
            tail = tail[:cut]
        lines = tail.splitlines()
        if not lines:
            return
        line = lines[-1]
        try:
            self._last = parse_head(line)
        except HeadError:
            log.warning("audit heads: the last line of %s is not a head", self._path)
            self._last = None
        self._last_digest = head_digest(line)

    @property
    def path(self) -> Path:
        """The heads file."""
        return self._path

    @property
    def armed(self) -> bool:
        """Whether a key is held (the vault is unlocked)."""
        return self._key is not None

    @property
    def last(self) -> Head | None:
        """The newest head in the file (as read or written; not necessarily trusted)."""
        return self._last

    def last_trusted(self, public_key: bytes) -> Head | None:
        """The newest head if its signature holds under ``public_key``, else ``None``."""
        head = self._last
        if head is None or not head_signature_ok(head, public_key):
            return None
        return head

    def arm(self, key: Ed25519PrivateKey, vault_id: str, generation: Callable[[], int]) -> None:
        """Start signing with ``key`` (the vault was unlocked); ``generation`` reads the vault's
        current generation at each signing."""
        with self._mutex:
            self._key, self._vault_id, self._generation = key, vault_id, generation
        self._audit.on_commit = self._committed

    def disarm(self) -> None:
        """Stop signing and forget the key (the vault was locked)."""
        with self._mutex:
            self._key = None
        self._audit.on_commit = None

    def archive(self, vault_id: str) -> Path | None:
        """Move a heads file that belongs to another vault aside (a new vault was created);
        return where it went, or ``None`` if there was none to move."""
        with self._mutex:
            if self._last is None or self._last.vault_id == vault_id or not self._path.exists():
                return None
            target = self._path.with_name(f"audit.heads.{self._last.vault_id}.jsonl")
            os.replace(self._path, target)
            fsync_dir(self._path.parent)
            self._last, self._last_digest, self._count = None, GENESIS_PREV, 0
            return target

    def sign(self, reason: str, *, force: bool = True) -> Head | None:
        """Sign the current tip (blocking: one write and one fdatasync); ``None`` if locked, or
        when ``force`` is false and nothing was added since the last head."""
        with self._mutex:
            key = self._key
            if key is None:
                return None
            seq, digest = self._audit.tip()
            if not force and self._last is not None and self._last.seq == seq:
                return None
            head, line = sign_head(
                key,
                n=(self._last.n + 1) if self._last is not None else 1,
                seq=seq,
                hash=digest,
                vault_id=self._vault_id,
                generation=self._generation(),
                reason=reason,
                prev=self._last_digest,
            )
            self._append(line)
            self._last, self._last_digest, self._count = head, head_digest(line[:-1]), 0
        if self.on_signed is not None:
            self.on_signed(head, line)
        return head

    async def asign(self, reason: str, *, force: bool = True) -> Head | None:
        """:meth:`sign` in a worker thread, after every queued audit append has landed."""
        await self._audit.drain()
        return await asyncio.to_thread(self.sign, reason, force=force)

    def _append(self, line: bytes) -> None:
        created = not self._path.exists()
        fd = os.open(
            self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, SECRET_FILE_MODE
        )
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(self._path.parent)

    def _committed(self, seq: int, digest: str, records: int) -> None:
        """The audit log's commit hook: sign every :data:`EVERY_RECORDS` records."""
        self._count += records
        if self._count >= EVERY_RECORDS:
            try:
                self.sign("periodic")
            except OSError as exc:
                log.error("audit heads: could not sign a head: %s", exc)

    # -- the timer ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the timer that signs at least every :data:`EVERY_SECONDS` (needs a loop)."""
        if self._periodic is None:
            self._periodic = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(EVERY_SECONDS)
            if self.armed:
                try:
                    await asyncio.to_thread(self.sign, "periodic", force=False)
                except OSError as exc:
                    log.error("audit heads: could not sign a head: %s", exc)

    async def aclose(self) -> None:
        """Stop the timer."""
        if self._periodic is not None:
            self._periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._periodic
            self._periodic = None


__all__ = ["EVERY_RECORDS", "EVERY_SECONDS", "HeadSigner"]
