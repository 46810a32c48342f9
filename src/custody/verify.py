"""Verification: every check of a ledger and its evidence, as a structured result.

``verify_root`` re-derives everything from the ledger lines and the files on disk; it
never consults the index cache and never prints. It collects every finding rather than
stopping at the first, because a lawyer needs the whole picture. Each finding names
its class (``Code``), the item, and what was expected against what was found; each
check says what it covered. ``VerificationResult.ok`` is true only if checks ran and no
finding is an error: "nothing checked" is never a pass.

Ledger checks, line by line: complete line (TRUNCATED_RECORD), strict canonical parse
(RECORD_MALFORMED), sequence numbers (RECORD_MISSING, RECORDS_REORDERED,
RECORD_DUPLICATED), hash chain (CHAIN_BROKEN, or RECORD_ALTERED when the following
record is authentic and commits to other bytes), signature against a key introduced
earlier in the ledger (UNKNOWN_KEY, BAD_SIGNATURE), checkpoint roots against the
recomputed RFC 9162 tree (CHECKPOINT_MISMATCH) and consistency between successive
checkpoints; and, given a checkpoint obtained earlier, that today's ledger extends it
(NOT_APPEND_ONLY).

File checks, for the latest record of every catalogued path: present, same size, same
digests (FILE_MISSING, FILE_MODIFIED, FILE_UNREADABLE); files nobody catalogued
(FILE_UNEXPECTED); and a missing file found elsewhere by digest (FILE_MOVED).
"""

from __future__ import annotations

import os
import stat
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from custody import merkle
from custody.errors import CustodyError, LedgerError, RecordError
from custody.hashing import EvidenceReadError, FileChangedError, hash_file
from custody.keys import PublicKey
from custody.records import (
    CheckpointBody,
    ItemBody,
    KeyBody,
    SignedRecord,
    TimestampBody,
    b64encode,
    line_hash,
)
from custody.root import STATE_DIR, EvidenceRoot


class Code(StrEnum):
    TRUNCATED_RECORD = "TRUNCATED_RECORD"
    RECORD_MALFORMED = "RECORD_MALFORMED"
    RECORD_MISSING = "RECORD_MISSING"
    RECORDS_REORDERED = "RECORDS_REORDERED"
    RECORD_DUPLICATED = "RECORD_DUPLICATED"
    RECORD_ALTERED = "RECORD_ALTERED"
    CHAIN_BROKEN = "CHAIN_BROKEN"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    CHECKPOINT_MISMATCH = "CHECKPOINT_MISMATCH"
    NOT_APPEND_ONLY = "NOT_APPEND_ONLY"
    FILE_MISSING = "FILE_MISSING"
    FILE_MODIFIED = "FILE_MODIFIED"
    FILE_MOVED = "FILE_MOVED"
    FILE_UNEXPECTED = "FILE_UNEXPECTED"
    FILE_UNREADABLE = "FILE_UNREADABLE"
    NO_CHECKPOINT = "NO_CHECKPOINT"
    TIMESTAMP_INVALID = "TIMESTAMP_INVALID"
    TIMESTAMP_UNTRUSTED = "TIMESTAMP_UNTRUSTED"
    TIMESTAMP_MISMATCH = "TIMESTAMP_MISMATCH"
    TIMESTAMP_PENDING = "TIMESTAMP_PENDING"
    CAPTURE_AFTER_TIMESTAMP = "CAPTURE_AFTER_TIMESTAMP"
    CATALOGUED_AFTER_TIMESTAMP = "CATALOGUED_AFTER_TIMESTAMP"
    CATALOGUE_TIME_FAR = "CATALOGUE_TIME_FAR"


# Findings that describe a state worth knowing but not a failure of integrity. A pending
# timestamp becomes an error only when the verifier asks (--require-timestamps).
WARNINGS = frozenset(
    {
        Code.NO_CHECKPOINT,
        Code.TIMESTAMP_PENDING,
        Code.CAPTURE_AFTER_TIMESTAMP,
        Code.CATALOGUED_AFTER_TIMESTAMP,
        Code.CATALOGUE_TIME_FAR,
    }
)


