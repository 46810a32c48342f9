"""Reading a ZIP archive that may be hostile, without extracting it.

Owns ``SafeZip``: an archive whose central directory has been checked before a byte of
content is read, and whose members are then read with hard caps. Refused, with an
``UnsafeArchiveError`` naming the member:

* names that could reach outside a folder if extracted (absolute, drive letters, ``..``,
  backslashes, control characters) or that are too long;
* two members with the same name, or names equal after Unicode NFC normalisation
  (which one would an extractor keep?);
* symbolic links and other non-regular members (Unix mode in the external attributes);
* encrypted members, and compression methods Python cannot read;
* zip bombs: more entries, larger members or a larger total than ``ZipLimits`` allows, a
  compression ratio above the limit, and members whose data overlap (the overlapping-file
  construction, https://www.bamsoftware.com/hacks/zipbomb/) - checked from the directory,
  before anything is decompressed;
* damage: a member whose CRC-32 or length does not match, a local header that disagrees
  with the directory (another name: extractors that trust the local header would write
  another file than the one checked), or an archive Python's ``zipfile`` cannot parse.

By default the first refusal refuses the whole archive. With ``collect=True`` (evidence
bundles, ``custody.delivery.bundle_check``) a refused member is set aside and listed in
``refused`` instead - its name, why, and whether it is damage rather than danger - while
the zip-bomb limits still refuse the whole archive. Reading a member whose bytes do not
match (CRC-32, length) raises ``DamagedMemberError``. ``ZipLimits.fold_case`` also holds
names that differ only in case to be the same name (one file on macOS and Windows), and
the name policy can be given (a bundle may carry names with control characters; a chat
export never does).

``SafeZip.extract_all`` is the one way custody unpacks an archive (chat exports, ProofMode
and BagIt bags handed over as a zip): into a folder it creates itself, each file created
with ``O_EXCL | O_NOFOLLOW`` beneath its parent folder's descriptor (so no link is followed
and no file replaced), and each checked against ``measure`` - a second, independent
decompression - before it counts. It is the only code under ``sources/`` that writes, and
it writes only inside that new folder.

Format: PKWARE APPNOTE.TXT 6.3.10 (sections 4.3.7 local header, 4.3.12 central directory,
4.4.4 general purpose flag bit 0 "encrypted" and bit 11 "UTF-8 names"); the Unix mode is
the high 16 bits of "external file attributes" when "version made by" names Unix (3).

May import: the standard library, ``custody.errors`` (through ``claims``), ``claims``,
``said`` and ``custody.i18n`` (its refusals are said in the run's language).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import os
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from custody.acquisition.sources.claims import (
    CHUNK,
    ExportFile,
    Problem,
    UnsafeArchiveError,
    sha256_stream,
    unsafe_name_reason,
)
from custody.acquisition.sources.said import Said, translated
from custody.i18n import N_, _

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_MAGIC = b"PK\x03\x04"
_UNIX = 3
_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800
_READABLE_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)


@dataclass(frozen=True)
class ZipLimits:
    """Caps applied to an archive before and while reading it.

    WhatsApp allows documents of up to 2 GB, so single members may be large; media barely
    compress (JPEG, MP4, Opus), and a chat text compresses perhaps tenfold - a member that
    claims to expand more than ``max_ratio`` times is treated as a bomb.
    """

    max_entries: int = 20_000
    max_member_size: int = 16 << 30
    max_total_size: int = 64 << 30
    max_ratio: int = 100
    ratio_floor: int = 1 << 20  # members expanding to less than this are not ratio-checked
    max_name_bytes: int = 1024
    fold_case: bool = False  # names equal but for case are the same name
    # Declared bytes in all per byte of the archive itself: the ratio check of single
    # members spares small ones, and many small members can expand as much as one big one.
    max_total_ratio: int | None = None


class DamagedMemberError(UnsafeArchiveError):
    """A member's bytes are not what the archive says: CRC-32, length or local header."""


@dataclass(frozen=True)
class Refusal:
    """A member set aside (``collect=True``): its name as listed, why, and whether it is
    damage (a header or data that disagrees with the directory) rather than danger."""

    name: str
    reason: str
    damaged: bool = False


@dataclass(frozen=True)
class ExtractedFile:
    """A member written out by ``extract_all``: where, and the size and SHA-256 of the bytes
    written (equal to those of an independent second decompression of the member)."""

    name: str  # the member's name, '/'-separated
    path: Path  # the file written, inside the extraction folder
    size: int
    sha256: str


@dataclass(frozen=True)
class ZipMember:
    """A regular-file member as the central directory declares it (unverified sizes)."""

    name: str
    declared_size: int
    compressed_size: int


