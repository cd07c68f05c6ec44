"""Verifying and exporting the audit files of one ``AILERON_HOME``, by the daemon or the CLI.

Verification needs the vault's *public* audit key only. Where it comes from decides what a
pass proves, so every report names it (``key_source``):

- the running daemon's unlocked vault: the key was authenticated with the passphrase (it is
  inside the vault's MAC), so heads signed by it were signed by a holder of the passphrase;
- ``vault.json`` read without the passphrase (the daemon is not running, or the vault is
  locked): as good as the file. Someone who replaced ``vault.json`` with a vault of their own
  could re-sign a rewritten log, but your passphrase would no longer open that vault: the next
  unlock fails, and the verdict of any verify before it is void;
- ``--key``: a key you pinned yourself (``aileron audit key`` prints it), e.g. to check an
  export on another machine.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from aileron_core.audit_heads import key_id
from aileron_core.audit_verify import CompletenessReport, Finding, verify_files
from aileron_core.errors import AileronError
from aileron_core.paths import Layout
from aileron_core.vault import Vault, VaultError, VaultMissing

KEY_FROM_UNLOCKED = "the unlocked vault (authenticated with the passphrase)"
KEY_FROM_FILE = "vault.json, read without the passphrase (trusted once the vault unlocks)"
KEY_FROM_FLAG = "--key"
NO_KEY = "none: no vault, or a vault without an audit key yet"


class AuditKeyError(AileronError):
    """A ``--key`` value is not a public audit key."""

    code = "invalid_audit_key"


def parse_key(text: str) -> bytes:
    """A raw 32-byte Ed25519 public key from its base64 form."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise AuditKeyError(
            "--key is not a public audit key (32 bytes, base64)",
            hint="`aileron audit key` prints the vault's",
        )
    return raw


def audit_key(layout: Layout, vault: Vault | None = None) -> tuple[bytes | None, str | None, str]:
    """``(public key, vault id, where it came from)`` for ``layout``'s vault."""
    if vault is not None and vault.is_unlocked:
        return vault.audit_public_key, vault.vault_id, KEY_FROM_UNLOCKED
    try:
        opened = Vault.open(layout.vault)
    except VaultMissing:
        return None, None, NO_KEY
    except VaultError as error:
        return None, None, f"none: vault.json cannot be read ({error.message})"
    public = opened.audit_public_key
    return public, opened.vault_id, KEY_FROM_FILE if public is not None else NO_KEY


def report_json(report: CompletenessReport, key_source: str) -> dict[str, Any]:
    """The report as the API and ``--json`` give it: the verifier's facts, its one-line
    summary, and where the key came from."""
    out = report.to_json()
    out["summary"] = report.summary()
    out["key_source"] = key_source
    return out


def verify_home(
    layout: Layout,
    *,
    vault: Vault | None = None,
    key: bytes | None = None,
    witness_key: bytes | None = None,
    tip: tuple[int, str] | None = None,
) -> tuple[CompletenessReport, str]:
    """Verify every segment of ``layout``'s log against its heads (and witness marks when
    ``witness_key`` is given); blocking, reads the whole log."""
    public: bytes | None
    if key is not None:
        _, vault_id, _ = audit_key(layout, vault)
        public, source = key, KEY_FROM_FLAG
    else:
        public, vault_id, source = audit_key(layout, vault)
    report = verify_files(
        layout.audit_segments(),
        layout.audit_heads,
        public_key=public,
        vault_id=vault_id,
        witness=layout.audit_witness if witness_key is not None else None,
        witness_key=witness_key,
        tip=tip,
    )
    return report, source


def verify_offline(layout: Layout, *, key: bytes | None, witness: bool) -> dict[str, Any]:
    """What ``aileron audit verify`` prints when no daemon runs."""
    witness_key = _witness_key(layout) if witness else None
    report, source = verify_home(layout, key=key, witness_key=witness_key)
    return report_json(report, source)


def _witness_key(layout: Layout) -> bytes:
    import asyncio

    from aileron_cli.daemon.enclave.witness import witness_key

    found = asyncio.run(witness_key(layout))
    if found is None:
        raise AuditKeyError(
            "--witness needs an attached enclave, and none is attached",
            hint="`aileron enclave attach URL` (heads are countersigned from then on)",
        )
    return found


def with_problem(report: CompletenessReport, finding: Finding) -> CompletenessReport:
    """``report`` with one more problem (the daemon's own checks)."""
    import attrs

    return attrs.evolve(report, ok=False, problems=(*report.problems, finding))


def tip_raced(report: CompletenessReport, low: int, high: int) -> CompletenessReport:
    """``report`` of a log that kept growing while it was read (under load): the daemon's tip
    moved from ``low`` to ``high``, so an end anywhere between is what it wrote; say so
    instead of a ``tip_mismatch``."""
    import attrs

    problems = tuple(p for p in report.problems if p.code != "tip_mismatch")
    notice = Finding(
        "tip_moved",
        low,
        f"records were appended while the log was read (seq {low} to {high}); the end was "
        "checked against that range",
    )
    return attrs.evolve(
        report, ok=not problems, problems=problems, notices=(*report.notices, notice)
    )


def describe_key(public: bytes) -> str:
    """How ``aileron audit key`` shows a key: base64 and its id."""
    return f"{base64.b64encode(public).decode()}  (id {key_id(public)[:16]})"


def verify_export_file(path: Path, key: bytes | None) -> dict[str, Any]:
    """What ``aileron audit verify --file EXPORT`` prints."""
    from aileron_core.audit_export import verify_export

    report = verify_export(path, public_key=key)
    return report_json(report, KEY_FROM_FLAG if key is not None else "the export itself")


def export(
    layout: Layout,
    format: str,
    output: Path | None,
    *,
    since: datetime | None,
    until: datetime | None,
) -> int:
    """Write an export of ``layout``'s audit files; returns how many records it holds."""
    from aileron_core.audit_export import write_export

    public, vault_id, _ = audit_key(layout)
    with contextlib.ExitStack() as stack:
        out = sys.stdout.buffer if output is None else stack.enter_context(open(output, "wb"))
        return write_export(
            out,
            layout.audit_segments(),
            layout.audit_heads,
            layout.audit_witness,
            format=format,
            public_key=public,
            vault_id=vault_id,
            since=since,
            until=until,
        )


__all__ = [
    "AuditKeyError",
    "audit_key",
    "describe_key",
    "export",
    "parse_key",
    "report_json",
    "tip_raced",
    "verify_export_file",
    "verify_home",
    "verify_offline",
    "with_problem",
]
