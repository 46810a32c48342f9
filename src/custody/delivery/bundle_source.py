"""Reading a received bundle, folder or zip, as one snapshot of its bytes: ``BundleSource``
reads each file once (or pins the SHA-256 of what it streamed, and refuses a later change),
never follows a link, and reads zips through ``custody.acquisition.sources.safezip`` (the
one safe zip reader) held to ``bundle_format``'s limits; the bundle's index, its records
(parsed once) and its proof files from that snapshot; findings bounded per kind
(``Findings``). Nothing here judges the evidence: ``bundle_check`` does.

May import: ``custody.acquisition.sources.safezip``, ``custody.delivery.bundle_format``,
``custody.evidence.hashing``, ``custody.ledger``, ``custody.system.paths``,
``custody.findings``, ``custody.errors``, the standard library.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from custody.acquisition.sources.safezip import DamagedMemberError, SafeZip, ZipLimits
from custody.delivery.bundle_format import (
    LISTED_FINDINGS,
    MAX_MANIFEST_LINE,
    MAX_PROOF_BYTES,
    MAX_ZIP_ENTRIES,
    MAX_ZIP_RATIO,
    MAX_ZIP_TOTAL,
    max_index_bytes,
)
from custody.errors import CustodyError, InputError, RecordError
from custody.evidence.hashing import (
    EvidenceReadError,
    FileChangedError,
    FileIdentity,
    hash_fd,
    new_hash,
)
from custody.findings import Code, Finding
from custody.i18n import _, ngettext
from custody.ledger import canonical
from custody.ledger.records import MAX_LINE_BYTES, SignedRecord
from custody.system.paths import Folder

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
        return _("a path that leaves the bundle")
    if "" in parts or "." in parts:
        return _("a path with an empty or '.' component")
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
                more = count - LISTED_FINDINGS
                message = ngettext(
                    "and {n} more {code} findings of this check, not listed ({count} in all)",
                    "and {n} more {code} findings of this check, not listed ({count} in all)",
                    more,
                ).format(n=more, code=code, count=count)
                out.append(Finding(code, self.summary_item, message, None, None, str(count)))
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
        _(
            "altered or damaged inside the zip: its bytes no longer read back as the zip "
            "recorded them ({why})"
        ).format(why=reason),
        seq,
        _("the bytes the zip recorded (CRC-32 and length)"),
        _("different bytes"),
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
                    _(
                        "{path} is a damaged zip file ({why}): it cannot be verified; ask the "
                        "sender for another copy"
                    ).format(path=path, why=exc)
                ) from None
        elif path.is_file() and path.suffix.lower() == ".zip":
            raise InputError(
                _(
                    "{path} is not a readable zip file (truncated or damaged): it cannot be "
                    "verified; ask the sender for another copy"
                ).format(path=path)
            )
        else:
            raise InputError(
                _("{path} is neither a bundle folder nor a zip file").format(path=path)
            )

    def __enter__(self) -> BundleSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unsafe(self, name: str, why: str) -> None:
        self.findings.append(
            Finding(
                Code.BUNDLE_UNSAFE,
                name,
                _("refused: {why}; nothing is read from it or written for it").format(why=why),
                None,
                _("a plain file inside the bundle"),
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
                    self._unsafe(os.path.relpath(full, base), _("a symbolic link"))
            for name in files:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, base).replace(os.sep, "/")
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    self._unsafe(rel, _("a symbolic link"))
                elif not stat.S_ISREG(st.st_mode):
                    self._unsafe(rel, _("not a regular file"))
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
                        _("refused: {why}; nothing is read from it").format(why=refused.reason),
                    )
                )
            else:
                self._unsafe(refused.name, refused.reason)
        names = [(m.name, m.declared_size) for m in archive.members]
        # A zip made by custody has one top folder; accept a bag at the top level too.
        tops = {n.split("/", 1)[0] for n, _size in names}
        if len(tops) == 1 and not any(n == "bagit.txt" for n, _size in names):
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
            raise InputError(
                _("{file} in the bundle cannot be read: {why}").format(file=rel, why=exc)
            ) from None
        return os.fdopen(fd, "rb")

    def read(self, rel: str, limit: int = 1 << 30) -> bytes:
        """The bytes of ``rel``, read once and then always the same (see the class)."""
        data = self._kept.get(rel)
        if data is None:
            if rel in self.files and self.files[rel] > limit:
                raise InputError(_("{file} in the bundle is implausibly large").format(file=rel))
            with self._reading(rel), self.open(rel) as handle:
                data = handle.read(limit + 1)
            pinned = self._pinned.get(rel)
            if pinned is not None and hashlib.sha256(data).hexdigest() != pinned:
                raise InputError(_changed(rel))
            self._kept[rel] = data
        if len(data) > limit:
            raise InputError(_("{file} in the bundle is implausibly large").format(file=rel))
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
            raise InputError(_changed(rel))

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
                    raise EvidenceReadError(
                        rel, _("read error: {why}").format(why=exc.strerror)
                    ) from None
                after = FileIdentity.of(os.fstat(fd))
            if before != after or size != before.size:
                raise FileChangedError(rel, _("file changed while it was being read"))
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


def _changed(rel: str) -> str:
    return _(
        "{file} in the bundle changed while it was being checked; nothing was written: "
        "check the bundle again when nothing else is changing it"
    ).format(file=rel)


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


def manifest_entries(
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
                    Finding(
                        Code.BUNDLE_MALFORMED,
                        name,
                        _("line {number} is implausibly long").format(number=number),
                    )
                )
                continue
            line = raw.decode("utf-8", "replace")
            if not line.strip():
                continue
            parts = line.split(None, 1) if "  " not in line else line.split("  ", 1)
            if len(parts) != 2:
                findings.append(
                    Finding(
                        Code.BUNDLE_MALFORMED,
                        name,
                        _("line {number} is not 'digest  path'").format(number=number),
                    )
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
        findings.append(
            Finding(Code.BUNDLE_MALFORMED, name, _("cannot be read: {why}").format(why=exc))
        )
    return entries, others, other_count


def load_index(source: BundleSource) -> dict[str, Any]:
    """custody/index.json, parsed strictly and of the shape the checks rely on.

    It is untrusted input like everything in a bundle: a nested, mistyped or oversized
    index is unusable input (InputError), never a crash. Its size is bounded by the
    bundle's: a few KiB per file it could describe.
    """
    try:
        index = canonical.decode(
            source.read("custody/index.json", limit=max_index_bytes(len(source.files))),
            require_canonical=False,
        )
    except RecordError as exc:
        raise InputError(
            _("custody/index.json is not a custody bundle index: {why}").format(why=exc)
        ) from None
    checkpoint = index.get("checkpoint") if isinstance(index, dict) else None
    if not isinstance(checkpoint, dict):
        raise InputError(_("custody/index.json is not a custody bundle index: no checkpoint"))
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
        raise InputError(
            _(
                "custody/index.json is not a custody bundle index: the checkpoint needs a "
                "record, a tree size and a root"
            )
        )
    for name in ("items", "consistency", "timestamps", "keys", "withheld_events", "cosignatures"):
        members = index.get(name, [])
        if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
            raise InputError(
                _(
                    "custody/index.json is not a custody bundle index: '{name}' is not a list of "
                    "objects"
                ).format(name=name)
            )
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
            message = ngettext(
                "holds more lines than a bundle of {n} files can prove; lines after {most} are "
                "not read",
                "holds more lines than a bundle of {n} files can prove; lines after {most} are "
                "not read",
                len(source.files),
            ).format(n=len(source.files), most=most)
            sink.append(Finding(Code.BUNDLE_MALFORMED, "custody/records.jsonl", message))
            break
        where = f"records.jsonl line {number}"
        if line is None:
            sink.append(
                Finding(
                    Code.RECORD_MALFORMED,
                    where,
                    _("the line is longer than the {size} MiB a record may be").format(
                        size=MAX_LINE_BYTES >> 20
                    ),
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
            sink.append(Finding(Code.RECORD_DUPLICATED, f"record {signed.seq}", _("listed twice")))
            continue
        parsed[signed.seq] = signed
    return parsed, sink


def proof_document(source: BundleSource, rel: str) -> Any:
    """A proof file's JSON (any shape: ``check_document`` judges it); RecordError,
    InputError or FileNotFoundError when it cannot be read."""
    return canonical.decode(
        source.read(rel, limit=MAX_PROOF_BYTES).strip(), require_canonical=False
    )
