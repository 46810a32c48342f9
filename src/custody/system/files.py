"""Durable writes of custody's own files, and the inter-process lock.

Evidence is never written here: this module only writes under ``.custody/``, the keyring,
and output folders the user names. Whole files are written atomically (temporary file in
the same folder, fsync, rename, fsync of the folder) so a crash leaves the old or the new
file, never half of one. Temporary files have unpredictable names and are created with
``O_EXCL | O_NOFOLLOW`` relative to the folder's descriptor, so they are safe in a shared
folder (a link planted at the temporary name is never written through). OS errors become
``StorageError`` with a one-line message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from custody.errors import LedgerBusyError, StorageError


def describe_os_error(exc: OSError, action: str, path: os.PathLike[str] | str | bytes) -> str:
    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return f"cannot {action} {os.fsdecode(path)}: {reason}"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def temp_name(name: bytes) -> bytes:
    """An unpredictable name for a temporary file beside ``name`` (hidden, same folder).

    Why unpredictable: a name made from the pid could be planted in advance, as a link,
    by anyone who may write into the folder (a shared /tmp, a team share).
    """
    return b"." + name[:200] + b".tmp-" + secrets.token_hex(8).encode()


def write_atomic_at(dir_fd: int, name: bytes, data: bytes, mode: int = 0o644) -> None:
    """Replace ``name`` in the open folder ``dir_fd`` with ``data``, whole or not at all.

    The temporary file is created with O_EXCL|O_NOFOLLOW (never an existing file, never
    through a link) under an unpredictable name; the rename replaces a link at ``name``
    itself, never its target. OSError is left to the caller.
    """
    tmp = temp_name(name)
    try:
        fd = os.open(tmp, TEMP_FLAGS, mode, dir_fd=dir_fd)
        try:
            os.fchmod(fd, mode)
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.fsync(dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def _parent_fd(path: Path) -> int:
    # The folder the caller named: links in *its* path are the caller's choice.
    return os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


@contextlib.contextmanager
def atomic_file(path: Path, *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A new file that replaces ``path`` when the block ends without an exception.

    The temporary file is made as ``write_atomic_at`` makes it; OSError is left to the
    caller, and the temporary file is removed on any failure.
    """
    name = os.fsencode(path.name)
    tmp = temp_name(name)
    dir_fd = _parent_fd(path)
    try:
        fd = os.open(tmp, TEMP_FLAGS, mode, dir_fd=dir_fd)
        try:
            os.fchmod(fd, mode)
            with open(fd, "w+b") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.fsync(dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
    finally:
        os.close(dir_fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, whole."""
    try:
        with atomic_file(path, mode=mode) as handle:
            handle.write(data)
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "write", path)) from None


def copy_atomic(source: Path, target: Path) -> None:
    """Copy a file of ours (not evidence) so readers see the old or the new one, whole."""
    try:
        src_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(src_fd, "rb") as src, atomic_file(target) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "copy to", target)) from None


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@contextlib.contextmanager
def exclusive_lock(lock_path: Path, *, timeout: float = 120.0) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path``; released even if the process dies."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "open the lock file", lock_path)) from None
    try:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LedgerBusyError(
                        f"another custody process has held {lock_path} for {timeout:.0f} s; "
                        "try again when it has finished"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
