"""The audit log's checkpoint: what a clean close vouches for, so the next open skips it.

``audit.jsonl.checkpoint`` (0600, written atomically beside the log by ``AuditLog.close``) says:
the first ``log_size`` bytes of the log, whose sha256 is ``prefix_sha256``, are a chain of
``last_seq`` records that verified, the last one hashing to ``last_hash``; and here is their
``AuditIndex``. ``AuditLog.open`` trusts that prefix only after re-hashing it from disk (a
streamed sha256, about ten times cheaper than parsing the records) and checking the record at
its end, then walks only the bytes after it. Anything else (no file, a damaged or foreign file,
another version, a log shorter than ``log_size``, a prefix whose bytes changed) is a
:class:`CheckpointRejected`, and the log is walked in full; the rejected file is kept as
evidence, renamed ``audit.jsonl.checkpoint.rejected-<UTC time>``, never overwritten.

Sizes and offsets are global: the log is the concatenation of its rotated segments and the
active ``audit.jsonl`` (``aileron_cli.daemon.audit.segments``). Version 2 lists the rotated
segments the prefix spans whole (name, size, sha256 and identity: inode and ctime), and
``prefix_sha256`` covers only the bytes after them. Rotated segments never change, so open
trusts a listed segment whose size and identity are unchanged without reading it (a segment
copied or restored gets a new identity: it is re-hashed and compared instead). That keeps the
start of a daemon with a million-record log to loading the index plus at most one segment's
hash. Version 1 (no segment list: the prefix hash covers every byte) is still read.

The writer never re-reads the log to compute ``prefix_sha256``: ``AuditLog`` keeps a running
sha256 of exactly the bytes it verified at open or wrote itself, so a prefix edited on disk
while the daemon ran is never blessed by the checkpoint written at its close.

Format (version 2)::

    b"aileron-audit-checkpoint 2\\n"
    header: canonical JSON, one line (fields: see ``_HEADER``)
    body:   the index arrays' machine bytes, in ``AuditIndex.arrays()`` order, then the ids
            in position order as a JSON list (``null`` where a later record reused an id)
    32 bytes: the sha256 of everything before them
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import sys
from array import array
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from aileron_cli.daemon.audit.index import AuditIndex
from aileron_cli.daemon.audit.recovery import Recovered, Resume, recover
from aileron_cli.daemon.audit.segments import Identity, SegmentHashes, Segments
from aileron_core.audit import GENESIS_PREV, AuditCorruptError, check_line
from aileron_core.canonical import canonical_json
from aileron_core.fileio import atomic_write, fsync_dir

__all__ = [
    "CHECKPOINT_VERSION",
    "CheckpointRejected",
    "Trusted",
    "checkpoint_path",
    "decode",
    "encode",
    "keep_rejected",
    "load",
    "open_walk",
    "save",
    "write",
]

log = logging.getLogger("aileron.daemon")

CHECKPOINT_VERSION = 2
_READABLE = {1, 2}
MAGIC = b"aileron-audit-checkpoint "
_DIGEST = 32
_READ_CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")
_HEADER = {
    "version": int,
    "byteorder": str,
    "log_size": int,
    "last_seq": int,
    "last_hash": str,
    "prefix_sha256": str,
    "records": int,
    "arrays": list,
    "ids_bytes": int,
    "codes": list,
    "segments": list,
}
_HEADER_V1 = {name: kind for name, kind in _HEADER.items() if name != "segments"}


@attrs.frozen
class SegmentEntry:
    """A rotated segment a checkpoint vouches for whole."""

    name: str
    size: int
    sha256: str
    identity: Identity


class CheckpointRejected(Exception):
    """A checkpoint that cannot be trusted; ``reason`` says why (it goes in the report)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen(kw_only=True)
class Trusted:
    """A checkpoint that held: where to resume, the prefix's index, and the running sha256
    of the prefix (to be continued over the tail)."""

    resume: Resume
    index: AuditIndex
    hashes: SegmentHashes


