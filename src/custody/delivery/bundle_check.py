"""Checking a received bundle offline, folder or zip, trusting nothing in it but what the
checks establish: every manifest entry, every record's signature and inclusion proof, the
checkpoint, the tokens, the RFC 4998 evidence record and validation material it carries
(``custody.timestamps.longterm_check``), and every payload file against its item record.
Hostile bundles
(paths with ``..``, absolute paths, links, extra or missing files, altered proofs, tokens
or records, zip bombs) get findings, and nothing is ever written.

A zip is read through ``custody.acquisition.sources.safezip`` - the one safe zip reader -
held to ``bundle_format``'s limits: two entries of one name (also after Unicode
normalisation and case folding) are BUNDLE_UNSAFE and neither is read; a local header that
names another file than the central directory is BUNDLE_MALFORMED; a payload entry whose
bytes fail their CRC-32 is FILE_MODIFIED. Work and memory are bounded by the bundle's real
and declared sizes: the declared total by the archive's size, the bundle's own files by
``bundle_format``'s caps, records by the number of files that could prove them, and the
findings of one kind listed per check by ``LISTED_FINDINGS`` (the rest are counted).

May import: ``custody.acquisition.sources.safezip`` (and its ``claims``), ``custody.ledger``,
``custody.trust``, ``custody.timestamps``, ``custody.findings``, ``custody.errors``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import stat
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from custody.acquisition.sources.safezip import DamagedMemberError, SafeZip, ZipLimits
from custody.clock import format_time
from custody.delivery.bundle_format import (
    BUNDLE_FORMAT,
    LISTED_FINDINGS,
    MAX_MANIFEST_LINE,
    MAX_PROOF_BYTES,
    MAX_ZIP_ENTRIES,
    MAX_ZIP_RATIO,
    MAX_ZIP_TOTAL,
    PAYLOAD_ALGORITHMS,
    WITHHELD_REASON,
    max_index_bytes,
)
from custody.errors import CustodyError, InputError, RecordError
from custody.evidence.hashing import (
    ALGORITHMS,
    EvidenceReadError,
    FileChangedError,
    FileIdentity,
    available_cores,
    hash_fd,
    new_hash,
)
from custody.findings import Code, Finding, VerificationResult
from custody.ledger import canonical
from custody.ledger.bodies import CheckpointBody, ExhibitBody, ItemBody, KeyBody, TimestampBody
from custody.ledger.checks import TrustedCheckpoint
from custody.ledger.exhibits import ExhibitBook
from custody.ledger.keyrules import Compromise, KeyRules
from custody.ledger.linefacts import LineFacts
from custody.ledger.proofs import check_document
from custody.ledger.records import MAX_LINE_BYTES, SignedRecord
from custody.system.paths import Folder
from custody.trust.policy import TrustPolicy
from custody.verify.roots import NO_TOKENS, digests_differ

BUNDLE_ZIP_LIMITS = ZipLimits(
    max_entries=MAX_ZIP_ENTRIES,
    max_member_size=MAX_ZIP_TOTAL,
    max_total_size=MAX_ZIP_TOTAL,
    max_ratio=MAX_ZIP_RATIO,
    ratio_floor=1 << 20,
    max_name_bytes=16 << 10,
    fold_case=True,
    max_total_ratio=MAX_ZIP_RATIO,
)


def bundle_name_reason(name: str) -> str | None:
    """Why a zip entry may not name a file of a bundle (None when it may).

    A bundle carries evidence under its own names, control characters included (custody
    keeps them exactly); what is refused is what an extractor could take outside the
    bundle: absolute and ``..`` paths, backslashes, and ``:`` (a drive letter, or an NTFS
    stream on Windows).
    """
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or ":" in name or ".." in parts:
        return "a path that leaves the bundle"
    if "" in parts or "." in parts:
        return "a path with an empty or '.' component"
    return None


# --- findings, bounded ------------------------------------------------------------------------


class Findings:
    """Findings of one check, at most ``LISTED_FINDINGS`` of each code kept; the others are
    counted and summed up in one more finding, so a hostile bundle listing a million missing
    files costs a counter, not a million objects (nor a million lines on a terminal)."""

    def __init__(self, summary_item: str = "bundle") -> None:
        self.kept: list[Finding] = []
        self.counts: Counter[Code] = Counter()
        self.items: set[str] = set()  # items named by a kept or counted finding
        self.summary_item = summary_item

    def append(self, finding: Finding) -> None:
        self.counts[finding.code] += 1
        if len(self.items) < 1 << 20:
            self.items.add(finding.item)
        if self.counts[finding.code] <= LISTED_FINDINGS:
            self.kept.append(finding)

    def extend(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self.append(finding)

    def names(self, item: str) -> bool:
        return item in self.items

    def take(self, item: str, code: Code) -> list[Finding]:
        """The kept findings of ``code`` about ``item``, removed (to be merged into one)."""
        found = [f for f in self.kept if f.code is code and f.item == item]
        for finding in found:
            self.kept.remove(finding)
            self.counts[code] -= 1
        return found

    def result(self) -> list[Finding]:
        out = list(self.kept)
        for code, count in self.counts.items():
            if count > LISTED_FINDINGS:
                out.append(
                    Finding(
                        code,
                        self.summary_item,
                        f"and {count - LISTED_FINDINGS} more {code} findings of this check, "
                        f"not listed ({count} in all)",
                        None,
                        None,
                        str(count),
                    )
                )
        return out


# --- reading ----------------------------------------------------------------------------------

# What zipfile raises when a member's bytes were altered after the zip was made: a CRC-32
# that no longer matches, a deflate stream that no longer decodes, a header that no longer
# parses, data that ends early.
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError)
# What reading an altered zip member raises (delivery.digests): the safe zip reader's
# DamagedMemberError (CRC-32, length, local header), or zipfile's own errors.
ZIP_DAMAGE = (DamagedMemberError, *_DAMAGE)


def damaged_finding(rel: str, reason: str, seq: int | None = None) -> Finding:
    return Finding(
        Code.FILE_MODIFIED if rel.startswith("data/") else Code.BUNDLE_MALFORMED,
        rel,
        "altered or damaged inside the zip: its bytes no longer read back as the zip "
        f"recorded them ({reason})",
        seq,
        "the bytes the zip recorded (CRC-32 and length)",
        "different bytes",
    )


class BundleSource:
    """Read-only access to a bundle folder or zip, refusing anything that escapes it.

    One snapshot of the bytes: every file ``read`` is read from the bundle once and kept,
    so that what verification checked is exactly what import copies and what the report
    shows (a bundle changed between two reads used to import unsigned items); a file
    hashed by ``digests`` without being kept (payload) has its SHA-256 pinned, and a later
    ``read`` of other bytes is refused. In a folder every file is opened relative to the
    bundle folder's descriptor without following links (``custody.system.paths``).
    Use as a context manager, or call ``close``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.findings: list[Finding] = []
        self.zip: SafeZip | None = None
        self.folder: Folder | None = None
        # custody/records.jsonl as parsed once (``bundle_records``), and its findings
        self.parsed_records: tuple[dict[int, SignedRecord], list[Finding]] | None = None
        self.prefix = ""
        self.files: dict[str, int] = {}  # relative path -> size
        self._kept: dict[str, bytes] = {}  # the one snapshot of every file read
        self._pinned: dict[str, str] = {}  # SHA-256 of files hashed but not kept
        self.damaged: dict[str, str] = {}  # zip members that do not read back: why
        # Disclosures given apart from the bundle (custody disclose), checked with its own.
        self.extra_disclosures: dict[str, Any] = {}
        if path.is_dir():
            self._scan_folder()
            self.folder = Folder.open(path)
        elif zipfile.is_zipfile(path):
            try:
                self._scan_zip()
            except zipfile.BadZipFile as exc:
                raise InputError(
                    f"{path} is a damaged zip file ({exc}): it cannot be verified; ask the "
                    "sender for another copy"
                ) from None
        elif path.is_file() and path.suffix.lower() == ".zip":
            raise InputError(
                f"{path} is not a readable zip file (truncated or damaged): it cannot be "
                "verified; ask the sender for another copy"
            )
        else:
            raise InputError(f"{path} is neither a bundle folder nor a zip file")

    def __enter__(self) -> BundleSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unsafe(self, name: str, why: str) -> None:
        self.findings.append(
            Finding(
                Code.BUNDLE_UNSAFE,
                name,
                f"refused: {why}; nothing is read from it or written for it",
                None,
                "a plain file inside the bundle",
                why,
            )
        )

    def _scan_folder(self) -> None:
        base = self.path
        for dirpath, dirs, files in os.walk(base, followlinks=False):
            for name in list(dirs):
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    dirs.remove(name)
                    self._unsafe(os.path.relpath(full, base), "a symbolic link")
            for name in files:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, base).replace(os.sep, "/")
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    self._unsafe(rel, "a symbolic link")
                elif not stat.S_ISREG(st.st_mode):
                    self._unsafe(rel, "not a regular file")
                else:
                    self.files[rel] = st.st_size

    def _scan_zip(self) -> None:
        # Whole-archive refusals (zip bombs, overlapping members, an unreadable directory)
        # are UnsafeArchiveError, an InputError: the bundle cannot be verified at all.
        archive = SafeZip(
            self.path, BUNDLE_ZIP_LIMITS, name_reason=bundle_name_reason, collect=True
        )
        self.zip = archive
        for refused in archive.refused:
            if refused.damaged:
                self.findings.append(
                    Finding(
                        Code.BUNDLE_MALFORMED,
                        refused.name,
                        f"refused: {refused.reason}; nothing is read from it",
                    )
                )
            else:
                self._unsafe(refused.name, refused.reason)
        names = [(m.name, m.declared_size) for m in archive.members]
        # A zip made by custody has one top folder; accept a bag at the top level too.
        tops = {n.split("/", 1)[0] for n, _ in names}
        if len(tops) == 1 and not any(n == "bagit.txt" for n, _ in names):
            self.prefix = next(iter(tops)) + "/"
        for name, size in names:
            if name.startswith(self.prefix):
                self.files[name[len(self.prefix) :]] = size

    def _damaged(self, rel: str, exc: BaseException) -> DamagedMemberError:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.damaged.setdefault(rel, reason[:200])
        return DamagedMemberError(f"{rel}: {self.damaged[rel]}")

    @contextlib.contextmanager
    def _reading(self, rel: str) -> Iterator[None]:
        """Reading ``rel``: a member that does not read back as the zip recorded it is
        remembered (``damaged``, reported by the "zip members" check) and refused."""
        try:
            yield
        except (DamagedMemberError, *_DAMAGE) as exc:
            raise self._damaged(rel, exc) from None

    def open(self, rel: str) -> BinaryIO:
        """The bundle's file ``rel`` as it is now (callers check what they read: payload
        copies are hashed against the signed digests); reading a zip entry whose bytes fail
        its CRC-32 or declared length raises ``DamagedMemberError``."""
        if rel not in self.files:
            raise FileNotFoundError(rel)
        if rel in self.damaged:
            raise DamagedMemberError(f"{rel}: {self.damaged[rel]}")
        if self.zip is not None:
            with self._reading(rel):
                return self.zip.open(self.prefix + rel)  # type: ignore[return-value]
        assert self.folder is not None
        try:
            parent, name = self.folder.parent_of(rel, create=False)
            with parent:
                fd = parent.open_read(name)
        except CustodyError as exc:
            raise InputError(f"{rel} in the bundle cannot be read: {exc}") from None
        return os.fdopen(fd, "rb")

    def read(self, rel: str, limit: int = 1 << 30) -> bytes:
        """The bytes of ``rel``, read once and then always the same (see the class)."""
        data = self._kept.get(rel)
        if data is None:
            if rel in self.files and self.files[rel] > limit:
                raise InputError(f"{rel} in the bundle is implausibly large")
            with self._reading(rel), self.open(rel) as handle:
                data = handle.read(limit + 1)
            pinned = self._pinned.get(rel)
            if pinned is not None and hashlib.sha256(data).hexdigest() != pinned:
                raise InputError(
                    f"{rel} in the bundle changed while it was being checked; nothing was "
                    "written: check the bundle again when nothing else is changing it"
                )
            self._kept[rel] = data
        if len(data) > limit:
            raise InputError(f"{rel} in the bundle is implausibly large")
        return data

    def lines(self, rel: str, max_line: int) -> Iterator[tuple[int, bytes | None]]:
        """(number, line) of a text file, streaming; ``None`` for a line longer than
        ``max_line`` (skipped, never held). Lines end at LF, CR LF or CR (RFC 8493 §2.1),
        never at the other characters ``str.splitlines`` splits at (U+2028, U+0085...).

        Of the one snapshot: the kept bytes if ``rel`` was read; else streamed, and when
        read to its end its SHA-256 pinned (a later read of other bytes is refused)."""
        kept = self._kept.get(rel)
        if kept is not None:
            yield from _split_lines((kept[i : i + CHUNK] for i in range(0, len(kept), CHUNK)),
                                    max_line)  # fmt: skip
            return
        digest = hashlib.sha256()
        with self._reading(rel), self.open(rel) as handle:

            def chunks() -> Iterator[bytes]:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    yield chunk

            yield from _split_lines(chunks(), max_line)
        self._pin(rel, digest.hexdigest())

    def _pin(self, rel: str, sha256: str) -> None:
        if self._pinned.setdefault(rel, sha256) != sha256:
            raise InputError(
                f"{rel} in the bundle changed while it was being checked; nothing was "
                "written: check the bundle again when nothing else is changing it"
            )

    def digests(self, rel: str, algorithms: Sequence[str]) -> dict[str, str]:
        """Digests of ``rel`` from the one snapshot: of the kept bytes if it was read, else
        of the bytes streamed from one opening of it (in a folder, relative to the bundle's
        descriptor, no link followed), whose SHA-256 is then pinned: a later ``read`` of
        other bytes is refused. Safe to call from several threads at once (each call opens
        its own descriptor; a pin is set once).

        Raises ``EvidenceReadError`` (``FileChangedError`` for a file that changed while it
        was hashed), ``OSError``, ``InputError`` or ``DamagedMemberError`` for a member that
        cannot be read.
        """
        kept = self._kept.get(rel)
        if kept is not None:
            return {a: _digest_of(a, kept) for a in algorithms}
        wanted = tuple(dict.fromkeys((*algorithms, "sha256")))
        if self.zip is None:
            try:
                opened = self.open(rel)
            except InputError as exc:  # gone, a link or not a file now: unreadable
                raise EvidenceReadError(rel, str(exc)) from None
            with opened as handle:
                fd = handle.fileno()
                before = FileIdentity.of(os.fstat(fd))
                try:
                    size, found = hash_fd(fd, wanted, limit=before.size)
                except OSError as exc:
                    raise EvidenceReadError(rel, f"read error: {exc.strerror}") from None
                after = FileIdentity.of(os.fstat(fd))
            if before != after or size != before.size:
                raise FileChangedError(rel, "file changed while it was being read")
        else:
            hashes = {a: new_hash(a) for a in wanted}
            with self._reading(rel), self.open(rel) as handle:
                while chunk := handle.read(1 << 20):
                    for h in hashes.values():
                        h.update(chunk)
            found = {a: h.hexdigest() for a, h in hashes.items()}
        self._pin(rel, found["sha256"])
        return {a: found[a] for a in algorithms}

    def pinned(self, rel: str) -> str | None:
        """The SHA-256 this source saw for ``rel`` (kept or streamed), if it saw it."""
        kept = self._kept.get(rel)
        return hashlib.sha256(kept).hexdigest() if kept is not None else self._pinned.get(rel)

    def try_digests(self, rel: str, algorithms: Sequence[str]) -> dict[str, str] | str:
        """``digests``, or why the member could not be read."""
        try:
            return self.digests(rel, algorithms)
        except EvidenceReadError as exc:
            return exc.reason
        except (OSError, zipfile.BadZipFile) as exc:
            return getattr(exc, "strerror", None) or str(exc)

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()
        if self.folder is not None:
            self.folder.close()


