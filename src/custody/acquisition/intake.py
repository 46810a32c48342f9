"""Taking in what the field already produces: a WhatsApp or Telegram export, a ProofMode
bundle or a BagIt bag, with everything the source says about each file.

``intake(root, path, kind, signer)`` is ``custody ingest PATH --as KIND``. In order:

1. **read the source before anything enters the evidence tree.** A folder is read where it
   is. A ``.zip`` is opened with ``safezip.SafeZip`` (its directory checked before a byte is
   decompressed), measured, and unpacked by ``SafeZip.extract_all`` into a private folder
   under ``.custody/tmp`` - each file created ``O_EXCL | O_NOFOLLOW`` and checked against a
   second decompression. The reader of the kind then reads it: ``read_whatsapp_export``
   (the archive itself, or the folder), ``read_telegram_export``, ``read_proofmode`` (GnuPG
   checks every signature), or ``validate_bag`` - and an invalid bag is refused here, with
   every reason, before anything is copied;
2. **copy, proven identical, never altered.** A folder's files are copied by
   ``ingest._copy_verified`` (hashed while read, re-read from disk, compared); a zip is
   copied in as it is (its digest must be the one just read), and each unpacked file is
   linked into place and re-read, its digest compared with the member's. Every file
   a reader measured must still have the digest the reader saw, or its claims are not
   attached (``unlinked``);
3. **record.** Each copy is catalogued with its ``acquisition`` (for a member: the archive,
   the member's name, both digests) and its ``provenance`` (``source_records``): the claims
   the source makes about it and the checks custody made of the source's own proofs.
   Media the source names but does not hold are listed on the chat file's record (and in
   the report returned), never skipped in silence.

Where things go: a folder ``NAME`` is copied to ``INTO/NAME/...``; an archive ``NAME.zip``
to ``INTO/NAME.zip``, and its members to ``INTO/NAME/...``.

May import: ``custody.acquisition`` (``ingest``, ``catalogue``, ``source_records``, the
readers under ``sources``), ``custody.ledger``, ``custody.evidence`` and lower layers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from custody.acquisition import source_records as records
from custody.acquisition.catalogue import (
    Candidate,
    Descriptive,
    Skipped,
    catalogue,
    exiftool_missing,
)
from custody.acquisition.ingest import (
    AlreadyIngested,
    CopyFailure,
    IngestReport,
    _checked_into,
    _copy_verified,
    _private_tmp,
    _quarantine,
    _SourceFile,
    _walk_source,
    volume_of,
)
from custody.acquisition.source_reading import (
    Missing,
    Reading,
    read_bag,
    read_chat,
    read_proofmode_bundle,
)
from custody.acquisition.sources.claims import Problem
from custody.acquisition.sources.safezip import ExtractedFile, SafeZip
from custody.acquisition.sources.said import translated
from custody.clock import Clock, utc_now
from custody.errors import InputError, RootError, StorageError, ToolMissingError, UsageError
from custody.evidence.hashing import EvidenceReadError, FileDigest, hash_file
from custody.i18n import N_, _
from custody.keys.keyring import SigningKey
from custody.ledger.bodies import Acquisition, ItemBody
from custody.ledger.provenance import Provenance
from custody.progress import IngestObserver, NullObserver
from custody.root import EvidenceRoot
from custody.system.files import describe_os_error, fsync_dir

KINDS = ("whatsapp", "telegram", "proofmode", "bagit")
# What each kind takes, said when something else was given.
_WHAT = {
    "whatsapp": N_("the export's folder or its .zip (as WhatsApp shares it)"),
    "telegram": N_("the export's folder (with result.json) or a .zip of it"),
    "proofmode": N_("the bundle's folder or its .zip (as ProofMode shares it)"),
    "bagit": N_("the bag's folder or a .zip of it"),
}


@dataclass(frozen=True)
class SourceCheck:
    """One check custody made of the source's own proofs at intake (ProofMode)."""

    path: str  # the item, relative to the root
    name: str
    state: str  # passed / failed / not_checkable
    reason: str