@attrs.frozen(kw_only=True)
class Opened:
    """What an open found: the walk's result, the index and running sha256 of the whole file
    (after any repair), and how many bytes the checkpoint on disk covers if it was used."""

    found: Recovered
    index: AuditIndex
    hashes: SegmentHashes
    covered: int | None


@attrs.frozen(kw_only=True)
class _Decoded:
    log_size: int
    last_seq: int
    last_hash: str
    prefix_sha256: str
    index: AuditIndex
    segments: tuple[SegmentEntry, ...]


def checkpoint_path(log_path: Path) -> Path:
    """Where the checkpoint of the log at ``log_path`` lives."""
    return log_path.with_name(log_path.name + ".checkpoint")


def open_walk(log_path: Path, segments: Segments, *, created: bool, keep: int) -> Opened:
    """Open-time walk of the log at ``log_path`` (its ``segments``, open): from the end of the
    prefix its checkpoint vouches for if that holds, else from byte 0 (reported). A rejected
    checkpoint is kept as evidence under a new name (:func:`keep_rejected`)."""
    rejected: str | None = None
    kept_as: str | None = None
    try:
        trusted = load(checkpoint_path(log_path), segments)
    except CheckpointRejected as exc:
        trusted, rejected = None, exc.reason
        kept_as = keep_rejected(checkpoint_path(log_path))
    if trusted is None:
        index, hashes, resume = AuditIndex(), SegmentHashes(), None
    else:
        index, hashes, resume = trusted.index, trusted.hashes, trusted.resume
    found = recover(
        segments,
        index,
        created=created,
        keep=keep,
        hashes=hashes,
        resume=resume,
        checkpoint="used" if resume else "rejected" if rejected else "absent",
        checkpoint_reason=rejected,
        checkpoint_kept_as=kept_as,
    )
    covered = None if resume is None else resume.offset
    return Opened(found=found, index=index, hashes=hashes, covered=covered)