CHUNK = 1 << 20


def _split_lines(chunks: Iterable[bytes], max_line: int) -> Iterator[tuple[int, bytes | None]]:
    """``BundleSource.lines`` over the bytes ``chunks`` yields."""
    number = 0
    pending: list[bytes] = []
    held = 0
    too_long = False
    carry_cr = False
    for chunk in chunks:
        if carry_cr:
            chunk = b"\r" + chunk
        carry_cr = chunk.endswith(b"\r")
        if carry_cr:
            chunk = chunk[:-1]  # a CR LF split across two chunks is one line end
        pieces = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        for piece in pieces[:-1]:
            number += 1
            if too_long or held + len(piece) > max_line:
                yield number, None
            else:
                yield number, b"".join([*pending, piece])
            pending, held, too_long = [], 0, False
        tail = pieces[-1]
        if not too_long:
            if held + len(tail) > max_line:
                pending, held, too_long = [], 0, True
            elif tail:
                pending.append(tail)
                held += len(tail)
    if carry_cr:
        number += 1
        yield number, None if too_long or held > max_line else b"".join(pending)
        pending, too_long = [], False
    if pending or too_long:
        yield number + 1, None if too_long else b"".join(pending)


def _digest_of(algorithm: str, data: bytes) -> str:
    h = new_hash(algorithm)
    h.update(data)
    return h.hexdigest()


