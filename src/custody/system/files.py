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
from custody.i18n import N_, _

# Why the operating system refused, for the errors people meet most; any other is the
# system's own words (strerror).
_REASONS = {
    errno.ENOSPC: N_("the disk is full"),
    errno.EDQUOT: N_("the disk quota is exhausted"),
    errno.EROFS: N_("the file system is read-only"),
    errno.EACCES: N_("permission denied"),
    errno.EPERM: N_("operation not permitted"),
}

# One whole sentence per action (a translation cannot be built from a verb and a path).
# Callers name the action by its English words; an action not listed here is said in the
# generic sentence below, with those words as they are.
_ACTIONS = {
    "read": N_("cannot read {path}: {reason}"),
    "write": N_("cannot write {path}: {reason}"),
    "copy to": N_("cannot copy to {path}: {reason}"),
    "append to": N_("cannot append to {path}: {reason}"),
    "create": N_("cannot create {path}: {reason}"),
    "initialise": N_("cannot initialise {path}: {reason}"),
    "repair": N_("cannot repair {path}: {reason}"),
    "quarantine": N_("cannot quarantine {path}: {reason}"),
    "move aside": N_("cannot move aside {path}: {reason}"),
    "look at": N_("cannot look at {path}: {reason}"),
    "open the folder": N_("cannot open the folder {path}: {reason}"),
    "open the lock file": N_("cannot open the lock file {path}: {reason}"),
    "use the folder": N_("cannot use the folder {path}: {reason}"),
    "import into": N_("cannot import into {path}: {reason}"),
    "write the bundle in": N_("cannot write the bundle in {path}: {reason}"),
    "write the vault's ledger in": N_("cannot write the vault's ledger in {path}: {reason}"),
    "create a temporary folder in": N_("cannot create a temporary folder in {path}: {reason}"),
}


def describe_os_error(exc: OSError, action: str, path: os.PathLike[str] | str | bytes) -> str:
    """One line for a person: what custody could not do, where, and why (in their language).

    For messages only: never write its result into a record or a file.
    """
    known = _REASONS.get(exc.errno or 0)
    reason = _(known) if known else (exc.strerror or str(exc))
    template = _ACTIONS.get(action)
    shown = os.fsdecode(path)
    if template is None:
        return _("cannot {action} {path}: {reason}").format(
            action=action, path=shown, reason=reason
        )
    return _(template).format(path=shown, reason=reason)


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
                        _(
                            "another custody process has held {path} for {seconds} s; "
                            "try again when it has finished"
                        ).format(path=lock_path, seconds=f"{timeout:.0f}")
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
