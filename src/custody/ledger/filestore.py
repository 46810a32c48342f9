"""The append-only ledger file: reading its lines, and appending signed records safely.

The ledger is ``.custody/ledger.jsonl``: one canonical-JSON record per line
(``custody.ledger.records``). Appends happen only inside ``Ledger.writer()``, which holds an
exclusive ``flock`` for its whole duration, brings the derived index up to date with
anything other processes appended, and writes each batch of complete lines with a single
``write`` on an ``O_APPEND`` descriptor followed by ``fsync``. A record counts as written
only once that ``fsync`` has returned.

A line without its final newline (a write torn by a crash) is never built upon:
appending refuses until ``custody repair`` has dealt with it, and ``verify`` reports it.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from custody.clock import Clock, format_time, utc_now
from custody.errors import LedgerError, RecordError, SigningKeyError, StorageError
from custody.keys.keyring import PublicKey, SigningKey
from custody.ledger import merkle
from custody.ledger.index import Head, LedgerIndex
from custody.ledger.records import (
    FORMAT_VERSION,
    CheckpointBody,
    KeyBody,
    Record,
    RepairBody,
    SignedRecord,
    line_hash,
)
from custody.root import EvidenceRoot
from custody.system.files import describe_os_error, exclusive_lock, write_all, write_atomic

READ_CHUNK = 1 << 20

# SQLite primary result codes (sqlite3.h) for the index's write failures.
_SQLITE_REASONS = {
    3: "permission denied",  # SQLITE_PERM
    8: "the file system is read-only",  # SQLITE_READONLY
    10: "an input/output error",  # SQLITE_IOERR
    13: "the disk is full",  # SQLITE_FULL
    14: "it cannot be opened",  # SQLITE_CANTOPEN
}


@contextlib.contextmanager
def _index_errors(path: Path) -> Iterator[None]:
    """Report a failing index write (disk full, read-only...) as the I/O error it is.

    Why: the index is SQLite, whose errors are not OSError; uncaught, a full disk made
    every command end in "internal error" (exit 70) instead of exit 9 naming the file.
    """
    try:
        yield
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        reason = _SQLITE_REASONS.get(code & 0xFF if isinstance(code, int) else -1, str(exc))
        raise StorageError(f"cannot update the ledger index {path}: {reason}") from None


@dataclass(frozen=True)
class RawLine:
    offset: int
    data: bytes  # without the newline
    complete: bool  # False only for a final line with no newline (a torn write)


def iter_raw_lines(
    path: os.PathLike[str] | str, start: int = 0, end: int | None = None
) -> Iterator[RawLine]:
    """Yield the ledger's lines from byte ``start`` (to ``end``) with their offsets."""
    offset = start
    for data, complete in iter_line_data(path, start, end):
        yield RawLine(offset, data, complete)
        offset += len(data) + 1


