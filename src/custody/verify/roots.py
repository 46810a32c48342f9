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
(FILE_UNEXPECTED); and a missing file found elsewhere by digest (FILE_MOVED). Then, for
items that carry what their source says of them, the checks of the source's own proofs
that can be re-run offline (``custody.verify.provenance``: SOURCE_CHECK_FAILED,
SOURCE_CHECK_CHANGED).

Web captures, with the files: every capture folder an authentic ``capture`` event names is
re-checked by ``acquisition.capture.check_capture`` against the capture record as it was
signed - the folder's listing (CAPTURE_FOLDER_CHANGED), the WACZ's manifest and every WARC
record's own digests, and the media's links into the WARC (CAPTURE_ARCHIVE_INVALID). What
the files check already reports for a path is not reported twice.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from custody.clock import format_time
from custody.errors import CustodyError, LedgerError, RecordError
from custody.evidence.hashing import (
    EvidenceReadError,
    FileChangedError,
    available_cores,
    blake3_file,
    hash_file,
)
from custody.findings import WARNINGS, Check, Code, Finding, VerificationResult
from custody.i18n import N_, _, ngettext
from custody.ledger.bodies import CheckpointBody
from custody.ledger.checks import (
    SELF_DATED_KINDS,
    LedgerState,
    TrustedCheckpoint,
    check_held,
    verify_ledger_lines,
)
from custody.ledger.linefacts import LineSource
from custody.ledger.records import SignedRecord
from custody.progress import NullObserver, Observer
from custody.root import STATE_DIR, EvidenceRoot
from custody.trust.policy import TrustPolicy
from custody.trust.signers import judge_signers

__all__ = [
    "WARNINGS",
    "Check",
    "Code",
    "Finding",
    "LedgerState",
    "LineSource",
    "TrustedCheckpoint",
    "VerificationResult",
    "verify_ledger_lines",
]


# What the payload manifest is called where a file differs from it (bundle_check).
PAYLOAD_MANIFEST = N_("the payload manifest")

# Said instead of "0 of 0 tokens valid": nothing was checked, and what that leaves unproven.
# English here (other modules adapt it); shown through _().
NO_TOKENS = N_(
    "no RFC 3161 timestamp token to check: nothing independent proves when these records "
    "existed, only the times their signers wrote in them ('custody timestamp' gets tokens)"
)


# --- the files ------------------------------------------------------------------------------


def digests_differ(
    item: str,
    seq: int | None,
    recorded: dict[str, str] | Any,
    actual: dict[str, str] | Any,
    differ: list[str],
    against: str = N_("the record"),
) -> Finding:
    """FILE_MODIFIED for one file: every differing digest, as ``algorithm:hex`` pairs.

    ``against``: what the file was compared with, in words ("the record", "the payload
    manifest"); said in the run's language where the catalog has it."""
    return Finding(
        Code.FILE_MODIFIED,
        item,
        ngettext(
            "content differs from {against}: {algorithms} digest differs",
            "content differs from {against}: {algorithms} digests differ",
            len(differ),
        ).format(against=_(against), algorithms=", ".join(differ)),
        seq,
        " ".join(f"{a}:{recorded[a]}" for a in differ),
        " ".join(f"{a}:{actual[a]}" for a in differ),
    )