def _manifest(
    source: BundleSource, name: str, known: set[str] | dict[str, int], findings: Findings
) -> tuple[dict[str, str], list[str], int]:
    """A (tag) manifest read as it streams: (digest of each listed path that ``known``
    holds, the first listed paths it does not hold, how many paths it does not hold)."""
    entries: dict[str, str] = {}
    others: list[str] = []
    other_count = 0
    try:
        for number, raw in source.lines(name, MAX_MANIFEST_LINE):
            if raw is None:
                findings.append(
                    Finding(Code.BUNDLE_MALFORMED, name, f"line {number} is implausibly long")
                )
                continue
            line = raw.decode("utf-8", "replace")
            if not line.strip():
                continue
            parts = line.split(None, 1) if "  " not in line else line.split("  ", 1)
            if len(parts) != 2:
                findings.append(
                    Finding(Code.BUNDLE_MALFORMED, name, f"line {number} is not 'digest  path'")
                )
                continue
            digest = parts[0].lower()
            path = parts[1].replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
            if path in known:
                entries[path] = digest
            else:
                other_count += 1
                if len(others) < LISTED_FINDINGS:
                    others.append(path)
    except DamagedMemberError as exc:
        findings.append(Finding(Code.BUNDLE_MALFORMED, name, f"cannot be read: {exc}"))
    return entries, others, other_count


def load_index(source: BundleSource) -> dict[str, Any]:
    """custody/index.json, parsed strictly and of the shape the checks rely on.

    It is untrusted input like everything in a bundle: a nested, mistyped or oversized
    index is unusable input (InputError), never a crash. Its size is bounded by the
    bundle's: a few KiB per file it could describe.
    """
    where = "custody/index.json is not a custody bundle index"
    try:
        index = canonical.decode(
            source.read("custody/index.json", limit=max_index_bytes(len(source.files))),
            require_canonical=False,
        )
    except RecordError as exc:
        raise InputError(f"{where}: {exc}") from None
    checkpoint = index.get("checkpoint") if isinstance(index, dict) else None
    if not isinstance(checkpoint, dict):
        raise InputError(f"{where}: no checkpoint")
    record, tree_size, root = (checkpoint.get(k) for k in ("record", "tree_size", "root"))
    if not (
        isinstance(record, int)
        and isinstance(tree_size, int)
        and isinstance(root, str)
        and not isinstance(record, bool)
        and not isinstance(tree_size, bool)
        and len(root) == 64
        and all(c in "0123456789abcdef" for c in root)
    ):
        raise InputError(f"{where}: the checkpoint needs a record, a tree size and a root")
    for name in ("items", "consistency", "timestamps", "keys", "withheld_events", "cosignatures"):
        members = index.get(name, [])
        if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
            raise InputError(f"{where}: '{name}' is not a list of objects")
    checked: dict[str, Any] = index
    return checked


def bundle_records(
    source: BundleSource, findings: Findings | None = None
) -> dict[int, SignedRecord]:
    """custody/records.jsonl parsed strictly: the first well-formed record of each number.

    Bounded by the bundle: every record it can prove needs a file (an inclusion proof or a
    token) except the checkpoint, so lines beyond the number of its files are not read;
    a line longer than a record may be is malformed without being decoded. Parsed once per
    source: verification, import and the report all use these very records (one snapshot).
    """
    if source.parsed_records is None:
        source.parsed_records = _parse_records(source)
    parsed, found = source.parsed_records
    if findings is not None:
        findings.extend(found)
    return dict(parsed)


def _parse_records(source: BundleSource) -> tuple[dict[int, SignedRecord], list[Finding]]:
    sink: list[Finding] = []
    parsed: dict[int, SignedRecord] = {}
    most = len(source.files) + 1
    for number, line in source.lines("custody/records.jsonl", MAX_LINE_BYTES):
        if number > most:
            sink.append(
                Finding(
                    Code.BUNDLE_MALFORMED,
                    "custody/records.jsonl",
                    f"holds more lines than a bundle of {len(source.files)} files can prove; "
                    f"lines after {most} are not read",
                )
            )
            break
        where = f"records.jsonl line {number}"
        if line is None:
            sink.append(
                Finding(
                    Code.RECORD_MALFORMED,
                    where,
                    f"the line is longer than the {MAX_LINE_BYTES >> 20} MiB a record may be",
                )
            )
            continue
        if not line:
            continue
        try:
            signed = SignedRecord.parse(line)
            signed.record.typed_body()
        except RecordError as exc:
            sink.append(Finding(Code.RECORD_MALFORMED, where, str(exc)))
            continue
        if signed.seq in parsed:
            sink.append(Finding(Code.RECORD_DUPLICATED, f"record {signed.seq}", "listed twice"))
            continue
        parsed[signed.seq] = signed
    return parsed, sink


def _proof_document(source: BundleSource, rel: str) -> Any:
    """A proof file's JSON (any shape: ``check_document`` judges it); RecordError,
    InputError or FileNotFoundError when it cannot be read."""
    return canonical.decode(
        source.read(rel, limit=MAX_PROOF_BYTES).strip(), require_canonical=False
    )


def verify_bundle(
    path: Path,
    *,
    policy: TrustPolicy,
    disclosures: dict[str, Any] | None = None,
    all_manifests: bool = False,
) -> VerificationResult:
    """Verify a bundle folder or zip offline under ``policy``; every check, every finding.
    With ``policy.at`` the long-term validity of its timestamps is required at that date
    (``custody verify --at``).

    Nothing the bundle carries is trusted for *who* signed it: its keys are checked against
    the policy's anchors (the verifier's own keys, trust store and --trusted-key), and a
    held checkpoint must be proven to be extended by the bundle's checkpoint.

    The payload is re-hashed on every core with SHA-256 and the digests its item records
    carry; ``all_manifests`` re-hashes every payload manifest's algorithm too (SHA-512).
    """
    with BundleSource(path) as source:
        return verify_source(
            source, policy=policy, disclosures=disclosures, all_manifests=all_manifests
        )


