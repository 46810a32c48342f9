"""What chat exports claim, in one shape for every platform, and the safe reading under them.

Owns the records shared by the export readers (``whatsapp``, ``telegram``):

* ``Problem`` - a named finding about an export (something odd, hostile or unreadable that
  did not stop the reading), collected rather than raised;
* ``ExportFile`` - one file inside an export, by its path there, with size and SHA-256;
* ``MediaClaim`` - per media file, everything the export *says* about it (conversation,
  sender, time as written, text, message id), which custody records as a claim of that
  export and never as a verified fact;
* the errors a reader raises when an export cannot be read at all;
* reading inside a folder without leaving it: every path component is opened relative to
  its parent's descriptor with ``O_NOFOLLOW``, so a symbolic link (or a ``..`` smuggled in
  by an export's own text) can never lead outside the export.

Problems, reasons and claims' sentences are ``said.Said``: recorded in English, shown in the
language of the run; errors are raised in the language of the run.

May import: the standard library, ``custody.errors``, ``custody.i18n`` and the sibling
``said``. Nothing here writes anything.
"""

from __future__ import annotations

import hashlib
import os
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from custody.acquisition.sources.said import Said, translated
from custody.errors import InputError
from custody.i18n import N_, _

CHUNK = 1 << 20

# Explicit directional formatting characters (Unicode UAX #9, section 2): WhatsApp writes
# them around dates, names and generated phrases; they change how a line displays, never
# what it says, and a file name containing one can display as something it is not.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_STRIP_BIDI = str.maketrans(dict.fromkeys(BIDI_CONTROLS))

# What ``FolderRoot.open_file`` answers when nothing is at the path: equal to "missing",
# which callers compare with (a Said translates only when shown, never at import).
MISSING = Said(N_("missing"))


class ChatExportError(InputError):
    """A chat export cannot be read at all (wrong kind of file, not UTF-8, no messages)."""


class UnsafeArchiveError(ChatExportError):
    """A ZIP archive holds something no export tool writes: traversal, links, bombs, damage."""


@dataclass(frozen=True)
class Problem:
    """A named finding about an export: what, where, and a sentence for the reader.

    ``code`` is stable (for reports and tests); ``where`` names the line, message or file.
    """

    code: str
    message: str
    where: str = ""


@dataclass(frozen=True)
class ExportFile:
    """A file inside an export: its path there (``/``-separated), size and SHA-256 (hex).

    Size and digest are measured by the reader from the bytes themselves (for a ZIP
    member, the decompressed bytes whose CRC-32 the archive also checked).
    """

    path: str
    size: int
    sha256: str

    def __post_init__(self) -> None:
        if len(self.sha256) != 64 or self.size < 0:
            raise ValueError(f"bad ExportFile for {self.path!r}")

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


MediaStatus = Literal["present", "missing", "omitted", "unsafe"]


