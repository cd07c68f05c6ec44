"""The vault's errors: one branch of the ``AileronError`` tree, one leaf per thing that can fail.

::

    AileronError                   aileron_error
    └── VaultError                 vault_error          also: the file cannot be read at all
        ├── VaultMissing           vault_missing        no vault file at the path
        ├── VaultExists            vault_exists         create() over an existing file
        ├── VaultCorrupt           vault_corrupt        damaged or tampered file; names the
        │                                               region and details["entries"]
        ├── UnsupportedVersion     unsupported_version  intact vault of another format version
        ├── WrongPassphrase        wrong_passphrase     passphrase does not unwrap the data key
        ├── VaultLocked            vault_locked         needs the key; unlock first
        ├── VaultRolledBack        vault_rolled_back    the file is older than one already seen
        ├── EntryNotFound          entry_not_found      no entry at that path
        ├── InvalidEntryPath       invalid_entry_path   a path breaks the entry path rules
        ├── InvalidEntry           invalid_entry        a value or metadata breaks the rules
        └── InvalidPassphrase      invalid_passphrase   new passphrase empty or not Unicode

Which file regions yield ``WrongPassphrase`` and which ``VaultCorrupt`` is fixed by ADR 0002.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from aileron_core.errors import AileronError


class VaultError(AileronError):
    """Base class of every error the vault raises; catching it catches them all."""

    code = "vault_error"
    default_hint: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, hint=hint or self.default_hint, details=details)


class VaultMissing(VaultError):
    """There is no vault file at the given path."""

    code = "vault_missing"
    default_hint = "create one with `aileron vault init`"


class VaultExists(VaultError):
    """``Vault.create`` found a file already at the path; it never overwrites one."""

    code = "vault_exists"
    default_hint = "the existing vault is untouched; move it away first to start over"


class VaultCorrupt(VaultError):
    """The file is damaged or was tampered with; the message and details name what failed."""

    code = "vault_corrupt"
    default_hint = "restore vault.json from a backup; do not edit it by hand"


class UnsupportedVersion(VaultError):
    """The file is an intact vault of a format version this code does not read."""

    code = "unsupported_version"
    default_hint = "upgrade Aileron to a version that reads this vault"


class WrongPassphrase(VaultError):
    """The passphrase does not unwrap the vault's data key."""

    code = "wrong_passphrase"
    default_hint = "check the passphrase and try again"


class VaultLocked(VaultError):
    """The operation needs the vault's key, and this handle does not hold it."""

    code = "vault_locked"
    default_hint = "unlock the vault first (`aileron vault unlock`)"


class VaultRolledBack(VaultError):
    """The file's generation is lower than one already seen: an older copy was put in place.

    ``details`` holds ``generation`` (found) and ``expected`` (the lowest acceptable). A handle
    raises it when it re-reads such a file while holding keys, and forgets its keys first.
    """

    code = "vault_rolled_back"
    default_hint = (
        "an older copy of vault.json replaced the current one; if that was a deliberate "
        "restore, accept it with `aileron vault restore-accept`"
    )


class EntryNotFound(VaultError):
    """No entry exists at the given path."""

    code = "entry_not_found"
    default_hint = "`aileron vault list` shows the entries that exist"


class InvalidEntryPath(VaultError):
    """An entry path breaks the rules (see ``aileron_core.vault.entries``)."""

    code = "invalid_entry_path"
    default_hint = (
        "use 1-512 characters in '/'-separated segments, without empty, '.' or '..' "
        "segments and without control characters"
    )


class InvalidEntry(VaultError):
    """An entry's value or metadata breaks the rules (see ``aileron_core.vault.entries``)."""

    code = "invalid_entry"


class InvalidPassphrase(VaultError):
    """A passphrase given to create or change a vault is empty or is not Unicode text."""

    code = "invalid_passphrase"
    default_hint = "choose a non-empty passphrase of ordinary Unicode text"


__all__ = [
    "EntryNotFound",
    "InvalidEntry",
    "InvalidEntryPath",
    "InvalidPassphrase",
    "UnsupportedVersion",
    "VaultCorrupt",
    "VaultError",
    "VaultExists",
    "VaultLocked",
    "VaultMissing",
    "VaultRolledBack",
    "WrongPassphrase",
]