def verify_source(
    source: BundleSource,
    *,
    policy: TrustPolicy,
    disclosures: dict[str, Any] | None = None,
    all_manifests: bool = False,
) -> VerificationResult:
    """``verify_bundle`` over an open source, whose snapshot the caller then uses: what
    import copies and what a report shows are the very bytes verified here."""
    result = VerificationResult(root=str(source.path), trust=policy.describe())
    source.extra_disclosures = dict(disclosures or {})
    with contextlib.suppress(DamagedMemberError):
        # else a file every later check needs is damaged (the "zip members" check says so)
        _verify(source, result, policy, all_manifests)
    if source.zip is not None:
        # Tampering inside a zip, reported as what it is, whatever else could be checked.
        result.add_check(
            "zip members",
            [damaged_finding(rel, why) for rel, why in sorted(source.damaged.items())],
            len(source.files),
            "every member read back with the CRC-32 and length the zip recorded"
            if not source.damaged
            else "members that did not read back as the zip recorded them",
        )
    return result


def _recorded_algorithms(source: BundleSource) -> set[str]:
    """Digest algorithms named by the bundle's item records: those of the one parse of
    records.jsonl (``bundle_records``; what is malformed there is reported later)."""
    found: set[str] = set()
    try:
        parsed = bundle_records(source)
    except (OSError, InputError):
        return found
    for signed in parsed.values():
        if signed.record.type == "item":
            found.update(ItemBody.from_json(signed.record.body).digests)
    return found & set(ALGORITHMS)


def _verify(
    source: BundleSource, result: VerificationResult, policy: TrustPolicy, all_manifests: bool
) -> None:
    structure = Findings()
    structure.extend(source.findings)
    files = source.files
    required = ("bagit.txt", "custody/index.json", "custody/records.jsonl")
    missing = [name for name in required if name not in files]
    if missing and source.findings:
        # Set aside as unsafe or damaged: a finding, not "this is not a bundle".
        for name in missing:
            structure.append(Finding(Code.BUNDLE_MALFORMED, name, "missing or refused"))
        result.add_check("bag structure", structure.result(), len(files), "BagIt files present")
        return
    if "bagit.txt" not in files:
        raise InputError(f"{source.path} is not a BagIt bag (no bagit.txt)")
    if "custody/index.json" not in files or "custody/records.jsonl" not in files:
        raise InputError(f"{source.path} is not a custody bundle (no custody/index.json)")
    payload = {p for p in files if p.startswith("data/")}
    # Payload manifests: every payload file listed and matching; nothing extra.
    manifests: dict[str, dict[str, str]] = {}
    file_findings = Findings()
    unlisted_elsewhere: dict[str, None] = {}  # listed, not a payload file of the bundle
    for algorithm in PAYLOAD_ALGORITHMS:
        name = f"manifest-{algorithm}.txt"
        if name in files:
            entries, others, count = _manifest(source, name, payload, structure)
            manifests[algorithm] = entries
            for rel in others:
                unlisted_elsewhere.setdefault(rel)
            if count > len(others):
                file_findings.append(
                    Finding(
                        Code.FILE_MISSING,
                        name,
                        f"lists {count} files that are not payload files of the bundle; "
                        f"the first {len(others)} are named",
                        None,
                        None,
                        str(count),
                    )
                )
    if not manifests:
        structure.append(Finding(Code.BUNDLE_MALFORMED, "manifest", "no payload manifest"))
    for algorithm in PAYLOAD_ALGORITHMS:
        if manifests and algorithm not in manifests:
            structure.append(
                Finding(
                    Code.BUNDLE_MALFORMED,
                    f"manifest-{algorithm}.txt",
                    f"the payload manifest manifest-{algorithm}.txt is missing: a "
                    f"{BUNDLE_FORMAT} bag lists its payload under each of "
                    f"{', '.join(PAYLOAD_ALGORITHMS)}",
                )
            )
    listed = set().union(*(m.keys() for m in manifests.values())) if manifests else set()
    for rel in unlisted_elsewhere:
        if ".." in rel.split("/") or rel.startswith("/"):
            structure.append(Finding(Code.BUNDLE_UNSAFE, rel, "a manifest entry leaves the bundle"))
        else:
            file_findings.append(
                Finding(Code.FILE_MISSING, rel, "listed in the manifest but not in the bundle")
            )
    for rel in sorted(payload - listed):
        file_findings.append(Finding(Code.FILE_UNEXPECTED, rel, "in data/ but in no manifest"))
    # Which digests are re-hashed, and why: SHA-256 always (manifest-sha256.txt and every
    # item record carry it), plus every other digest the item records carry (BLAKE3 by
    # default): those are what the signatures commit to. manifest-sha512.txt is unsigned -
    # anyone can recompute it - and proves nothing the signed digests do not; its entries
    # are held to the payload by name above, and its digests are re-hashed only when
    # asked (``all_manifests``) or when no SHA-256 manifest exists. bagit.py --validate
    # checks it too.
    recorded = _recorded_algorithms(source)
    algorithms = ("sha256", *sorted(recorded - {"sha256"}))
    rehashed = {
        a for a in manifests if all_manifests or a in algorithms or "sha256" not in manifests
    }
    algorithms = (*algorithms, *sorted(rehashed - set(algorithms)))
    hashed: dict[str, dict[str, str]] = {}

    def hash_one(rel: str) -> dict[str, str] | str | DamagedMemberError:
        # Through the source's one snapshot (each file opened once, its SHA-256 pinned): a
        # file changed after this is refused wherever it is read again.
        try:
            return source.try_digests(rel, algorithms)
        except DamagedMemberError as exc:
            return exc

    todo = sorted(payload & listed, key=lambda r: -files[r])  # largest first: balanced threads
    with ThreadPoolExecutor(max_workers=available_cores()) as pool:
        outcomes = dict(zip(todo, pool.map(hash_one, todo), strict=True))
    for rel in sorted(outcomes):  # findings in name order, whatever finished first
        actual = outcomes[rel]
        if isinstance(actual, DamagedMemberError):
            continue  # reported once, by the "zip members" check
        if isinstance(actual, str):
            file_findings.append(Finding(Code.FILE_UNREADABLE, rel, f"could not be read: {actual}"))
            continue
        hashed[rel] = actual
        listed_digests = {a: m[rel] for a, m in manifests.items() if a in rehashed and rel in m}
        differ = [a for a, value in listed_digests.items() if value != actual[a]]
        if differ:
            # One changed file, one finding (merged below with its item record's digests).
            file_findings.append(
                digests_differ(rel, None, listed_digests, actual, differ, "the payload manifest")
            )
    # Tag manifests cover the custody material: both of them, each listing every tag file
    # (deleting them, or a line of them, used to raise no finding).
    tag_files = {r for r in files if not r.startswith(("data/", "tagmanifest-"))}
    for algorithm in PAYLOAD_ALGORITHMS:
        name = f"tagmanifest-{algorithm}.txt"
        if name not in files:
            structure.append(
                Finding(
                    Code.BUNDLE_MALFORMED,
                    name,
                    f"the tag manifest {name} is missing: a {BUNDLE_FORMAT} bag covers every "
                    "file outside data/ with one per algorithm",
                )
            )
            continue
        entries, others, count = _manifest(source, name, files, structure)
        for rel in sorted(tag_files - set(entries) - set(others)):
            structure.append(
                Finding(
                    Code.BUNDLE_MALFORMED,
                    rel,
                    f"a file outside data/ that {name} does not list",
                )
            )
        for rel in others:
            structure.append(Finding(Code.FILE_MISSING, rel, f"listed in {name} but absent"))
        if count > len(others):
            structure.append(
                Finding(
                    Code.FILE_MISSING,
                    name,
                    f"lists {count} files that are not in the bundle; the first {len(others)} "
                    "are named",
                    None,
                    None,
                    str(count),
                )
            )
        for rel, expected in entries.items():
            try:
                found = source.digests(rel, (algorithm,))[algorithm]
            except DamagedMemberError:
                continue  # reported once, by the "zip members" check
            if found != expected:
                structure.append(
                    Finding(Code.FILE_MODIFIED, rel, f"differs from {name}", None, expected, found)
                )
    result.files_checked = len(hashed)
    result.bytes_hashed = sum(files[r] for r in hashed)
    skipped = sorted(set(manifests) - rehashed)
    result.add_check(
        "bag structure",
        structure.result(),
        len(files),
        "BagIt files present, manifests readable, no path leaving the bundle; payload "
        f"re-hashed with {', '.join(algorithms)}"
        + (
            f" ({', '.join(f'manifest-{a}.txt' for a in skipped)}: entries checked, digests "
            "not re-hashed - unsigned, and covered by the signed digests)"
            if skipped
            else ""
        ),
    )
    _verify_custody(source, result, hashed, file_findings, policy)


