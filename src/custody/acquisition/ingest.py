"""Acquisition: copying files from outside the evidence root in, proven identical.

For each source file: read it once (read-only, links never followed), hashing while
writing the copy to a private temporary file under ``.custody/tmp``; fsync; give the copy
the source's modification time; move it into place without ever replacing an existing
file; then re-read the copy from disk and compare every digest with the source's. Only a
copy that matches is catalogued, with where it came from (source path, volume label and
UUID where the system knows them). A copy that does not match is moved to
``.custody/quarantine/`` and reported; the source is never touched.

Re-running an interrupted ingest skips copies already in place and matching their
source, and finishes the rest; an interruption (Ctrl-C) is reported as ``IngestInterrupted``,
saying how many copies are in place but not yet catalogued.

Content the ledger already holds at another path (the same card ingested a second time,
into another folder) is recognised by its digests while it is read, and not copied again:
the report names where it went and when (``AlreadyIngested``). ``again=True`` copies it
anyway (recorded as a duplicate of the earlier item).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from custody.acquisition.catalogue import (
    Candidate,
    CatalogueReport,
    Descriptive,
    Skipped,
    catalogue,
    ensure_appendable,
    exiftool_missing,
)
from custody.clock import Clock, utc_now
from custody.errors import (
    CustodyError,
    ExitCode,
    RootError,
    StorageError,
    UnsafePathError,
    UsageError,
)
from custody.evidence.hashing import (
    EvidenceReadError,
    FileDigest,
    FileIdentity,
    available_cores,
    hash_fd,
    hash_file,
    open_evidence,
)
from custody.i18n import _, ngettext
from custody.keys.keyring import SigningKey
from custody.ledger.backends import open_ledger
from custody.ledger.bodies import Acquisition
from custody.progress import IngestObserver, NullObserver
from custody.root import EvidenceRoot
from custody.system.files import describe_os_error, write_all
from custody.system.paths import Folder


@dataclass(frozen=True)
class CopyFailure:
    source: str
    copy: str
    reason: str
    made_by_us: bool = True  # only our own bad copies are moved to quarantine


@dataclass(frozen=True)
class AlreadyIngested:
    """A source file whose content the ledger already holds elsewhere: not copied again."""

    source: str
    size: int
    sha256: str
    seq: int  # the earliest item record of this content
    path: str  # where that record says it is, relative to the root
    time: str  # when it was recorded (UTC)
    ingested: bool  # True: it came in by ingest (False: catalogued in place)


@dataclass
class IngestReport:
    copied: int = 0
    already_present: int = 0
    bytes_copied: int = 0
    failures: list[CopyFailure] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    catalogue: CatalogueReport | None = None
    already_ingested: list[AlreadyIngested] = field(default_factory=list)


class IngestInterrupted(CustodyError):
    """Ctrl-C during an ingest: copies may be in place that the ledger does not record yet."""

    exit_code = ExitCode.INTERRUPTED


def _interrupted(report: IngestReport, into: bytes, cataloguing: bool) -> IngestInterrupted:
    folder = into.decode("utf-8", "replace") or _("the evidence root")
    made = report.copied + report.already_present
    if cataloguing:
        state = ngettext(
            "{n} file was copied into {folder} and proven identical; cataloguing had begun, "
            "and it may not be recorded in the ledger yet",
            "{n} files were copied into {folder} and proven identical; cataloguing had "
            "begun, and some of them may not be recorded in the ledger yet",
            made,
        ).format(n=made, folder=folder)
    elif made:
        state = ngettext(
            "{n} file was copied into {folder} and proven identical but is NOT yet "
            "catalogued (the ledger does not record it yet)",
            "{n} files were copied into {folder} and proven identical but are NOT yet "
            "catalogued (the ledger does not record them yet)",
            made,
        ).format(n=made, folder=folder)
    else:
        state = _("no copy was completed; nothing was catalogued")
    return IngestInterrupted(
        _(
            "interrupted: {state}. Run the same command again to finish: copies already in "
            "place are re-read and compared with their sources, not copied again, and then "
            "catalogued"
        ).format(state=state)
    )


@dataclass(frozen=True)
class _SourceFile:
    path: bytes  # absolute
    rel: bytes  # destination path relative to the evidence root


def _walk_source(source: bytes, dest_rel: bytes) -> Iterator[_SourceFile | Skipped]:
    stack = [(source, dest_rel)]
    while stack:
        path, rel = stack.pop()
        display = os.fsdecode(path)
        try:
            st = os.lstat(path)
        except OSError as exc:
            yield Skipped(display, exc.strerror or _("cannot stat"))
            continue
        if stat.S_ISREG(st.st_mode):
            yield _SourceFile(path, rel)
        elif stat.S_ISDIR(st.st_mode):
            try:
                names = sorted(os.listdir(path), reverse=True)
            except OSError as exc:
                yield Skipped(display, _("folder not readable: {why}").format(why=exc.strerror))
                continue
            stack.extend((path + b"/" + n, rel + b"/" + n) for n in names)
        elif stat.S_ISLNK(st.st_mode):
            yield Skipped(display, _("symbolic link, not followed"))
        else:
            yield Skipped(display, _("not a regular file (device, FIFO or socket)"))


def udev_unescape(name: str) -> str:
    """A /dev/disk/by-label name as the label reads: udev writes unsafe bytes as \\xHH.

    udev keeps valid UTF-8 as it is, so the escapes are turned back into bytes and the
    whole decoded as UTF-8 ("unicode_escape" would garble every non-ASCII label).
    """
    raw = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m[1], 16)]), os.fsencode(name))
    return raw.decode("utf-8", errors="replace")


def volume_of(path: str) -> dict[str, str]:
    """Mount point, device, file system, label and UUID of the volume holding ``path``."""
    mount = os.path.abspath(path)
    while not os.path.ismount(mount):
        mount = os.path.dirname(mount)
    info: dict[str, str] = {"mount_point": mount}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _sep, right = line.partition(" - ")
            fields = left.split()
            if len(fields) > 4 and fields[4].replace("\\040", " ") == mount:
                parts = right.split()
                if len(parts) >= 2:
                    info["fstype"], info["device"] = parts[0], parts[1]
    device = info.get("device", "")
    if device.startswith("/dev/"):
        real = os.path.realpath(device)
        for kind in ("label", "uuid"):
            folder = Path(f"/dev/disk/by-{kind}")
            with contextlib.suppress(OSError):
                for entry in folder.iterdir():
                    if os.path.realpath(entry) == real:
                        info[kind] = udev_unescape(entry.name)
    return info


def ingest(
    root: EvidenceRoot,
    sources: Sequence[str],
    signer: SigningKey,
    *,
    into: str | None = None,
    descriptive: Descriptive | None = None,
    observer: IngestObserver | None = None,
    clock: Clock = utc_now,
    again: bool = False,
    jobs: int | None = None,
    c2pa_anchors: bytes | None = None,
) -> IngestReport:
    """Copy ``sources`` into ``root`` (see module docstring), then catalogue the copies.

    ``jobs``: files copied (and later hashed and read by exiftool) at once; default every
    core available.
    """
    from custody.errors import ToolMissingError
    from custody.evidence.exiftool import exiftool_available

    observer = observer or NullObserver()
    descriptive = descriptive or Descriptive()
    if not exiftool_available():
        # Say so before copying anything: a copy that cannot be catalogued helps nobody.
        raise ToolMissingError(exiftool_missing())
    config = root.config()
    algorithms = config.digests
    into_rel = _checked_into(root, into)
    # Why: a ledger that cannot take records (torn final line, read-only, locked) would
    # refuse only after every file was copied in; say so before copying anything.
    with open_ledger(root) as ledger:
        ensure_appendable(ledger, signer, clock)
    report = IngestReport()
    files: list[_SourceFile] = []
    for source in sources:
        absolute = os.path.abspath(source)
        if not os.path.lexists(absolute):
            raise UsageError(_("{path}: no such file or folder").format(path=source))
        with contextlib.suppress(RootError):
            root.relative(absolute)
            raise UsageError(
                _("{path} is already inside the evidence root; use 'custody catalogue'").format(
                    path=source
                )
            )
        real_source = os.path.realpath(absolute).rstrip("/") + "/"
        if (str(root.path) + "/").startswith(real_source):
            raise UsageError(
                _("{path} contains the evidence root; ingest a folder beside it").format(
                    path=source
                )
            )
        name = os.fsencode(os.path.basename(absolute.rstrip("/")) or "volume")
        dest_rel = (into_rel + b"/" + name) if into_rel else name
        for entry in _walk_source(os.fsencode(absolute), dest_rel):
            if isinstance(entry, Skipped):
                report.skipped.append(entry)
            else:
                files.append(entry)
    sizes = {}
    for f in files:
        with contextlib.suppress(OSError):
            sizes[f.path] = os.lstat(f.path).st_size
    observer.planned(len(files), sum(sizes.values()))
    volumes: dict[str, dict[str, str]] = {}
    # Content the root already holds at another path is named, not copied (unless again).
    known = _KnownContent(root)
    tmp_dir = _private_tmp(root)
    candidates: list[Candidate | Skipped] = []
    jobs = jobs or available_cores()

    # Two sources can map to one destination (the same card named twice): their copies
    # must not race, so that the second finds the first in place and only compares.
    guard = threading.Lock()
    locks: dict[bytes, threading.Lock] = {}

    def copy_one(
        f: _SourceFile,
    ) -> tuple[FileDigest, FileDigest, bool] | CopyFailure | Skipped | AlreadyIngested:
        earlier = None if again else known.lookup(f.rel)
        with guard:
            lock = locks.setdefault(f.rel, threading.Lock())
        with lock:
            try:
                return _copy_verified(
                    f, os.fsencode(root.path), tmp_dir, algorithms, observer, earlier
                )
            except EvidenceReadError as exc:
                return Skipped(os.fsdecode(f.path), exc.reason)
            finally:
                observer.finished_file(os.fsdecode(f.path))

    try:
        # ``jobs`` files are copied at once (one waits on fsync while another hashes);
        # results are taken in walk order, so the records come out in that order.
        for f, outcome in _in_order(copy_one, files, jobs):
            dest = os.fsencode(root.path) + b"/" + f.rel
            if isinstance(outcome, Skipped):
                report.skipped.append(outcome)
                continue
            if isinstance(outcome, AlreadyIngested):
                report.already_ingested.append(outcome)
                continue
            _take(root, report, candidates, volumes, f, dest, outcome)
    except KeyboardInterrupt:
        raise _interrupted(report, into_rel, cataloguing=False) from None
    finally:
        known.close()
        shutil.rmtree(tmp_dir, ignore_errors=True)
    try:
        report.catalogue = catalogue(
            root,
            [],
            signer,
            descriptive=descriptive,
            candidates=candidates,
            clock=clock,
            c2pa_anchors=c2pa_anchors,
            jobs=jobs,
        )
    except KeyboardInterrupt:
        raise _interrupted(report, into_rel, cataloguing=True) from None
    return report


class _KnownContent:
    """Answers "does the root already hold this content elsewhere?" for the copying
    threads. The ledger (a SQLite index, or a database connection) is opened, asked and
    closed on one thread of its own, since its connections belong to the thread that made
    them."""

    def __init__(self, root: EvidenceRoot) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-known")
        self._opened: list[Any] = []
        self._thread.submit(self._open, root).result()

    def _open(self, root: EvidenceRoot) -> None:
        manager = open_ledger(root)
        self._opened = [manager, manager.__enter__()]

    def lookup(self, rel: bytes) -> Callable[[str, str, int], AlreadyIngested | None]:
        def ask(sha256: str, source: str, size: int) -> AlreadyIngested | None:
            question = _earlier_elsewhere(self._opened[1], rel)
            return self._thread.submit(question, sha256, source, size).result()

        return ask

    def close(self) -> None:
        if self._opened:
            self._thread.submit(self._opened[0].__exit__, None, None, None).result()
            self._opened = []
        self._thread.shutdown()


def _earlier_elsewhere(
    ledger: Any, rel: bytes
) -> Callable[[str, str, int], AlreadyIngested | None]:
    """For one source file: given its SHA-256, the earliest item holding that content at
    another path than ``rel`` (where this ingest would put it), or None."""

    def lookup(sha256: str, source: str, size: int) -> AlreadyIngested | None:
        rows = ledger.index.items_with(sha256)
        if not rows or any(r.path == rel for r in rows):
            return None  # new content, or this very copy (a resumed ingest)
        first = ledger.read(rows[0].seq)
        body = first.record.body
        return AlreadyIngested(
            source,
            size,
            sha256,
            first.seq,
            str(body.get("path")),
            first.record.time,
            "acquisition" in body,
        )

    return lookup


def _take(
    root: EvidenceRoot,
    report: IngestReport,
    candidates: list[Candidate | Skipped],
    volumes: dict[str, dict[str, str]],
    f: _SourceFile,
    dest: bytes,
    outcome: tuple[FileDigest, FileDigest, bool] | CopyFailure,
) -> None:
    """File one copy's outcome: a failure, or a candidate for cataloguing."""
    src_display = os.fsdecode(f.path)
    if isinstance(outcome, CopyFailure):
        report.failures.append(outcome)
        if outcome.made_by_us:
            _quarantine(root, dest, f.rel)
        return
    source_digest, copy_digest, fresh = outcome
    if fresh:
        report.copied += 1
        report.bytes_copied += source_digest.size
    else:
        report.already_present += 1
    mount = os.path.dirname(src_display)
    volume = volumes.get(mount)
    if volume is None:
        volume = volumes[mount] = volume_of(src_display)
    # A record holds text: a name that is not UTF-8 gets U+FFFD here (lone surrogates
    # from fsdecode cannot be written as canonical JSON); the copy's item record
    # keeps the exact name bytes in path_bytes.
    source_text = f.path.decode("utf-8", errors="replace")
    acquisition = Acquisition(source_text, source_digest.digests["sha256"], volume)
    candidates.append(
        Candidate(f.rel, copy_digest.size, copy_digest.mtime_ns, acquisition, copy_digest)
    )


