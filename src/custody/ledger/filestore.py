"""The file store: ``.custody/ledger.jsonl`` read as lines, appended under ``flock``.

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

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from custody.clock import Clock, format_time, utc_now
from custody.errors import LedgerError, RecordError, StorageError
from custody.i18n import N_, _
from custody.keys.keyring import SigningKey
from custody.ledger.bodies import RepairBody
from custody.ledger.index import Head, LedgerIndex
from custody.ledger.records import SignedRecord, line_hash
from custody.ledger.store import Ledger, LedgerWriter, parse_typed, refuse_ended_signer
from custody.root import EvidenceRoot
from custody.system.files import describe_os_error, exclusive_lock, write_all, write_atomic

READ_CHUNK = 1 << 20

# SQLite primary result codes (sqlite3.h) for the index's write failures.
_SQLITE_REASONS = {
    3: N_("permission denied"),  # SQLITE_PERM
    8: N_("the file system is read-only"),  # SQLITE_READONLY
    10: N_("an input/output error"),  # SQLITE_IOERR
    13: N_("the disk is full"),  # SQLITE_FULL
    14: N_("it cannot be opened"),  # SQLITE_CANTOPEN
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
        known = _SQLITE_REASONS.get(code & 0xFF if isinstance(code, int) else -1)
        reason = _(known) if known else str(exc)
        raise StorageError(
            _("cannot update the ledger index {path}: {reason}").format(path=path, reason=reason)
        ) from None


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
    never loading the whole file. Only a final line with no newline is incomplete.

    Linear in the file's size however long a line is: each chunk is split once, and the
    pieces of a line that spans chunks are joined once, when its newline arrives (joining
    the pending part to every new chunk made one 256 MiB line cost 33 s). A line longer
    than a record may be (``MAX_LINE_BYTES``) is still yielded whole - its hash is part of
    the chain and the Merkle tree - and parsing refuses it without decoding it.
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in finally; generator
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "read", path)) from None
    try:
        handle.seek(start)
        left = None if end is None else end - start
        pending: list[bytes] = []  # the start of a line that continues in the next chunk
        while left is None or left > 0:
            chunk = handle.read(READ_CHUNK if left is None else min(READ_CHUNK, left))
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            lines = chunk.split(b"\n")
            tail = lines.pop()
            if lines:
                if pending:
                    pending.append(lines[0])
                    lines[0] = b"".join(pending)
                    pending = []
                for line in lines:
                    yield line, True
            if tail:
                pending.append(tail)
        if pending:
            yield b"".join(pending), False
    finally:
        handle.close()


class FileLedger(Ledger):
    """The default store: ``.custody/ledger.jsonl`` plus a derived SQLite index."""

    def __init__(self, root: EvidenceRoot) -> None:
        self.root = root
        self.path = root.ledger_path
        if not self.path.exists():
            raise LedgerError(
                _("{path} is missing: this evidence root has no ledger").format(path=self.path)
            )
        self._index: LedgerIndex | None = None
        self._pinned_end: int | None = None

    @property
    def index(self) -> LedgerIndex:
        """The index, brought up to date with the ledger file (read-only use)."""
        if self._index is None:
            path = self.root.cache_dir / "index.sqlite"
            with _index_errors(path):
                # A damaged page found later is rebuilt from the ledger by the same sync.
                self._index = LedgerIndex(path, rebuild=self._sync)
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
            raise LedgerError(
                _("no record {seq}: the ledger has {size} records").format(
                    seq=seq, size=self.index.size
                )
            )
        offset, length = span
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            return parse_typed(handle.read(length))

    def records(self, start: int = 0) -> Iterator[SignedRecord]:
        """Complete records from ``start`` in order (strict parse; RecordError if malformed)."""
        span = self.index.record_span(start) if start else (0, 0)
        if span is None:
            return
        for raw in self.lines(span[0]):
            if raw.complete:
                yield parse_typed(raw.data)

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
                    _(
                        "ledger record {seq} (byte {offset}) is malformed: {why}; run 'custody "
                        "verify' for the full report"
                    ).format(seq=size, offset=raw.offset, why=exc)
                ) from None
            record = signed.record
            if record.seq != size or record.prev != last_hash:
                raise LedgerError(
                    _(
                        "ledger record {seq} (byte {offset}) does not follow the one before it "
                        "(sequence or hash chain broken); run 'custody verify'"
                    ).format(seq=size, offset=raw.offset)
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
                _(
                    "{path} ends with an incomplete record (a write was cut off); run "
                    "'custody repair' before adding records"
                ).format(path=self.path)
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