def iter_line_data(
    path: os.PathLike[str] | str, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, bool]]:
    """Yield (line without newline, complete) from byte ``start`` (to ``end``), streaming,
    never loading the whole file. Only a final line with no newline is incomplete."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in finally; generator
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "read", path)) from None
    try:
        handle.seek(start)
        left = None if end is None else end - start
        pending = b""
        while left is None or left > 0:
            chunk = handle.read(READ_CHUNK if left is None else min(READ_CHUNK, left))
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield line, True
        if pending:
            yield pending, False
    finally:
        handle.close()


class Ledger(abc.ABC):
    """An evidence root's ledger: ``Ledger(root)`` opens the store the root's config names.

    The file ledger (``FileLedger``) is the default; ``postgresql://...`` selects the shared
    PostgreSQL store (``custody.ledger.pgstore``). Both hold the same canonical lines and offer the
    same reading, appending and index operations, so every command works on either.
    """

    root: EvidenceRoot
    # (the key and revocation records judged, the key states they gave): see key_ended
    _key_states: tuple[tuple[int, ...], dict[str, Any]] | None = None

    def __new__(cls, root: EvidenceRoot) -> Ledger:
        # ``Ledger(root)`` is kept working (as ``open_ledger(root)``) for callers that
        # construct the base class; the library itself calls ``open_ledger``.
        if cls is Ledger:
            cls = _store_class(root)
        return super().__new__(cls)

    # --- what every store provides ------------------------------------------------------

    @property
    @abc.abstractmethod
    def index(self) -> Any:
        """The store's index (``LedgerIndex`` API), up to date with every record."""

    @abc.abstractmethod
    def read(self, seq: int) -> SignedRecord:
        """Record ``seq``, parsed strictly."""

    @abc.abstractmethod
    def records(self, start: int = 0) -> Iterator[SignedRecord]:
        """Complete records from ``start`` in order (strict parse; RecordError if malformed)."""

    @abc.abstractmethod
    def raw_lines(self) -> Iterator[tuple[bytes, bool]]:
        """Every line as stored (bytes, complete?), read without the index: for verify."""

    @abc.abstractmethod
    def writer(
        self, signer: SigningKey, *, clock: Clock = utc_now, lock_timeout: float = 120.0
    ) -> contextlib.AbstractContextManager[LedgerWriter]:
        """Exclusive appending; records appended through the writer are durable on exit."""

    @abc.abstractmethod
    def check_appendable(self, *, lock_timeout: float = 120.0) -> None:
        """Raise now (LedgerError, LedgerBusyError...) if no record could be appended.

        Needs no key, so it can run before one is unlocked: a torn ledger is refused before
        hours of hashing, not after.
        """

    @abc.abstractmethod
    def repair(self, signer: SigningKey, *, clock: Clock = utc_now) -> SignedRecord | None:
        """Remove an incomplete final record, keeping a copy; None if there is none."""

    @abc.abstractmethod
    def dump(self, out: Path) -> tuple[int, str]:
        """Write the canonical line file (the form independent verifiers read).

        Returns the number of records and the SHA-256 of the bytes written.
        """

    def store_token(self, token_file: str, raw: bytes) -> None:
        """Keep a timestamp token's raw response (``token_file`` is relative to .custody/)."""
        target = self.root.state / token_file
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, raw)

    def read_token(self, token_file: str) -> bytes:
        """The raw response a timestamp record names; OSError if it is not there."""
        if token_file.startswith("/") or ".." in token_file.split("/"):
            raise FileNotFoundError(token_file)
        return (self.root.state / token_file).read_bytes()

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's resources."""

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def needs_checkpoint(self) -> bool:
        """True if records other than timestamps came after the last checkpoint.

        Timestamp records follow the checkpoint they stamp; covering them with yet another
        checkpoint would start an endless stamp-checkpoint-stamp cycle.
        """
        last = self.index.last_type_except("timestamp")
        return last is not None and last != "checkpoint"

    def root_hash(self, size: int | None = None) -> bytes:
        return merkle.root_hash(self.index, size)

    def key_ended(self, fingerprint: str) -> str | None:
        """Why ``fingerprint`` may no longer sign here (revoked or replaced), or None.

        Judged by exactly the rules verification applies (docs/events.md).
        """
        from custody.ledger.checks import key_states

        index = self.index
        seqs = (*index.records_of_type("key"), *index.records_of_type("revocation"))
        # Key records are few and only ever appended: judge them again only when they change.
        cached = self._key_states
        if cached is None or cached[0] != seqs:
            cached = (seqs, key_states((seq, self.read(seq).line) for seq in seqs))
            self._key_states = cached
        state = cached[1].get(fingerprint)
        if state is None:
            return None
        if state.revoked_at is not None:
            return f"it was revoked at record {state.revoked_at}"
        if state.retired_at is not None:
            return f"it was replaced by a successor at record {state.retired_at}"
        return None


def _store_class(root: EvidenceRoot) -> type[Ledger]:
    backend = root.config().ledger
    if backend.startswith(("postgresql:", "postgres:")):
        from custody.ledger.pgstore import PgLedger

        return PgLedger
    return FileLedger


def open_ledger(root: EvidenceRoot) -> Ledger:
    """The ledger of ``root``, in whichever store its config names."""
    store = _store_class(root)
    return store(root)