def verify_files(
    root: EvidenceRoot,
    state: LedgerState,
    result: VerificationResult,
    *,
    observer: Observer | None = None,
    workers: int | None = None,
    fast: bool = False,
) -> None:
    """Compare the latest record of every catalogued path with the file on disk.

    ``workers`` files are hashed at once (default: every core). With ``fast`` (the routine
    fixity check, ``custody verify --fast``) each file is re-hashed with BLAKE3 alone, a
    large one on every core (``blake3_file``), or with SHA-256 where no BLAKE3 was recorded.
    """
    observer = observer or NullObserver()
    root_b = os.fsencode(root.path)
    on_disk = dict(_walk_files(root_b))
    findings: list[Finding] = []
    # A disposed item (returned or destroyed, by a custodian's signed event) is no longer
    # expected on disk, and a copy still there is not "unexpected" either.
    disposed = {p for p in state.items if state.item_seq[p] in state.disposed}
    expected = {p: b for p, b in state.items.items() if p not in disposed}
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
                        (
                            _("replaced by a symbolic link")
                            if kind == "symbolic link"
                            else _("replaced by a special file")
                        ),
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
                        _("size differs from the record"),
                        seq,
                        f"{body.size} bytes",
                        f"{size} bytes",
                    )
                ],
                0,
            )
        try:
            if fast and "blake3" in body.digests:
                digest = blake3_file(root_b + b"/" + path)
                observer.advance(digest.size)
            else:
                algorithms = ("sha256",) if fast else tuple(body.digests)
                digest = hash_file(root_b + b"/" + path, algorithms, progress=observer.advance)
        except FileChangedError as exc:
            return path, [Finding(Code.FILE_UNREADABLE, display, exc.reason, seq)], 0
        except EvidenceReadError as exc:
            return (
                path,
                [
                    Finding(
                        Code.FILE_UNREADABLE,
                        display,
                        _("could not be read: {why}").format(why=exc.reason),
                        seq,
                    )
                ],
                0,
            )
        observer.finished_file(display)
        differ = [
            a for a, value in body.digests.items()
            if a in digest.digests and digest.digests[a] != value
        ]  # fmt: skip
        if differ:
            # One changed file is one finding, naming every digest that differs.
            return path, [digests_differ(display, seq, body.digests, digest.digests, differ)], (
                digest.size
            )
        return path, [], digest.size

    absent: list[bytes] = []
    present: set[str] = set()  # content found intact in the root, by SHA-256
    with ThreadPoolExecutor(max_workers=max(1, workers or available_cores())) as pool:
        for path, found, hashed in pool.map(check, list(expected)):
            findings.extend(found)
            result.bytes_hashed += hashed
            if path not in on_disk:
                absent.append(path)
            elif not found:
                present.add(expected[path].sha256)
    result.files_checked = len(expected)

    # Earlier versions whose bytes nobody accounted for (no authorised disposal or
    # supersede event) must still be somewhere in the root.
    originals = {
        seq: body
        for seq, body in state.replaced.items()
        if seq not in state.accounted and body.sha256 not in present
    }
    unexpected = [p for p in on_disk if p not in expected and p not in disposed]
    wanted = {expected[p].sha256 for p in absent} | {b.sha256 for b in originals.values()}
    moved_to = _locate_by_digest(root_b, unexpected, wanted)
    for seq, body in sorted(originals.items()):
        if body.sha256 in moved_to:
            continue
        findings.append(
            Finding(
                Code.ORIGINAL_MISSING,
                body.path,
                _(
                    "the bytes acquired as record {seq} are no longer in the evidence root: "
                    "a later version replaced them and no authorised event says why. Restore "
                    "them from a vault copy ('custody vault restore'), or record what "
                    "happened ('custody event supersede' or 'dispose' with a reason)"
                ).format(seq=seq),
                seq,
                body.sha256,
                "nothing with that SHA-256",
            )
        )
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
                    _("not at its recorded path; the same content is elsewhere"),
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
                    _("not found"),
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
                    _("present in the evidence root but never catalogued"),
                    None,
                    "nothing",
                    on_disk[path],
                )
            )
    if fast:
        blake3_count = sum(1 for p in expected if "blake3" in expected[p].digests)
        if blake3_count < len(expected):
            detail = _(
                "FAST FIXITY CHECK, not a full verification: {blake3} catalogued files "
                "re-hashed with BLAKE3 alone and {sha256} with SHA-256 (no BLAKE3 recorded); "
                "{entries} entries on disk"
            ).format(blake3=blake3_count, sha256=len(expected) - blake3_count, entries=len(on_disk))
        else:
            detail = _(
                "FAST FIXITY CHECK, not a full verification: {blake3} catalogued files "
                "re-hashed with BLAKE3 alone; {entries} entries on disk"
            ).format(blake3=blake3_count, entries=len(on_disk))
    else:
        detail = ngettext(
            "{n} catalogued files re-hashed and compared; {entries} entries on disk",
            "{n} catalogued files re-hashed and compared; {entries} entries on disk",
            len(expected),
        ).format(n=len(expected), entries=len(on_disk))
    result.add_check("fast fixity" if fast else "files", findings, len(expected), detail)


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