def _consistency_files(index: dict[str, Any], source: BundleSource) -> tuple[list[str], bool]:
    """The consistency proof files the index names, each once, and at most as many as the
    bundle has proof files; and whether it names more than that."""
    proofs = sum(1 for f in source.files if f.startswith("custody/proofs/"))
    chosen: dict[str, None] = {}
    for entry in index.get("consistency", []):
        name = str(entry.get("file", ""))
        if name in chosen:
            continue
        if len(chosen) >= proofs:
            return list(chosen), True
        chosen[name] = None
    return list(chosen), False


def _verify_custody(
    source: BundleSource,
    result: VerificationResult,
    hashed: dict[str, dict[str, str]],
    file_findings: Findings,
    policy: TrustPolicy,
) -> None:
    from custody.ledger.linefacts import examine
    from custody.ledger.references import reference_findings
    from custody.trust.signers import judge_signers

    records_findings = Findings()
    proof_findings = Findings()
    index = load_index(source)
    checkpoint_info = index["checkpoint"]
    tree_size = int(checkpoint_info["tree_size"])
    root = bytes.fromhex(checkpoint_info["root"])
    parsed = bundle_records(source, records_findings)
    # Keys come only from key records that are proven to be in the ledger (below).
    keys: dict[str, bytes] = {}
    for signed in parsed.values():
        if signed.record.type == "key":
            keys.setdefault(
                str(signed.record.body["fingerprint"]),
                KeyBody.from_json(signed.record.body).public_key,
            )
    checkpoint = parsed.get(int(checkpoint_info["record"]))
    if checkpoint is None or checkpoint.record.type != "checkpoint":
        records_findings.append(
            Finding(
                Code.CHECKPOINT_MISMATCH,
                "checkpoint",
                "the checkpoint record named by the index is not in records.jsonl",
            )
        )
    else:
        body = CheckpointBody.from_json(checkpoint.record.body)
        if body.tree_size != tree_size or body.root != root.hex():
            records_findings.append(
                Finding(
                    Code.CHECKPOINT_MISMATCH,
                    f"record {checkpoint.seq}",
                    "the index and the checkpoint record disagree",
                    checkpoint.seq,
                    body.root,
                    root.hex(),
                )
            )
    # Every record except the checkpoint itself (and timestamps over it) must be proven.
    proven: set[int] = set()
    for seq, signed in sorted(parsed.items()):
        if checkpoint is not None and (
            seq == checkpoint.seq
            or (
                signed.record.type == "timestamp"
                and signed.record.body.get("checkpoint") == checkpoint.seq
            )
        ):
            continue
        name = f"custody/proofs/record-{seq}.json"
        if name not in source.files:
            proof_findings.append(
                Finding(
                    Code.PROOF_INVALID, f"record {seq}", "no inclusion proof in the bundle", seq
                )
            )
            continue
        try:
            document = _proof_document(source, name)
        except (RecordError, InputError) as exc:
            proof_findings.append(
                Finding(Code.PROOF_INVALID, f"record {seq}", f"{name}: {exc}", seq)
            )
            continue
        if not isinstance(document, dict):
            proof_findings.append(
                Finding(Code.PROOF_INVALID, f"record {seq}", f"{name} is not a proof", seq)
            )
            continue
        outcome = check_document(document)
        same_line = document.get("record_line") == signed.line.decode("utf-8")
        same_tree = document.get("tree_size") == tree_size and document.get("root") == root.hex()
        if not outcome.ok or not same_line or not same_tree:
            why = (
                outcome.failures[0]
                if outcome.failures
                else (
                    "the proof is for other bytes than records.jsonl holds"
                    if not same_line
                    else "the proof is against another checkpoint"
                )
            )
            proof_findings.append(Finding(Code.PROOF_INVALID, f"record {seq}", why, seq))
            continue
        proven.add(seq)
    # Signatures, with keys introduced by proven key records (or the checkpoint's signer key).
    proven_keys = {
        str(s.record.body.get("fingerprint"))
        for s in parsed.values()
        if s.record.type == "key" and s.seq in proven
    }
    usable_keys = {fp: raw for fp, raw in keys.items() if fp in proven_keys}
    # Who signed, by the same key rules as a full ledger verification, over the records
    # the bundle proves (and its checkpoint with the timestamps over it).
    facts = {seq: examine(s.line, True, usable_keys, False) for seq, s in parsed.items()}
    counted = sorted(
        seq
        for seq, s in parsed.items()
        if seq in proven
        or (checkpoint is not None and seq == checkpoint.seq)
        or (
            checkpoint is not None
            and s.record.type == "timestamp"
            and s.record.body.get("checkpoint") == checkpoint.seq
        )
    )
    rules, authentic = _judge(facts, counted, policy, {})
    if rules.found_compromises:
        rules, authentic = _judge(facts, counted, policy, rules.found_compromises)
    signature_findings = Findings()
    signature_findings.extend([*rules.signatures, *rules.identities])
    # Records the bundle does not prove are already findings; their signatures are still
    # reported, but they judge no key and count for nothing.
    for seq in sorted(set(facts) - set(counted)):
        fact = facts[seq]
        if fact.signature_ok is None:
            message = "signed by a key not proven in this bundle"
            signature_findings.append(
                Finding(Code.UNKNOWN_KEY, f"record {seq}", message, seq, None, fact.signer)
            )
        elif not fact.signature_ok:
            signature_findings.append(
                Finding(Code.BAD_SIGNATURE, f"record {seq}", "the signature does not verify", seq)
            )
    result.signers = judge_signers(rules.keys, policy)
    # Items against the payload. Only authentic records count (docs/events.md §2): a forged
    # or unproven item record must not make a swapped payload file "match" its claims.
    expected_paths: set[str] = set()
    for seq, signed in sorted(parsed.items()):
        if signed.record.type != "item" or seq not in authentic:
            continue
        item = ItemBody.from_json(signed.record.body)
        rel = "data/" + item.path
        expected_paths.add(rel)
        actual = hashed.get(rel)
        if actual is None:
            if rel in source.damaged:
                continue  # there, but altered inside the zip: the "zip members" check says so
            if not file_findings.names(rel):
                file_findings.append(
                    Finding(Code.FILE_MISSING, rel, "the item's file is not in the bundle", seq)
                )
            continue
        differ = [a for a, value in item.digests.items() if a in actual and actual[a] != value]
        if differ:
            # Merge with the manifest finding for this file: every digest that differs from
            # what the record or the manifests say, in one finding.
            listed = file_findings.take(rel, Code.FILE_MODIFIED)
            recorded = dict(item.digests)
            for finding in listed:
                for pair in (finding.expected or "").split():
                    algorithm, _, value = pair.partition(":")
                    if algorithm not in recorded and value != actual.get(algorithm):
                        recorded[algorithm] = value
                        differ.append(algorithm)
            against = f"item record {seq}" + (" and the payload manifest" if listed else "")
            file_findings.append(digests_differ(rel, seq, recorded, actual, differ, against))
    for rel in sorted(set(hashed) - expected_paths):
        file_findings.append(
            Finding(
                Code.FILE_UNEXPECTED,
                rel,
                "a payload file no authentic, proven item record describes",
            )
        )
    records_findings.extend(_index_disagreements(index, parsed))
    records_findings.extend(_withheld_disagreements(index, parsed, tree_size))
    # Consistency proofs of earlier checkpoints (each file once, at most one per proof file).
    extended = {tree_size: root.hex()}  # trees the bundle's checkpoint is proven to extend
    consistency, more = _consistency_files(index, source)
    if more:
        records_findings.append(
            Finding(
                Code.BUNDLE_MALFORMED,
                "custody/index.json",
                "lists more consistency proofs than the bundle has proof files; the rest are "
                "not read",
            )
        )
    for rel in consistency:
        try:
            document = _proof_document(source, rel)
        except (RecordError, FileNotFoundError, InputError) as exc:
            proof_findings.append(Finding(Code.PROOF_INVALID, rel, str(exc)))
            continue
        if not isinstance(document, dict):  # valid JSON of another shape: "\u0000", [..]
            proof_findings.append(Finding(Code.PROOF_INVALID, rel, f"{rel} is not a proof"))
            continue
        outcome = check_document(document)
        if outcome.ok and document.get("new_root") == root.hex():
            extended[int(document["old_size"])] = str(document["old_root"])
        if not outcome.ok or document.get("new_root") != root.hex():
            proof_findings.append(
                Finding(
                    Code.NOT_APPEND_ONLY,
                    rel,
                    outcome.failures[0]
                    if outcome.failures
                    else "not a proof towards this checkpoint",
                )
            )
    result.ledger_size = tree_size
    result.tree_root = root.hex()
    result.add_check(
        "records",
        records_findings.result(),
        len(parsed),
        f"{len(parsed)} ledger records in the bundle parsed strictly",
    )
    result.add_check(
        "inclusion proofs",
        proof_findings.result(),
        len(proven),
        f"{len(proven)} records proven in the {tree_size}-record ledger with root {root.hex()}",
    )
    result.add_check(
        "signatures and keys",
        signature_findings.result(),
        len(parsed),
        f"signatures checked against {len(usable_keys)} keys proven in the ledger; each signer "
        "introduced before it signed, valid, in a role and with the authority its records need",
    )
    if policy.held is not None:
        result.add_check(
            "held checkpoint",
            _held_findings(policy.held, tree_size, root, source, index),
            1,
            f"the bundle's checkpoint extends the checkpoint of {policy.held.tree_size} records "
            f"from {policy.held.source}",
        )
    # The ledger's identity: its first line, when the bundle proves it (it carries it).
    first = parsed.get(0)
    if first is not None and 0 in proven:
        result.ledger_identity = hashlib.sha256(first.line).hexdigest()
    _verify_cosignatures(source, result, index, extended, proven, policy)
    if checkpoint is not None:
        result.checkpoint = {
            "record": checkpoint.seq,
            "tree_size": tree_size,
            "root": root.hex(),
            "line": checkpoint.line.decode("utf-8", "replace"),
        }
    if policy.remembered is not None and result.ledger_identity is not None:
        known = policy.remembered.get(result.ledger_identity)
        seen = known.checkpoints if known is not None else []
        remembered: list[Finding] = []
        for earlier in seen:
            held = TrustedCheckpoint(earlier.tree_size, bytes.fromhex(earlier.root),
                                     earlier.describe())  # fmt: skip
            if earlier.tree_size > tree_size:
                # An older bundle than what you saw: not a rewrite unless it contradicts it.
                remembered.append(
                    Finding(
                        Code.HELD_CHECKPOINT_UNPROVEN,
                        f"remembered checkpoint ({earlier.describe()})",
                        f"this bundle's checkpoint ({tree_size} records) is older than one you "
                        "verified before; it cannot show that it is part of that history",
                        warning=True,
                    )
                )
                continue
            # A genuine later bundle of this ledger always carries a consistency proof from
            # every earlier checkpoint (the remembered one is one): none, or a wrong one, is a
            # history rewritten since you saw it.
            for finding in _held_findings(held, tree_size, root, source, index):
                remembered.append(
                    Finding(
                        Code.NOT_APPEND_ONLY,
                        finding.item,
                        f"this bundle does not extend a checkpoint of this ledger you verified "
                        f"before: {finding.message}",
                        None,
                        finding.expected,
                        finding.found,
                    )
                )
        result.add_check(
            "remembered checkpoints",
            remembered,
            len(seen),
            f"the bundle's checkpoint extends the {len(seen)} checkpoint(s) of this ledger you "
            "verified before",
        )
    result.add_check(
        "files",
        file_findings.result(),
        len(hashed),
        f"{len(hashed)} payload files against the manifests and their item records",
    )
    # (References to records the bundle leaves out - other victims' items - are not checked.)
    reference_problems, checked = reference_findings(
        {seq: signed.record for seq, signed in parsed.items()}
    )
    result.add_check(
        "references",
        reference_problems,
        checked,
        f"{checked} references between the bundle's records name an earlier item record "
        "with that content",
    )
    _verify_disclosures(source, result, parsed)
    _check_exhibits(result, parsed, authentic, {f.seq for f in reference_problems})
    _verify_tokens(source, result, parsed, checkpoint, policy)
    _verify_longterm(source, result, parsed, checkpoint, policy.tsa, policy.at, index)


