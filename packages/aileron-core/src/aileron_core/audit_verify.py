"""Proving the audit log complete: the chain, checked against signed heads (offline, pure).

The chain (:class:`aileron_core.audit.ChainVerifier`) catches any edit; the heads
(:mod:`aileron_core.audit_heads`) catch the loss of records at the end. :class:`LogVerifier`
takes the heads first, then the record lines one at a time (so 100k records cost no more memory
than a few), and gives a :class:`CompletenessReport`. :func:`verify_files` feeds it from the
files in ``AILERON_HOME``; :mod:`aileron_core.audit_export` feeds it from an export.

Every finding is one line that names what is wrong and from which seq. *Problems* mean the log
cannot be trusted as complete; *notices* are facts a reader should know (records not yet signed,
a torn tail the daemon cut off at start-up, a rejected checkpoint, a restore accepted).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from aileron_core.audit import GENESIS_PREV, ChainVerifier, hashed_fields
from aileron_core.audit_heads import (
    SIGNED_TYPES,
    Head,
    HeadError,
    WitnessMark,
    head_digest,
    head_signature_ok,
    key_id,
    parse_head,
    parse_witness,
    witness_signature_ok,
)
from aileron_core.convert import converter

NOTICE_TYPES: tuple[str, ...] = (
    "audit.recovered",
    "audit.checkpoint_rejected",
    "vault.restore_accepted",
)
"""Record types that become notices in a report."""

_SIGNED = frozenset(SIGNED_TYPES)
_WATCHED = frozenset(SIGNED_TYPES + NOTICE_TYPES)
"""Record types :meth:`LogVerifier._watched` reads: the fast path parses these in full."""
_WATCHED_RAW = frozenset(kind.encode("utf-8") for kind in _WATCHED)
_PENDING_MAX = 4096  # lines the fast path holds before a head vouches for them
_UNSIGNED_LISTED = 20  # unsigned_signed_type findings named one by one; the rest are counted


@attrs.frozen
class Finding:
    """One thing wrong (or worth knowing) about the log, in one line."""

    code: str
    seq: int | None
    message: str


@attrs.frozen
class CompletenessReport:
    """What a verify proved: ``ok`` unless there is a problem (notices never fail it)."""

    ok: bool
    records: int
    first_seq: int | None
    last_seq: int | None
    signed_seq: int | None
    heads: int
    unsigned_tail: int
    problems: tuple[Finding, ...]
    notices: tuple[Finding, ...]
    witnessed: int | None
    key: str | None

    def summary(self) -> str:
        """One line for a terminal or a log."""
        if self.records:
            span = f"{self.records} records (seq {self.first_seq}..{self.last_seq})"
        else:
            span = "0 records"
        signed = (
            f"signed through seq {self.signed_seq} by {self.heads} heads"
            if self.signed_seq is not None
            else "no signed heads"
        )
        parts = [span, signed]
        if self.unsigned_tail:
            parts.append(f"{self.unsigned_tail} unsigned")
        if self.witnessed is not None:
            parts.append(f"{self.witnessed} witnessed")
        if self.ok:
            verdict = "audit log complete"
        else:
            first = self.problems[0]
            more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            verdict = f"AUDIT LOG NOT INTACT: {first.code}: {first.message}{more}"
        notices = f"; {len(self.notices)} notices" if self.notices else ""
        return f"{verdict}: {', '.join(parts)}{notices}"

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON data."""
        out: dict[str, Any] = converter.unstructure(self)
        return out


def _payload_text(payload: object) -> str:
    if not isinstance(payload, dict):
        return ""
    return ", ".join(
        f"{key}={value}"
        for key, value in sorted(payload.items())
        if isinstance(value, str | int | float | bool) or value is None
    )