def verify_root(
    root: EvidenceRoot,
    *,
    policy: TrustPolicy,
    ledger: bool = True,
    files: bool = True,
    observer: Observer | None = None,
    fast: bool = False,
) -> VerificationResult:
    """Verify an evidence root under ``policy``; the result's ``verdict`` says whether it is
    intact and signed by keys the policy trusts. With ``policy.at`` the long-term evidence
    (RFC 4998 evidence records, every stamped checkpoint's proof of time) must stand at that
    date. Raises ``LedgerError`` only when there is nothing to verify.

    ``fast``: the routine fixity check only - the files against their records with BLAKE3
    alone (see ``verify_files``); no ledger, signature or timestamp check is reported.
    """
    if fast:
        ledger, files = False, True
    result = VerificationResult(root=str(root.path), trust=policy.describe())
    from custody.ledger.backends import open_ledger

    with open_ledger(root) as store:
        # The store's lines as held (file bytes, or database rows) - never the index cache.
        first = next(store.raw_lines(), None)
        if first is None:
            # "Nothing checked" is never a pass, whether the ledger is new or was emptied.
            raise LedgerError(
                _("the ledger of {path} is empty: no record to verify").format(path=root.path)
            )
        state = verify_ledger_lines(
            store.raw_lines,
            result,
            collect_items=files,
            trusted=policy.held,
            anchors=policy.fingerprints,
            pinned=policy.pinned,
        )
        result.signers = judge_signers(state.keys, policy)
        _identify(state, result, policy, check=ledger)
        if ledger:
            _witnesses(state, result, policy)
        if not ledger:
            # The ledger was still read (the files' expected state comes from it), but its
            # checks are not part of what the user asked to see.
            result.checks.clear()
            result.findings.clear()
        else:
            verify_timestamps(
                store.read_token,
                state,
                result,
                trust=policy.tsa,
                require=policy.require_timestamps,
                clock=files,
            )
            verify_longterm(store.read_token, state, result, trust=policy.tsa, at=policy.at)
            if files:
                verify_full_metadata(store.read_token, state, result)
    if files:
        verify_files(root, state, result, observer=observer, fast=fast)
        if not fast:  # the fast fixity check re-hashes the files and does nothing else
            verify_captures(root, state, result)
            from custody.verify.provenance import verify_provenance

            verify_provenance(root, state, result)
    return result


def _identify(
    state: LedgerState, result: VerificationResult, policy: TrustPolicy, *, check: bool
) -> None:
    """The ledger's identity and latest checkpoint; every remembered checkpoint extended."""
    result.ledger_identity = state.first_line_hash
    if state.checkpoints:
        position, body = state.checkpoints[-1]
        line = state.checkpoint_lines.get(position)
        result.checkpoint = {
            "record": position,
            "tree_size": body.tree_size,
            "root": body.root,
            "line": line.decode("utf-8", "replace") if line is not None else None,
        }
    if not check or policy.remembered is None or state.first_line_hash is None:
        return
    known = policy.remembered.get(state.first_line_hash)
    seen = known.checkpoints if known is not None else []
    findings: list[Finding] = []
    for checkpoint in seen:
        held = TrustedCheckpoint(
            checkpoint.tree_size,
            bytes.fromhex(checkpoint.root),
            checkpoint.describe(),
            checkpoint.line.encode("utf-8") if checkpoint.line else None,
        )
        findings += check_held(state, held)
    result.add_check(
        "remembered checkpoints",
        findings,
        len(seen),
        ngettext(
            "the ledger extends the {n} checkpoint(s) of it you verified before",
            "the ledger extends the {n} checkpoint(s) of it you verified before",
            len(seen),
        ).format(n=len(seen)),
    )