DISCLOSURES = "custody/disclosures.jsonl"


def _verify_disclosures(
    source: BundleSource, result: VerificationResult, parsed: dict[int, SignedRecord]
) -> None:
    """Each disclosed value must be one a signed item record commits to (custody.ledger.
    disclosures); what is withheld is counted, never guessed."""
    from custody.ledger.disclosures import parse_lines

    committed: dict[str, tuple[int, str]] = {}  # digest -> (item record, field)
    for seq, signed in parsed.items():
        if signed.record.type == "item":
            for name, digest in (signed.record.body.get("commitments") or {}).items():
                committed[str(digest)] = (seq, str(name))
    if not committed and DISCLOSURES not in source.files and not source.extra_disclosures:
        return
    findings: list[Finding] = []
    disclosed: dict[str, tuple[str, Any]] = {}
    if DISCLOSURES in source.files:
        try:
            parsed_lines = parse_lines(source.read(DISCLOSURES, limit=1 << 26), DISCLOSURES)
            disclosed.update((d, (DISCLOSURES, x)) for d, x in parsed_lines.items())
        except RecordError as exc:
            findings.append(Finding(Code.BUNDLE_MALFORMED, DISCLOSURES, str(exc)))
    disclosed.update((d, ("disclosures given separately", x))
                     for d, x in source.extra_disclosures.items())  # fmt: skip
    matched = 0
    for digest, (where, disclosure) in disclosed.items():
        _salt, name, _value = disclosure.parts()
        target = committed.get(digest)
        if target is None or target[1] != name:
            findings.append(
                Finding(
                    Code.BUNDLE_MALFORMED,
                    where,
                    f"a disclosed {name} that no item record in the bundle commits to: its "
                    "value or salt was altered, or it belongs to another bundle",
                    None,
                    "the SHA-256 of a commitment in a signed item record",
                    digest,
                )
            )
        else:
            matched += 1
    held_back = len(committed) - matched
    result.add_check(
        "disclosures",
        findings,
        len(committed),
        f"{matched} identifying value(s) disclosed, each matching the salted commitment in "
        f"its signed record; {held_back} withheld (only their commitments are in the records)",
    )