class LogVerifier:
    """Verify one log: give it the heads (and witness marks), then every record line in order,
    then call :meth:`finish`.

    ``start`` = ``(seq, prev)`` checks a range cut out of a chain (an export): its first record
    must be ``seq`` and link to ``prev``, which is trusted; ``end`` is the seq such a range
    says it ends at (heads after it are not checked). ``public_key`` ``None`` means the
    vault has no audit key yet: the chain is checked, heads cannot be.

    The fast path (``fast``, on by default) skips the canonical re-encoding of records that a
    valid signed head covers. Such a line is only checked for what
    :func:`aileron_core.audit.hashed_fields` reads (its hash over its own bytes, its seq and
    its link) and held back; when the record at a head's seq carries the head's hash, the held
    lines are byte for byte the lines the daemon wrote (else sha256 collides), which were
    canonical, so they count as verified exactly as the full check would have counted them.
    Whatever is odd (a line the fast read refuses, a broken link, a head whose hash differs,
    the end of the records before a head) sends the held lines and the rest of that stretch
    through the full check, in order, so every report is the full path's report.
    """

    def __init__(
        self,
        *,
        public_key: bytes | None,
        vault_id: str | None,
        heads: Iterable[bytes] | None,
        witness: Iterable[bytes] | None = None,
        witness_key: bytes | None = None,
        start: tuple[int, str] = (1, GENESIS_PREV),
        end: int | None = None,
        fast: bool = True,
    ) -> None:
        self._problems: list[Finding] = []
        self._notices: list[Finding] = []
        self._public_key = public_key
        self._vault_id = vault_id
        self._start_seq = start[0]
        self._end = end
        self._chain = ChainVerifier(seq=start[0], prev=start[1])
        self._first_seq: int | None = None
        self._last_seq = start[0] - 1
        self._last_hash = start[1]
        self._torn: int | None = None
        self._broken = False
        self._signed_type_seen: int | None = None
        self._unsigned_types: list[tuple[int, str]] = []
        self._unsigned_count = 0
        self._heads_present = False
        self._heads: list[tuple[Head, bytes]] = []
        self._load_heads(heads)
        self._signed_seq = self._heads[-1][0].seq if self._heads else None
        # The seq each head vouches for; checked as the records stream past.
        self._at_seq: dict[int, list[Head]] = {}
        for head, _ in self._heads:
            self._at_seq.setdefault(head.seq, []).append(head)
        self._matched: dict[int, bool] = {}  # head n -> whether its record had its hash
        if start[0] > 1:
            for head in self._at_seq.get(start[0] - 1, []):
                self._matched[head.n] = head.hash == start[1]
        self._witnessed: int | None = None
        if witness_key is not None:
            self._check_witness(witness, witness_key)
        # Fast path: records up to the last valid head; ``_pending`` holds the lines read fast
        # since the last head that vouched, ``_pending_watched`` the (index, prev) of those
        # among them that must still be parsed in full, ``_next_seq``/``_next_prev`` where the
        # held lines leave the chain.
        self._fast_until = self._heads[-1][0].seq if fast and self._heads else 0
        self._pending: list[bytes] = []
        self._pending_watched: list[tuple[int, str]] = []
        self._next_seq = start[0]
        self._next_prev = start[1]
        self._vouched_count = 0

    # --- heads -----------------------------------------------------------------------------

    def _load_heads(self, lines: Iterable[bytes] | None) -> None:
        if lines is None:
            return
        prev_line: bytes | None = None
        prev_head: Head | None = None
        listed = list(lines)
        for number, line in enumerate(listed, start=1):
            self._heads_present = True
            if self._public_key is None:
                self._head_problem(None, "no audit key to check heads against")
                return
            if number == len(listed) and not line.endswith(b"\n"):
                # A head write cut short by a crash; the daemon cuts it off at its next start.
                after = f" after head n {prev_head.n}" if prev_head is not None else ""
                self._notices.append(
                    Finding("torn_head", None, f"the heads file ends in a torn line{after}")
                )
                return
            problem, head = self._check_head(number, line, prev_head, prev_line)
            if problem is not None:
                seq = head.seq if head is not None else None
                self._head_problem(seq, problem)
                return  # heads after a bad one vouch for nothing
            assert head is not None
            self._heads.append((head, line))
            prev_head, prev_line = head, line

    def _check_head(
        self, number: int, line: bytes, prev: Head | None, prev_line: bytes | None
    ) -> tuple[str | None, Head | None]:
        assert self._public_key is not None
        try:
            head = parse_head(line)
        except HeadError as error:
            return f"heads line {number}: {error.message}", None
        at = f"head n {head.n} (seq {head.seq})"
        expected_n = prev.n + 1 if prev is not None else 1
        if head.key != key_id(self._public_key):
            return f"{at} names key {head.key[:16]}, not the vault's audit key", head
        if not head_signature_ok(head, self._public_key):
            return f"{at} does not carry a valid signature of the vault's audit key", head
        if head.n != expected_n:
            return (
                f"{at} found where head n {expected_n} belongs (a head is missing or out of order)",
                head,
            )
        expected_prev = head_digest(prev_line) if prev_line is not None else GENESIS_PREV
        if head.prev != expected_prev:
            return f"{at} does not link to the head before", head
        if self._vault_id is not None and head.vault_id != self._vault_id:
            return f"{at} belongs to vault {head.vault_id}, not {self._vault_id}", head
        if prev is not None and head.generation < prev.generation:
            return (
                f"{at} has vault generation {head.generation}, lower than "
                f"{prev.generation} in head n {prev.n} (a rolled-back vault signed it)",
                head,
            )
        if prev is not None and head.seq < prev.seq:
            return f"{at} goes back from seq {prev.seq} (head n {prev.n})", head
        return None, head

    def _head_problem(self, seq: int | None, message: str) -> None:
        self._problems.append(Finding("head_invalid", seq, message))

    def _check_witness(self, lines: Iterable[bytes] | None, witness_key: bytes) -> None:
        wanted = key_id(witness_key)
        digests = {head.n: head_digest(line) for head, line in self._heads}
        good: set[int] = set()
        for number, line in enumerate(lines or (), start=1):
            if not line.strip():
                continue
            try:
                mark: WitnessMark | None = parse_witness(line)
            except HeadError as error:
                mark = None
                self._problems.append(
                    Finding("witness_invalid", None, f"witness line {number}: {error.message}")
                )
            if mark is None:
                continue
            valid = (
                mark.key == wanted
                and witness_signature_ok(mark, witness_key)
                and (self._vault_id is None or mark.vault_id == self._vault_id)
            )
            if not valid:
                self._problems.append(
                    Finding(
                        "witness_invalid",
                        None,
                        f"witness line {number} (head n {mark.n}) is not signed by the witness key",
                    )
                )
            elif mark.n in digests and mark.digest != digests[mark.n]:
                self._problems.append(
                    Finding(
                        "witness_invalid",
                        None,
                        f"witness line {number} countersigned another head n {mark.n}",
                    )
                )
            else:
                good.add(mark.n)
        for head, _ in self._heads:
            if head.n not in good:
                self._problems.append(
                    Finding(
                        "witness_missing",
                        head.seq,
                        f"head n {head.n} (seq {head.seq}) has no valid witness mark",
                    )
                )
        self._witnessed = sum(1 for head, _ in self._heads if head.n in good)

    # --- records ---------------------------------------------------------------------------

    def feed(self, line: bytes) -> None:
        """Check the next record line (newline included)."""
        if self._broken:
            return  # the chain's report already names the first bad record
        if self._next_seq <= self._fast_until:
            fields = hashed_fields(line)
            if fields is not None and fields[0] == self._next_seq and fields[1] == self._next_prev:
                seq, prev, digest, kind = fields
                if kind in _WATCHED_RAW:
                    self._pending_watched.append((len(self._pending), prev))
                self._pending.append(line)
                self._next_seq, self._next_prev = seq + 1, digest
                heads = self._at_seq.get(seq)
                if heads is not None and all(head.hash == digest for head in heads):
                    self._commit()
                elif heads is not None or len(self._pending) >= _PENDING_MAX:
                    self._flush()
                return
        self._flush()
        self._feed_full(line)
        self._next_seq, self._next_prev = self._last_seq + 1, self._last_hash

    @property
    def vouched(self) -> int:
        """How many records a signed head vouched for without the full check."""
        return self._vouched_count

    def _commit(self) -> None:
        """A head vouches for the held lines: count them as the full check would have."""
        done = 0
        for index, prev in self._pending_watched:
            self._advance(index - done, prev)
            self._feed_full(self._pending[index])  # a watched type: its value is needed
            done = index + 1
        self._advance(len(self._pending) - done, self._next_prev)
        self._pending.clear()
        self._pending_watched.clear()

    def _advance(self, count: int, last_hash: str) -> None:
        if not count or self._broken:
            return
        self._chain.vouch(count, last_hash)
        self._vouched_count += count
        if self._first_seq is None:
            self._first_seq = self._last_seq + 1
        self._last_seq += count
        self._last_hash = last_hash
        for head in self._at_seq.get(self._last_seq, ()):
            self._matched[head.n] = head.hash == last_hash

    def _flush(self) -> None:
        """Check the held lines in full after all (something did not add up, or they are many)."""
        if not self._pending:
            return
        for line in self._pending:
            self._feed_full(line)
        self._pending.clear()
        self._pending_watched.clear()
        self._next_seq, self._next_prev = self._last_seq + 1, self._last_hash

    def _feed_full(self, line: bytes) -> None:
        """The full check of one line (as before the fast path)."""
        if self._broken:
            return
        value = self._chain.feed(line)
        if value is None or self._chain.broken:
            self._broken = True
            return
        seq: int = value["seq"]
        self._last_seq = seq
        self._last_hash = value["hash"]
        if self._first_seq is None:
            self._first_seq = seq
        heads = self._at_seq.get(seq)
        if heads is not None:
            for head in heads:
                self._matched[head.n] = head.hash == value["hash"]
        if value["type"] in _WATCHED:
            self._watched(seq, value)

    def _watched(self, seq: int, value: dict[str, Any]) -> None:
        kind: str = value["type"]
        if kind in _SIGNED:
            if self._signed_type_seen is None:
                self._signed_type_seen = seq
            if self._signed_seq is None or seq > self._signed_seq:
                self._unsigned_count += 1
                if len(self._unsigned_types) < _UNSIGNED_LISTED:
                    self._unsigned_types.append((seq, kind))
        if kind in NOTICE_TYPES:
            details = _payload_text(value["payload"])
            self._notices.append(Finding(kind, seq, f"{kind} at seq {seq}: {details}"))

    def torn(self, line: bytes) -> None:
        """The log's last line, which has no newline: a write cut short."""
        self._flush()
        self._torn = self._last_seq + 1

    # --- verdict ---------------------------------------------------------------------------

    def finish(
        self, *, log_present: bool = True, tip: tuple[int, str] | None = None
    ) -> CompletenessReport:
        """The report on everything fed so far."""
        self._flush()
        chain = self._chain.report()
        if chain.reason is not None:
            self._problems.append(
                Finding(
                    "chain_broken",
                    chain.first_bad_seq,
                    f"chain broken at seq {chain.first_bad_seq} (line {chain.first_bad_line}): "
                    f"{chain.reason}",
                )
            )
        checkable = [h for h, _ in self._heads if self._end is None or h.seq <= self._end]
        last_head = checkable[-1] if checkable else None
        if self._end is not None:
            self._check_end(checkable)
        if self._public_key is None and not self._heads_present:
            self._notices.append(
                Finding(
                    "no_audit_key",
                    None,
                    "the vault has no audit key yet: the chain was checked, completeness cannot be",
                )
            )
        elif self._public_key is not None:
            self._check_against_heads(chain.reason is None, log_present, last_head)
        if self._torn is not None and last_head is not None and self._torn <= last_head.seq:
            pass  # reported as log_truncated above
        elif self._torn is not None:
            self._notices.append(
                Finding(
                    "torn_tail",
                    self._torn,
                    f"the last line (seq {self._torn}) is torn; it is after the last signed head",
                )
            )
        if tip is not None and chain.reason is None:
            if (self._last_seq, self._last_hash) != tip:
                self._problems.append(
                    Finding(
                        "tip_mismatch",
                        self._last_seq,
                        f"the log ends at seq {self._last_seq}, but the daemon's tip is seq "
                        f"{tip[0]} (hash {tip[1][:16]})",
                    )
                )
        signed = self._signed_seq
        unsigned = 0
        if self._first_seq is not None and chain.reason is None:
            low = max(self._first_seq, (signed or 0) + 1)
            unsigned = max(0, self._last_seq - low + 1)
            if unsigned and self._public_key is not None:  # else no_audit_key says it all
                self._notices.append(
                    Finding(
                        "unsigned_tail",
                        low,
                        f"unsigned tail: {unsigned} records (seq {low}..{self._last_seq})",
                    )
                )
        return CompletenessReport(
            ok=not self._problems,
            records=chain.records,
            first_seq=self._first_seq,
            last_seq=self._last_seq if self._first_seq is not None else None,
            signed_seq=signed,
            heads=len(self._heads),
            unsigned_tail=unsigned,
            problems=tuple(self._problems),
            notices=tuple(self._notices),
            witnessed=self._witnessed,
            key=key_id(self._public_key) if self._public_key is not None else None,
        )

    def _check_against_heads(
        self, chain_ok: bool, log_present: bool, last_head: Head | None
    ) -> None:
        if not self._heads_present:
            if self._signed_type_seen is not None:
                self._problems.append(
                    Finding(
                        "heads_missing",
                        self._signed_type_seen,
                        f"the log has signed-type records from seq {self._signed_type_seen} "
                        "but the heads file is absent or empty",
                    )
                )
            return
        if not log_present:
            seq = last_head.seq if last_head is not None else None
            self._problems.append(
                Finding("log_missing", seq, f"the log is missing; heads vouch for seq {seq}")
            )
            return
        self._check_rewritten()
        if chain_ok and last_head is not None and self._last_seq < last_head.seq:
            torn = " (its last line is torn)" if self._torn is not None else ""
            self._problems.append(
                Finding(
                    "log_truncated",
                    self._last_seq + 1,
                    f"the log ends at seq {self._last_seq}{torn}, before the last head's seq "
                    f"{last_head.seq} (head n {last_head.n}): records from seq "
                    f"{self._last_seq + 1} are gone",
                )
            )
        for seq, kind in self._unsigned_types:
            self._problems.append(
                Finding(
                    "unsigned_signed_type",
                    seq,
                    f"record seq {seq} ({kind}) is covered by no signed head: forged, or heads "
                    "were removed",
                )
            )
        hidden = self._unsigned_count - len(self._unsigned_types)
        if hidden:
            self._problems.append(
                Finding(
                    "unsigned_signed_type",
                    None,
                    f"{hidden} more signed-type records are covered by no signed head",
                )
            )

    def _check_end(self, checkable: list[Head]) -> None:
        assert self._end is not None
        if self._chain.broken:
            return
        if self._last_seq != self._end:
            self._problems.append(
                Finding(
                    "log_truncated",
                    self._last_seq + 1,
                    f"the records end at seq {self._last_seq}, not at seq {self._end} where "
                    "the export says it ends",
                )
            )
        if len(checkable) < len(self._heads):
            after = self._heads[len(checkable)][0]
            self._notices.append(
                Finding(
                    "range_end",
                    self._end,
                    f"export ends at seq {self._end}; head n {after.n} (seq {after.seq}) and "
                    "later vouch for records it does not hold",
                )
            )

    def _check_rewritten(self) -> None:
        intact: Head | None = None
        for head, _ in self._heads:
            if self._end is not None and head.seq > self._end:
                return
            matched = self._matched.get(head.n)
            if matched is None:
                if head.seq == 0 and head.hash == GENESIS_PREV:
                    continue  # a head of the empty log
                if head.seq < self._start_seq - 1 or head.seq == 0:
                    continue  # before a range export begins: nothing to compare
                if head.seq > self._last_seq:
                    return  # reported as truncated (or the chain broke earlier)
            if matched:
                intact = head
                continue
            through = (
                f"intact through seq {intact.seq} (head n {intact.n})"
                if intact is not None
                else "no earlier head is intact"
            )
            self._problems.append(
                Finding(
                    "log_rewritten",
                    head.seq,
                    f"the log was rewritten at or before seq {head.seq} (head n {head.n}): "
                    f"the record there is not the one signed; {through}",
                )
            )
            return