class SafeZip:
    """An archive checked as a whole on opening; members read only through caps."""

    def __init__(
        self,
        path: Path,
        limits: ZipLimits | None = None,
        *,
        name_reason: Callable[[str], str | None] = unsafe_name_reason,
        collect: bool = False,
    ) -> None:
        self.path = path
        self.limits = limits or ZipLimits()
        self.problems: list[Problem] = []
        self.refused: list[Refusal] = []
        self._name_reason = name_reason
        self._collect = collect
        try:
            st = os.lstat(path)
        except OSError as exc:
            raise UnsafeArchiveError(
                _("cannot read {path}: {why}").format(path=path, why=exc.strerror)
            ) from None
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeArchiveError(
                _("{path} is a symbolic link; give the archive itself").format(path=path)
            )
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeArchiveError(_("{path} is not a regular file").format(path=path))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise UnsafeArchiveError(
                _("cannot open {path}: {why}").format(path=path, why=exc.strerror)
            ) from None
        self._file: IO[bytes] = os.fdopen(fd, "rb")
        try:
            self._zip = zipfile.ZipFile(self._file)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
            self._file.close()
            raise UnsafeArchiveError(
                _("{path} is not a readable ZIP archive ({why})").format(path=path, why=exc)
            ) from None
        try:
            self._infos = self._check_directory()
        except BaseException:
            self.close()
            raise
        self.members = tuple(
            ZipMember(name, info.file_size, info.compress_size)
            for name, info in self._infos.items()
        )

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    def archive_digest(self) -> tuple[str, int]:
        """SHA-256 and size of the archive file itself, read through the descriptor it was
        opened with (the very file read, never the path again)."""
        fd = self._file.fileno()
        digest = hashlib.sha256()
        offset = 0
        while chunk := os.pread(fd, 1 << 20, offset):
            digest.update(chunk)
            offset += len(chunk)
        return digest.hexdigest(), offset

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- the directory ------------------------------------------------------------------

    def _refusal(self, name: str, why: str) -> str:
        return _("{archive}: member {name} refused: {why}").format(
            archive=self.path, name=repr(name), why=translated(why)
        )

    def _refuse(self, name: str, why: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(self._refusal(name, why))

    def _set_aside(self, name: str, why: str, *, damaged: bool = False) -> None:
        """Refuse one member: the whole archive, or (``collect``) just that member.

        ``why`` is said in the run's language (it is shown, never recorded)."""
        if not self._collect:
            error = DamagedMemberError if damaged else UnsafeArchiveError
            raise error(self._refusal(name, why))
        self.refused.append(Refusal(name, str(translated(why)), damaged))

    def _member_name(self, info: zipfile.ZipInfo) -> str:
        name = info.filename
        if not info.flag_bits & _FLAG_UTF8 and not name.isascii():
            # zipfile decoded the raw bytes as CP437; exports from phones are UTF-8 in
            # practice, so read them so when they decode, and say that we guessed.
            raw = name.encode("cp437")
            with contextlib.suppress(UnicodeDecodeError):
                name = raw.decode("utf-8")
            self.problems.append(
                Problem(
                    "ZIP_NAME_ENCODING_UNDECLARED",
                    Said(
                        N_("the archive does not say how this name is encoded; read as {codec}"),
                        codec="UTF-8" if name != info.filename else "CP437",
                    ),
                    name,
                )
            )
        return name

    def _check_directory(self) -> dict[str, zipfile.ZipInfo]:
        limits = self.limits
        infos = self._zip.infolist()
        if len(infos) > limits.max_entries:
            raise UnsafeArchiveError(
                _("{path} has {count} entries, more than {limit}").format(
                    path=self.path, count=len(infos), limit=limits.max_entries
                )
            )
        files: dict[str, zipfile.ZipInfo] = {}
        normalised: dict[str, str] = {}
        ambiguous: set[str] = set()  # names of which the archive holds several
        total = 0
        for info in infos:
            name = self._member_name(info)
            if len(name.encode("utf-8")) > limits.max_name_bytes:
                self._set_aside(name[:80], _("the name is too long"))
                continue
            is_dir = name.endswith("/")
            check = name[:-1] if is_dir else name
            reason = self._name_reason(check)
            if reason is not None:
                self._set_aside(name, reason)
                continue
            key = unicodedata.normalize("NFC", name)
            if limits.fold_case:
                key = unicodedata.normalize("NFC", key.casefold())
            if key in normalised:
                twin = normalised[key]
                if twin == name:
                    why = _("another member has the same name")
                elif limits.fold_case:
                    why = _(
                        "another member has the same name after Unicode normalisation and case"
                        " folding ({twin})"
                    ).format(twin=repr(twin))
                else:
                    why = _(
                        "another member has the same name after Unicode normalisation ({twin})"
                    ).format(twin=repr(twin))
                self._set_aside(name, why)
                if twin not in ambiguous:
                    ambiguous.add(twin)  # neither copy is read: which one was meant?
                    if twin in files:
                        total -= files.pop(twin).file_size
                        self._set_aside(
                            twin,
                            _("another member has the same name ({name})").format(name=repr(name)),
                        )
                continue
            normalised[key] = name
            if info.create_system == _UNIX:
                mode = info.external_attr >> 16
                kind = stat.S_IFMT(mode)
                if stat.S_ISLNK(mode):
                    self._set_aside(name, _("it is a symbolic link"))
                    continue
                if kind and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    self._set_aside(name, _("it is not a regular file or folder"))
                    continue
            if is_dir:
                continue
            if info.flag_bits & _FLAG_ENCRYPTED:
                self._set_aside(name, _("it is encrypted; decrypt the archive first"))
                continue
            if info.compress_type not in _READABLE_METHODS:
                self._set_aside(
                    name,
                    _("compression method {method} unknown").format(method=info.compress_type),
                )
                continue
            if info.file_size > limits.max_member_size:
                raise self._refuse(
                    name,
                    _("it declares {size} bytes, more than {limit}").format(
                        size=info.file_size, limit=limits.max_member_size
                    ),
                )
            if info.file_size >= limits.ratio_floor and (
                info.file_size > limits.max_ratio * max(info.compress_size, 1)
            ):
                raise self._refuse(
                    name,
                    _(
                        "it declares {size} bytes from {compressed} compressed (more than"
                        " {ratio} to 1): a zip bomb?"
                    ).format(
                        size=info.file_size, compressed=info.compress_size, ratio=limits.max_ratio
                    ),
                )
            total += info.file_size
            if total > limits.max_total_size:
                raise UnsafeArchiveError(
                    _("{path} declares more than {limit} bytes in all").format(
                        path=self.path, limit=limits.max_total_size
                    )
                )
            files[name] = info
        if limits.max_total_ratio is not None:
            real = os.fstat(self._file.fileno()).st_size
            if total >= limits.ratio_floor and total > limits.max_total_ratio * max(real, 1):
                raise UnsafeArchiveError(
                    _(
                        "{path} declares {total} bytes in all from {real} bytes (more than"
                        " {ratio} to 1): a zip bomb?"
                    ).format(path=self.path, total=total, real=real, ratio=limits.max_total_ratio)
                )
        self._check_local_headers(files)
        return files

    def _check_local_headers(self, files: dict[str, zipfile.ZipInfo]) -> None:
        """Each member's local header names it as the directory does, and its data ends
        before the next member begins: overlapping members let a small archive expand many
        times over through shared data."""
        spans: list[tuple[int, int, str]] = []
        for name, info in list(files.items()):
            self._file.seek(info.header_offset)
            header = self._file.read(_LOCAL_HEADER.size)
            if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_MAGIC:
                del files[name]
                self._set_aside(name, _("its local header is missing or damaged"), damaged=True)
                continue
            fields = _LOCAL_HEADER.unpack(header)
            name_len, extra_len = fields[10], fields[11]
            listed = info.orig_filename.encode(
                "utf-8" if info.flag_bits & _FLAG_UTF8 else "cp437", "surrogateescape"
            )
            if self._file.read(name_len) != listed:
                # zipfile reads by the directory, unzip and others by the local header.
                del files[name]
                self._set_aside(
                    name,
                    _("its local header names another file than the directory"),
                    damaged=True,
                )
                continue
            start = info.header_offset
            end = start + _LOCAL_HEADER.size + name_len + extra_len + info.compress_size
            spans.append((start, end, name))
        spans.sort()
        for (_s1, end1, name1), (start2, _e2, name2) in itertools.pairwise(spans):
            if start2 < end1:
                raise self._refuse(
                    name2, _("its data overlaps member {name}").format(name=repr(name1))
                )
        # The central directory follows the last member's data (APPNOTE 4.3.6).
        directory = int(getattr(self._zip, "start_dir", 0)) or os.fstat(self._file.fileno()).st_size
        for _start, end, name in spans:
            if end > directory:
                raise self._refuse(name, _("its data runs past the end of the archive's content"))

    # --- the content --------------------------------------------------------------------

    def _chunks(self, name: str) -> Iterator[bytes]:
        info = self._infos[name]
        read = 0
        try:
            with self._zip.open(info) as handle:
                while True:
                    chunk = handle.read(CHUNK)
                    if not chunk:
                        break
                    read += len(chunk)
                    yield chunk
        except zipfile.BadZipFile as exc:
            raise self._damaged(name, _("it is damaged ({why})").format(why=exc)) from None
        except (EOFError, zlib.error, OSError, ValueError, NotImplementedError) as exc:
            raise self._damaged(
                name, _("it cannot be decompressed ({why})").format(why=exc)
            ) from None
        if read != info.file_size:
            raise self._damaged(
                name,
                _("it holds {read} bytes where the directory declares {size}").format(
                    read=read, size=info.file_size
                ),
            )

    def _damaged(self, name: str, why: str) -> DamagedMemberError:
        return DamagedMemberError(self._refusal(name, why))

    def open(self, name: str) -> IO[bytes]:
        """A member as a read-only stream (``read`` and the ``with`` statement); reading
        raises ``DamagedMemberError`` when its bytes do not match the archive's CRC-32 or
        declared length."""
        if name not in self._infos:
            raise FileNotFoundError(name)
        return io.BufferedReader(_MemberStream(self._chunks(name)), CHUNK)

    def read(self, name: str, limit: int) -> bytes:
        """The whole member, refused when it declares more than ``limit`` bytes."""
        info = self._infos[name]
        if info.file_size > limit:
            raise UnsafeArchiveError(
                _("{path}: {name} is larger than {limit} bytes; not read").format(
                    path=self.path, name=repr(name), limit=limit
                )
            )
        return b"".join(self._chunks(name))

    def measure(self, name: str) -> ExportFile:
        """Size and SHA-256 of a member's decompressed bytes. Trusted: nothing - the
        bytes are read in full, so ``zipfile`` also checks them against their CRC-32."""
        size, digest = sha256_stream(self._chunks(name))
        return ExportFile(name, size, digest)

    def measure_archive(self) -> ExportFile:
        """Size and SHA-256 of the archive as received, read through the descriptor the
        members were read from (so it is the same file, whatever happens to the path)."""
        self._file.seek(0)
        size, digest = sha256_stream(iter(lambda: self._file.read(CHUNK), b""))
        return ExportFile(self.path.name, size, digest)

    def extract_all(self, target: Path, *, durable: bool = False) -> tuple[ExtractedFile, ...]:
        """Write every member under ``target``, a folder created here (mode 0700; it must
        not exist yet), and return what was written, in the archive's order.

        Each folder is made with ``mkdir`` and entered with ``O_DIRECTORY | O_NOFOLLOW``
        relative to its parent's descriptor; each file is created with ``O_CREAT |
        O_EXCL | O_NOFOLLOW`` there, written while hashed and, with ``durable``, synced to
        disk. Then the member is decompressed a second time (``measure``) and the two must
        agree in size and SHA-256; otherwise ``UnsafeArchiveError``. A member that would
        need a file where a folder is (or the reverse) is refused the same way.
        """
        try:
            os.mkdir(target, 0o700)
            root_fd = os.open(target, _DIR_FLAGS)
        except OSError as exc:
            raise UnsafeArchiveError(
                _("cannot make the folder to unpack {path} into ({target}): {why}").format(
                    path=self.path, target=target, why=exc.strerror
                )
            ) from None
        folders: dict[str, int] = {"": root_fd}
        written: list[ExtractedFile] = []
        try:
            for name in self._infos:
                *parents, base = name.split("/")
                parent_fd = self._folder(folders, parents, name)
                try:
                    fd = os.open(base, _NEW_FILE_FLAGS, 0o600, dir_fd=parent_fd)
                except OSError as exc:
                    raise self._refuse(
                        name, _("it cannot be unpacked ({why})").format(why=exc.strerror)
                    ) from None
                digest = hashlib.sha256()
                size = 0
                try:
                    for chunk in self._chunks(name):
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(fd, view) :]
                        digest.update(chunk)
                        size += len(chunk)
                    if durable:
                        os.fsync(fd)
                except OSError as exc:
                    raise UnsafeArchiveError(
                        _("{path}: {name} could not be written out: {why}").format(
                            path=self.path, name=repr(name), why=exc.strerror
                        )
                    ) from None
                finally:
                    os.close(fd)
                again = self.measure(name)
                if (again.size, again.sha256) != (size, digest.hexdigest()):
                    raise self._refuse(name, _("it decompressed to different bytes twice"))
                written.append(
                    ExtractedFile(name, target.joinpath(*name.split("/")), size, again.sha256)
                )
        finally:
            for fd in folders.values():
                os.close(fd)
        return tuple(written)

    def _folder(self, folders: dict[str, int], parts: list[str], name: str) -> int:
        """The descriptor of the folder ``parts`` under the extraction folder, made if new."""
        path = ""
        fd = folders[""]
        for part in parts:
            path = f"{path}/{part}" if path else part
            known = folders.get(path)
            if known is not None:
                fd = known
                continue
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o700, dir_fd=fd)
            try:
                fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise self._refuse(
                    name,
                    _("its folder {folder} cannot be made ({why})").format(
                        folder=repr(path), why=exc.strerror
                    ),
                ) from None
            folders[path] = fd
        return fd


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class _MemberStream(io.RawIOBase):
    """``SafeZip._chunks`` as a readable binary stream."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            self._pending = memoryview(next(self._chunks, b""))
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()