_T = TypeVar("_T")
_R = TypeVar("_R")


def _in_order(work: Callable[[_T], _R], items: Sequence[_T], jobs: int) -> Iterator[tuple[_T, _R]]:
    """``(item, work(item))`` in the order given, ``jobs`` at a time, a bounded window ahead."""
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ingest") as pool:
        window: deque[tuple[_T, Future[_R]]] = deque()
        pending = iter(items)
        try:
            for item in pending:
                window.append((item, pool.submit(work, item)))
                if len(window) >= jobs * 2:
                    break
            while window:
                item, future = window.popleft()
                result = future.result()
                nxt = next(pending, None)
                if nxt is not None:
                    window.append((nxt, pool.submit(work, nxt)))
                yield item, result
        finally:
            for _item, future in window:
                future.cancel()


def _checked_into(root: EvidenceRoot, into: str | None) -> bytes:
    return root.folder_inside(into) if into else b""


def _private_tmp(root: EvidenceRoot) -> bytes:
    base = root.state / "tmp"
    try:
        base.mkdir(exist_ok=True)
        for stale in base.iterdir():
            pid = stale.name.split("-", 1)[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                shutil.rmtree(stale, ignore_errors=True)
        path = base / f"{os.getpid()}-{os.urandom(4).hex()}"
        path.mkdir()
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "create a temporary folder in", base)) from None
    return os.fsencode(path)