@dataclass(frozen=True)
class MediaClaim:
    """Everything one export says about one media file, as the export says it.

    Every field except ``status``, ``path_in_export``, ``size`` and ``sha256`` is a claim
    of the export (``source``): custody records it as "according to <source> ...", never
    as fact. ``status`` and what follows it are custody's own observation of the export.
    """

    platform: Literal["whatsapp", "telegram"]
    source: str  # "the WhatsApp export 'WhatsApp Chat - X.zip' (chat file _chat.txt)"
    conversation: str | None  # as the export names it
    conversation_id: str | None  # Telegram's chat id; None for WhatsApp (it writes none)
    message_ref: str  # where the claim is written: "line 12" / "message id 345"
    message_id: int | None  # Telegram's message id; the message index for WhatsApp
    sender: str | None  # as written, directional marks kept; None for system messages
    sender_id: str | None  # Telegram's from_id ("user123"); None for WhatsApp
    time_as_written: str  # verbatim: the header's date and time / Telegram's "date"
    time_readings: tuple[str, ...]  # local times read from it (ISO 8601, no zone)
    time_ambiguous: bool  # more than one reading survives (WhatsApp day/month order)
    time_zone_note: str  # what the export says, or does not say, about the zone
    utc_time: datetime | None  # Telegram's date_unixtime, as UTC; None for WhatsApp
    utc_offset_minutes: int | None  # Telegram: offset of the exporting computer then
    text: str  # the message text, verbatim
    media_name: str  # the name the export gives the file (or the placeholder it wrote)
    media_role: str  # "attachment", "photo", "file", "thumbnail", "omitted", ...
    forwarded_from: str | None = None  # Telegram only, as written
    saved_from: str | None = None  # Telegram only, as written
    status: MediaStatus = "missing"
    missing_reason: str | None = None
    path_in_export: str | None = None
    size: int | None = None
    sha256: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready mapping (times as RFC 3339 UTC), for records and reports."""
        result: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            elif isinstance(value, tuple):
                value = list(value)
            result[name] = value
        return result


def strip_bidi(text: str) -> str:
    """``text`` without directional formatting characters (for comparing, never storing)."""
    return text.translate(_STRIP_BIDI)


def has_bidi_control(text: str) -> bool:
    return any(ch in BIDI_CONTROLS for ch in text)


def unsafe_name_reason(path: str) -> str | None:
    """Why ``path`` (``/``-separated, relative) may not name a file inside an export.

    None when it is a plain relative path: no absolute or drive prefix, no backslash, no
    empty, ``.`` or ``..`` component, no NUL or other control character.
    """
    if not path:
        return Said(N_("the name is empty"))
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return Said(N_("the name is an absolute path"))
    if "\\" in path:
        return Said(N_("the name contains a backslash"))
    if any(unicodedata.category(ch) == "Cc" for ch in path):
        return Said(N_("the name contains a control character"))
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return Said(N_("the name has a {part} component"), part=repr(part or "empty"))
    return None


def sha256_stream(read: Iterator[bytes]) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    for chunk in read:
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _fd_chunks(fd: int) -> Iterator[bytes]:
    while True:
        chunk = os.read(fd, CHUNK)
        if not chunk:
            return
        yield chunk


# --- reading inside a folder without following links ------------------------------------

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)


class FolderRoot:
    """An export folder opened once; every later read resolves beneath it, link-free."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            st = os.lstat(path)
        except OSError as exc:
            raise ChatExportError(
                _("cannot read {path}: {why}").format(path=path, why=exc.strerror)
            ) from None
        if stat.S_ISLNK(st.st_mode):
            raise ChatExportError(
                _("{path} is a symbolic link; give the folder it points to").format(path=path)
            )
        if not stat.S_ISDIR(st.st_mode):
            raise ChatExportError(_("{path} is not a folder").format(path=path))
        try:
            self.fd = os.open(path, _DIR_FLAGS)
        except OSError as exc:
            raise ChatExportError(
                _("cannot open {path}: {why}").format(path=path, why=exc.strerror)
            ) from None

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> FolderRoot:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def open_file(self, relpath: str) -> tuple[int | None, str | None]:
        """(fd, None) for a regular file at ``relpath`` beneath the root, else (None, why).

        ``why`` is "missing" when nothing is there (``MISSING``, equal to that string);
        anything else names the refusal. Both are ``Said``: recorded in English.
        """
        reason = unsafe_name_reason(relpath)
        if reason is not None:
            return None, reason
        parts = relpath.split("/")
        dir_fd = self.fd
        opened: list[int] = []
        try:
            for part in parts[:-1]:
                try:
                    dir_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
                except FileNotFoundError:
                    return None, MISSING
                except OSError:
                    return None, Said(
                        N_("{part} on the way is not a plain folder (a link?)"), part=repr(part)
                    )
                opened.append(dir_fd)
            try:
                st = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                return None, MISSING
            except OSError as exc:
                return None, Said(N_("cannot read it: {why}"), why=exc.strerror)
            if stat.S_ISLNK(st.st_mode):
                return None, Said(N_("it is a symbolic link; links are never followed"))
            if not stat.S_ISREG(st.st_mode):
                return None, Said(N_("it is not a regular file"))
            try:
                fd = os.open(parts[-1], _FILE_FLAGS | os.O_NONBLOCK, dir_fd=dir_fd)
            except OSError as exc:
                return None, Said(N_("cannot open it: {why}"), why=exc.strerror)
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the stat above
                os.close(fd)
                return None, Said(N_("it is not a regular file"))
            return fd, None
        finally:
            for fd_ in opened:
                os.close(fd_)

    def hash_file(self, relpath: str) -> tuple[ExportFile | None, str | None]:
        """Measure a file beneath the root. Trusted: nothing - size and digest come from
        the bytes read here, through a descriptor that cannot have followed a link."""
        fd, why = self.open_file(relpath)
        if fd is None:
            return None, why
        try:
            size, digest = sha256_stream(_fd_chunks(fd))
        except OSError as exc:
            return None, Said(N_("cannot read it: {why}"), why=exc.strerror)
        finally:
            os.close(fd)
        return ExportFile(relpath, size, digest), None

    def read_bytes(self, relpath: str, limit: int) -> bytes:
        fd, why = self.open_file(relpath)
        if fd is None:
            raise ChatExportError(
                _("cannot read {name} in {folder}: {why}").format(
                    name=relpath, folder=self.path, why=translated(why)
                )
            )
        try:
            if os.fstat(fd).st_size > limit:
                raise ChatExportError(
                    _("{name} in {folder} is larger than {limit} bytes; not read").format(
                        name=relpath, folder=self.path, limit=limit
                    )
                )
            data = b"".join(_fd_chunks(fd))
        except OSError as exc:
            raise ChatExportError(
                _("cannot read {name}: {why}").format(name=relpath, why=exc.strerror)
            ) from None
        finally:
            os.close(fd)
        if len(data) > limit:
            raise ChatExportError(
                _("{name} in {folder} grew past {limit} bytes").format(
                    name=relpath, folder=self.path, limit=limit
                )
            )
        return data

    def walk(self, *, recursive: bool, max_entries: int) -> tuple[list[str], list[Problem]]:
        """Relative paths of the regular files beneath the root, sorted; links, devices,
        undecodable names and (when not ``recursive``) subfolders become problems."""
        found: list[str] = []
        problems: list[Problem] = []
        stack: list[tuple[int, str, bool]] = [(self.fd, "", False)]
        try:
            while stack:
                self._walk_one(stack, found, problems, recursive)
                if len(found) + len(problems) > max_entries:
                    raise ChatExportError(
                        _("{folder} holds more than {limit} entries; not an export").format(
                            folder=self.path, limit=max_entries
                        )
                    )
        finally:
            for fd, _prefix, owned in stack:
                if owned:
                    os.close(fd)
        found.sort()
        return found, problems

    def _walk_one(
        self,
        stack: list[tuple[int, str, bool]],
        found: list[str],
        problems: list[Problem],
        recursive: bool,
    ) -> None:
        dir_fd, prefix, owned = stack.pop()
        try:
            try:
                with os.scandir(dir_fd) as entries:
                    listed = sorted(entries, key=lambda e: e.name)
            except OSError as exc:
                problems.append(
                    Problem(
                        "UNREADABLE_FOLDER",
                        Said(N_("cannot list it: {why}"), why=exc.strerror),
                        prefix,
                    )
                )
                return
            for entry in listed:
                self._walk_entry(dir_fd, prefix, entry, stack, found, problems, recursive)
        finally:
            if owned:
                os.close(dir_fd)

    @staticmethod
    def _walk_entry(
        dir_fd: int,
        prefix: str,
        entry: os.DirEntry[str],
        stack: list[tuple[int, str, bool]],
        found: list[str],
        problems: list[Problem],
        recursive: bool,
    ) -> None:
        name = entry.name
        rel = f"{prefix}{name}"
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            problems.append(
                Problem(
                    "UNDECODABLE_NAME",
                    Said(N_("a file name is not valid UTF-8; it was left out")),
                    ascii(rel),
                )
            )
            return
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            problems.append(Problem("UNREADABLE_ENTRY", exc.strerror or "", rel))
            return
        if stat.S_ISLNK(st.st_mode):
            problems.append(
                Problem(
                    "SYMLINK_IGNORED",
                    Said(N_("a symbolic link inside the export; not followed, not counted")),
                    rel,
                )
            )
        elif stat.S_ISDIR(st.st_mode):
            if not recursive:
                problems.append(
                    Problem(
                        "SUBFOLDER_IGNORED",
                        Said(N_("a subfolder; chat exports are flat, so it was not read")),
                        rel,
                    )
                )
                return
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                problems.append(Problem("UNREADABLE_FOLDER", exc.strerror or "", rel))
                return
            stack.append((sub, rel + "/", True))
        elif stat.S_ISREG(st.st_mode):
            found.append(rel)
        else:
            problems.append(
                Problem(
                    "SPECIAL_FILE_IGNORED",
                    Said(N_("not a regular file (device, FIFO or socket); not read")),
                    rel,
                )
            )


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)
