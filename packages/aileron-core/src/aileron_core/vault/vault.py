"""The vault handle: create, open, unlock, read and write entries, re-key.

A :class:`Vault` is a handle on one file. It keeps the last version of the file it loaded, and
before every operation compares the file on disk with it (``storage.FileIdentity``); only when
another handle or process wrote since does it re-read and re-parse. Writers hold the file's
exclusive lock from that comparison until their atomic replace is done, so no write is lost.

While unlocked, a handle holds the key-encryption key and the data key, and every entry it
holds has been authenticated under them. What it does when another process changed the file:

- same header (vault id, KDF parameters and salt, creation time): the new file is
  authenticated with the held keys (its MAC, and every entry that is new or changed); a data
  key rotated elsewhere is unwrapped with the held key-encryption key;
- different header (the passphrase was changed, or the file is a different vault): the handle
  forgets its keys; operations that need them raise ``VaultLocked`` until ``unlock``;
- a lower generation than the file it held (an older copy was put in place): the handle forgets
  its keys and raises ``VaultRolledBack``. Unlocking again accepts the older file; deciding
  whether that is allowed (against the signed audit heads) is the daemon's job.

Every write produces format version 2 and increments the generation (ADR 0020); the first write
of a version-1 file also creates the vault's audit key.
"""

from __future__ import annotations

import builtins
import hmac
import os
import secrets
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import attrs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aileron_core.vault import sealing, storage
from aileron_core.vault.entries import (
    EntryInfo,
    check_entry_path,
    check_metadata,
    check_value,
)
from aileron_core.vault.errors import (
    EntryNotFound,
    InvalidEntry,
    InvalidPassphrase,
    VaultCorrupt,
    VaultError,
    VaultExists,
    VaultLocked,
    VaultRolledBack,
    WrongPassphrase,
)
from aileron_core.vault.format import (
    MAX_FILE_BYTES,
    MAX_GENERATION,
    VERSION,
    AuditKey,
    Document,
    Header,
    SealedEntry,
    encode_file,
)
from aileron_core.vault.kdf import (
    DEFAULT_KDF,
    SALT_BYTES,
    KdfParams,
    derive_key,
    encode_passphrase,
)
from aileron_core.vault.keys import (
    AuthenticationFailed,
    DataKeys,
    audit_private_key,
    new_data_key,
)
from aileron_core.vault.parser import ParsedFile, parse_file

_NAMED_IN_MESSAGE = 20
_ENVELOPE_BYTES = 256  # checksum, MAC and the JSON around the body, with room to spare

EntryItem = tuple[str, bytes | str, Mapping[str, str] | None]