class FileLedger(Ledger):
    """The default store: ``.custody/ledger.jsonl`` plus a derived SQLite index."""

    def __init__(self, root: EvidenceRoot) -> None:
        self.root = root
        self.path = root.ledger_path
        if not self.path.exists():
            raise LedgerError(f"{self.path} is missing: this evidence root has no ledger")
        self._index: LedgerIndex | None = None
        self._pinned_end: int | None = None

    @property
    def index(self) -> LedgerIndex:
        """The index, brought up to date with the ledger file (read-only use)."""
        if self._index is None:
            path = self.root.cache_dir / "index.sqlite"
            with _index_errors(path):
                self._index = LedgerIndex(path)
                self._sync(self._index)
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    # --- reading ----------------------------------------------------------------------------

    def lines(self, start: int = 0) -> Iterator[RawLine]:
        return iter_raw_lines(self.path, start)

    def raw_lines(self) -> Iterator[tuple[bytes, bool]]:
        # Verification reads the lines more than once; the first read fixes how far, so
        # records another process appends meanwhile are not half-seen (checked next time).
        if self._pinned_end is None:
            try:
                self._pinned_end = self.path.stat().st_size
            except OSError as exc:
                raise StorageError(describe_os_error(exc, "read", self.path)) from None
        yield from iter_line_data(self.path, 0, self._pinned_end)

    def dump(self, out: Path) -> tuple[int, str]:
        from custody.evidence.hashing import hash_file
        from custody.system.files import copy_atomic

        with exclusive_lock(self.root.lock_path):
            copy_atomic(self.path, out)
            digest = hash_file(self.path, ("sha256",)).digests["sha256"]
        return self.index.size, digest

    def read(self, seq: int) -> SignedRecord:
        span = self.index.record_span(seq)
        if span is None:
            raise LedgerError(f"no record {seq}: the ledger has {self.index.size} records")
        offset, length = span
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            return _parse_typed(handle.read(length))

    def records(self, start: int = 0) -> Iterator[SignedRecord]:
        """Complete records from ``start`` in order (strict parse; RecordError if malformed)."""
        span = self.index.record_span(start) if start else (0, 0)
        if span is None:
            return
        for raw in self.lines(span[0]):
            if raw.complete:
                yield _parse_typed(raw.data)

    # --- keeping the index in step ------------------------------------------------------------

    def _sync(self, index: LedgerIndex) -> bool:
        """Index lines appended since last time; rebuild if the ledger changed underneath.

        Returns True when the ledger ends with a torn (incomplete) line.
        """
        with _index_errors(index.path or Path(":memory:")):
            return self._sync_index(index)

    def _sync_index(self, index: LedgerIndex) -> bool:
        head = index.head()
        if not self._head_still_valid(index, head):
            index.reset()
            head = index.head()
        torn = False
        batch: list[tuple[int, SignedRecord]] = []
        size, last_hash = head.size, head.last_hash

        def flush() -> None:
            with index.transaction():
                index.add(batch)
            batch.clear()

        for raw in self.lines(head.offset):
            if not raw.complete:
                torn = True
                break
            try:
                signed = SignedRecord.parse(raw.data)
                if signed.record.type != "item":  # items: checked by index_rows already
                    signed.record.typed_body()
            except RecordError as exc:
                raise LedgerError(
                    f"ledger record {size} (byte {raw.offset}) is malformed: {exc}; "
                    "run 'custody verify' for the full report"
                ) from None
            record = signed.record
            if record.seq != size or record.prev != last_hash:
                raise LedgerError(
                    f"ledger record {size} (byte {raw.offset}) does not follow the one before it "
                    "(sequence or hash chain broken); run 'custody verify'"
                )
            batch.append((raw.offset, signed))
            size, last_hash = size + 1, signed.line_hash
            if len(batch) >= 5000:
                flush()
        if batch:
            flush()
        return torn

    def _head_still_valid(self, index: LedgerIndex, head: Head) -> bool:
        try:
            file_size = self.path.stat().st_size
        except OSError as exc:
            raise StorageError(describe_os_error(exc, "read", self.path)) from None
        if head.size == 0:
            return True
        span = index.last_record_span()
        if file_size < head.offset or span is None:
            return False
        offset, length = span
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(length + 1)
        return data[-1:] == b"\n" and line_hash(data[:-1]) == head.last_hash

    # --- repair -----------------------------------------------------------------------------

    def repair(self, signer: SigningKey, *, clock: Clock = utc_now) -> SignedRecord | None:
        """Cut an incomplete final line (a torn write), keep a copy, record the repair.

        Only bytes after the last newline are removed: every complete record stays as it
        is. Returns the signed ``repair`` record, or None if there was nothing to repair.
        """
        with exclusive_lock(self.root.lock_path):
            try:
                with open(self.path, "r+b") as handle:
                    size = handle.seek(0, os.SEEK_END)
                    keep = _complete_prefix(handle, size)
                    if keep == size:
                        return None
                    handle.seek(keep)
                    tail = handle.read()
                    saved = (
                        self.root.state
                        / "repairs"
                        / (f"{format_time(clock()).replace(':', '')}-offset-{keep}.bin")
                    )
                    saved.parent.mkdir(exist_ok=True)
                    write_atomic(saved, tail)  # the copy is durable before anything is cut
                    handle.truncate(keep)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise StorageError(describe_os_error(exc, "repair", self.path)) from None
            body = RepairBody(
                keep, len(tail), hashlib.sha256(tail).hexdigest(), f"repairs/{saved.name}"
            )
            index = self.index
            self._sync(index)
            writer = LedgerWriter(self, index, index.head(), signer, clock, self._commit)
            signed = writer.append("repair", body.to_json())
            writer.flush()
            return signed

    # --- appending --------------------------------------------------------------------------

    def check_appendable(self, *, lock_timeout: float = 120.0) -> None:
        with exclusive_lock(self.root.lock_path, timeout=lock_timeout):
            self._refuse_torn(self.index)

    def _refuse_torn(self, index: Any) -> None:
        if self._sync(index):
            raise LedgerError(
                f"{self.path} ends with an incomplete record (a write was cut off); "
                "run 'custody repair' before adding records"
            )

    @contextlib.contextmanager
    def writer(
        self, signer: SigningKey, *, clock: Clock = utc_now, lock_timeout: float = 120.0
    ) -> Iterator[LedgerWriter]:
        """Hold the ledger lock; records appended through the writer are durable on return."""
        with exclusive_lock(self.root.lock_path, timeout=lock_timeout):
            index = self.index
            self._refuse_torn(index)
            refuse_ended_signer(self, signer)
            writer = LedgerWriter(self, index, index.head(), signer, clock, self._commit)
            try:
                yield writer
            finally:
                writer.flush()

    def _commit(self, pending: list[tuple[int, SignedRecord]]) -> None:
        """Append lines in one write, fsync, then index them (called with the lock held).

        If the write fails (disk full, I/O error), the file is cut back to where this batch
        began, so it still ends with a complete record.
        """
        data = b"".join(s.line + b"\n" for _, s in pending)
        start = pending[0][0]
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except OSError as exc:
            raise StorageError(describe_os_error(exc, "append to", self.path)) from None
        try:
            write_all(fd, data)
            os.fsync(fd)
        except BaseException as exc:
            # BaseException, not only OSError: a Ctrl-C (KeyboardInterrupt) between a short
            # write and the fsync also leaves a batch that is reported as not written.
            with contextlib.suppress(OSError):
                # Under the lock nobody else appends, so everything past ``start`` is ours.
                os.ftruncate(fd, start)
                os.fsync(fd)
            if isinstance(exc, OSError):
                raise StorageError(describe_os_error(exc, "append to", self.path)) from None
            raise
        finally:
            os.close(fd)
        index = self.index
        # The lines are durable from here on; only the cache can still fail to follow.
        with _index_errors(index.path or Path(":memory:")), index.transaction():
            index.add(pending)