def _witnesses(state: LedgerState, result: VerificationResult, policy: TrustPolicy) -> None:
    """Every witness record valid over the real tree; with required witnesses, coverage."""
    from custody.ledger import cosignatures, merkle

    if not state.witnesses and not policy.min_witnesses:
        return
    identity = state.first_line_hash or ""
    size_now = state.tree.size

    def root_at(size: int) -> str | None:
        return merkle.root_hash(state.tree, size).hex() if 0 < size <= size_now else None

    findings: list[Finding] = []
    for position, body in state.witnesses:
        if root_at(body.tree_size) != body.root:
            message = _(
                "the witness {witness} cosigned a tree of {n} records that is not this ledger's"
            ).format(witness=body.witness_name, n=body.tree_size)
            findings.append(
                Finding(
                    Code.COSIGNATURE_INVALID,
                    f"record {position}",
                    message,
                    position,
                    body.root,
                    root_at(body.tree_size),
                )
            )
        elif not cosignatures.is_valid(identity, body):
            findings.append(
                Finding(Code.COSIGNATURE_INVALID, f"record {position}",
                        _("the cosignature by {witness} does not verify").format(
                            witness=body.witness_name), position)
            )  # fmt: skip
    detail = ngettext(
        "{n} witness cosignature(s) checked over the ledger's tree",
        "{n} witness cosignature(s) checked over the ledger's tree",
        len(state.witnesses),
    ).format(n=len(state.witnesses))
    if policy.min_witnesses:
        covered = cosignatures.coverage(
            identity, (b for _seq, b in state.witnesses), policy.witnesses,
            policy.min_witnesses, root_at,
        )  # fmt: skip
        # (Checkpoints, witness records and self-dated records - timestamps, validation
        # material, evidence records - need no cosigned checkpoint after them.)
        uncovered = [
            p
            for p in range(covered.size, size_now)
            if chr(state.kinds[p]) not in "cw" and state.kinds[p] not in SELF_DATED_KINDS
        ]
        missing, words = cosignatures.coverage_findings(covered, uncovered, len(policy.witnesses))
        findings += missing
        detail += words
    result.add_check("witnesses", findings, len(state.witnesses), detail)


def verify_full_metadata(
    read_file: Callable[[str], bytes], state: LedgerState, result: VerificationResult
) -> None:
    """Each current item's whole metadata, where its record keeps only part of it, is kept
    beside the ledger with the SHA-256 and size its record names (docs/format.md §6)."""
    findings: list[Finding] = []
    checked = 0
    for path, body in state.items.items():
        full = body.metadata_full
        if full is None:
            continue
        checked += 1
        where = f"{STATE_DIR}/{full.file}"
        seq = state.item_seq[path]
        try:
            raw = read_file(full.file)
        except OSError:
            findings.append(
                Finding(
                    Code.FILE_MISSING,
                    where,
                    _("the whole metadata of {path} (record {seq}) is not kept").format(
                        path=body.path, seq=seq
                    ),
                    seq,
                )
            )
            continue
        digest = hashlib.sha256(raw).hexdigest()
        if digest != full.sha256 or len(raw) != full.size:
            findings.append(
                Finding(
                    Code.FILE_MODIFIED,
                    where,
                    _("the whole metadata of {path} is not what record {seq} names").format(
                        path=body.path, seq=seq
                    ),
                    seq,
                    full.sha256,
                    digest,
                )
            )
    if checked:
        result.add_check(
            "whole metadata",
            findings,
            checked,
            ngettext(
                "{n} items' whole metadata, kept beside the ledger, against their records",
                "{n} items' whole metadata, kept beside the ledger, against their records",
                checked,
            ).format(n=checked),
        )


# check_capture's codes for what is wrong with the folder against the record, rather than
# inside the web archive (docs/capture.md lists both).
_FOLDER_CODES = frozenset(
    {"missing-record", "bad-record", "record-differs", "unknown-format", "bad-path",
     "missing-file", "changed-file", "unlisted-file"}
)
# These say of a file what the files check says of it already, against the ledger.
_SAID_BY_FILES = frozenset({"missing-record", "missing-file", "changed-file", "unlisted-file"})