def keep_rejected(path: Path, now: datetime | None = None) -> str | None:
    """Move a rejected checkpoint aside to ``<name>.rejected-<YYYYmmddTHHMMSSZ>`` (``-2``,
    ``-3``... if taken; never overwriting one) and return the new file name, or ``None`` (and
    log why) if it cannot be moved."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = f"{path.name}.rejected-{stamp}"
    for counter in itertools.count(1):
        target = path.with_name(base if counter == 1 else f"{base}-{counter}")
        try:
            os.link(path, target)  # fails rather than replace an existing file
        except FileExistsError:
            continue
        except OSError as exc:
            log.warning("audit log: could not keep the rejected checkpoint (%s)", exc)
            return None
        try:
            path.unlink()
            fsync_dir(path.parent)
        except OSError as exc:
            log.warning("audit log: could not remove the rejected checkpoint (%s)", exc)
        return target.name
    raise AssertionError("unreachable")  # pragma: no cover


def save(
    log_path: Path,
    index: AuditIndex,
    *,
    segments: Segments,
    log_size: int,
    last_seq: int,
    last_hash: str,
    hashes: SegmentHashes,
) -> bool:
    """Write the checkpoint of the log at ``log_path`` (``hashes``: the sha256 of each of its
    ``segments`` as verified or written, covering ``log_size`` bytes); log and return ``False``
    if that fails (it is only a shortcut)."""
    entries = tuple(
        SegmentEntry(
            name=segment.path.name,
            size=segments.end_of(position) - segment.start,
            sha256=hashes.done[position],
            identity=segment.identity or (0, 0),
        )
        for position, segment in enumerate(segments.rotated)
    )
    try:
        write(
            checkpoint_path(log_path),
            index,
            log_size=log_size,
            last_seq=last_seq,
            last_hash=last_hash,
            prefix_sha256=hashes.current.hexdigest(),
            segments=entries,
        )
    except OSError as exc:
        log.warning("audit log: could not write its checkpoint (%s)", exc.strerror or exc)
        return False
    return True


def encode(
    index: AuditIndex,
    *,
    log_size: int,
    last_seq: int,
    last_hash: str,
    prefix_sha256: str,
    segments: tuple[SegmentEntry, ...] = (),
) -> bytes:
    """The checkpoint file's bytes for a verified chain of ``last_seq`` records in ``index``;
    ``prefix_sha256`` covers the bytes after the whole rotated ``segments``."""
    ids = json.dumps(index.ids_by_position(), ensure_ascii=False, separators=(",", ":"))
    ids_bytes = ids.encode("utf-8")
    header = {
        "version": CHECKPOINT_VERSION,
        "byteorder": sys.byteorder,
        "log_size": log_size,
        "last_seq": last_seq,
        "last_hash": last_hash,
        "prefix_sha256": prefix_sha256,
        "records": len(index),
        "arrays": [[name, values.typecode, values.itemsize] for name, values in index.arrays()],
        "ids_bytes": len(ids_bytes),
        "codes": index.codes_list(),
        "segments": [[entry.name, entry.size, entry.sha256, *entry.identity] for entry in segments],
    }
    parts = [MAGIC + str(CHECKPOINT_VERSION).encode() + b"\n", canonical_json(header) + b"\n"]
    parts.extend(values.tobytes() for _, values in index.arrays())
    parts.append(ids_bytes)
    data = b"".join(parts)
    return data + hashlib.sha256(data).digest()


def write(
    path: Path,
    index: AuditIndex,
    *,
    log_size: int,
    last_seq: int,
    last_hash: str,
    prefix_sha256: str,
    segments: tuple[SegmentEntry, ...] = (),
) -> None:
    """Atomically replace the checkpoint at ``path`` (0600)."""
    data = encode(
        index,
        log_size=log_size,
        last_seq=last_seq,
        last_hash=last_hash,
        prefix_sha256=prefix_sha256,
        segments=segments,
    )
    atomic_write(path, data)


def decode(data: bytes) -> _Decoded:
    """Parse and check a checkpoint file; :class:`CheckpointRejected` if anything is off."""
    if not data.startswith(MAGIC):
        raise CheckpointRejected("not an audit checkpoint file")
    first_end = data.find(b"\n")
    if first_end == -1:
        raise CheckpointRejected("the checkpoint has no version line")
    version = data[len(MAGIC) : first_end]
    if version not in {str(number).encode() for number in _READABLE}:
        shown = version[:20].decode("ascii", "replace")
        raise CheckpointRejected(f"unsupported checkpoint version {shown!r}")
    if len(data) < first_end + 1 + _DIGEST or (
        hashlib.sha256(data[:-_DIGEST]).digest() != data[-_DIGEST:]
    ):
        raise CheckpointRejected("the checkpoint file is damaged (its checksum does not match)")
    header_end = data.find(b"\n", first_end + 1)
    if header_end == -1:
        raise CheckpointRejected("the checkpoint has no header")
    try:
        header = json.loads(data[first_end + 1 : header_end])
    except (ValueError, RecursionError):
        raise CheckpointRejected("the checkpoint header is not JSON") from None
    _check_header(header, int(version))
    segments = _segment_entries(header)
    index = _decode_index(header, memoryview(data)[header_end + 1 : -_DIGEST])
    return _Decoded(
        log_size=header["log_size"],
        last_seq=header["last_seq"],
        last_hash=header["last_hash"],
        prefix_sha256=header["prefix_sha256"],
        index=index,
        segments=segments,
    )


def _check_header(header: Any, version: int) -> None:
    fields = _HEADER if version == 2 else _HEADER_V1
    if type(header) is not dict or header.keys() != fields.keys():
        raise CheckpointRejected("the checkpoint header does not have the expected fields")
    for name, kind in fields.items():
        value = header[name]
        if type(value) is not kind or (type(value) is int and value < 0):
            raise CheckpointRejected(f"the checkpoint's {name} is not a valid {kind.__name__}")
    if header["version"] != version:
        raise CheckpointRejected(f"unsupported checkpoint version {header['version']}")
    if header["byteorder"] != sys.byteorder:
        raise CheckpointRejected("the checkpoint was written on a machine of another byte order")
    for name in ("last_hash", "prefix_sha256"):
        if len(header[name]) != 64 or not _HEX.issuperset(header[name]):
            raise CheckpointRejected(f"the checkpoint's {name} is not a sha256")
    if header["records"] != header["last_seq"]:
        raise CheckpointRejected("the checkpoint does not cover a gapless chain")
    codes = header["codes"]
    if any(type(code) is not str for code in codes) or len(set(codes)) != len(codes):
        raise CheckpointRejected("the checkpoint's codes are not distinct strings")


def _segment_entries(header: dict[str, Any]) -> tuple[SegmentEntry, ...]:
    entries: list[SegmentEntry] = []
    for entry in header.get("segments", []):
        if (
            type(entry) is not list
            or len(entry) != 5
            or type(entry[0]) is not str
            or not all(type(value) is int and value >= 0 for value in entry[1:2] + entry[3:])
            or type(entry[2]) is not str
            or len(entry[2]) != 64
            or not _HEX.issuperset(entry[2])
        ):
            raise CheckpointRejected("the checkpoint's segment list is malformed")
        entries.append(SegmentEntry(entry[0], entry[1], entry[2], (entry[3], entry[4])))
    if sum(entry.size for entry in entries) > header["log_size"]:
        raise CheckpointRejected("the checkpoint's segments are longer than its prefix")
    return tuple(entries)


def _decode_index(header: dict[str, Any], body: memoryview) -> AuditIndex:
    count: int = header["records"]
    expected = [(name, values.typecode) for name, values in AuditIndex().arrays()]
    layout = header["arrays"]
    if (
        not all(
            type(entry) is list and len(entry) == 3 and type(entry[2]) is int for entry in layout
        )
        or [tuple(entry[:2]) for entry in layout] != expected
    ):
        raise CheckpointRejected("the checkpoint's index layout is not this version's")
    arrays: dict[str, array[int]] = {}
    at = 0
    for (name, typecode), (_, _, itemsize) in zip(expected, layout, strict=True):
        values: array[int] = array(typecode)
        if itemsize != values.itemsize:
            raise CheckpointRejected("the checkpoint was written with another integer size")
        end = at + count * itemsize
        if end > len(body):
            raise CheckpointRejected("the checkpoint is shorter than its header says")
        values.frombytes(body[at:end])
        arrays[name] = values
        at = end
    if len(body) - at != header["ids_bytes"]:
        raise CheckpointRejected("the checkpoint's length does not match its header")
    try:
        ids = json.loads(bytes(body[at:]).decode("utf-8"))
    except (ValueError, RecursionError):
        raise CheckpointRejected("the checkpoint's ids are not JSON") from None
    if (
        type(ids) is not list
        or len(ids) != count
        or not set(map(type, ids)) <= {str, type(None)}
        or "" in ids
    ):
        raise CheckpointRejected("the checkpoint's ids are not one per record")
    _check_positions(arrays, count, header["log_size"], len(header["codes"]))
    if count == 0 and header["last_hash"] != GENESIS_PREV:
        raise CheckpointRejected("the checkpoint of an empty log names a last hash")
    return AuditIndex.restore(arrays, ids, header["codes"])


def _check_positions(arrays: dict[str, array[int]], count: int, size: int, codes: int) -> None:
    """One record per line, back to back from byte 0 to ``size``, seqs 1..count."""
    lengths = arrays["lengths"]
    if arrays["seqs"] != array("q", range(1, count + 1)):
        raise CheckpointRejected("the checkpoint's seqs are not 1..n")
    if count and min(lengths) < 1:
        raise CheckpointRejected("the checkpoint holds an empty line")
    ends = array("q", itertools.accumulate(lengths, initial=0))
    if ends[:-1] != arrays["offsets"] or ends[-1] != size:
        raise CheckpointRejected("the checkpoint's offsets do not tile the prefix it covers")
    for name in ("types", "sessions"):
        if count and (min(arrays[name]) < 0 or max(arrays[name]) > codes):
            raise CheckpointRejected(f"the checkpoint's {name} name unknown codes")


def load(path: Path, segments: Segments) -> Trusted | None:
    """The checkpoint at ``path`` if it holds for the log's ``segments`` (read as one stream):
    ``None`` if there is none, :class:`CheckpointRejected` if it does not hold.

    Holding means: the file is intact, the log is at least ``log_size`` long, each rotated
    segment it lists is there with the same name and size and either the same identity or the
    same sha256 (re-hashed), the sha256 of the bytes after them up to ``log_size`` read from
    disk now is ``prefix_sha256``, and the record ending there is intact with the checkpoint's
    last seq and hash.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointRejected(f"the checkpoint cannot be read: {exc.strerror or exc}") from None
    found = decode(data)
    del data
    file_size = segments.size()
    if file_size < found.log_size:
        raise CheckpointRejected(
            f"the log is {file_size} bytes but the checkpoint covers {found.log_size}: "
            "it was truncated or replaced"
        )
    hashes = _check_segments(segments, found.segments)
    start = sum(entry.size for entry in found.segments)
    if _hash_span(segments, start, found.log_size, hashes) != found.prefix_sha256:
        raise CheckpointRejected(
            f"the log's first {found.log_size} bytes changed since the checkpoint was written"
        )
    index = found.index
    if len(index):
        line = segments.pread(index.lengths[-1], index.offsets[-1])
        try:
            value = check_line(line)
        except AuditCorruptError:
            value = None
        if (
            not line.endswith(b"\n")
            or value is None
            or (value["seq"], value["hash"]) != (found.last_seq, found.last_hash)
        ):
            raise CheckpointRejected("the checkpoint's last record is not the log's")
    resume = Resume(offset=found.log_size, last_seq=found.last_seq, last_hash=found.last_hash)
    return Trusted(resume=resume, index=index, hashes=hashes)