def _copy_verified(
    f: _SourceFile,
    root_b: bytes,
    tmp_dir: bytes,
    algorithms: Sequence[str],
    observer: IngestObserver,
    earlier: Callable[[str, str, int], AlreadyIngested | None] | None = None,
) -> tuple[FileDigest, FileDigest, bool] | CopyFailure | AlreadyIngested:
    """Copy one file and prove the copy identical. Returns (source, copy, freshly copied),
    or, when ``earlier`` knows the content from elsewhere, where it is (nothing copied)."""
    dest = root_b + b"/" + f.rel
    src_display, dest_display = os.fsdecode(f.path), os.fsdecode(dest)
    # Every folder leading to the copy is opened without following links (a link planted
    # in the root used to send copies outside it): UnsafePathError refuses the run. Nothing
    # is created here: content ingested before (``earlier``) leaves no empty folder behind;
    # ``_copy`` makes the folders when it links the copy in.
    present: os.stat_result | None = None
    try:
        with Folder.open(root_b) as evidence:
            parent, name = evidence.parent_of(f.rel, create=False)
    except FileNotFoundError:
        pass  # a folder on the way does not exist yet, so neither does the copy
    else:
        with parent:
            present = parent.lstat(name)
            if present is not None and stat.S_ISLNK(present.st_mode):
                raise UnsafePathError(
                    _(
                        "refused to write {path}: it is a symbolic link, and custody never "
                        "writes through links"
                    ).format(path=dest_display)
                )
    if present is not None:
        # Resuming: an existing copy is accepted only if it matches the source now.
        source_digest = hash_file(f.path, algorithms, progress=observer.advance)
        try:
            copy_digest = hash_file(dest, algorithms)
        except EvidenceReadError as exc:
            return CopyFailure(
                src_display,
                dest_display,
                _("existing copy unusable: {why}").format(why=exc.reason),
                False,
            )
        if copy_digest.digests != source_digest.digests:
            return CopyFailure(
                src_display,
                dest_display,
                _("a different file already exists at the destination"),
                False,
            )
        return source_digest, copy_digest, False
    copied = _copy(f.path, root_b, f.rel, tmp_dir, algorithms, observer, earlier)
    if isinstance(copied, AlreadyIngested):
        return copied
    source_digest = copied
    observer.copy_written(src_display, dest_display)
    try:
        copy_digest = hash_file(dest, algorithms)  # re-read what the disk now holds
    except EvidenceReadError as exc:
        return CopyFailure(
            src_display, dest_display, _("copy could not be re-read: {why}").format(why=exc.reason)
        )
    if copy_digest.digests != source_digest.digests or copy_digest.size != source_digest.size:
        return CopyFailure(
            src_display, dest_display, _("copy does not match its source on re-read")
        )
    return source_digest, copy_digest, True


