"""Cataloguing: walking files inside the evidence root into signed item records.

The pipeline, per run (the stages overlap; docs/performance.md measures it):

1. walk the given paths without following symbolic links, keeping each name's exact
   bytes; links, devices, FIFOs and unreadable entries are reported and skipped;
2. skip files whose latest record has the same size and modification time (so a re-run
   adds nothing and an interrupted run resumes where it stopped);
3. hash the rest on a thread pool, one thread per core by default (``jobs``; one pass per
   file, all digests at once), and read any C2PA manifest a file carries
   (``source_records.read_manifest``, on the hashing threads);
4. read metadata for hashed files in batches on a pool of long-lived exiftool processes
   (``custody.evidence.exifpool``, one per core), while later files hash;
5. under the ledger lock, decide for each file - new, duplicate of earlier content,
   or a new version of a known path - and append the signed records in batches;
6. end with a checkpoint over the whole ledger.

A file that changes between hashing and recording is re-read (twice at most) and
otherwise skipped: a digest must describe bytes that existed all at once.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from custody.acquisition.metadata_files import item_metadata
from custody.acquisition.source_records import read_manifest
from custody.clock import Clock, format_ns, utc_now
from custody.errors import ToolMissingError, UsageError
from custody.evidence.exifpool import ExifToolPool
from custody.evidence.exiftool import FileMetadata, exiftool_available
from custody.evidence.hashing import (
    EvidenceReadError,
    FileChangedError,
    FileDigest,
    FileIdentity,
    available_cores,
    hash_file,
)
from custody.i18n import _
from custody.keys.keyring import SigningKey
from custody.ledger.backends import open_ledger
from custody.ledger.bodies import Acquisition, ItemBody
from custody.ledger.disclosures import DisclosureStore, commit
from custody.ledger.provenance import Provenance
from custody.ledger.records import SignedRecord
from custody.ledger.store import Ledger, LedgerWriter, refuse_ended_signer
from custody.progress import NullObserver, Observer
from custody.root import STATE_DIR, EvidenceRoot

BATCH_FILES = 64
BATCH_SECONDS = 1.0
META_BATCH = 32  # files per exiftool command when files arrive faster than exiftool reads
MAX_ATTEMPTS = 3


def exiftool_missing() -> str:
    """Why nothing can be catalogued without exiftool, and what to do (catalogue, ingest and
    intake all say it)."""
    return _(
        "exiftool is not installed; run the set-up command in README.md "
        "(Debian package libimage-exiftool-perl)"
    )


@dataclass(frozen=True)
class Descriptive:
    """What the documenter says about the files: recorded verbatim in every item."""

    collector: str | None = None
    source: str | None = None
    location: str | None = None
    note: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate:
    rel: bytes  # path relative to the root, exact bytes
    size: int
    mtime_ns: int
    acquisition: Acquisition | None = None
    digest: FileDigest | None = None  # already computed from these bytes (ingest's re-read)
    # What the source it came from says of it (custody.acquisition.intake); a C2PA entry
    # here means the manifest was already read, and cataloguing does not read it again.
    provenance: tuple[Provenance, ...] = ()

    @property
    def display(self) -> str:
        return self.rel.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class Outcome:
    """One record this run wrote, as reported back to the user."""

    seq: int
    path: str
    kind: str  # "new" | "duplicate" | "version"
    sha256: str
    size: int
    related: int | None = None  # duplicate_of / supersedes
    metadata_error: str | None = None
    c2pa: str | None = None  # the validation state of a C2PA manifest in the file


@dataclass
class CatalogueReport:
    outcomes: list[Outcome] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    bytes_hashed: int = 0
    files_seen: int = 0
    checkpoint: int | None = None
    ledger_size: int = 0

    def count(self, kind: str) -> int:
        return sum(1 for o in self.outcomes if o.kind == kind)

    @property
    def metadata_errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.metadata_error]


# --- walking ------------------------------------------------------------------------------


def walk(
    root: EvidenceRoot, paths: Sequence[str | os.PathLike[str]]
) -> Iterator[Candidate | Skipped]:
    """Yield regular files under ``paths`` (inside ``root``), never following links."""
    root_b = os.fsencode(root.path)
    seen: set[bytes] = set()
    for given in paths:
        # A path named on the command line that is not there is a mistake, not a finding
        # (as in ingest): say so before anything is written.
        if not os.path.lexists(given):
            raise UsageError(_("{path}: no such file or folder").format(path=os.fsdecode(given)))
        rel = os.fsencode(root.relative(given))  # RootError when outside the root
        yield from _walk_one(root_b, rel, seen)


def _walk_one(root_b: bytes, rel: bytes, seen: set[bytes]) -> Iterator[Candidate | Skipped]:
    stack = [rel]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if current == STATE_DIR.encode() or current.startswith(STATE_DIR.encode() + b"/"):
            continue
        if current.rsplit(b"/", 1)[-1] == STATE_DIR.encode():
            # Another evidence root nested inside this one: its ledger and keys are custody's
            # own files, not evidence.
            yield Skipped(
                current.decode("utf-8", "replace"),
                _("state folder of a nested evidence root"),
            )
            continue
        full = root_b + b"/" + current if current else root_b
        display = current.decode("utf-8", "replace") or "."
        try:
            st = os.lstat(full)
        except OSError as exc:
            yield Skipped(display, exc.strerror or _("cannot stat"))
            continue
        if stat.S_ISREG(st.st_mode):
            yield Candidate(current, st.st_size, st.st_mtime_ns)
        elif stat.S_ISDIR(st.st_mode):
            try:
                names = sorted(os.listdir(full), reverse=True)
            except OSError as exc:
                yield Skipped(display, _("folder not readable: {why}").format(why=exc.strerror))
                continue
            prefix = current + b"/" if current else b""
            stack.extend(prefix + name for name in names)
        elif stat.S_ISLNK(st.st_mode):
            yield Skipped(display, _("symbolic link, not followed"))
        else:
            yield Skipped(display, _("not a regular file (device, FIFO or socket)"))


# --- the run ------------------------------------------------------------------------------


@dataclass
class _Hashed:
    candidate: Candidate
    digest: FileDigest
    metadata: FileMetadata | None = None
    provenance: tuple[Provenance, ...] = ()


def catalogue(
    root: EvidenceRoot,
    paths: Sequence[str | os.PathLike[str]],
    signer: SigningKey | Callable[[], SigningKey],
    *,
    descriptive: Descriptive | None = None,
    rehash: bool = False,
    jobs: int | None = None,
    observer: Observer | None = None,
    clock: Clock = utc_now,
    candidates: Iterable[Candidate | Skipped] | None = None,
    checkpoint: bool = True,
    c2pa_anchors: bytes | None = None,
) -> CatalogueReport:
    """Catalogue files inside ``root`` (or the given ``candidates``); see module docstring.

    ``c2pa_anchors``: the user's C2PA trust list (PEM); a manifest whose signer chains to
    one of them is recorded ``trusted``, otherwise at best ``valid``.

    ``signer`` may be a function that unlocks the key: it is then called on a thread while
    files are walked, exiftool starts and the first files hash, so those costs overlap.
    ``jobs`` is how many files are hashed at once and how many exiftool processes may run
    (default: every core this process may use).
    ``checkpoint=False`` leaves the closing checkpoint to the caller (a capture run appends
    more records first).
    """
    config = root.config()
    observer = observer or NullObserver()
    descriptive = descriptive or Descriptive()
    report = CatalogueReport()
    unlocking = _Background(signer if callable(signer) else (lambda: signer))
    with open_ledger(root) as ledger:
        todo: list[Candidate] = []
        for entry in candidates if candidates is not None else walk(root, paths):
            if isinstance(entry, Skipped):
                report.skipped.append(entry)
                continue
            report.files_seen += 1
            latest = ledger.index.latest_item_at(entry.rel)
            if (
                not rehash
                and latest is not None
                and latest.size == entry.size
                and latest.mtime_ns == entry.mtime_ns
            ):
                report.unchanged += 1
                continue
            todo.append(entry)
        # Clear what killed runs left in .custody/tmp on every run, not only on runs with
        # files to read: a re-run that finds nothing new must still tidy up.
        scratch = _scratch_dir(root)
        # Why: a ledger that ends with a torn line (or cannot be written at all) refuses
        # every append; find out now, not after hours of hashing a large dump.
        ledger.check_appendable()
        observer.planned(len(todo), sum(c.size for c in todo))
        run = _Run(root, ledger, descriptive, config.digests, observer, clock, report)
        run.c2pa_anchors = c2pa_anchors
        pool: ExifToolPool | None = None
        if todo:
            if not exiftool_available():
                raise ToolMissingError(exiftool_missing())
            jobs = jobs or available_cores()
            # The first exiftool starts now, on its own thread, while the key unlocks on
            # another and the first files hash on the pool: the fixed costs overlap.
            pool = ExifToolPool(
                jobs,
                timeout=config.exiftool_timeout,
                embedded=config.exiftool_embedded,
                scratch=scratch,
            )
            try:
                run.process(todo, jobs, pool, unlocking.result)
            except BaseException:
                pool.close(abort=True)
                raise
            # exiftool shuts down while the checkpoint is made; close() below waits.
            pool.stop()
        try:
            key = unlocking.result()
            with ledger.writer(key, clock=clock) as writer:
                if checkpoint and (writer.written or ledger.needs_checkpoint()):
                    report.checkpoint = writer.checkpoint().seq
                report.ledger_size = writer.size
        finally:
            if pool is not None:
                pool.close()
    return report


class _Background:
    """Run one function on a thread while the caller goes on; ``result`` hands over its
    value, or raises what it raised, in the calling thread."""

    def __init__(self, work: Callable[[], SigningKey]) -> None:
        self._value: SigningKey | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], SigningKey]) -> None:
        try:
            self._value = work()
        except BaseException as exc:  # handed to result() in the calling thread
            self._error = exc

    def result(self) -> SigningKey:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


def _scratch_dir(root: EvidenceRoot) -> str | None:
    """``.custody/tmp`` for exiftool's name aliases, cleared of what dead runs left there.

    Why: a run killed with SIGKILL cannot clean up; its folder (named after its pid) is
    removed here by the next run. None when the folder cannot be used (read-only root).
    """
    base = root.state / "tmp"
    try:
        base.mkdir(exist_ok=True)
        for stale in base.iterdir():
            pid = stale.name.split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
    except OSError:
        return None
    return str(base)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def ensure_appendable(ledger: Ledger, signer: SigningKey, clock: Clock = utc_now) -> None:
    """Raise now (LedgerError, StorageError...) if records could not be appended.

    Takes the writer briefly and appends nothing: the same checks a real append makes
    (lock, index up to date, no torn final line), before any file is read or copied.
    """
    with ledger.writer(signer, clock=clock):
        pass


class _MetadataStage:
    """Hashed files go to the exiftool pool in batches; they come back in the order given.

    A batch leaves as soon as a process is idle (so large files, which arrive slowly, are
    never held back waiting for company) or once it holds ``META_BATCH`` files (so small
    files, which arrive fast, travel many to a command). At most two batches per process
    wait, which bounds memory and keeps every process busy.
    """

    def __init__(self, pool: ExifToolPool, root_b: bytes) -> None:
        self.pool = pool
        self.root_b = root_b
        self.batch: list[_Hashed] = []
        self.sent: deque[tuple[list[_Hashed], Future[list[FileMetadata]]]] = deque()

    def add(self, hashed: _Hashed) -> None:
        self.batch.append(hashed)
        if len(self.batch) >= META_BATCH or self.pool.idle:
            self._send()

    def _send(self) -> None:
        if self.batch:
            paths = [self.root_b + b"/" + h.candidate.rel for h in self.batch]
            self.sent.append((self.batch, self.pool.submit(paths)))
            self.batch = []

    def done(self) -> list[_Hashed]:
        """The files whose metadata has arrived, in order; waits only when too many wait."""
        out: list[_Hashed] = []
        while self.sent and (self.sent[0][1].done() or len(self.sent) > 2 * self.pool.size):
            out.extend(self._take())
        return out

    def finish(self) -> list[_Hashed]:
        self._send()
        out: list[_Hashed] = []
        while self.sent:
            out.extend(self._take())
        return out

    def _take(self) -> list[_Hashed]:
        batch, future = self.sent.popleft()
        for hashed, meta in zip(batch, future.result(), strict=True):
            hashed.metadata = meta
        return batch


class _Cancelled(Exception):
    """Stops a hash in progress once the run has failed elsewhere (or was interrupted)."""


class _Run:
    def __init__(
        self,
        root: EvidenceRoot,
        ledger: Ledger,
        descriptive: Descriptive,
        algorithms: Sequence[str],
        observer: Observer,
        clock: Clock,
        report: CatalogueReport,
    ) -> None:
        self.root = root
        self.root_b = os.fsencode(root.path)
        self.ledger = ledger
        self.descriptive = descriptive
        self.algorithms = tuple(algorithms)
        self.observer = observer
        self.clock = clock
        self.report = report
        # Set by process() while the first files hash.
        self.signer: SigningKey | None = None
        self.c2pa_anchors: bytes | None = None
        self._local = threading.local()
        self._cancel = threading.Event()
        # Collector, source path and volume are recorded as salted commitments; their
        # values and salts are kept beside the ledger (custody.ledger.disclosures).
        self.disclosures = DisclosureStore(root.state)

    def _progress(self, nbytes: int) -> None:
        if self._cancel.is_set():
            raise _Cancelled
        self.observer.advance(nbytes)

    def _buffer(self) -> bytearray:
        buf: bytearray | None = getattr(self._local, "buffer", None)
        if buf is None:
            buf = self._local.buffer = bytearray(1 << 20)
        return buf

    def _hash(self, candidate: Candidate) -> _Hashed | Skipped:
        hashed = self._hash_only(candidate)
        if isinstance(hashed, _Hashed):
            hashed.provenance = candidate.provenance + read_manifest(
                self.root_b + b"/" + candidate.rel, candidate.provenance, self.c2pa_anchors
            )
        return hashed

    def _hash_only(self, candidate: Candidate) -> _Hashed | Skipped:
        full = self.root_b + b"/" + candidate.rel
        known = candidate.digest
        if known is not None and set(known.digests) >= set(self.algorithms):
            hashed = _Hashed(candidate, known)
            if self._unchanged_since_hash(hashed):
                self.observer.advance(known.size)
                return hashed
        for attempt in range(MAX_ATTEMPTS):
            try:
                digest = hash_file(
                    full, self.algorithms, progress=self._progress, buffer=self._buffer()
                )
            except FileChangedError as exc:
                if attempt == MAX_ATTEMPTS - 1:
                    return Skipped(candidate.display, exc.reason)
                continue
            except EvidenceReadError as exc:
                return Skipped(candidate.display, exc.reason)
            return _Hashed(candidate, digest)
        raise AssertionError("unreachable")

    def process(
        self,
        todo: list[Candidate],
        jobs: int,
        pool: ExifToolPool,
        unlock: Callable[[], SigningKey],
    ) -> None:
        """Hash ``todo`` on ``jobs`` threads, read metadata on ``pool``, record in batches.

        Three stages overlap: hashing (threads; hashlib and blake3 release the GIL), metadata
        (the pool's exiftool processes, one batch each) and recording (this thread, under
        the ledger lock, in walk order). Each stage's queue is bounded, so memory stays flat
        for millions of files. If anything fails (a full disk, Ctrl-C), queued files are
        dropped, hashes in flight stop at their next chunk and exiftool is killed, rather
        than reading large files to the end for nothing before the error is shown.
        """
        retry: list[Candidate] = []
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="hash") as hashers:
            window: deque[Future[_Hashed | Skipped]] = deque()
            queue = iter(todo)
            try:
                for candidate in queue:
                    window.append(hashers.submit(self._hash, candidate))
                    if len(window) >= jobs * 4:
                        break
                # The key is needed only to record, but a wrong passphrase must be said
                # at once, not after the first large file is read: wait for it here, while
                # the first files hash and exiftool starts.
                self.signer = unlock()
                refuse_ended_signer(self.ledger, self.signer)
                metadata = _MetadataStage(pool, self.root_b)
                ready: list[_Hashed] = []
                started = time.monotonic()
                while window:
                    result = window.popleft().result()
                    nxt = next(queue, None)
                    if nxt is not None:
                        window.append(hashers.submit(self._hash, nxt))
                    if isinstance(result, Skipped):
                        self.report.skipped.append(result)
                        self.observer.finished_file(result.path)
                        continue
                    self.report.bytes_hashed += result.digest.size
                    metadata.add(result)
                    ready.extend(metadata.done())
                    if len(ready) >= BATCH_FILES or (
                        ready and time.monotonic() - started > BATCH_SECONDS
                    ):
                        retry.extend(self._commit(ready))
                        ready = []
                        started = time.monotonic()
                ready.extend(metadata.finish())
                if ready:
                    retry.extend(self._commit(ready))
            except BaseException:
                self._cancel.set()
                for future in window:
                    future.cancel()
                raise
        for candidate in retry:  # changed between hashing and metadata: one more careful pass
            result = self._hash(candidate)
            if isinstance(result, Skipped):
                self.report.skipped.append(result)
            else:
                self.report.bytes_hashed += result.digest.size
                [result.metadata] = pool.extract([self.root_b + b"/" + candidate.rel])
                leftover = self._commit([result])
                for c in leftover:
                    self.report.skipped.append(
                        Skipped(c.display, _("file changed while it was being read"))
                    )

    def _commit(self, batch: list[_Hashed]) -> list[Candidate]:
        """Record a batch (metadata already read) under the lock. Returns files to re-read."""
        assert self.signer is not None  # unlocked in process()
        stable: list[_Hashed] = []
        changed: list[Candidate] = []
        for hashed in batch:
            if self._unchanged_since_hash(hashed):
                stable.append(hashed)
            else:
                changed.append(hashed.candidate)
        with self.ledger.writer(self.signer, clock=self.clock) as writer:
            writer.before_flush.append(self.disclosures.sync)
            pending_paths: dict[bytes, tuple[int, str, int]] = {}
            pending_digests: dict[str, int] = {}
            for hashed in stable:
                outcome = self._record(writer, hashed, pending_paths, pending_digests)
                if outcome is not None:
                    self.report.outcomes.append(outcome)
                else:
                    self.report.unchanged += 1
                self.observer.finished_file(hashed.candidate.display)
        self.disclosures.close()
        return changed

    def _unchanged_since_hash(self, hashed: _Hashed) -> bool:
        try:
            st = os.lstat(self.root_b + b"/" + hashed.candidate.rel)
        except OSError:
            return False
        # ctime included: see FileIdentity (a rewrite that restores the mtime).
        return FileIdentity.of(st) == hashed.digest.identity

    def _record(
        self,
        writer: LedgerWriter,
        hashed: _Hashed,
        pending_paths: dict[bytes, tuple[int, str, int]],
        pending_digests: dict[str, int],
    ) -> Outcome | None:
        candidate, digest = hashed.candidate, hashed.digest
        sha256 = digest.digests["sha256"]
        index = writer.index
        # Decisions are made here, under the lock, so concurrent runs never record a file twice.
        # The latest record at this path: one written earlier in this batch (not yet in the
        # index) or one in the index. Same content there is not a new version of it.
        latest = pending_paths.get(candidate.rel)
        if latest is None:
            row = index.latest_item_at(candidate.rel)
            latest = (row.seq, row.sha256, row.size) if row is not None else None
        if latest is not None and latest[1:] == (sha256, digest.size):
            return None  # same content already recorded at this path (perhaps by another run)
        supersedes = latest[0] if latest is not None else None
        duplicate_of = None
        if supersedes is None:
            first = pending_digests.get(sha256)
            if first is None:
                row = index.first_item_with(sha256)
                first = row.seq if row is not None else None
            duplicate_of = first
        body, disclosed = commit(self._body(hashed, supersedes, duplicate_of))
        self.disclosures.stage(disclosed)  # durable before the record (writer.before_flush)
        signed: SignedRecord = writer.append("item", body.to_json())
        pending_paths[candidate.rel] = (signed.seq, sha256, digest.size)
        pending_digests.setdefault(sha256, signed.seq)
        kind = (
            "version"
            if supersedes is not None
            else "duplicate"
            if duplicate_of is not None
            else "new"
        )
        manifest = next((p for p in body.provenance if p.kind == "c2pa"), None)
        return Outcome(
            signed.seq,
            candidate.display,
            kind,
            sha256,
            digest.size,
            supersedes if supersedes is not None else duplicate_of,
            body.metadata_error,
            str(manifest.get("validation_state")) if manifest else None,
        )

    def _body(self, hashed: _Hashed, supersedes: int | None, duplicate_of: int | None) -> ItemBody:
        candidate, digest, meta = hashed.candidate, hashed.digest, hashed.metadata
        try:
            path = candidate.rel.decode("utf-8")
            path_bytes = None
        except UnicodeDecodeError:
            path = candidate.rel.decode("utf-8", errors="replace")
            path_bytes = candidate.rel
        d = self.descriptive
        metadata, metadata_full = item_metadata(self.ledger, meta)
        return ItemBody(
            path=path,
            path_bytes=path_bytes,
            size=digest.size,
            mtime=format_ns(digest.mtime_ns),
            digests=dict(digest.digests),
            mime=meta.mime if meta else None,
            metadata=metadata,
            metadata_full=metadata_full,
            metadata_error=meta.error if meta else None,
            capture_time=meta.capture_time if meta else None,
            collector=d.collector,
            source=d.source,
            location=d.location,
            note=d.note,
            tags=d.tags,
            duplicate_of=duplicate_of,
            supersedes=supersedes,
            acquisition=candidate.acquisition,
            provenance=hashed.provenance,
        )
