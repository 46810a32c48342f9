"""Streaming digests of evidence files, opened read-only and never altered.

Originals are opened with O_RDONLY | O_NOFOLLOW | O_NOATIME (where permitted), so a
symbolic link is never followed and even the access time stays as the documenter left
it. Data is read with ``readinto`` into one reused buffer and fed to every requested
algorithm in the same pass, so memory stays flat whatever the file size and each byte is
read once. ``hashlib`` and ``blake3`` release the GIL on large updates, which lets two
threads hash two files on two cores.

A file whose size, modification time, status-change time or inode changes while it is
read raises ``FileChangedError``: its digest would describe bytes that never existed
together.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import queue
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from custody.errors import CustodyError, UsageError
from custody.i18n import N_, _

BUFFER_SIZE = 1 << 20
PIPELINE_FROM = 64 << 20  # files this large are read by one thread while another hashes
PIPELINE_CHUNK = 4 << 20
PIPELINE_BUFFERS = 3
DEFAULT_ALGORITHMS = ("sha256", "blake3")
ALGORITHMS = ("sha256", "blake3", "sha512", "sha3-256", "sha1", "md5")


class _Hash(Protocol):
    def update(self, data: Any, /) -> object: ...
    def hexdigest(self) -> str: ...


class EvidenceReadError(CustodyError):
    """One file could not be read as evidence (symlink, device, permissions...)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class FileChangedError(EvidenceReadError):
    """The file changed while it was being read."""


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1: the default
    number of files hashed at once (``--jobs``) and of exiftool processes."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def new_hash(algorithm: str) -> _Hash:
    if algorithm == "blake3":
        from blake3 import blake3  # imported on use: keeps start-up fast

        return blake3()  # type: ignore[no-any-return,unused-ignore]
    if algorithm == "sha3-256":
        return hashlib.sha3_256()
    if algorithm in ("sha256", "sha512", "sha1", "md5"):
        return hashlib.new(algorithm)
    raise UsageError(
        _("unknown digest algorithm {algorithm!r}: choose from {choices}").format(
            algorithm=algorithm, choices=", ".join(ALGORITHMS)
        )
    )


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(a.lower() for a in algorithms))
    for algorithm in chosen:
        if algorithm not in ALGORITHMS:
            raise UsageError(
                _("unknown digest algorithm {algorithm!r}: choose from {choices}").format(
                    algorithm=algorithm, choices=", ".join(ALGORITHMS)
                )
            )
    return chosen


@dataclass(frozen=True)
class FileIdentity:
    """What we compare before and after reading to detect a file changing under us."""

    size: int
    mtime_ns: int
    ino: int
    dev: int
    # Why ctime too: a writer can rewrite bytes in place and put the old mtime back
    # (``touch -r``, ``utime``, rsync --inplace); size and mtime then match before and
    # after, and a digest of mixed old and new bytes was recorded. Nobody can set the
    # ctime back: every write, utime or chmod moves it.
    ctime_ns: int = 0

    @staticmethod
    def of(st: os.stat_result) -> FileIdentity:
        return FileIdentity(st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns)


@dataclass(frozen=True)
class FileDigest:
    size: int
    mtime_ns: int
    digests: dict[str, str]
    identity: FileIdentity


_NOATIME = getattr(os, "O_NOATIME", 0)


def open_evidence(path: str | bytes | os.PathLike[str]) -> int:
    """Open an original for reading only, refusing anything but a regular file."""
    display = os.fsdecode(path)
    # O_NONBLOCK: opening a FIFO must not hang; it is refused below as not a regular file.
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        try:
            fd = os.open(path, flags | _NOATIME)
        except PermissionError:
            # O_NOATIME is only allowed to the file's owner; fall back rather than fail.
            fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise EvidenceReadError(display, _("symbolic link, not followed")) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise EvidenceReadError(display, _("permission denied")) from None
        if exc.errno == errno.ENOENT:
            raise EvidenceReadError(display, _("no such file")) from None
        raise EvidenceReadError(display, exc.strerror or str(exc)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise EvidenceReadError(display, _("not a regular file ({kind})").format(kind=_kind(mode)))
    return fd


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, N_("directory")),
        (stat.S_ISFIFO, N_("FIFO")),
        (stat.S_ISCHR, N_("character device")),
        (stat.S_ISBLK, N_("block device")),
        (stat.S_ISSOCK, N_("socket")),
    ):
        if test(mode):
            return _(name)
    return _("special file")


def hash_fd(
    fd: int,
    algorithms: Sequence[str],
    *,
    progress: Callable[[int], None] | None = None,
    buffer: bytearray | None = None,
    sink: Callable[[memoryview], None] | None = None,
    limit: int | None = None,
) -> tuple[int, dict[str, str]]:
    """Hash everything readable from ``fd``; returns (bytes read, {algorithm: hex}).

    ``sink`` receives each chunk too (ingest writes the copy from the very bytes hashed).
    With ``limit`` (the size seen at open) at most ``limit + 1`` bytes are read: one byte
    more proves the file grew, and a file that never stops growing cannot keep us reading.
    """
    hashes = [new_hash(a) for a in algorithms]
    if limit is not None and limit >= PIPELINE_FROM:
        total = _hash_pipelined(fd, hashes, progress, sink, limit)
    else:
        total = _hash_serial(fd, hashes, progress, buffer, sink, limit)
    return total, {a: h.hexdigest() for a, h in zip(algorithms, hashes, strict=True)}