def verify_captures(root: EvidenceRoot, state: LedgerState, result: VerificationResult) -> None:
    """Re-check every capture folder against its signed capture record (docs/capture.md)."""
    if not state.captures:
        return
    # Imported here: the capture package brings warcio and the browser driver with it.
    from custody.acquisition.capture.check import check_capture

    said = {f.item for f in result.findings if f.code in _FILE_CODES}
    findings: list[Finding] = []
    checked = 0
    for position, body in state.captures:
        assert body.folder is not None and body.capture is not None  # a valid capture event
        if all(ref.seq in state.disposed for ref in body.items):
            continue  # returned or destroyed by a custodian's decision: nothing to check
        checked += 1
        linked = _linked_component(root, body.folder)
        if linked is not None:
            findings.append(
                Finding(
                    Code.CAPTURE_FOLDER_CHANGED,
                    linked,
                    _(
                        "web capture (record {position}): the capture folder is reached through "
                        "a symbolic link or is not a folder; not followed"
                    ).format(position=position),
                    position,
                )
            )
            continue
        report = check_capture(root.path / body.folder, body.capture)
        for problem in report.findings:
            item = _capture_item(body.folder, problem.path)
            if problem.code in _SAID_BY_FILES and item in said:
                continue
            code = (Code.CAPTURE_FOLDER_CHANGED if problem.code in _FOLDER_CODES
                    else Code.CAPTURE_ARCHIVE_INVALID)
            findings.append(
                Finding(
                    code,
                    item,
                    _("web capture (record {position}): {code}: {detail}").format(
                        position=position, code=problem.code, detail=problem.detail
                    ),
                    position,
                )
            )
    result.add_check(
        "web captures",
        findings,
        checked,
        ngettext(
            "{n} capture folder(s) checked against their signed records: files, WACZ "
            "manifest, every WARC record's digests, media linked to WARC records",
            "{n} capture folder(s) checked against their signed records: files, WACZ "
            "manifest, every WARC record's digests, media linked to WARC records",
            checked,
        ).format(n=checked),
    )


def _linked_component(root: EvidenceRoot, folder: str) -> str | None:
    """The first component of ``folder`` that is a link or not a folder (None if none,
    or if the folder is simply gone: the files check reports that)."""
    path = root.path
    for part in folder.split("/"):
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return None
        if not stat.S_ISDIR(mode):
            return str(path.relative_to(root.path))
    return None


def _capture_item(folder: str, where: str) -> str:
    """The root-relative name of what a capture finding is about."""
    if where.startswith("<"):  # a WARC record id
        return f"{folder}/archive.wacz:archive/data.warc.gz record {where}"
    if where == "archive/data.warc.gz":
        return f"{folder}/archive.wacz:{where}"
    return f"{folder}/{where}"


_FILE_CODES = frozenset(
    {Code.FILE_MISSING, Code.FILE_MODIFIED, Code.FILE_MOVED, Code.FILE_UNEXPECTED,
     Code.FILE_UNREADABLE}
)


def verify_timestamps(
    read_token: Callable[[str], bytes],
    state: LedgerState,
    result: VerificationResult,
    *,
    trust: Any = None,
    require: bool = False,
    clock: bool = True,
) -> None:
    """Check every token, coverage by trusted time, and (with ``clock``) each item's clocks."""
    from custody.timestamps.stamping import (
        Trust,
        reconcile,
        review_findings,
        review_tokens,
        token_rows,
    )

    review = review_tokens(read_token, state.timestamps, state.checkpoint_lines, trust or Trust())
    findings = review_findings(review)
    stamped = {t.checkpoint for t in review.valid}
    covered = max((t.tree_size for t in review.valid), default=0)
    # Counted, not listed: a list of the numbers of 10,000,000 unstamped records (~36 bytes
    # each) was the peak of a ledger-only check.
    uncovered, first, last = 0, -1, -1
    for p in range(covered, len(state.kinds)):
        if state.kinds[p] not in SELF_DATED_KINDS and p not in stamped:
            uncovered, last = uncovered + 1, p
            if first < 0:
                first = p
    if uncovered:
        findings.append(
            Finding(
                Code.TIMESTAMP_PENDING,
                f"record {first}" if uncovered == 1 else f"records {first}-{last}",
                ngettext(
                    "{n} record(s) not yet covered by a trusted timestamp: run 'custody timestamp'",
                    "{n} record(s) not yet covered by a trusted timestamp: run 'custody timestamp'",
                    uncovered,
                ).format(n=uncovered),
                first,
                "a trusted timestamp",
                "none yet",
                required=require,
            )
        )
    if not review.checked:
        detail = _(NO_TOKENS)
    elif review.trust == "roots":
        detail = ngettext(
            "{valid} of {n} RFC 3161 tokens valid, checked against the TSA roots you supplied",
            "{valid} of {n} RFC 3161 tokens valid, checked against the TSA roots you supplied",
            review.checked,
        ).format(valid=len(review.valid), n=review.checked)
    else:
        detail = ngettext(
            "{valid} of {n} RFC 3161 tokens valid, checked against only the certificates "
            "stored with each token (weaker: supply --tsa-root)",
            "{valid} of {n} RFC 3161 tokens valid, checked against only the certificates "
            "stored with each token (weaker: supply --tsa-root)",
            review.checked,
        ).format(valid=len(review.valid), n=review.checked)
    result.add_check("timestamps", findings, review.checked, detail)
    result.timestamps = token_rows(review)
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
                    _(_CLOCK_MESSAGES[flag]),
                    row.seq,
                    row.earliest_timestamp,
                    row.capture_time if flag.startswith("CAPTURE") else row.catalogued,
                )
            )
    result.add_check(
        "clocks",
        clock_findings,
        len(state.items),
        _("claimed capture time, catalogue time and earliest trusted time compared per item"),
    )