@dataclass
class IntakeReport:
    """What one intake did: the ingest's copies and records, and what the source said."""

    kind: str
    given: str
    source: str  # the sentence naming the source ("the WhatsApp export '…'")
    folder: str  # where its files went, relative to the root
    archive: str | None = None  # the archive item, relative to the root
    ingest: IngestReport = field(default_factory=IngestReport)
    roles: dict[str, str] = field(default_factory=dict)  # item path -> role
    missing: list[Missing] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    checks: list[SourceCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the bag's own warnings
    unlinked: list[tuple[str, str]] = field(default_factory=list)  # (path, why no claims)
    already_recorded: list[str] = field(default_factory=list)  # recorded earlier, no claims

    @property
    def failed_checks(self) -> list[SourceCheck]:
        return [c for c in self.checks if c.state == "failed"]


@dataclass
class _Run:
    """One intake's settings and its report, handed from step to step."""

    root: EvidenceRoot
    report: IntakeReport
    signer: SigningKey
    descriptive: Descriptive
    observer: IngestObserver
    clock: Clock
    anchors: bytes | None
    expected: Sequence[str] | None
    tmp_dir: bytes


def intake(
    root: EvidenceRoot,
    path: str,
    kind: str,
    signer: SigningKey,
    *,
    into: str | None = None,
    descriptive: Descriptive | None = None,
    observer: IngestObserver | None = None,
    clock: Clock = utc_now,
    c2pa_anchors: bytes | None = None,
    expected_fingerprints: Sequence[str] | None = None,
) -> IntakeReport:
    """Take in the export, bundle or bag at ``path`` as ``kind``; see the module docstring.

    Raises ``UsageError`` for a path that cannot be a source of this kind,
    ``BagInvalidError`` (an ``InputError``) for an invalid bag, ``UnsafeArchiveError``
    (an ``InputError``) for a hostile archive, ``ToolMissingError`` without exiftool or
    GnuPG; nothing is copied in any of these cases.
    """
    from custody.acquisition.catalogue import ensure_appendable
    from custody.evidence.exiftool import exiftool_available
    from custody.ledger.backends import open_ledger

    if kind not in KINDS:
        raise UsageError(
            _("--as {kind}: choose one of {kinds}").format(kind=repr(kind), kinds=", ".join(KINDS))
        )
    if expected_fingerprints and kind != "proofmode":
        raise UsageError(_("--proofmode-key applies to --as proofmode only"))
    observer = observer or NullObserver()
    if not exiftool_available():
        raise ToolMissingError(exiftool_missing())
    into_rel = _checked_into(root, into)
    absolute = os.path.abspath(path)
    is_zip = _check_source(root, path, absolute, kind)
    with open_ledger(root) as ledger:
        ensure_appendable(ledger, signer, clock)
    name = os.path.basename(absolute.rstrip("/"))
    stem = name[:-4] if is_zip and name.lower().endswith(".zip") and len(name) > 4 else name
    if is_zip and stem == name:
        stem = name + "-contents"
    folder_rel = (into_rel + b"/" if into_rel else b"") + os.fsencode(stem)
    report = IntakeReport(kind, path, "", folder_rel.decode("utf-8", "replace"))
    run = _Run(
        root,
        report,
        signer,
        descriptive or Descriptive(),
        observer,
        clock,
        c2pa_anchors,
        expected_fingerprints,
        _private_tmp(root),
    )
    try:
        if is_zip:
            _from_archive(run, absolute, name, into_rel, folder_rel)
        else:
            _from_folder(run, absolute, name, folder_rel)
    finally:
        shutil.rmtree(run.tmp_dir, ignore_errors=True)
    return report


# --- checking what was given ---------------------------------------------------------------


def _check_source(root: EvidenceRoot, given: str, absolute: str, kind: str) -> bool:
    """True for a zip archive, False for a folder; UsageError for anything else."""
    try:
        st = os.lstat(absolute)
    except OSError:
        raise UsageError(_("{path}: no such file or folder").format(path=given)) from None
    with contextlib.suppress(RootError):
        root.relative(absolute)
        raise UsageError(
            _("{path} is already inside the evidence root; ingest it from outside").format(
                path=given
            )
        )
    real = os.path.realpath(absolute).rstrip("/") + "/"
    if (str(root.path) + "/").startswith(real):
        raise UsageError(
            _("{path} contains the evidence root; ingest a folder beside it").format(path=given)
        )
    what = _(_WHAT[kind])
    if stat.S_ISLNK(st.st_mode):
        raise UsageError(
            _("{path} is a symbolic link; give {what} itself").format(path=given, what=what)
        )
    if stat.S_ISDIR(st.st_mode):
        return False
    if stat.S_ISREG(st.st_mode):
        try:
            with open(absolute, "rb") as handle:
                head = handle.read(4)
        except OSError as exc:
            raise InputError(
                _("cannot read {path}: {why}").format(path=given, why=exc.strerror)
            ) from None
        if head in (b"PK\x03\x04", b"PK\x05\x06"):
            return True
    raise UsageError(_("{path}: --as {kind} takes {what}").format(path=given, kind=kind, what=what))


# --- reading each kind ---------------------------------------------------------------------------


def _read(
    run: _Run, export_root: Path, name: str, zip_path: Path | None, folder_rel: str
) -> Reading:
    """Read the source at ``export_root`` (a folder; ``zip_path`` when it came as one)."""
    kind = run.report.kind
    if kind in ("whatsapp", "telegram"):
        return read_chat(kind, export_root, name, zip_path, folder_rel)
    if kind == "proofmode":
        tmp = Path(os.fsdecode(run.tmp_dir))
        return read_proofmode_bundle(export_root, name, folder_rel, tmp, run.anchors, run.expected)
    return read_bag(export_root, name, folder_rel)


# --- a folder ------------------------------------------------------------------------------------


def _from_folder(run: _Run, absolute: str, name: str, folder_rel: bytes) -> None:
    root, report, observer, tmp_dir = run.root, run.report, run.observer, run.tmp_dir
    reading = _read(run, Path(absolute), name, None, report.folder)
    _note_reading(report, reading)
    files: list[_SourceFile] = []
    for entry in _walk_source(os.fsencode(absolute), folder_rel):
        if isinstance(entry, Skipped):
            report.ingest.skipped.append(entry)
        else:
            files.append(entry)
    observer.planned(len(files), sum(_size(f.path) for f in files))
    algorithms = root.config().digests
    volume = volume_of(absolute)
    candidates: list[Candidate | Skipped] = []
    for f in files:
        if not _inside(os.fsencode(root.path), os.fsencode(root.path) + b"/" + f.rel):
            report.ingest.failures.append(_through_link(os.fsdecode(f.path), f.rel.decode()))
            continue
        try:
            outcome = _copy_verified(f, os.fsencode(root.path), tmp_dir, algorithms, observer)
        except EvidenceReadError as exc:
            report.ingest.skipped.append(Skipped(os.fsdecode(f.path), exc.reason))
            continue
        if isinstance(outcome, CopyFailure):
            report.ingest.failures.append(outcome)
            if outcome.made_by_us:
                _quarantine(root, os.fsencode(root.path) + b"/" + f.rel, f.rel)
            continue
        assert not isinstance(outcome, AlreadyIngested)  # only when asked (ingest's 'earlier')
        source_digest, copy_digest, fresh = outcome
        _count(report, source_digest, fresh)
        in_source = f.rel[len(folder_rel) + 1 :].decode("utf-8", "surrogateescape")
        acquisition = Acquisition(
            f.path.decode("utf-8", errors="replace"), source_digest.digests["sha256"], volume
        )
        provenance = _claims_for(report, reading, in_source, source_digest.digests["sha256"], f.rel)
        candidates.append(
            Candidate(
                f.rel, copy_digest.size, copy_digest.mtime_ns, acquisition, copy_digest, provenance
            )
        )
    _record(run, candidates)


# --- an archive ----------------------------------------------------------------------------------


def _from_archive(run: _Run, absolute: str, name: str, into_rel: bytes, folder_rel: bytes) -> None:
    root, report, observer, tmp_dir = run.root, run.report, run.observer, run.tmp_dir
    staged = Path(os.fsdecode(tmp_dir)) / "unpacked"
    with SafeZip(Path(absolute)) as archive:
        received = archive.measure_archive()
        report.problems.extend(_shown_problem(p) for p in archive.problems)
        extracted = archive.extract_all(staged, durable=True)
    export_root, prefix = _export_root(report.kind, staged, name)
    reading = _read(run, export_root, name, Path(absolute), report.folder + prefix)
    _note_reading(report, reading)
    algorithms = root.config().digests
    volume = volume_of(absolute)
    root_b = os.fsencode(root.path)
    archive_rel = (into_rel + b"/" if into_rel else b"") + os.fsencode(name)
    report.archive = archive_rel.decode("utf-8", "replace")
    observer.planned(1 + len(extracted), received.size + sum(f.size for f in extracted))
    # The archive as received, copied in first: its digest must be the one just read.
    if not _inside(root_b, root_b + b"/" + archive_rel):
        raise UsageError(
            _("--into: {path} would be written through a link").format(path=report.archive)
        )
    outcome = _copy_verified(
        _SourceFile(os.fsencode(absolute), archive_rel),
        root_b,  # the copy goes to root_b/archive_rel, opened without following links
        tmp_dir,
        algorithms,
        observer,
    )
    if isinstance(outcome, CopyFailure):
        if outcome.made_by_us:
            _quarantine(root, root_b + b"/" + archive_rel, archive_rel)
        raise InputError(
            _("{path}: the archive could not be copied in: {why}").format(
                path=report.given, why=outcome.reason
            )
        )
    assert not isinstance(outcome, AlreadyIngested)  # only when asked (ingest's 'earlier')
    source_digest, copy_digest, fresh = outcome
    if source_digest.digests["sha256"] != received.sha256:
        raise InputError(
            _(
                "{path} changed while it was being read (SHA-256 {unpacked} when unpacked, "
                "{copied} when copied); nothing recorded"
            ).format(
                path=report.given,
                unpacked=received.sha256,
                copied=source_digest.digests["sha256"],
            )
        )
    _count(report, source_digest, fresh)
    archive_sha = received.sha256
    candidates: list[Candidate | Skipped] = [
        Candidate(
            archive_rel,
            copy_digest.size,
            copy_digest.mtime_ns,
            Acquisition(absolute, archive_sha, volume),
            copy_digest,
            (records.part(report.kind, "archive", reading.source, None),),
        )
    ]
    report.roles[report.archive] = "archive"
    for member in extracted:
        rel = folder_rel + b"/" + member.name.encode("utf-8")
        placed = _place(root, member, rel, algorithms, observer)
        if isinstance(placed, CopyFailure):
            report.ingest.failures.append(placed)
            continue
        digest, fresh = placed
        report.ingest.copied += int(fresh)
        report.ingest.already_present += int(not fresh)
        report.ingest.bytes_copied += member.size if fresh else 0
        in_source = member.name[len(prefix.lstrip("/")) + 1 :] if prefix else member.name
        provenance: tuple[Provenance, ...] = ()
        if not prefix or member.name.startswith(prefix.lstrip("/") + "/"):
            provenance = _claims_for(report, reading, in_source, member.sha256, rel)
        else:
            report.roles[rel.decode("utf-8", "replace")] = "beside the source in the archive"
        acquisition = Acquisition(absolute, member.sha256, volume, member.name, archive_sha)
        candidates.append(
            Candidate(rel, digest.size, digest.mtime_ns, acquisition, digest, provenance)
        )
    _record(run, candidates)


def _export_root(kind: str, staged: Path, name: str) -> tuple[Path, str]:
    """The folder inside an unpacked archive that holds the source, and its path there
    ("" or "/FOLDER"): the top, or the one folder at the top that holds the marker file."""
    marker = {"telegram": "result.json", "bagit": "bagit.txt"}.get(kind)
    if marker is None or (staged / marker).is_file():
        return staged, ""
    tops = [p for p in staged.iterdir() if p.is_dir() and (p / marker).is_file()]
    if len(tops) == 1:
        return tops[0], "/" + tops[0].name
    if kind == "telegram":
        message = _(
            "{name}: no {marker} at the top of the archive or in exactly one folder at its "
            "top; not a Telegram Desktop export"
        )
    else:
        message = _(
            "{name}: no {marker} at the top of the archive or in exactly one folder at its "
            "top; not a BagIt bag"
        )
    raise InputError(message.format(name=name, marker=marker))


def _place(
    root: EvidenceRoot,
    member: ExtractedFile,
    rel: bytes,
    algorithms: Sequence[str],
    observer: IngestObserver,
) -> tuple[FileDigest, bool] | CopyFailure:
    """Link an unpacked member into place (never replacing a file) and re-read it there."""
    root_b = os.fsencode(root.path)
    dest = root_b + b"/" + rel
    shown = os.fsdecode(dest)
    fresh = not os.path.lexists(dest)
    if fresh:
        try:
            fd = os.open(member.path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fchmod(fd, 0o444)
            finally:
                os.close(fd)
            if not _inside(root_b, dest):
                return _through_link(member.name, shown)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.link(member.path, dest)
            fsync_dir(Path(os.fsdecode(os.path.dirname(dest))))
        except OSError as exc:
            raise StorageError(describe_os_error(exc, "copy to", dest)) from None
        observer.copy_written(
            _("{path} (member {name})").format(path=member.path, name=member.name), shown
        )
    try:
        digest = hash_file(dest, algorithms, progress=observer.advance)
    except EvidenceReadError as exc:
        return CopyFailure(
            member.name, shown, _("copy could not be re-read: {why}").format(why=exc.reason), fresh
        )
    if digest.digests["sha256"] != member.sha256 or digest.size != member.size:
        failure = CopyFailure(
            member.name,
            shown,
            _("copy does not match the archive member on re-read")
            if fresh
            else _("a different file already exists at the destination"),
            fresh,
        )
        if fresh:
            _quarantine(root, dest, rel)
        return failure
    return digest, fresh


# --- shared ----------------------------------------------------------------------------------


def _inside(root_b: bytes, dest: bytes) -> bool:
    """Whether ``dest``'s folder (its nearest existing ancestor) resolves inside the root:
    a copy is never written through a link planted in the evidence tree."""
    parent = os.path.dirname(dest)
    while not os.path.lexists(parent) and len(parent) > len(root_b):
        parent = os.path.dirname(parent)
    return (os.path.realpath(parent) + b"/").startswith(os.path.realpath(root_b) + b"/")


def _through_link(source: str, dest: str) -> CopyFailure:
    return CopyFailure(source, dest, _("its folder in the evidence root is a link"), False)


def _size(path: bytes) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _count(report: IntakeReport, digest: FileDigest, fresh: bool) -> None:
    if fresh:
        report.ingest.copied += 1
        report.ingest.bytes_copied += digest.size
    else:
        report.ingest.already_present += 1


def _note_reading(report: IntakeReport, reading: Reading) -> None:
    """What the source said, for the report: in the language of the run. The same sentences
    go into the records in English (``reading.entries``); the report is never recorded."""
    report.source = str(translated(reading.source))
    report.missing.extend(
        replace(m, where=str(translated(m.where)), reason=str(translated(m.reason)))
        for m in reading.missing
    )
    report.problems.extend(_shown_problem(p) for p in reading.problems)
    report.warnings.extend(str(translated(w)) for w in reading.warnings)


def _shown_problem(problem: Problem) -> Problem:
    """A problem as the report shows it: in the language of the run (records keep English)."""
    return replace(
        problem, message=str(translated(problem.message)), where=str(translated(problem.where))
    )


def _claims_for(
    report: IntakeReport, reading: Reading, in_source: str, sha256: str, rel: bytes
) -> tuple[Provenance, ...]:
    """The entries for the file at ``in_source``, if its bytes are the ones the reader saw."""
    shown = rel.decode("utf-8", "replace")
    entries = reading.entries.get(in_source)
    seen = reading.measured.get(in_source)
    if seen is not None and seen != sha256:
        report.unlinked.append(
            (
                shown,
                _(
                    "its SHA-256 is {now}, but {then} when the source was read: it changed "
                    "in between, so what the source says of it is not attached"
                ).format(now=sha256, then=seen),
            )
        )
        report.roles[shown] = "changed while read"
        return ()
    if entries is None:
        if not reading.default_role:
            return ()
        entries = [records.part(report.kind, reading.default_role, reading.source, in_source)]
    report.roles[shown] = entries[0].role
    if report.kind == "proofmode":
        for check in reading.checks:
            if check[0] == in_source:
                reason = str(translated(check[3]))  # the record keeps the English
                report.checks.append(SourceCheck(shown, check[1], check[2], reason))
    return tuple(entries)


def _record(run: _Run, candidates: list[Candidate | Skipped]) -> None:
    """Catalogue the copies, then say which ones were recorded earlier without claims."""
    from custody.ledger.backends import open_ledger

    root, report = run.root, run.report
    report.ingest.catalogue = catalogue(
        root,
        [],
        run.signer,
        candidates=candidates,
        c2pa_anchors=run.anchors,
        descriptive=run.descriptive,
        clock=run.clock,
    )
    written = {o.path for o in report.ingest.catalogue.outcomes}
    earlier = [
        c
        for c in candidates
        if isinstance(c, Candidate) and c.provenance and c.display not in written
    ]
    if not earlier:
        return
    with open_ledger(root) as ledger:
        for candidate in earlier:
            row = ledger.index.latest_item_at(candidate.rel)
            if row is None:
                continue
            body: ItemBody = ledger.read(row.seq).record.typed_body()
            kinds = {p.kind for p in body.provenance}
            if report.kind not in kinds:
                report.already_recorded.append(candidate.display)