def _hash_serial(
    fd: int,
    hashes: Sequence[_Hash],
    progress: Callable[[int], None] | None,
    buffer: bytearray | None,
    sink: Callable[[memoryview], None] | None,
    limit: int | None,
) -> int:
    buf = buffer if buffer is not None else bytearray(BUFFER_SIZE)
    view = memoryview(buf)
    total = 0
    while True:
        want = len(buf) if limit is None else min(len(buf), limit + 1 - total)
        if want <= 0:
            break
        n = os.readv(fd, [view[:want]])
        if n == 0:
            break
        chunk = view[:n]
        for h in hashes:
            h.update(chunk)
        if sink is not None:
            sink(chunk)
        total += n
        if progress is not None:
            progress(n)
    return total


def _hash_pipelined(
    fd: int,
    hashes: Sequence[_Hash],
    progress: Callable[[int], None] | None,
    sink: Callable[[memoryview], None] | None,
    limit: int,
) -> int:
    """Read the next chunk while the last one is hashed: the copy from the page cache costs
    about a tenth of SHA-256's time, and both release the GIL, so a second thread hides it.
    The buffers are a fixed ring, so memory stays flat whatever the file size."""
    free: queue.Queue[bytearray] = queue.Queue()
    full: queue.Queue[tuple[bytearray, int] | BaseException | None] = queue.Queue()
    for _buffer in range(PIPELINE_BUFFERS):
        free.put(bytearray(PIPELINE_CHUNK))

    def reader() -> None:
        total = 0
        try:
            while total <= limit:
                buf = free.get()
                n = os.readv(fd, [memoryview(buf)[: min(len(buf), limit + 1 - total)]])
                if n == 0:
                    break
                total += n
                full.put((buf, n))
            full.put(None)
        except BaseException as exc:  # handed to the hashing thread, which re-raises it
            full.put(exc)

    thread = threading.Thread(target=reader, name="custody-read", daemon=True)
    thread.start()
    total = 0
    try:
        while True:
            item = full.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            buf, n = item
            chunk = memoryview(buf)[:n]
            for h in hashes:
                h.update(chunk)
            if sink is not None:
                sink(chunk)
            total += n
            if progress is not None:
                progress(n)
            free.put(buf)
    finally:
        # Never leave the reader blocked on a full ring (an exception above, a sink error).
        while thread.is_alive():
            free.put(bytearray(0))
            with contextlib.suppress(queue.Empty):
                while True:
                    full.get_nowait()
            thread.join(timeout=0.05)
    return total


def hash_file(
    path: str | bytes | os.PathLike[str],
    algorithms: Sequence[str] = ("sha256",),
    *,
    progress: Callable[[int], None] | None = None,
    buffer: bytearray | None = None,
) -> FileDigest:
    """Digest one original. Trusts nothing but the bytes read through this descriptor."""
    display = os.fsdecode(path)
    fd = open_evidence(path)
    try:
        before = FileIdentity.of(os.fstat(fd))
        try:
            size, digests = hash_fd(
                fd, algorithms, progress=progress, buffer=buffer, limit=before.size
            )
        except OSError as exc:
            raise EvidenceReadError(
                display, _("read error: {strerror}").format(strerror=exc.strerror)
            ) from None
        after = FileIdentity.of(os.fstat(fd))
    finally:
        os.close(fd)
    if before != after or size != before.size:
        raise FileChangedError(display, _("file changed while it was being read"))
    try:
        now = FileIdentity.of(os.lstat(path))
    except OSError:
        now = None
    if now != after:
        raise FileChangedError(display, _("file was replaced while it was being read"))
    return FileDigest(size, after.mtime_ns, digests, after)


MMAP_FROM = 8 << 20  # below this, one thread per file beats threads within a file


def blake3_file(path: str | bytes | os.PathLike[str]) -> FileDigest:
    """BLAKE3 alone of one original, on every core for a large file: the fast fixity check.

    Same guarantees as ``hash_file`` (read-only, no link followed, a file changing or
    replaced while read is refused). A file of ``MMAP_FROM`` bytes or more is hashed by
    blake3's ``update_mmap`` with ``max_threads=AUTO``, which splits it over every core
    (FIELD-NOTES: ~9 GB/s here, where one thread gives ~4.4 GB/s and 1 MiB ``update`` calls
    cannot be spread at all). ``update_mmap`` opens a path itself, so it is handed
    ``/proc/self/fd/N``: the file already opened with O_NOFOLLOW, never the name again.
    As with ``b3sum``, a file cut short by another process while it is mapped ends the
    process with SIGBUS: a crash, never a wrong answer (the full check never maps).
    """
    display = os.fsdecode(path)
    fd = open_evidence(path)
    try:
        before = FileIdentity.of(os.fstat(fd))
        proc_path = f"/proc/self/fd/{fd}"
        if before.size < MMAP_FROM or not os.path.exists(proc_path):
            try:
                size, digests = hash_fd(fd, ("blake3",), limit=before.size)
            except OSError as exc:
                raise EvidenceReadError(
                    display, _("read error: {strerror}").format(strerror=exc.strerror)
                ) from None
        else:
            from blake3 import blake3

            hasher = blake3(max_threads=blake3.AUTO)
            try:
                hasher.update_mmap(proc_path)
            except OSError as exc:
                raise EvidenceReadError(
                    display, _("read error: {strerror}").format(strerror=exc.strerror)
                ) from None
            size, digests = before.size, {"blake3": hasher.hexdigest()}
        after = FileIdentity.of(os.fstat(fd))
    finally:
        os.close(fd)
    if before != after or size != before.size:
        raise FileChangedError(display, _("file changed while it was being read"))
    try:
        now = FileIdentity.of(os.lstat(path))
    except OSError:
        now = None
    if now != after:
        raise FileChangedError(display, _("file was replaced while it was being read"))
    return FileDigest(size, after.mtime_ns, digests, after)