def _check_exhibits(
    result: VerificationResult,
    parsed: dict[int, SignedRecord],
    accepted: set[int],
    bad_references: set[int | None],
) -> None:
    """Exhibit numbers among the bundle's authentic records: stable, never reused."""
    book = ExhibitBook()
    findings: list[Finding] = []
    for seq, signed in sorted(parsed.items()):
        if signed.record.type != "exhibit" or seq not in accepted or seq in bad_references:
            continue
        finding = book.assign(seq, ExhibitBody.from_json(signed.record.body))
        if finding is not None:
            findings.append(finding)
    if book.records:
        result.add_check(
            "exhibit numbers",
            findings,
            book.records,
            f"{len(book.by_item)} exhibit numbers, each given to one item record only, never "
            "changed and never reused",
        )


def _index_disagreements(
    index: dict[str, Any], parsed: dict[int, SignedRecord]
) -> Iterator[Finding]:
    """index.json is covered only by the tag manifests, which anyone can recompute: its
    item entries must say exactly what the signed item records say, and list them all."""
    items = {
        seq: ItemBody.from_json(s.record.body)
        for seq, s in parsed.items()
        if s.record.type == "item"
    }
    listed: set[int] = set()
    for entry in index.get("items", []):
        seq = entry.get("record") if isinstance(entry, dict) else None
        body = items.get(seq) if isinstance(seq, int) else None
        if body is None or not isinstance(seq, int) or seq in listed:
            yield (
                Finding(
                    Code.BUNDLE_MALFORMED,
                    "custody/index.json",
                    f"lists record {seq!r}, which is not an item record in records.jsonl",
                )
            )
            continue
        listed.add(seq)
        expected = {
            "path": body.path,
            "data_path": "data/" + body.path,
            "size": body.size,
            "digests": dict(body.digests),
        }
        wrong = sorted(k for k, v in expected.items() if entry.get(k) != v)
        if wrong:
            yield (
                Finding(
                    Code.BUNDLE_MALFORMED,
                    "custody/index.json",
                    f"its entry for record {seq} disagrees with the signed item record "
                    f"({', '.join(wrong)})",
                    seq,
                    json.dumps({k: expected[k] for k in wrong}, ensure_ascii=False),
                    json.dumps({k: entry.get(k) for k in wrong}, ensure_ascii=False),
                )
            )
    for seq in sorted(set(items) - listed):
        yield (
            Finding(
                Code.BUNDLE_MALFORMED,
                "custody/index.json",
                f"does not list item record {seq}",
                seq,
            )
        )


def _verify_cosignatures(
    source: BundleSource,
    result: VerificationResult,
    index: dict[str, Any],
    extended: dict[int, str],
    proven: set[int],
    policy: TrustPolicy,
) -> None:
    """Witness cosignatures the bundle carries: each valid over a tree the bundle's
    checkpoint extends; with required witnesses, every proven record covered."""
    from custody.ledger import cosignatures

    entries = index.get("cosignatures", [])
    if not isinstance(entries, list):
        entries = []
    if not entries and not policy.min_witnesses:
        return
    identity = result.ledger_identity
    findings: list[Finding] = []
    bodies = []
    for entry in entries:
        rel = str(entry.get("file", "")) if isinstance(entry, dict) else ""
        try:
            claimed, body = cosignatures.from_document(source.read(rel, limit=1 << 16), rel)
        except (InputError, FileNotFoundError) as exc:
            findings.append(Finding(Code.COSIGNATURE_INVALID, rel or "index.json", str(exc)))
            continue
        if identity is None or claimed != identity:
            findings.append(
                Finding(Code.COSIGNATURE_INVALID, rel, "the cosignature is for another ledger")
            )
        elif extended.get(body.tree_size) != body.root:
            findings.append(
                Finding(Code.COSIGNATURE_INVALID, rel, f"the cosigned tree of {body.tree_size} "
                        "records is not one this bundle's checkpoint is proven to extend")
            )  # fmt: skip
        elif not cosignatures.is_valid(identity, body):
            findings.append(
                Finding(Code.COSIGNATURE_INVALID, rel, "the cosignature does not verify")
            )
        else:
            bodies.append(body)
    detail = f"{len(entries)} witness cosignature(s) carried"
    if policy.min_witnesses:
        covered = cosignatures.coverage(
            identity or "", bodies, policy.witnesses, policy.min_witnesses, extended.get
        )
        uncovered = sorted(seq for seq in proven if seq >= covered.size)
        missing, words = cosignatures.coverage_findings(covered, uncovered, len(policy.witnesses))
        findings += missing
        detail += words
    result.add_check("witnesses", findings, len(entries), detail)


def _withheld_disagreements(
    index: dict[str, Any], parsed: dict[int, SignedRecord], tree_size: int
) -> list[Finding]:
    """index.json's ``withheld_events`` against what the records allow.

    The list is not signed (export holds no key), so a middleman could add or remove it;
    what can be checked is checked: each entry names, once, a record of the ledger the
    checkpoint covers that the bundle does not carry and that comes after an exported
    item (an event naming an item is recorded after it), with the one reason export
    writes. That the list is complete cannot be checked from the bundle: the report says
    so (docs/bundle.md, "Selective disclosure").
    """
    findings: list[Finding] = []
    first_item = min(
        (seq for seq, s in parsed.items() if s.record.type == "item"), default=tree_size
    )
    seen: set[int] = set()
    for entry in index.get("withheld_events", []):
        seq = entry.get("record")
        why = None
        if set(entry) != {"record", "reason"} or entry.get("reason") != WITHHELD_REASON:
            why = f"a withheld_events entry is not {{record, reason: {WITHHELD_REASON!r}}}"
        elif not isinstance(seq, int) or isinstance(seq, bool):
            why = "a withheld_events entry does not name a record number"
        elif seq in seen:
            why = f"withheld_events lists record {seq} twice"
        elif seq in parsed:
            why = f"withheld_events lists record {seq}, which the bundle carries"
        elif not first_item < seq < tree_size:
            why = (
                f"withheld_events lists record {seq}, which cannot be an event about the "
                f"exported items in the {tree_size}-record ledger"
            )
        if why is not None:
            findings.append(Finding(Code.BUNDLE_MALFORMED, "custody/index.json", why))
        if isinstance(seq, int):
            seen.add(seq)
    return findings


def _judge(
    facts: dict[int, LineFacts],
    counted: list[int],
    policy: TrustPolicy,
    compromised: dict[str, Compromise],
) -> tuple[KeyRules, set[int]]:
    """The key rules over the counted records, and which of them are authentic and allowed."""
    rules = KeyRules(anchors=policy.fingerprints, pinned=policy.pinned, compromised=compromised)
    authentic = {seq for seq in counted if rules.judge(seq, facts[seq])}
    return rules, authentic