def _check_segments(segments: Segments, entries: tuple[SegmentEntry, ...]) -> SegmentHashes:
    """The listed rotated segments' hashes, once each is found unchanged on disk."""
    hashes = SegmentHashes()
    for position, entry in enumerate(entries):
        if position >= len(segments.rotated):
            raise CheckpointRejected(f"the log's segment {entry.name} is missing")
        segment = segments.items[position]
        size = segments.end_of(position) - segment.start
        if segment.path.name != entry.name or size != entry.size:
            raise CheckpointRejected(
                f"the log's segment {entry.name} was replaced, resized or renamed"
            )
        if segment.identity != entry.identity:  # copied, restored or touched: read it
            sha = _hash_span(segments, segment.start, segment.start + size, SegmentHashes())
            if sha != entry.sha256:
                raise CheckpointRejected(
                    f"the log's segment {entry.name} changed since the checkpoint was written"
                )
        hashes.done.append(entry.sha256)
    return hashes


def _hash_span(segments: Segments, start: int, end: int, hashes: SegmentHashes) -> str:
    """The sha256 of global bytes ``start``..``end``, streamed; the same bytes are also fed to
    ``hashes``, split at the segments' boundaries."""
    overall = hashlib.sha256()
    offset = start
    while offset < end:
        position = segments.position_of(offset)
        stop = end if position + 1 == len(segments.items) else min(end, segments.end_of(position))
        chunk = segments.pread(min(_READ_CHUNK, stop - offset), offset)
        if not chunk:
            raise CheckpointRejected("the log ended while its prefix was being hashed")
        hashes.finish_until(position)
        hashes.update(chunk)
        overall.update(chunk)
        offset += len(chunk)
    return overall.hexdigest()