class Vault:
    """A handle on one vault file; see the module docstring for how it stays in sync.

    Construct it with :meth:`create` or :meth:`open`. One handle may be shared by threads.
    """

    def __init__(self, path: Path, parsed: ParsedFile, identity: storage.FileIdentity) -> None:
        self.path = path
        self._mutex = threading.RLock()
        self._doc = parsed.document
        self._body = parsed.body  # the exact MAC input of ``_doc``
        self._mac = parsed.mac
        self._identity: storage.FileIdentity | None = identity
        self._kek: bytes | None = None
        self._keys: DataKeys | None = None
        self._locked_because = ""

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, passphrase: str, *, kdf: KdfParams = DEFAULT_KDF) -> Vault:
        """Create a new, empty vault file at ``path`` and return it unlocked.

        Raises ``VaultExists`` if anything is at ``path`` already, ``InvalidPassphrase`` for an
        empty or non-Unicode passphrase. The directory is created with mode 0700 if needed.
        """
        secret = _new_passphrase(passphrase)
        path = Path(path)
        now = _now()
        header = Header(
            vault_id=secrets.token_hex(16), kdf=kdf, salt=os.urandom(SALT_BYTES), created_at=now
        )
        kek = derive_key(secret, header.salt, kdf)
        data_key = new_data_key()
        keys = sealing.data_keys(data_key, header)
        wrapped = sealing.wrap(kek, data_key, header)
        document = Document(
            header=header,
            wrapped_key=wrapped,
            updated_at=now,
            entries={},
            generation=1,
            audit_key=sealing.new_audit_key(keys, header.vault_id),
        )
        body = document.body()
        mac = keys.mac(body)
        with storage.write_lock(path, create_dir=True):
            if os.path.lexists(path):
                raise VaultExists(f"a vault already exists at {path}", details={"file": str(path)})
            identity = storage.write(path, encode_file(body, mac))
        vault = cls(path, ParsedFile(document=document, body=body, mac=mac), identity)
        vault._kek, vault._keys = kek, keys
        return vault

    @classmethod
    def open(cls, path: Path) -> Vault:
        """Read and validate the vault at ``path`` and return it locked.

        Raises ``VaultMissing``, ``VaultCorrupt`` (anything a key is not needed to detect, KDF
        parameters out of bounds included) or ``UnsupportedVersion``.
        """
        path = Path(path)
        raw, identity = storage.read(path)
        return cls(path, parse_file(raw, str(path)), identity)

    # --- state --------------------------------------------------------------------------------

    @property
    def vault_id(self) -> str:
        """The vault's random 128-bit identifier, as 32 hex digits."""
        return self._doc.header.vault_id

    @property
    def generation(self) -> int:
        """The file's generation: 0 for a version-1 file, else 1 at create and +1 per write.

        Works while locked; it is authenticated at unlock. Like every operation it re-reads a
        changed file, so it can raise what that raises (``VaultCorrupt``, ``VaultRolledBack``).
        """
        with self._mutex:
            self._sync()
            return self._doc.generation

    @property
    def audit_public_key(self) -> bytes | None:
        """The raw 32-byte Ed25519 public audit key; ``None`` for a version-1 file.

        Works while locked; it is authenticated at unlock. Like every operation it re-reads a
        changed file, so it can raise what that raises (``VaultCorrupt``, ``VaultRolledBack``).
        """
        with self._mutex:
            self._sync()
            audit_key = self._doc.audit_key
            return None if audit_key is None else audit_key.public

    @property
    def is_unlocked(self) -> bool:
        """Whether this handle holds the key (a re-key elsewhere shows at the next operation)."""
        return self._keys is not None

    def __repr__(self) -> str:
        return f"<Vault {str(self.path)!r} {'unlocked' if self.is_unlocked else 'locked'}>"

    def unlock(self, passphrase: str) -> None:
        """Derive the key, unwrap the data key and authenticate every entry and the whole file.

        Raises ``WrongPassphrase``, or ``VaultCorrupt`` naming the entries that fail (in the
        message and ``details["entries"]``) or the file-wide MAC. Stays locked on failure.
        """
        try:
            secret = encode_passphrase(passphrase)
        except InvalidPassphrase:
            raise self._wrong_passphrase() from None
        with self._mutex:
            self._sync()
            kek, keys = self._unwrap(secret)
            try:
                self._authenticate(keys, known={})
            except VaultCorrupt:
                self._forget_keys("")
                raise
            self._kek, self._keys, self._locked_because = kek, keys, ""

    def lock(self) -> None:
        """Forget all key material (Python cannot wipe it; the references are dropped)."""
        with self._mutex:
            self._forget_keys("")

    # --- entries ------------------------------------------------------------------------------

    def get(self, path: str) -> bytes:
        """The value of the entry at ``path``. Raises ``VaultLocked`` or ``EntryNotFound``."""
        check_entry_path(path)
        with self._mutex:
            self._sync()
            keys = self._require_keys()
            try:
                return sealing.open_entry(keys, self.vault_id, self._entry(path))
            except AuthenticationFailed:  # unlock verified it; only memory corruption gets here
                raise self._corrupt_entries([path]) from None

    def put(
        self, path: str, value: bytes | str, metadata: Mapping[str, str] | None = None
    ) -> EntryInfo:
        """Create or replace the entry at ``path``; ``str`` values are stored as UTF-8.

        ``metadata=None`` keeps an existing entry's metadata (``{}`` for a new entry); a
        mapping replaces it. Raises ``VaultLocked``, ``InvalidEntryPath`` or ``InvalidEntry``.
        """
        return self.put_many([(path, value, metadata)])[0]

    def put_many(self, items: Iterable[EntryItem]) -> builtins.list[EntryInfo]:
        """Like :meth:`put` for several ``(path, value, metadata)`` items, in one atomic write."""
        staged = [
            (check_entry_path(p), check_value(v), None if m is None else check_metadata(m))
            for p, v, m in items
        ]
        if not staged:
            return []
        with self._mutex, storage.write_lock(self.path):
            self._sync()
            keys = self._require_keys()
            now = _now()
            entries = dict(self._doc.entries)
            for path, plaintext, metadata in staged:
                old = entries.get(path)
                if metadata is None:
                    metadata = dict(old.metadata) if old else {}
                created = old.created_at if old else now
                entries[path] = sealing.seal_entry(
                    keys, self.vault_id, path, plaintext, metadata, created, now
                )
            self._commit(self._doc.replace(updated_at=now, entries=entries), keys)
        return [entries[path].info() for path, _, _ in staged]

    def delete(self, path: str) -> None:
        """Remove the entry at ``path``. Raises ``VaultLocked`` or ``EntryNotFound``."""
        check_entry_path(path)
        with self._mutex, storage.write_lock(self.path):
            self._sync()
            keys = self._require_keys()
            self._entry(path)
            entries = dict(self._doc.entries)
            del entries[path]
            self._commit(self._doc.replace(updated_at=_now(), entries=entries), keys)

    def list(self) -> builtins.list[EntryInfo]:
        """Every entry's path, metadata and times, sorted by path; works while locked.

        While locked the metadata is as read from the file: it is authenticated at unlock.
        """
        with self._mutex:
            self._sync()
            entries = self._doc.entries
            return [entries[path].info() for path in sorted(entries)]

    # --- audit key and generation -------------------------------------------------------------

    def audit_signing_key(self) -> Ed25519PrivateKey:
        """The vault's Ed25519 audit signing key. Needs the vault unlocked.

        Raises ``VaultLocked``, or ``VaultCorrupt`` if the file has no audit key (a version-1
        file: call :meth:`ensure_audit_key` first) or its sealed seed does not open.
        """
        with self._mutex:
            self._sync()
            keys = self._require_keys()
            audit_key = self._doc.audit_key
            if audit_key is None:
                raise self._corrupt(
                    "audit_key",
                    "the vault has no audit key (a version-1 file; ensure_audit_key() adds one)",
                )
            try:
                return audit_private_key(sealing.open_audit_seed(keys, self.vault_id, audit_key))
            except AuthenticationFailed:  # unlock verified it; only memory corruption gets here
                raise self._corrupt("audit_key", "the sealed audit key does not open") from None

    def ensure_audit_key(self) -> bool:
        """Give the vault an audit key if it has none (upgrading a version-1 file to version 2).

        Needs the vault unlocked (raises ``VaultLocked``). Returns whether it wrote the file.
        """
        with self._mutex, storage.write_lock(self.path):
            self._sync()
            keys = self._require_keys()
            if self._doc.audit_key is not None:
                return False
            self._commit(self._doc.replace(updated_at=_now()), keys)
            return True

    def bump_generation(self, at_least: int) -> int:
        """Rewrite the file with generation ``max(current + 1, at_least)``; return it.

        Needs the vault unlocked (raises ``VaultLocked``). Used to carry the generation past
        one recorded elsewhere, such as the last signed audit head, after a deliberate restore.
        """
        if type(at_least) is not int or not 0 <= at_least <= MAX_GENERATION:
            raise ValueError(f"at_least must be an integer from 0 to {MAX_GENERATION}")
        with self._mutex, storage.write_lock(self.path):
            self._sync()
            keys = self._require_keys()
            self._commit(self._doc.replace(updated_at=_now()), keys, at_least=at_least)
            return self._doc.generation

    # --- re-keying ----------------------------------------------------------------------------

    def change_passphrase(self, old: str, new: str) -> None:
        """Re-wrap the data key under ``new`` (with a new salt); entries are untouched.

        Works locked or unlocked and leaves the handle as it was. Raises ``WrongPassphrase`` if
        ``old`` is wrong, ``InvalidPassphrase`` if ``new`` is empty or not Unicode text, and
        ``VaultCorrupt`` (writing nothing) if the file fails authentication.
        """
        new_secret = _new_passphrase(new)
        try:
            old_secret = encode_passphrase(old)
        except InvalidPassphrase:
            raise self._wrong_passphrase() from None
        with self._mutex, storage.write_lock(self.path):
            self._sync()
            _, keys = self._unwrap(old_secret)
            held = self._keys
            if held is None or not hmac.compare_digest(held.data_key, keys.data_key):
                self._authenticate(keys, known={})  # never re-MAC a tampered file
            header = attrs.evolve(self._doc.header, salt=os.urandom(SALT_BYTES), version=VERSION)
            kek = derive_key(new_secret, header.salt, header.kdf)
            wrapped = sealing.wrap(kek, keys.data_key, header)
            document = self._doc.replace(updated_at=_now(), header=header, wrapped_key=wrapped)
            self._commit(document, keys)
            if held is not None:
                self._kek = kek

    def rotate(self) -> None:
        """Generate a new data key and re-seal every entry and the audit key under it.

        Needs the vault unlocked. The audit key itself (its public half) stays the same.
        """
        with self._mutex, storage.write_lock(self.path):
            self._sync()
            keys = self._require_keys()
            assert self._kek is not None  # held whenever the keys are
            data_key = new_data_key()
            header = attrs.evolve(self._doc.header, version=VERSION)
            new_keys = sealing.data_keys(data_key, header)
            entries, bad = sealing.reseal_entries(self._doc, keys, new_keys)
            if bad:  # unlock authenticated them all; only memory corruption gets here
                raise self._corrupt_entries(bad)
            audit_key = self._doc.audit_key
            if audit_key is not None:  # a version-1 file gets a new one in _commit
                try:
                    seed = sealing.open_audit_seed(keys, self.vault_id, audit_key)
                except AuthenticationFailed:  # unlock verified it; only memory corruption
                    raise self._corrupt("audit_key", "the sealed audit key does not open") from None
                audit_key = sealing.seal_audit_seed(new_keys, self.vault_id, seed)
            wrapped = sealing.wrap(self._kek, data_key, header)
            document = self._doc.replace(
                updated_at=_now(),
                header=header,
                wrapped_key=wrapped,
                entries=entries,
                audit_key=audit_key,
            )
            self._commit(document, new_keys)
            self._keys = new_keys

    # --- internals ----------------------------------------------------------------------------

    def _sync(self) -> None:
        """Re-read the file if it changed on disk since this handle last loaded or wrote it."""
        if self._identity is not None and storage.probe(self.path) == self._identity:
            return
        raw, identity = storage.read(self.path)
        try:
            parsed = parse_file(raw, str(self.path))
        except VaultError:
            self._identity = None  # try again next time; the file may be repaired
            self._forget_keys("")
            raise
        previous, keys = self._doc, self._keys
        self._doc, self._body, self._mac = parsed.document, parsed.body, parsed.mac
        self._identity = identity
        if keys is None:
            return
        found, seen = parsed.document.generation, previous.generation
        if found < seen:
            self._forget_keys("the vault file was rolled back to an older generation")
            raise VaultRolledBack(
                f"the vault at {self.path} was rolled back: its generation is {found}, but "
                f"generation {seen} was already seen",
                details={"file": str(self.path), "generation": found, "expected": seen},
            )
        self._follow(previous, keys)

    def _follow(self, previous: Document, keys: DataKeys) -> None:
        """Authenticate a file another process wrote, with the keys this handle holds."""
        document = self._doc
        if _same_header(document.header) != _same_header(previous.header):
            self._forget_keys(
                "another process changed the passphrase or replaced the vault since it was unlocked"
            )
            return
        new_keys = keys
        if document.wrapped_key != previous.wrapped_key:
            assert self._kek is not None  # held whenever the keys are
            try:
                data_key = sealing.unwrap(self._kek, document)
            except AuthenticationFailed:
                self._forget_keys("")
                raise self._corrupt(
                    "wrapped_key", "the wrapped key fails to authenticate"
                ) from None
            if not hmac.compare_digest(data_key, keys.data_key):  # rotated elsewhere
                new_keys = sealing.data_keys(data_key, document.header)
        same_keys = new_keys is keys
        try:
            self._authenticate(
                new_keys,
                known=previous.entries if same_keys else {},
                known_audit_key=previous.audit_key if same_keys else None,
            )
        except VaultCorrupt:
            self._forget_keys("")
            raise
        self._keys = new_keys

    def _unwrap(self, secret: bytes) -> tuple[bytes, DataKeys]:
        header = self._doc.header
        kek = derive_key(secret, header.salt, header.kdf)
        try:
            data_key = sealing.unwrap(kek, self._doc)
        except AuthenticationFailed:
            raise self._wrong_passphrase() from None
        return kek, sealing.data_keys(data_key, header)

    def _authenticate(
        self,
        keys: DataKeys,
        *,
        known: Mapping[str, SealedEntry],
        known_audit_key: AuditKey | None = None,
    ) -> None:
        """Check every entry of the loaded file (but unchanged ``known`` ones), its MAC, and
        that its audit key (unless identical to ``known_audit_key``) opens and matches."""
        bad = sealing.failing_entries(self._doc, keys, known=known)
        if bad:
            raise self._corrupt_entries(bad)
        if not keys.mac_matches(self._body, self._mac):
            raise self._corrupt(
                "mac",
                "the file's MAC does not match: entries were removed, rolled back or re-dated, "
                "or the header, generation or audit key was edited",
                entries=[],
            )
        audit_key = self._doc.audit_key
        if audit_key is not None and audit_key != known_audit_key:
            try:
                sealing.open_audit_seed(keys, self.vault_id, audit_key)
            except AuthenticationFailed:
                raise self._corrupt(
                    "audit_key", "the sealed audit key does not open or does not match"
                ) from None

    def _commit(self, document: Document, keys: DataKeys, *, at_least: int = 0) -> None:
        """Write ``document`` as version 2 with the next generation (at least ``at_least``)."""
        if document.header.version != VERSION:  # the first write of a version-1 file
            assert self._kek is not None  # held whenever the keys are
            header = attrs.evolve(document.header, version=VERSION)
            wrapped = sealing.wrap(self._kek, keys.data_key, header)  # bound to the new header
            document = attrs.evolve(document, header=header, wrapped_key=wrapped)
        if document.audit_key is None:
            document = attrs.evolve(
                document, audit_key=sealing.new_audit_key(keys, document.header.vault_id)
            )
        generation = max(document.generation + 1, at_least)
        if generation > MAX_GENERATION:
            raise VaultError(f"the vault's generation counter is exhausted ({MAX_GENERATION})")
        document = attrs.evolve(document, generation=generation)
        body = document.body()
        if len(body) + _ENVELOPE_BYTES > MAX_FILE_BYTES:
            raise InvalidEntry(f"the vault would grow past its limit of {MAX_FILE_BYTES} bytes")
        mac = keys.mac(body)
        identity = storage.write(self.path, encode_file(body, mac))
        self._doc, self._body, self._mac, self._identity = document, body, mac, identity

    def _entry(self, path: str) -> SealedEntry:
        entry = self._doc.entries.get(path)
        if entry is None:
            raise EntryNotFound(f"there is no vault entry at {path!r}", details={"path": path})
        return entry

    def _require_keys(self) -> DataKeys:
        if self._keys is None:
            because = f": {self._locked_because}" if self._locked_because else ""
            raise VaultLocked(f"the vault at {self.path} is locked{because}")
        return self._keys

    def _forget_keys(self, because: str) -> None:
        if self._keys is not None:
            self._locked_because = because
        self._kek = self._keys = None

    def _wrong_passphrase(self) -> WrongPassphrase:
        return WrongPassphrase(
            f"the passphrase does not open the vault at {self.path}",
            details={"file": str(self.path)},
        )

    def _corrupt(self, region: str, problem: str, **details: object) -> VaultCorrupt:
        return VaultCorrupt(
            f"{self.path} is damaged or was tampered with ({region}): {problem}",
            details={"file": str(self.path), "region": region, **details},
        )

    def _corrupt_entries(self, paths: Iterable[str]) -> VaultCorrupt:
        names = sorted(paths)
        shown = ", ".join(repr(name) for name in names[:_NAMED_IN_MESSAGE])
        hidden = len(names) - _NAMED_IN_MESSAGE
        more = f" and {hidden} more" if hidden > 0 else ""
        return self._corrupt(
            "entries",
            f"{len(names)} entr{'y fails' if len(names) == 1 else 'ies fail'} authentication "
            f"(altered, moved or renamed): {shown}{more}",
            entries=names,
        )


def _same_header(header: Header) -> Header:
    """The header without its format version, which an upgrade changes (same vault, same key)."""
    return attrs.evolve(header, version=VERSION)


def _new_passphrase(passphrase: str) -> bytes:
    secret = encode_passphrase(passphrase)
    if not secret:
        raise InvalidPassphrase("the passphrase is empty")
    return secret


def _now() -> datetime:
    return datetime.now(UTC)


__all__ = ["Vault"]