def _read_lines(path: Path) -> list[bytes] | None:
    try:
        with open(path, "rb") as handle:
            return handle.readlines()
    except FileNotFoundError:
        return None


def verify_files(
    segments: list[Path],
    heads: Path,
    *,
    public_key: bytes | None,
    vault_id: str | None,
    witness: Path | None = None,
    witness_key: bytes | None = None,
    tip: tuple[int, str] | None = None,
    fast: bool = True,
) -> CompletenessReport:
    """Verify the log in ``segments`` (oldest first) against the heads file.

    ``fast=False`` checks every record in full (the reference the fast path is tested
    against; see :class:`LogVerifier`)."""
    verifier = LogVerifier(
        public_key=public_key,
        vault_id=vault_id,
        heads=_read_lines(heads),
        witness=_read_lines(witness) if witness is not None else None,
        witness_key=witness_key,
        fast=fast,
    )
    present = [path for path in segments if path.exists()]
    feed = verifier.feed
    for index, path in enumerate(present):
        last_file = index == len(present) - 1
        with open(path, "rb") as handle:
            for line in handle:
                # Only a file's last line can lack its newline; in the last file, it is torn.
                if line[-1:] == b"\n" or not last_file:
                    feed(line)
                else:
                    verifier.torn(line)
    return verifier.finish(log_present=bool(present), tip=tip)


def public_key_b64(public_key: bytes | None) -> str | None:
    """How exports carry a public key."""
    return base64.b64encode(public_key).decode("ascii") if public_key is not None else None


__all__ = [
    "NOTICE_TYPES",
    "CompletenessReport",
    "Finding",
    "LogVerifier",
    "public_key_b64",
    "verify_files",
]