def verify_longterm(
    read_file: Callable[[str], bytes],
    state: LedgerState,
    result: VerificationResult,
    *,
    trust: Any = None,
    at: datetime | None = None,
) -> None:
    """Validation material, evidence records and (with ``at``) every checkpoint's proof of
    time (``custody.timestamps.longterm_check``). Nothing to check, nothing added."""
    has_material = any(b.validation for _seq, b in state.timestamps)
    if not (state.evidence_records or state.validations or has_material or at is not None):
        return
    from custody.timestamps.longterm import LongtermState
    from custody.timestamps.longterm_check import review_root

    longterm = LongtermState.from_parts(
        state.checkpoint_lines, state.timestamps, state.evidence_records, state.validations
    )
    review = review_root(longterm, read_file, trust=trust, at=at)
    when = _("at {time}").format(time=format_time(review.judged_at)) if review.judged_at else ""
    asked = _("long-term validity required") if at is not None else _("lapses reported as warnings")
    result.add_check(
        "long-term evidence",
        review.findings,
        review.checked,
        ngettext(
            "{n} RFC 4998 evidence record(s) checked against their checkpoints and token "
            "files, validation material against its records; judged {when} ({asked})",
            "{n} RFC 4998 evidence record(s) checked against their checkpoints and token "
            "files, validation material against its records; judged {when} ({asked})",
            review.checked,
        ).format(n=review.checked, when=when, asked=asked),
    )
    result.evidence_records = review.rows


_CLOCK_MESSAGES = {
    "CAPTURE_AFTER_TIMESTAMP": N_(
        "the capture time the file claims is later than a trusted timestamp proving the "
        "file already existed: the device clock or the metadata is wrong"
    ),
    "CATALOGUED_AFTER_TIMESTAMP": N_(
        "the catalogue time is later than the trusted timestamp covering the record: the "
        "cataloguing computer's clock was ahead"
    ),
    "CATALOGUE_TIME_FAR": N_(
        "the catalogue time is more than 7 days from every trusted timestamp: check the "
        "cataloguing computer's clock"
    ),
}


def trusted_checkpoint_from_line(data: bytes, source: str) -> TrustedCheckpoint:
    """A held checkpoint from a checkpoint record line (as written by ``custody sign --out``)."""
    try:
        signed = SignedRecord.parse(data.strip())
        body = signed.record.typed_body()
    except RecordError as exc:
        raise CustodyError(
            _("{source} is not a checkpoint record: {why}").format(source=source, why=exc)
        ) from None
    if not isinstance(body, CheckpointBody):
        raise CustodyError(
            _("{source} holds a {type} record, not a checkpoint").format(
                source=source, type=signed.record.type
            )
        )
    return TrustedCheckpoint(body.tree_size, bytes.fromhex(body.root), source, signed.line)