@dataclass(frozen=True)
class Finding:
    code: Code
    item: str
    message: str
    seq: int | None = None
    expected: str | None = None
    found: str | None = None
    required: bool = False  # a warning class the verifier chose to treat as an error
    warning: bool = False  # an error class that, here, only limits what could be checked

    @property
    def severity(self) -> str:
        if self.warning:
            return "warning"
        return "warning" if self.code in WARNINGS and not self.required else "error"

    def to_json(self) -> dict[str, Any]:
        return {
            "code": str(self.code),
            "severity": self.severity,
            "item": self.item,
            "seq": self.seq,
            "message": self.message,
            "expected": self.expected,
            "found": self.found,
        }


@dataclass(frozen=True)
class Check:
    """One named check, what it covered and whether it passed."""

    name: str
    passed: bool
    covered: int
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "covered": self.covered,
            "detail": self.detail,
        }


@dataclass
class VerificationResult:
    root: str
    checks: list[Check] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    ledger_size: int = 0
    tree_root: str | None = None
    files_checked: int = 0
    bytes_hashed: int = 0
    timestamps: list[dict[str, Any]] = field(default_factory=list)
    clock: list[dict[str, Any]] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and not self.errors

    def add_check(self, name: str, findings: Sequence[Finding], covered: int, detail: str) -> None:
        self.findings.extend(findings)
        self.checks.append(
            Check(name, not [f for f in findings if f.severity == "error"], covered, detail)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "verified": self.ok,
            "ledger_size": self.ledger_size,
            "tree_root": self.tree_root,
            "files_checked": self.files_checked,
            "bytes_hashed": self.bytes_hashed,
            "checks": [c.to_json() for c in self.checks],
            "findings": [f.to_json() for f in self.findings],
            "timestamps": self.timestamps,
            "clock": self.clock,
        }


