"""Writing under a destination folder without ever following a link or leaving the folder.

Every write custody makes below a folder that someone else may also write into (an
evidence root's sub-folders, an import folder, a vault copy, a bundle being written, the
copy of ``.custody/`` state) goes through a ``Folder``: the destination folder is opened
once, and every component below it is opened relative to its parent's descriptor with
``O_NOFOLLOW`` (``openat(2)``), new files are created with ``O_CREAT | O_EXCL`` and
directories with ``mkdirat(2)``. A symbolic link planted at any level, before or during the
write, therefore makes custody refuse with one line (``UnsafePathError``) instead of
writing through it; nothing is ever written outside the folder. Reading custody's own
files for a copy goes through the same descriptors (``read_tree`` refuses links too), so a
link planted in ``.custody/timestamps`` cannot copy a private key into a vault.

Relative names are checked component by component (``relative_parts``): not empty, not
absolute, no empty component, no ``.`` or ``..``, no NUL.

The folder itself is the one the user named: links in *its* path are the user's choice and
are resolved when it is opened; everything below it is custody's to guard. (The pattern is
the one ``openat``-based tools use against symlink races, e.g. GNU coreutils' ``fts`` with
``FTS_NOFOLLOW`` and Python's own ``shutil.rmtree`` with ``dir_fd``; CWE-59, CWE-367.)

Imports only custody.errors, custody.i18n and custody.system.files.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from custody.errors import StorageError, UnsafePathError
from custody.i18n import N_, _
from custody.system.files import describe_os_error, write_atomic_at

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


# What relative_parts refuses, one whole sentence for each kind of name it is given.
_REFUSED = {
    "path": (
        N_("refused an empty path"),
        N_("refused the absolute path {name}"),
        N_("refused the path {name}: it holds a NUL byte"),
        N_("refused the path {name}: an empty, '.' or '..' component could leave its folder"),
    ),
    "folder name": (
        N_("refused an empty folder name"),
        N_("refused the absolute folder name {name}"),
        N_("refused the folder name {name}: it holds a NUL byte"),
        N_(
            "refused the folder name {name}: an empty, '.' or '..' component could leave its folder"
        ),
    ),
    "file name": (
        N_("refused an empty file name"),
        N_("refused the absolute file name {name}"),
        N_("refused the file name {name}: it holds a NUL byte"),
        N_("refused the file name {name}: an empty, '.' or '..' component could leave its folder"),
    ),
}


def relative_parts(rel: bytes | str, what: str = "path") -> list[bytes]:
    """The components of a relative name, or UnsafePathError if it could leave its folder.

    ``what`` is the kind of name: "path", "folder name" or "file name".
    """
    raw = os.fsencode(rel)
    shown = repr(raw.decode("utf-8", "replace"))
    empty, absolute, nul, component = _REFUSED.get(what, _REFUSED["path"])
    if not raw:
        raise UnsafePathError(_(empty))
    if raw.startswith(b"/"):
        raise UnsafePathError(_(absolute).format(name=shown))
    if b"\0" in raw:
        raise UnsafePathError(_(nul).format(name=shown))
    parts = raw.split(b"/")
    if any(p in (b"", b".", b"..") for p in parts):
        raise UnsafePathError(_(component).format(name=shown))
    return parts


def _display(path: bytes) -> str:
    return path.decode("utf-8", "replace")


# What _refuse_link says for each action it is given (a link met; not a folder).
_REFUSED_ACTION = {
    "write": (
        N_(
            "refused to write {path}: it is a symbolic link, and custody never writes through links"
        ),
        N_("refused to write {path}: it exists and is not a folder"),
    ),
    "use the folder": (
        N_(
            "refused to use the folder {path}: it is a symbolic link, and custody never "
            "writes through links"
        ),
        N_("refused to use the folder {path}: it exists and is not a folder"),
    ),
}


class Folder:
    """An open folder; everything below it is reached without following links.

    Use as a context manager (or call ``close``). Sub-folders returned by ``sub`` are
    Folders of their own and must be closed too.
    """

    def __init__(self, fd: int, path: bytes) -> None:
        self.fd = fd
        self.path = path  # for messages only; never used to reach a file

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | bytes | os.PathLike[str], *, create: bool = False) -> Folder:
        """Open the folder the user named (links in its own path are followed)."""
        raw = os.fsencode(path)
        try:
            if create:
                os.makedirs(raw, exist_ok=True)
            fd = os.open(raw, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StorageError(describe_os_error(exc, "open the folder", raw)) from None
        return cls(fd, raw)

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def through(self, name: bytes | str) -> Path:
        """A path to ``name`` that reaches this very folder through its descriptor.

        For code that only takes a path (a store's ``dump``): ``/proc/self/fd/N`` is the
        folder this object opened, so a link swapped into the folder's own path after it
        was opened is never followed (Linux ``proc(5)``).
        """
        return Path(f"/proc/self/fd/{self.fd}") / os.fsdecode(name)

    def where(self, name: bytes | str) -> bytes:
        return self.path + b"/" + os.fsencode(name)

    def _refuse_link(self, name: bytes, exc: OSError, action: str) -> None:
        """Turn the error of an O_NOFOLLOW open into a one-line refusal if it met a link."""
        full = self.where(name)
        if isinstance(exc, FileNotFoundError):
            raise exc  # the caller decides what a missing folder means
        try:
            mode = os.lstat(name, dir_fd=self.fd).st_mode
        except OSError:
            mode = 0
        link, not_folder = _REFUSED_ACTION.get(action, _REFUSED_ACTION["write"])
        if stat.S_ISLNK(mode) or exc.errno == errno.ELOOP:
            raise UnsafePathError(_(link).format(path=_display(full))) from None
        if exc.errno == errno.ENOTDIR:
            raise UnsafePathError(_(not_folder).format(path=_display(full))) from None
        raise StorageError(describe_os_error(exc, action, full)) from None

    def sub(self, rel: bytes | str, *, create: bool = True, mode: int = 0o755) -> Folder:
        """The folder ``rel`` below this one, made if ``create``; no component is a link."""
        fd = os.dup(self.fd)
        path = self.path
        try:
            for part in relative_parts(rel, "folder name"):
                if create:
                    try:
                        os.mkdir(part, mode, dir_fd=fd)
                    except FileExistsError:
                        pass
                    except OSError as exc:
                        raise StorageError(
                            describe_os_error(exc, "create", path + b"/" + part)
                        ) from None
                try:
                    nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    Folder(fd, path)._refuse_link(part, exc, "use the folder")
                    raise  # pragma: no cover - _refuse_link always raises
                os.close(fd)
                fd, path = nxt, path + b"/" + part
        except BaseException:
            os.close(fd)
            raise
        return Folder(fd, path)

    def parent_of(self, rel: bytes | str, *, create: bool = True) -> tuple[Folder, bytes]:
        """The folder holding ``rel`` (made if ``create``) and the last component's name."""
        parts = relative_parts(rel)
        if len(parts) == 1:
            return Folder(os.dup(self.fd), self.path), parts[0]
        return self.sub(b"/".join(parts[:-1]), create=create), parts[-1]

    # -- entries of this folder -----------------------------------------------------------

    def lstat(self, name: bytes | str) -> os.stat_result | None:
        """The entry ``name`` of this folder as it is (a link is not followed), or None."""
        try:
            return os.lstat(os.fsencode(name), dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(describe_os_error(exc, "look at", self.where(name))) from None

    def create(self, name: bytes | str, mode: int = 0o644) -> int:
        """A new file ``name`` in this folder, open for writing (never an existing one)."""
        raw = os.fsencode(name)
        relative_parts(raw, "file name")
        if b"/" in raw:
            raise UnsafePathError(
                _("refused the file name {name}: it holds a '/'").format(name=repr(_display(raw)))
            )
        try:
            return os.open(raw, NEW_FILE_FLAGS, mode, dir_fd=self.fd)
        except FileExistsError:
            st = self.lstat(raw)
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise UnsafePathError(
                    _(
                        "refused to write {path}: a symbolic link is there, and custody never "
                        "writes through links"
                    ).format(path=_display(self.where(raw)))
                ) from None
            raise UnsafePathError(
                _("refused to write {path}: it exists already; not overwritten").format(
                    path=_display(self.where(raw))
                )
            ) from None
        except OSError as exc:
            self._refuse_link(raw, exc, "write")
            raise  # pragma: no cover

    def open_read(self, name: bytes | str) -> int:
        """Open the regular file ``name`` of this folder for reading, never through a link."""
        raw = os.fsencode(name)
        try:
            fd = os.open(raw, READ_FLAGS, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePathError(
                    _("refused to read {path}: it is a symbolic link").format(
                        path=_display(self.where(raw))
                    )
                ) from None
            raise StorageError(describe_os_error(exc, "read", self.where(raw))) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnsafePathError(
                _("refused to read {path}: not a regular file").format(
                    path=_display(self.where(raw))
                )
            )
        return fd

    def write_atomic(self, name: bytes | str, data: bytes, *, mode: int = 0o644) -> None:
        """Replace the entry ``name`` with a file holding ``data``, whole or not at all.

        The temporary file has an unpredictable name and is created with O_EXCL|O_NOFOLLOW
        in this folder's descriptor; the rename replaces a link *itself*, never its target.
        """
        raw = os.fsencode(name)
        relative_parts(raw, "file name")
        st = self.lstat(raw)
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise UnsafePathError(
                _("refused to write {path}: it is a folder").format(path=_display(self.where(raw)))
            )
        try:
            write_atomic_at(self.fd, raw, data, mode)
        except OSError as exc:
            raise StorageError(describe_os_error(exc, "write", self.where(raw))) from None

    def link(self, existing: bytes, new: bytes) -> None:
        """Give the file ``existing`` a second name ``new`` (fails if ``new`` exists)."""
        os.link(existing, new, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)

    def unlink(self, name: bytes) -> None:
        os.unlink(name, dir_fd=self.fd)

    def utime(self, name: bytes, ns: tuple[int, int]) -> None:
        os.utime(name, ns=ns, dir_fd=self.fd, follow_symlinks=False)

    def sync(self) -> None:
        os.fsync(self.fd)

    def names(self) -> list[bytes]:
        """The entries of this folder (read through its descriptor)."""
        return sorted(os.fsencode(name) for name in os.listdir(self.fd))


def write_file_under(base: Folder, rel: bytes | str, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` at ``rel`` below ``base`` (folders made as needed), atomically."""
    folder, name = base.parent_of(rel)
    with folder:
        folder.write_atomic(name, data, mode=mode)


def read_tree(base: Folder, rel: bytes | str = b"") -> Iterator[tuple[bytes, bytes]]:
    """(relative name, bytes) of every regular file below ``base``/``rel``, links refused.

    For copying custody's own small files (timestamp tokens, public keys, repair copies):
    a link or anything but a folder or a regular file is UnsafePathError, never followed.
    """
    folder = base.sub(rel, create=False) if rel else Folder(os.dup(base.fd), base.path)
    with folder:
        for name in folder.names():
            st = folder.lstat(name)
            if st is None:
                continue
            if stat.S_ISDIR(st.st_mode):
                for below, data in read_tree(folder, name):
                    yield name + b"/" + below, data
            elif stat.S_ISREG(st.st_mode):
                fd = folder.open_read(name)
                with os.fdopen(fd, "rb") as handle:
                    yield name, handle.read()
            else:
                message = (
                    N_(
                        "refused to copy {path}: it is a symbolic link, and custody never "
                        "copies through links"
                    )
                    if stat.S_ISLNK(st.st_mode)
                    else N_(
                        "refused to copy {path}: it is not a regular file, and custody never "
                        "copies through links"
                    )
                )
                raise UnsafePathError(_(message).format(path=_display(folder.where(name))))
