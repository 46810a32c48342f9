"""Reading the bag without following a link: the walk, opening files under the bag's
own descriptor, bounded reads and tag-file lines."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
from collections.abc import Iterator

from custody.acquisition.sources.bagit.model import (
    MAX_DEPTH,
    MAX_LINE_CHARS,
    Kind,
)
from custody.acquisition.sources.bagit.rules import (
    _O_CLOEXEC,
    _O_DIRECTORY,
    _O_NOATIME,
    _O_NOFOLLOW,
    _O_NONBLOCK,
    _show,
)
from custody.acquisition.sources.bagit.state import (
    _Changed,
    _Node,
    _State,
)
from custody.acquisition.sources.said import Said
from custody.errors import InputError
from custody.i18n import N_, _


class _Files(_State):
    # --- reading the bag without following links ----------------------------------------

    def open_root(self) -> None:
        flags = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
        try:
            self.root_fd = os.open(self.path, flags)
        except FileNotFoundError:
            raise InputError(
                _("{path}: no such folder; give the bag's folder").format(path=self.path)
            ) from None
        except OSError as exc:
            # Linux answers ENOTDIR rather than ELOOP for a link when O_DIRECTORY is set.
            with contextlib.suppress(OSError):
                if stat.S_ISLNK(os.lstat(self.path).st_mode):
                    raise InputError(
                        _("{path} is a symbolic link; give the bag's real folder").format(
                            path=self.path
                        )
                    ) from None
            if exc.errno == errno.ELOOP:
                raise InputError(
                    _("{path} is a symbolic link; give the bag's real folder").format(
                        path=self.path
                    )
                ) from None
            if exc.errno == errno.ENOTDIR:
                raise InputError(
                    _("{path} is not a folder; a BagIt bag is a folder (unpack it first)").format(
                        path=self.path
                    )
                ) from None
            raise InputError(
                _("{path}: cannot open the bag: {why}").format(path=self.path, why=exc.strerror)
            ) from None

    def walk(self) -> None:
        """Inventory every entry with lstat semantics; links and devices are findings."""
        self._walk_dir(self.root_fd, b"", 0)

    def _walk_dir(self, fd: int, rel: bytes, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.add(
                Kind.TOO_DEEP,
                _show(rel),
                Said(N_("folders nest deeper than {max_depth} levels"), max_depth=MAX_DEPTH),
                "custody cap",
            )
            return
        try:
            with os.scandir(fd) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.add(
                Kind.UNREADABLE_FILE,
                _show(rel) or ".",
                Said(N_("cannot list: {why}"), why=exc.strerror),
                "RFC 8493 §3",
            )
            return
        if not entries and rel.startswith(b"data/"):
            self.warn(
                Kind.EMPTY_DIRECTORY,
                _show(rel),
                Said(N_("empty folder in the payload: no manifest can record it")),
                "RFC 8493 §2.1.3",
            )
        for entry in entries:
            name = os.fsencode(entry.name)
            key = rel + b"/" + name if rel else name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                self.add(
                    Kind.UNREADABLE_FILE,
                    _show(key),
                    Said(N_("cannot stat: {why}"), why=exc.strerror),
                    "RFC 8493 §3",
                )
                continue
            mode = st.st_mode
            if stat.S_ISLNK(mode):
                self.add(
                    Kind.SYMLINK,
                    _show(key),
                    Said(N_("symbolic link in the bag: custody never follows links")),
                    "RFC 8493 §5.1",
                )
            elif stat.S_ISDIR(mode):
                self.dirs.add(key)
                try:
                    child = os.open(
                        name, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=fd
                    )
                except OSError as exc:
                    self.add(
                        Kind.UNREADABLE_FILE,
                        _show(key),
                        Said(N_("cannot open: {why}"), why=exc.strerror),
                        "RFC 8493 §3",
                    )
                    continue
                try:
                    self._walk_dir(child, key, depth + 1)
                finally:
                    os.close(child)
            elif stat.S_ISREG(mode):
                self.files[key] = _Node(st.st_size, st.st_dev, st.st_ino, st.st_mtime_ns)
            else:
                self.add(
                    Kind.SPECIAL_FILE,
                    _show(key),
                    Said(N_("not a regular file (device, pipe or socket)")),
                    "RFC 8493 §2",
                )

    def open_file(self, key: bytes) -> int:
        """Open ``key`` beneath the root one component at a time, never through a link."""
        parts = key.split(b"/")
        fd = self.root_fd
        opened: list[int] = []
        try:
            for part in parts[:-1]:
                fd = os.open(part, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=fd)
                opened.append(fd)
            flags = os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK
            try:
                file_fd = os.open(parts[-1], flags | _O_NOATIME, dir_fd=fd)
            except PermissionError:
                # O_NOATIME needs ownership; without it the access time may move, no more.
                file_fd = os.open(parts[-1], flags, dir_fd=fd)
        finally:
            for d in opened:
                os.close(d)
        node = self.files[key]
        st = os.fstat(file_fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (node.dev, node.ino):
            os.close(file_fd)
            raise _Changed()
        return file_fd

    def read_bounded(self, key: bytes, limit: int) -> bytes | None:
        """Whole small tag file, or None (finding made) if unreadable or over ``limit``."""
        try:
            fd = self.open_file(key)
        except _Changed:
            self.add(
                Kind.FILE_CHANGED,
                _show(key),
                Said(N_("changed while the bag was read")),
                "RFC 8493 §3",
            )
            return None
        except OSError as exc:
            self.add(
                Kind.UNREADABLE_FILE,
                _show(key),
                Said(N_("cannot read: {why}"), why=exc.strerror),
                "RFC 8493 §3",
            )
            return None
        with open(fd, "rb", closefd=True) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            self.add(
                Kind.LINE_TOO_LONG,
                _show(key),
                Said(N_("larger than {limit} bytes"), limit=limit),
                "custody cap",
            )
            return None
        return data

    def text_lines(self, key: bytes, max_lines: int) -> Iterator[tuple[int, str]]:
        """Lines of a text tag file in the declared encoding, without their endings (§2.3).

        Findings are made here for a BOM, undecodable bytes, an over-long line or too many
        lines; iteration stops at the first of the last three.
        """
        enc = self.encoding
        if enc is None:
            return
        show = _show(key)
        try:
            fd = self.open_file(key)
        except _Changed:
            self.add(
                Kind.FILE_CHANGED, show, Said(N_("changed while the bag was read")), "RFC 8493 §3"
            )
            return
        except OSError as exc:
            self.add(
                Kind.UNREADABLE_FILE,
                show,
                Said(N_("cannot read: {why}"), why=exc.strerror),
                "RFC 8493 §3",
            )
            return
        with open(fd, "rb", closefd=True) as raw:
            codec = enc.codec
            head = raw.peek(4)[:4] if isinstance(raw, io.BufferedReader) else b""
            if codec == "utf-16" and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
                codec = "utf-16-be"  # RFC 2781 §4.3: no BOM means big-endian
            elif codec == "utf-32" and not head.startswith(
                (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
            ):
                codec = "utf-32-be"
            text = io.TextIOWrapper(raw, encoding=codec, errors="strict", newline="")
            lineno = 0
            try:
                while True:
                    line = text.readline(MAX_LINE_CHARS + 1)
                    if not line:
                        return
                    lineno += 1
                    body = line.rstrip("\r\n")
                    if len(body) == len(line) and len(line) > MAX_LINE_CHARS:
                        self.add(
                            Kind.LINE_TOO_LONG,
                            show,
                            Said(
                                N_(
                                    "line {lineno} is longer than {max_line_chars}"
                                    " characters; the rest of the file was not read"
                                ),
                                lineno=lineno,
                                max_line_chars=MAX_LINE_CHARS,
                            ),
                            "custody cap",
                        )
                        return
                    if lineno == 1 and body.startswith("\ufeff"):
                        body = body[1:]
                        if enc.codec == "utf-8":
                            self.add(
                                Kind.BYTE_ORDER_MARK,
                                show,
                                Said(
                                    N_(
                                        "begins with a byte-order mark, which UTF-8 tag"
                                        " files must not"
                                    )
                                ),
                                "RFC 8493 §2.3",
                            )
                        elif not enc.bom_part_of_encoding:
                            self.warn(
                                Kind.BYTE_ORDER_MARK,
                                show,
                                Said(
                                    N_("begins with a byte-order mark that {name} does not need"),
                                    name=enc.name,
                                ),
                                "RFC 8493 §2.3",
                            )
                    if lineno > max_lines:
                        self.add(
                            Kind.TOO_MANY_ENTRIES,
                            show,
                            Said(
                                N_(
                                    "more than {max_lines} lines for a bag of {count} files;"
                                    " the rest was not read"
                                ),
                                max_lines=max_lines,
                                count=len(self.files),
                            ),
                            "custody cap",
                        )
                        return
                    yield lineno, body
            except UnicodeDecodeError:
                self.add(
                    Kind.TAG_FILE_ENCODING,
                    show,
                    Said(
                        N_("line {number} is not valid {name}, the encoding bagit.txt declares"),
                        number=lineno + 1,
                        name=enc.name,
                    ),
                    "RFC 8493 §2.3",
                )

    # --- bagit.txt -------------------------------------------------------------------