class VerifyObserver:
    """Progress for the expensive half; the CLI passes a rich implementation."""

    def planned(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def finished_file(self, path: str) -> None:
        pass


@dataclass(frozen=True)
class TrustedCheckpoint:
    """A tree size and root the verifier obtained independently of this ledger."""

    tree_size: int
    root: bytes
    source: str
    line: bytes | None = None  # the signed checkpoint record, when the verifier holds one


# --- the ledger -----------------------------------------------------------------------------


@dataclass
class LedgerState:
    """What a ledger pass learns, for the file checks and for callers such as bundles."""

    items: dict[bytes, ItemBody] = field(default_factory=dict)  # latest record per path
    item_seq: dict[bytes, int] = field(default_factory=dict)
    item_time: dict[bytes, str] = field(default_factory=dict)
    kinds: bytearray = field(default_factory=bytearray)  # one letter per record, "?" unread
    checkpoint_lines: dict[int, bytes] = field(default_factory=dict)
    timestamps: list[tuple[int, TimestampBody]] = field(default_factory=list)
    keys: dict[str, tuple[int, PublicKey]] = field(default_factory=dict)
    checkpoints: list[tuple[int, CheckpointBody]] = field(default_factory=list)
    tree: merkle.MemoryTree = field(default_factory=merkle.MemoryTree)
    records: int = 0


LineSource = Callable[[], Iterable[tuple[bytes, bool]]]


def _prescan_keys(lines: Iterable[tuple[bytes, bool]]) -> dict[str, tuple[int, KeyBody]]:
    """Every key record in the ledger, by fingerprint (position of first introduction).

    A separate streaming pass, so that the main pass can check any record's signature the
    moment it reads it without holding the ledger in memory.
    """
    found: dict[str, tuple[int, KeyBody]] = {}
    for position, (data, complete) in enumerate(lines):
        if not complete or b'"type":"key"' not in data:
            continue
        try:
            body = SignedRecord.parse(data).record.typed_body()
        except RecordError:
            continue
        if isinstance(body, KeyBody) and body.fingerprint not in found:
            found[body.fingerprint] = (position, body)
    return found


@dataclass
class _ChainCursor:
    """The little the chain check needs to remember about the previous line."""

    hash: str | None = None
    parsed: bool = False
    seq: int | None = None  # the sequence number the previous line claims, once parsed


def verify_ledger_lines(
    lines: LineSource,
    result: VerificationResult,
    *,
    collect_items: bool = True,
    trusted: TrustedCheckpoint | None = None,
) -> LedgerState:
    """Check a ledger's lines; ``lines()`` yields (bytes without newline, complete) afresh.

    Two streaming passes (keys, then everything), so memory grows with the number of
    records only by the Merkle tree (64 bytes a record) and the sequence numbers.
    """
    candidates = _prescan_keys(lines())
    state = LedgerState()
    structure: list[Finding] = []
    signatures: list[Finding] = []
    chain: list[Finding] = []
    checkpoint_findings: list[Finding] = []
    seqs = array("q")
    cursor = _ChainCursor()
    signed_count = 0
    checkpoint_records = 0

    for position, (data, complete) in enumerate(lines()):
        state.tree.append(data)
        this_hash = line_hash(data)
        previous, cursor = cursor, _ChainCursor(this_hash, False)
        where = f"record {position}"
        if not complete:
            state.kinds.append(ord("?"))
            structure.append(
                Finding(
                    Code.TRUNCATED_RECORD,
                    where,
                    "the ledger ends with an incomplete line (a write was cut off); "
                    "'custody repair' removes it",
                    position,
                    "a complete line ending in a newline",
                    f"{len(data)} bytes without a newline",
                )
            )
            seqs.append(-1)
            continue
        try:
            signed = SignedRecord.parse(data)
            record = signed.record
            body = record.typed_body() if record.type in _TYPED else None
            if not data.startswith(b'{"sig":"' + b64encode(signed.signature).encode() + b'"'):
                # Non-zero padding bits (RFC 4648 §3.5) decode to the same signature: the
                # line's bytes could change unnoticed where no later record chains to them.
                raise RecordError("the signature is not in canonical base64")
        except RecordError as exc:
            structure.append(Finding(Code.RECORD_MALFORMED, where, str(exc), position))
            seqs.append(-1)
            state.kinds.append(ord("?"))
            continue
        state.kinds.append(ord(record.type[0]))
        cursor.parsed = True
        cursor.seq = record.seq
        seqs.append(record.seq)
        ok = False
        candidate = candidates.get(record.signer)
        if candidate is None or candidate[0] > position:
            signatures.append(
                Finding(
                    Code.UNKNOWN_KEY,
                    where,
                    "signed by a key that the ledger has not introduced before this record",
                    position,
                    "a key introduced earlier in the ledger",
                    record.signer,
                )
            )
        else:
            intro = candidate[1]
            public = PublicKey(intro.public_key, intro.name, intro.role)
            signed_count += 1
            ok = public.verify(signed.signature, signed.signed_bytes)
            if ok:
                state.keys.setdefault(record.signer, (candidate[0], public))
            else:
                signatures.append(
                    Finding(
                        Code.BAD_SIGNATURE,
                        where,
                        f"the signature does not verify with key {public.name!r}",
                        position,
                        "a valid Ed25519 signature",
                        "an invalid signature",
                    )
                )
        chain.extend(_chain_link(position, record.seq, record.prev, previous, ok))
        if isinstance(body, ItemBody) and collect_items:
            state.items[body.name_bytes] = body
            state.item_seq[body.name_bytes] = record.seq
            state.item_time[body.name_bytes] = record.time
        elif isinstance(body, CheckpointBody):
            checkpoint_records += 1
            checkpoint_findings.extend(_check_checkpoint(state, position, body))
            state.checkpoint_lines[position] = data
        elif isinstance(body, TimestampBody):
            state.timestamps.append((position, body))

    state.records = len(seqs)
    structure.extend(_sequence_findings(seqs))
    checkpoint_findings.extend(_consistency_between_checkpoints(state))
    if not checkpoint_records and state.records:
        # (A checkpoint that does not match is reported as such, not as "none signed".)
        checkpoint_findings.append(
            Finding(
                Code.NO_CHECKPOINT,
                "ledger",
                "no checkpoint has been signed yet: run 'custody sign'",
            )
        )
    result.ledger_size = state.records
    result.tree_root = merkle.root_hash(state.tree).hex()
    result.add_check(
        "record structure",
        structure,
        state.records,
        f"{state.records} lines parsed as canonical, well-formed records in sequence",
    )
    result.add_check(
        "hash chain", chain, state.records, "each record names the SHA-256 of the line before it"
    )
    result.add_check(
        "signatures",
        signatures,
        signed_count,
        f"{signed_count} Ed25519 signatures checked against {len(state.keys)} introduced keys",
    )
    result.add_check(
        "checkpoints",
        checkpoint_findings,
        len(state.checkpoints),
        f"{len(state.checkpoints)} checkpoint roots recomputed (RFC 9162) and chained by "
        "consistency proofs",
    )
    if trusted is not None:
        result.add_check(
            "held checkpoint",
            _check_trusted(state, trusted),
            1,
            f"today's ledger extends the checkpoint of {trusted.tree_size} records "
            f"from {trusted.source}",
        )
    return state


_TYPED = frozenset({"key", "item", "checkpoint", "timestamp", "repair"})


def _chain_link(
    position: int, seq: int, prev: str | None, before: _ChainCursor, authentic: bool
) -> list[Finding]:
    if prev == before.hash:
        return []
    if position > 0 and authentic and before.parsed and before.seq == seq - 1:
        # This record is authentic and commits to other bytes than its predecessor (by
        # sequence number) holds: that one changed. When the line before is not its
        # predecessor (records removed, inserted or reordered), blame nobody: the chain
        # is broken here and the sequence check names what is missing or out of order.
        return [
            Finding(
                Code.RECORD_ALTERED,
                f"record {position - 1}",
                f"record {position} (validly signed) chains to other bytes than this record "
                "holds: it was changed after it was written",
                position - 1,
                prev,
                before.hash,
            )
        ]
    return [
        Finding(
            Code.CHAIN_BROKEN,
            f"record {position}",
            "the previous-line hash does not match the line before it",
            position,
            before.hash,
            prev,
        )
    ]


def _check_checkpoint(state: LedgerState, position: int, body: CheckpointBody) -> list[Finding]:
    where = f"record {position}"
    if body.tree_size > position:
        return [
            Finding(
                Code.CHECKPOINT_MISMATCH,
                where,
                "checkpoint claims records that come after it",
                position,
                f"tree size <= {position}",
                str(body.tree_size),
            )
        ]
    actual = merkle.root_hash(state.tree, body.tree_size).hex()
    if actual != body.root:
        return [
            Finding(
                Code.CHECKPOINT_MISMATCH,
                where,
                f"the root of the first {body.tree_size} records is not the one signed here: "
                "records it covers were changed, removed or reordered",
                position,
                body.root,
                actual,
            )
        ]
    state.checkpoints.append((position, body))
    return []


def _consistency_between_checkpoints(state: LedgerState) -> list[Finding]:
    """Prove each matching checkpoint an append-only extension of the one before it."""
    findings: list[Finding] = []
    previous: CheckpointBody | None = None
    for position, body in state.checkpoints:
        if previous is not None and previous.tree_size <= body.tree_size:
            proof = merkle.consistency_proof(state.tree, previous.tree_size, body.tree_size)
            try:
                merkle.verify_consistency(
                    previous.tree_size,
                    body.tree_size,
                    bytes.fromhex(previous.root),
                    bytes.fromhex(body.root),
                    proof,
                )
            except merkle.MerkleProofError as exc:
                findings.append(
                    Finding(Code.NOT_APPEND_ONLY, f"record {position}", str(exc), position)
                )
        previous = body
    return findings


def _check_trusted(state: LedgerState, trusted: TrustedCheckpoint) -> list[Finding]:
    where = f"held checkpoint ({trusted.source})"
    if trusted.tree_size > state.tree.size:
        return [
            Finding(
                Code.NOT_APPEND_ONLY,
                where,
                "the ledger is shorter than the checkpoint you hold: records were removed "
                "or the ledger was rolled back",
                None,
                f"at least {trusted.tree_size} records",
                f"{state.tree.size} records",
            )
        ]
    actual = merkle.root_hash(state.tree, trusted.tree_size)
    if actual != trusted.root:
        return [
            Finding(
                Code.NOT_APPEND_ONLY,
                where,
                f"the first {trusted.tree_size} records are not the ones your checkpoint "
                "covers: the ledger was rewritten",
                None,
                trusted.root.hex(),
                actual.hex(),
            )
        ]
    if trusted.line is not None:
        # The checkpoint you hold was itself a record of this ledger; a ledger rolled back
        # to just before it was signed still has the records it covers, but not the record.
        try:
            position = SignedRecord.parse(trusted.line).seq
        except RecordError:
            return []
        if position >= state.tree.size or state.tree.node(0, position) != merkle.leaf_hash(
            trusted.line
        ):
            return [
                Finding(
                    Code.NOT_APPEND_ONLY,
                    where,
                    f"the checkpoint you hold was record {position} of this ledger and is not "
                    "there any more: the ledger was rolled back or rewritten after it was signed",
                    None,
                    f"record {position}: the checkpoint you hold",
                    f"{state.tree.size} records"
                    if position >= state.tree.size
                    else f"another record {position}",
                )
            ]
    return []


def _sequence_findings(seqs: Sequence[int]) -> list[Finding]:
    """Gaps, duplicates and order of sequence numbers (-1 marks an unreadable line)."""
    findings: list[Finding] = []
    seen: dict[int, int] = {}
    highest = -1
    for position, seq in enumerate(seqs):
        if seq < 0:
            continue
        if seq in seen:
            findings.append(
                Finding(
                    Code.RECORD_DUPLICATED,
                    f"record {seq}",
                    f"sequence number {seq} appears again at line {position + 1}",
                    seq,
                    f"line {seen[seq] + 1} only",
                    f"also line {position + 1}",
                )
            )
            continue
        seen[seq] = position
        if seq < highest:
            findings.append(
                Finding(
                    Code.RECORDS_REORDERED,
                    f"record {seq}",
                    f"record {seq} appears after record {highest}",
                    seq,
                    f"line {seq + 1}",
                    f"line {position + 1}",
                )
            )
        highest = max(highest, seq)
    # Lines that failed to parse may still hold their record; report only gaps beyond them.
    unparsed = sum(1 for s in seqs if s < 0)
    # Gaps as ranges: one forged sequence number near 2**53 must not make verify enumerate
    # (or report) every number below it.
    gaps: list[tuple[int, int]] = []
    following = 0
    for seq in sorted(seen):
        if seq > following:
            gaps.append((following, seq))
        following = seq + 1
    if sum(end - start for start, end in gaps) > unparsed:
        for start, end in gaps:
            if end - start > _LISTED_GAP:
                findings.append(
                    Finding(
                        Code.RECORD_MISSING,
                        f"records {start}-{end - 1}",
                        f"{end - start} records ({start} to {end - 1}) are not in the ledger",
                        start,
                        f"records {start}-{end - 1}",
                        "nothing",
                    )
                )
                continue
            for seq in range(start, end):
                findings.append(
                    Finding(
                        Code.RECORD_MISSING,
                        f"record {seq}",
                        f"record {seq} is not in the ledger",
                        seq,
                        f"record {seq}",
                        "nothing",
                    )
                )
    return findings


_LISTED_GAP = 1000  # longer runs of missing records are reported as one range


# --- the files ------------------------------------------------------------------------------


def verify_files(
    root: EvidenceRoot,
    state: LedgerState,
    result: VerificationResult,
    *,
    observer: VerifyObserver | None = None,
    workers: int = 2,
) -> None:
    """Compare the latest record of every catalogued path with the file on disk."""
    observer = observer or VerifyObserver()
    root_b = os.fsencode(root.path)
    on_disk = dict(_walk_files(root_b))
    findings: list[Finding] = []
    expected = state.items
    total = sum(body.size for path, body in expected.items() if path in on_disk)
    observer.planned(len(expected), total)

    def check(path: bytes) -> tuple[bytes, list[Finding], int]:
        body = expected[path]
        display = body.path
        seq = state.item_seq[path]
        kind = on_disk.get(path)
        if kind is None:
            return path, [], 0  # decided below, once moved files are known
        if kind != "file":
            return (
                path,
                [
                    Finding(
                        Code.FILE_MODIFIED,
                        display,
                        f"replaced by a {kind}",
                        seq,
                        "regular file",
                        kind,
                    )
                ],
                0,
            )
        size = os.lstat(root_b + b"/" + path).st_size
        if size != body.size:
            return (
                path,
                [
                    Finding(
                        Code.FILE_MODIFIED,
                        display,
                        "size differs from the record",
                        seq,
                        f"{body.size} bytes",
                        f"{size} bytes",
                    )
                ],
                0,
            )
        try:
            digest = hash_file(root_b + b"/" + path, tuple(body.digests), progress=observer.advance)
        except FileChangedError as exc:
            return path, [Finding(Code.FILE_UNREADABLE, display, exc.reason, seq)], 0
        except EvidenceReadError as exc:
            return (
                path,
                [Finding(Code.FILE_UNREADABLE, display, f"could not be read: {exc.reason}", seq)],
                0,
            )
        observer.finished_file(display)
        for algorithm, value in body.digests.items():
            if digest.digests[algorithm] != value:
                return (
                    path,
                    [
                        Finding(
                            Code.FILE_MODIFIED,
                            display,
                            f"{algorithm} digest differs from the record",
                            seq,
                            value,
                            digest.digests[algorithm],
                        )
                    ],
                    digest.size,
                )
        return path, [], digest.size

    absent: list[bytes] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for path, found, hashed in pool.map(check, list(expected)):
            findings.extend(found)
            result.bytes_hashed += hashed
            if path not in on_disk:
                absent.append(path)
    result.files_checked = len(expected)

    unexpected = [p for p, kind in on_disk.items() if p not in expected]
    moved_to = _locate_by_digest(root_b, unexpected, {expected[p].sha256 for p in absent})
    claimed: set[bytes] = set()
    for path in absent:
        body = expected[path]
        new_path = next((p for p in moved_to.get(body.sha256, []) if p not in claimed), None)
        if new_path is not None:
            claimed.add(new_path)
            findings.append(
                Finding(
                    Code.FILE_MOVED,
                    body.path,
                    "not at its recorded path; the same content is elsewhere",
                    state.item_seq[path],
                    body.path,
                    new_path.decode("utf-8", "replace"),
                )
            )
        else:
            findings.append(
                Finding(
                    Code.FILE_MISSING,
                    body.path,
                    "not found",
                    state.item_seq[path],
                    body.sha256,
                    "nothing",
                )
            )
    for path in unexpected:
        if path not in claimed:
            findings.append(
                Finding(
                    Code.FILE_UNEXPECTED,
                    path.decode("utf-8", "replace"),
                    "present in the evidence root but never catalogued",
                    None,
                    "nothing",
                    on_disk[path],
                )
            )
    result.add_check(
        "files",
        findings,
        len(expected),
        f"{len(expected)} catalogued files re-hashed and compared; {len(on_disk)} entries on disk",
    )


def _walk_files(root_b: bytes) -> Iterator[tuple[bytes, str]]:
    """Every non-directory entry under the root (outside .custody): (relative path, kind)."""
    stack = [b""]
    while stack:
        rel = stack.pop()
        full = root_b + b"/" + rel if rel else root_b
        try:
            entries = list(os.scandir(full))
        except OSError:
            continue
        for entry in entries:
            name = os.fsencode(entry.name)
            child = rel + b"/" + name if rel else name
            if not rel and name == STATE_DIR.encode():
                continue
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if stat.S_ISDIR(mode):
                stack.append(child)
            elif stat.S_ISREG(mode):
                yield child, "file"
            elif stat.S_ISLNK(mode):
                yield child, "symbolic link"
            else:
                yield child, "special file"


def _locate_by_digest(
    root_b: bytes, paths: Iterable[bytes], wanted: set[str]
) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    if not wanted:
        return found
    for path in paths:
        try:
            digest = hash_file(root_b + b"/" + path, ("sha256",))
        except EvidenceReadError:
            continue
        if digest.digests["sha256"] in wanted:
            found.setdefault(digest.digests["sha256"], []).append(path)
    return found


# --- entry points ---------------------------------------------------------------------------


def read_ledger_lines(path: os.PathLike[str] | str) -> Iterator[tuple[bytes, bool]]:
    from custody.ledger import iter_raw_lines

    for raw in iter_raw_lines(path):
        yield raw.data, raw.complete


def verify_root(
    root: EvidenceRoot,
    *,
    ledger: bool = True,
    files: bool = True,
    trusted: TrustedCheckpoint | None = None,
    observer: VerifyObserver | None = None,
    tsa_trust: Any = None,
    require_timestamps: bool = False,
) -> VerificationResult:
    """Verify an evidence root. Raises ``LedgerError`` only when there is nothing to verify."""
    result = VerificationResult(root=str(root.path))
    if not root.ledger_path.is_file():
        raise LedgerError(f"{root.ledger_path} is missing: nothing to verify")
    if root.ledger_path.stat().st_size == 0:
        # "Nothing checked" is never a pass, whether the ledger is new or was emptied.
        raise LedgerError(f"{root.ledger_path} is empty: no record to verify")
    state = verify_ledger_lines(
        lambda: read_ledger_lines(root.ledger_path), result, collect_items=files, trusted=trusted
    )
    if not ledger:
        # The ledger was still read (the files' expected state comes from it), but its
        # checks are not part of what the user asked to see.
        result.checks.clear()
        result.findings.clear()
    else:
        verify_timestamps(
            root.state,
            state,
            result,
            trust=tsa_trust,
            require=require_timestamps,
            clock=files,
        )
    if files:
        verify_files(root, state, result, observer=observer)
    return result


def verify_timestamps(
    state_dir: Any,
    state: LedgerState,
    result: VerificationResult,
    *,
    trust: Any = None,
    require: bool = False,
    clock: bool = True,
) -> None:
    """Check every token, coverage by trusted time, and (with ``clock``) each item's clocks."""
    from custody.stamping import Trust, reconcile, review_tokens

    review = review_tokens(state_dir, state.timestamps, state.checkpoint_lines, trust or Trust())
    findings = [
        Finding(Code(code), item, message, seq, expected, found)
        for code, item, message, seq, expected, found in review.findings
    ]
    stamped = {t.checkpoint for t in review.valid}
    covered = max((t.tree_size for t in review.valid), default=0)
    uncovered = [
        p
        for p in range(covered, len(state.kinds))
        if state.kinds[p] != ord("t") and p not in stamped
    ]
    if uncovered:
        findings.append(
            Finding(
                Code.TIMESTAMP_PENDING,
                f"record {uncovered[0]}"
                if len(uncovered) == 1
                else f"records {uncovered[0]}-{uncovered[-1]}",
                f"{len(uncovered)} record(s) not yet covered by a trusted timestamp: "
                "run 'custody timestamp'",
                uncovered[0],
                "a trusted timestamp",
                "none yet",
                required=require,
            )
        )
    trust = (
        "the TSA roots you supplied"
        if review.trust == "roots"
        else "only the certificates stored with each token (weaker: supply --tsa-root)"
    )
    if review.unanchored:
        findings.append(
            Finding(
                Code.TIMESTAMP_UNTRUSTED,
                "timestamps",
                f"{review.unanchored} token(s) carry no root certificate to anchor their chain; "
                "supply the TSA's root with --tsa-root to establish trust",
                None,
                "a chain to a trusted root",
                "no anchor",
                warning=True,
            )
        )
    result.add_check(
        "timestamps",
        findings,
        review.checked,
        f"{len(review.valid)} of {review.checked} RFC 3161 tokens valid, checked against {trust}",
    )
    result.timestamps = [
        {
            "record": t.record,
            "checkpoint": t.checkpoint,
            "tree_size": t.tree_size,
            "gen_time": t.gen_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tsa": t.tsa,
            "trust": review.trust,
        }
        for t in review.valid
    ]
    if not clock:
        return
    clock_findings: list[Finding] = []
    for path, body in state.items.items():
        row = reconcile(
            state.item_seq[path], body.path, body.capture_time, state.item_time[path], review.valid
        )
        result.clock.append(row.to_json())
        for flag in row.flags:
            clock_findings.append(
                Finding(
                    Code(flag),
                    body.path,
                    _CLOCK_MESSAGES[flag],
                    row.seq,
                    row.earliest_timestamp,
                    row.capture_time if flag.startswith("CAPTURE") else row.catalogued,
                )
            )
    result.add_check(
        "clocks",
        clock_findings,
        len(state.items),
        "claimed capture time, catalogue time and earliest trusted time compared per item",
    )


_CLOCK_MESSAGES = {
    "CAPTURE_AFTER_TIMESTAMP": "the capture time the file claims is later than a trusted "
    "timestamp proving the file already existed: the device clock or the metadata is wrong",
    "CATALOGUED_AFTER_TIMESTAMP": "the catalogue time is later than the trusted timestamp "
    "covering the record: the cataloguing computer's clock was ahead",
    "CATALOGUE_TIME_FAR": "the catalogue time is more than 7 days from every trusted "
    "timestamp: check the cataloguing computer's clock",
}


def trusted_checkpoint_from_line(data: bytes, source: str) -> TrustedCheckpoint:
    """A held checkpoint from a checkpoint record line (as written by ``custody sign --out``)."""
    try:
        signed = SignedRecord.parse(data.strip())
        body = signed.record.typed_body()
    except RecordError as exc:
        raise CustodyError(f"{source} is not a checkpoint record: {exc}") from None
    if not isinstance(body, CheckpointBody):
        raise CustodyError(f"{source} holds a {signed.record.type} record, not a checkpoint")
    return TrustedCheckpoint(body.tree_size, bytes.fromhex(body.root), source, signed.line)


def exit_code_for(result: VerificationResult) -> int:
    from custody.errors import ExitCode

    return ExitCode.OK if result.ok else ExitCode.FINDINGS