def _held_findings(
    held: TrustedCheckpoint,
    tree_size: int,
    root: bytes,
    source: BundleSource,
    index: dict[str, Any],
) -> list[Finding]:
    """Does the bundle's checkpoint extend the checkpoint the verifier holds?"""
    where = f"held checkpoint ({held.source})"
    if held.tree_size == tree_size:
        if held.root == root:
            return []
        return [
            Finding(
                Code.NOT_APPEND_ONLY,
                where,
                f"the bundle's checkpoint has the size of the one you hold ({tree_size} records) "
                "but another root: it is not the ledger your checkpoint covers",
                None,
                held.root.hex(),
                root.hex(),
            )
        ]
    if held.tree_size < tree_size:
        for rel in _consistency_files(index, source)[0]:
            try:
                document = _proof_document(source, rel)
            except (RecordError, FileNotFoundError, InputError):
                continue
            if not isinstance(document, dict) or document.get("old_size") != held.tree_size:
                continue
            if document.get("old_root") != held.root.hex():
                return [
                    Finding(
                        Code.NOT_APPEND_ONLY,
                        where,
                        f"the bundle's ledger at {held.tree_size} records is not the one your "
                        "checkpoint covers: it was rewritten, or is another ledger",
                        None,
                        held.root.hex(),
                        str(document.get("old_root")),
                    )
                ]
            if check_document(document).ok and document.get("new_root") == root.hex():
                return []
    return [
        Finding(
            Code.HELD_CHECKPOINT_UNPROVEN,
            where,
            f"the bundle carries no proof that its checkpoint ({tree_size} records) extends the "
            f"one you hold ({held.tree_size} records): it cannot be shown to be that ledger",
            None,
            f"a consistency proof from {held.tree_size} records",
            "none",
        )
    ]


def _verify_tokens(
    source: BundleSource,
    result: VerificationResult,
    parsed: dict[int, SignedRecord],
    checkpoint: SignedRecord | None,
    policy: TrustPolicy,
) -> None:
    from custody.timestamps.stamping import review_findings, review_tokens, token_rows

    if checkpoint is None:
        return
    stamps = [
        (seq, TimestampBody.from_json(s.record.body))
        for seq, s in sorted(parsed.items())
        if s.record.type == "timestamp"
    ]

    review = review_tokens(
        _token_reader(source), stamps, {checkpoint.seq: checkpoint.line}, policy.tsa
    )
    findings = review_findings(review)
    if not review.valid:
        findings.append(
            Finding(
                Code.TIMESTAMP_PENDING,
                f"record {checkpoint.seq}",
                "the checkpoint has no trusted timestamp in this bundle",
                checkpoint.seq,
                required=policy.require_timestamps,
            )
        )
    result.add_check(
        "timestamps",
        findings,
        review.checked,
        f"{len(review.valid)} of {review.checked} RFC 3161 tokens over the checkpoint valid"
        if review.checked
        else NO_TOKENS.replace("'custody timestamp' gets tokens", "the bundle carries none"),
    )
    result.timestamps = token_rows(review)


def _token_reader(source: BundleSource) -> Any:
    def read_token(token_file: str) -> bytes:
        # A token travels as custody/timestamps/<its file name>; nothing else is read.
        name = posixpath.basename(token_file)
        if name in ("", ".", ".."):
            raise FileNotFoundError(token_file)
        try:
            return source.read(f"custody/timestamps/{name}", limit=1 << 22)
        except InputError as exc:
            raise FileNotFoundError(str(exc)) from None

    return read_token


_MATERIAL_DIRS = {
    "certificate": "custody/validation/certs/",
    "crl": "custody/validation/crls/",
    "ocsp": "custody/validation/ocsp/",
}


def _verify_longterm(
    source: BundleSource,
    result: VerificationResult,
    parsed: dict[int, SignedRecord],
    checkpoint: SignedRecord | None,
    tsa_trust: Any,
    at: datetime | None,
    index: dict[str, Any],
) -> None:
    """The checkpoint's RFC 4998 evidence record, the validation material, and (with
    ``at``) the checkpoint's proof of time at that date; index.json only says where to
    look: every file is checked for what it is."""
    from custody.timestamps.longterm_check import ObjectEvidence, judge
    from custody.timestamps.material import ValidationMaterial
    from custody.timestamps.rfc3161 import token_of

    entries = [e for e in index.get("evidence_records", []) if isinstance(e, dict)]
    listed = [e for e in index.get("validation", []) if isinstance(e, dict)]
    if checkpoint is None or not (entries or listed or at is not None):
        return
    findings: list[Finding] = []
    buckets: dict[str, list[bytes]] = {k: [] for k in _MATERIAL_DIRS}
    for entry in listed:
        kind, rel, digest = entry.get("kind"), entry.get("file"), entry.get("sha256")
        if kind not in _MATERIAL_DIRS or not isinstance(rel, str) or not isinstance(digest, str):
            findings.append(
                Finding(
                    Code.BUNDLE_MALFORMED, "custody/index.json", "a 'validation' entry is malformed"
                )
            )
            continue
        if not rel.startswith(_MATERIAL_DIRS[kind]) or rel not in source.files:
            findings.append(
                Finding(
                    Code.VALIDATION_MATERIAL_INVALID, rel, "not in the bundle where index.json says"
                )
            )
            continue
        data = source.read(rel, limit=1 << 24)
        if _sha256(data) != digest:
            findings.append(
                Finding(
                    Code.VALIDATION_MATERIAL_INVALID,
                    rel,
                    "is not the file index.json lists (SHA-256 differs)",
                    None,
                    digest,
                    _sha256(data),
                )
            )
            continue
        buckets[kind].append(data)
    material = ValidationMaterial(
        certificates=tuple(buckets["certificate"]),
        crls=tuple(buckets["crl"]),
        ocsp_responses=tuple(buckets["ocsp"]),
    )
    read_token = _token_reader(source)
    stamps = {
        seq: TimestampBody.from_json(s.record.body)
        for seq, s in parsed.items()
        if s.record.type == "timestamp" and s.record.body.get("checkpoint") == checkpoint.seq
    }

    def tokens_of(seqs: Sequence[int]) -> tuple[tuple[bytes, ...] | None, tuple[bytes, ...], str]:
        members, tokens = [checkpoint.line], []
        for seq in seqs:
            body = stamps.get(seq)
            if body is None:
                return (
                    None,
                    (),
                    f"record {seq} is not a timestamp over checkpoint {checkpoint.seq}",
                )
            try:
                raw = read_token(body.token_file)
            except FileNotFoundError:
                return None, (), f"{body.token_file} is not in the bundle"
            members.append(raw)
            try:
                tokens.append(token_of(raw))
            except ValueError:
                continue
        return tuple(members), tuple(tokens), ""

    sets = []
    covered = False
    for entry in entries:
        rel, seqs = entry.get("file"), entry.get("timestamps")
        if (
            not isinstance(rel, str)
            or not rel.startswith("custody/evidence/")
            or rel not in source.files
            or entry.get("checkpoint") != checkpoint.seq
            or not isinstance(seqs, list)
            or not all(isinstance(x, int) for x in seqs)
        ):
            findings.append(
                Finding(
                    Code.BUNDLE_MALFORMED,
                    "custody/index.json",
                    f"an 'evidence_records' entry ({rel!r}) is malformed or not of this checkpoint",
                )
            )
            continue
        members, tokens, why = tokens_of(seqs)
        der = source.read(rel, limit=1 << 24)
        sets.append((rel, None, [ObjectEvidence(checkpoint.seq, der, members, tokens, why)]))
        covered = True
    bare = []
    if not covered:
        _members, tokens, _why = tokens_of(sorted(stamps))
        if tokens:
            bare.append((checkpoint.seq, checkpoint.line, list(tokens)))
    review = judge(sets, bare, trust=tsa_trust, material=material, at=at)
    for row in review.rows:
        row["file"] = row["label"]
    when = format_time(review.judged_at) if review.judged_at else ""
    result.add_check(
        "long-term evidence",
        findings + review.findings,
        review.checked,
        f"{review.checked} RFC 4998 evidence record(s) checked against the checkpoint line "
        f"and token files; {len(listed)} validation material file(s); judged at {when}"
        + (" (long-term validity required)" if at is not None else ""),
    )
    result.evidence_records = review.rows


def _sha256(data: bytes) -> str:
    digest = new_hash("sha256")
    digest.update(data)
    return str(digest.hexdigest())
