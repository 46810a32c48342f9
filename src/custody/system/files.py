"""Durable writes of custody's own files, and the inter-process lock.

Evidence is never written here: this module only writes under ``.custody/``, the keyring,
and output folders the user names. Whole files are written atomically (temporary file in
the same folder, fsync, rename, fsync of the folder) so a crash leaves the old or the new
file, never half of one. OS errors become ``StorageError`` with a one-line message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

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


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, whole."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StorageError(describe_os_error(exc, "write", path)) from None


def copy_atomic(source: Path, target: Path) -> None:
    """Copy a file of ours (not evidence) so readers see the old or the new one, whole."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
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