def _copy(
    src: bytes,
    root_b: bytes,
    rel: bytes,
    tmp_dir: bytes,
    algorithms: Sequence[str],
    observer: IngestObserver,
    earlier: Callable[[str, str, int], AlreadyIngested | None] | None = None,
) -> FileDigest | AlreadyIngested:
    dest = root_b + b"/" + rel
    src_fd = open_evidence(src)
    tmp = tmp_dir + b"/" + os.urandom(8).hex().encode()
    try:
        before = FileIdentity.of(os.fstat(src_fd))
        out_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        try:

            def sink(chunk: memoryview) -> None:
                write_all(out_fd, chunk)  # the very bytes hashed, not a copy of them

            size, digests = hash_fd(
                src_fd, algorithms, progress=observer.advance, sink=sink, limit=before.size
            )
            os.fsync(out_fd)
        finally:
            os.close(out_fd)
        after = FileIdentity.of(os.fstat(src_fd))
        if before != after or size != before.size:
            raise EvidenceReadError(os.fsdecode(src), _("file changed while it was being copied"))
        if earlier is not None:
            # Known content is recognised from the one read the copy needed anyway; the
            # private temporary copy is dropped and never enters the evidence tree.
            known = earlier(digests["sha256"], os.fsdecode(src), size)
            if known is not None:
                return known
        os.utime(tmp, ns=(before.mtime_ns, before.mtime_ns))
        # link() never replaces an existing file, unlike rename(): a race cannot clobber one;
        # the folder is reached through descriptors, never through a link.
        with Folder.open(root_b) as evidence:
            parent, name = evidence.parent_of(rel)
        with parent:
            os.link(tmp, name, dst_dir_fd=parent.fd, follow_symlinks=False)
            parent.sync()
        return FileDigest(size, before.mtime_ns, digests, before)
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "copy to", dest)) from None
    finally:
        os.close(src_fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _quarantine(root: EvidenceRoot, dest: bytes, rel: bytes) -> None:
    """Move a copy that failed verification out of the evidence tree, keeping it for study."""
    if not os.path.lexists(dest):
        return
    target = os.fsencode(root.state / "quarantine") + b"/" + rel
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.lexists(target):
            target += b"." + os.urandom(4).hex().encode()
        os.rename(dest, target)
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "quarantine", dest)) from None