def refuse_ended_signer(ledger: Ledger, signer: SigningKey) -> None:
    ended = ledger.key_ended(signer.fingerprint)
    if ended:
        raise SigningKeyError(f"key {signer.name!r} may no longer sign in this ledger: {ended}")


def _parse_typed(line: bytes) -> SignedRecord:
    """Parse a ledger line strictly, its body included (RecordError otherwise).

    Why the body: records come out of the store to code that reads a checkpoint's
    ``tree_size`` or a key's ``fingerprint`` directly. A record whose envelope parsed but
    whose body did not fit its type (a damaged or forged ledger) made those commands end
    in KeyError, "internal error" (exit 70), instead of naming the malformed record.
    """
    signed = SignedRecord.parse(line)
    signed.record.typed_body()
    return signed


def _complete_prefix(handle: BinaryIO, size: int) -> int:
    """Byte length of the ledger up to and including its last newline."""
    position = size
    while position > 0:
        step = min(READ_CHUNK, position)
        handle.seek(position - step)
        block = handle.read(step)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return position - step + cut + 1
        position -= step
    return 0


class LedgerWriter:
    """Appends records for one signer while the ledger lock is held."""

    def __init__(
        self,
        ledger: Ledger,
        index: Any,
        head: Head,
        signer: SigningKey,
        clock: Clock,
        commit: Callable[[list[tuple[int, SignedRecord]]], None],
    ) -> None:
        self.ledger = ledger
        self.index = index
        self.signer = signer
        self.clock = clock
        self._commit = commit
        self._size, self._offset, self._prev = head.size, head.offset, head.last_hash
        self._pending: list[tuple[int, SignedRecord]] = []
        self._failed = False
        self._introduced = False
        self.written: list[SignedRecord] = []

    @property
    def size(self) -> int:
        """The ledger size including records not yet flushed."""
        return self._size

    def append(self, record_type: str, body: Mapping[str, Any]) -> SignedRecord:
        if self._failed:
            raise LedgerError("an earlier write to the ledger failed; nothing more is appended")
        if record_type != "key" and not self._signer_introduced():
            self.introduce(self.signer)
        record = Record(
            seq=self._size,
            type=record_type,
            time=format_time(self.clock()),
            signer=self.signer.fingerprint,
            prev=self._prev,
            body=body,
            version=FORMAT_VERSION,
        )
        payload = record.signed_bytes()
        signed = SignedRecord.assemble(record, self.signer.sign(payload), payload)
        self._pending.append((self._offset, signed))
        self._size += 1
        self._offset += len(signed.line) + 1
        self._prev = signed.line_hash
        return signed

    def introduce(
        self, key: SigningKey | PublicKey, *, replaces: str | None = None
    ) -> SignedRecord:
        """Put a key's public half into the ledger, signed by the writer's signer.

        Introducing someone else's public key is vouching for it (docs/events.md).
        """
        public = key.public if isinstance(key, SigningKey) else key
        body = KeyBody(public.fingerprint, public.raw, public.name, public.role, replaces=replaces)
        signed = self.append("key", body.to_json())
        pem_path = self.ledger.root.keys_dir / f"{public.fingerprint}.pem"
        if not pem_path.exists():
            with contextlib.suppress(StorageError):  # a convenience copy; the ledger is the truth
                pem_path.parent.mkdir(exist_ok=True)
                write_atomic(pem_path, public.pem())
        return signed

    def _signer_introduced(self) -> bool:
        if self._introduced:
            return True  # asked once per writer, not once per record
        fingerprint = self.signer.fingerprint
        self._introduced = self.index.key_known(fingerprint) or any(
            s.record.type == "key" and s.record.body.get("fingerprint") == fingerprint
            for _, s in self._pending
        )
        return self._introduced

    def checkpoint(self, statement: str | None = None) -> SignedRecord:
        """Append a checkpoint over every record before it."""
        self.flush()  # the root is computed from the index, so it must hold every record
        if not self._signer_introduced():
            self.introduce(self.signer)
            self.flush()
        size = self._size
        root = merkle.root_hash(self.index, size).hex()
        return self.append("checkpoint", CheckpointBody(size, root, statement).to_json())

    def flush(self) -> None:
        """Make pending records durable and indexed; only then do they count as written.

        If the store refuses (disk full, I/O error, lost connection), the batch is reported
        as not written and the writer refuses further appends.
        """
        if not self._pending or self._failed:
            return
        try:
            self._commit(self._pending)
        except BaseException:
            self._fail()
            raise
        self.written.extend(s for _, s in self._pending)
        self._pending.clear()

    def _fail(self) -> None:
        self._failed = True
        self._pending.clear()
