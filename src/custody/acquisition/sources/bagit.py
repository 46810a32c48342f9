"""Strict, read-only validation of BagIt bags (RFC 8493 and the 0.93–0.97 drafts).

Owns custody's own verdict on a bag that another archive hands over: ``validate_bag``
walks the bag without following a single symbolic link, checks every structural rule,
every manifest and tag manifest (every algorithm present, not just the strongest), the
Payload-Oxum and fetch.txt, and returns a frozen ``BagValidation``: named findings (errors
refuse the bag, warnings do not), the declared version and encoding, bag-info.txt exactly
as written, and every payload and tag file with the bag's own manifest digests. It never
writes, never fetches a URL and never calls bagit-python (that is the independent check
the tests compare against). May import only the standard library and ``custody.errors``.

Sources followed (cited by section in the code):

* RFC 8493, "The BagIt File Packaging Format (V1.0)", October 2018 — the XML source in
  LibraryOfCongress/bagit-spec, commit 753a54db89bc312998c503c9a0048629ad30a219.
* BagIt 0.97 (draft-kunze-bagit, jkunze/bagitspec commit 94d14cd) for the older rules:
  a payload file need only be in one payload manifest, ``*`` may precede a filename,
  whitespace around the colon is free, no percent-encoding of names (that arrived with
  the 0.98 drafts that became 1.0).
* bagit-python (LibraryOfCongress/bagit-python, ``src/bagit/__init__.py`` at commit
  462f6b0a2be24eaec150ca43d67906e872613b1a) read for its rules and quirks: duplicate
  manifest entries are an error from 1.0 and a warning before; ``package-info.txt`` holds
  the metadata for 0.93–0.95; it decodes only %0D/%0A (never %25) and strips a leading ``*``.
* The Library of Congress conformance suite (LibraryOfCongress/bagit-conformance-suite,
  commit 9ab48705c06664f9f419ca740c728c9f89a61e7c) for what must pass, fail or warn.

Tolerances, each reported as a warning and never hiding an unverified byte: a leading
``./`` or md5sum ``*`` (RFC 8493 §6.1.3 "MUST warn"); a manifest name that differs from
the file on disk only in Unicode normalisation (§6.1.1.3 "SHOULD tolerate"); a second
entry naming an already-listed file in another case or normalisation form, with the same
digest (what a case-insensitive or normalising filesystem leaves behind); an absent
operating-system metadata file (``.DS_Store``, ``Thumbs.db``…) whose every manifest digest
is that of zero bytes (copying tools drop such files; no content is lost); a 1.0 name
holding a bare ``%`` or written unencoded by bagit-python (the literal file is used when
the decoded one is absent).

Caps (work and memory grow with the bag's real size, never with what it claims):

* a tag-file line may hold at most ``MAX_LINE_CHARS`` (65,536) characters;
* ``bagit.txt`` at most ``MAX_DECLARATION_BYTES`` (4 KiB); bag-info.txt at most
  ``MAX_INFO_BYTES`` (8 MiB) and ``MAX_INFO_FIELDS`` (20,000) fields;
* a manifest or fetch.txt may hold at most (files in the bag + ``ENTRY_SLACK`` (10,000))
  entries: a legitimate manifest lists each file once, so more is refused unread;
* directories may nest at most ``MAX_DEPTH`` (256) levels;
* at most ``MAX_FINDINGS_PER_KIND`` (200) findings of one kind are kept, then one
  ``FindingsTruncated`` finding gives the count of the rest;
* files are hashed in ``CHUNK`` (1 MiB) reads, every algorithm in one pass;
  Payload-Oxum is compared as integers and never used to size anything (§5.3).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import stat
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Literal

from custody.errors import InputError

MAX_LINE_CHARS: Final = 65_536
MAX_DECLARATION_BYTES: Final = 4_096
MAX_INFO_BYTES: Final = 8 << 20
MAX_INFO_FIELDS: Final = 20_000
ENTRY_SLACK: Final = 10_000
MAX_DEPTH: Final = 256
MAX_FINDINGS_PER_KIND: Final = 200
CHUNK: Final = 1 << 20

SUPPORTED_VERSIONS: Final = ((0, 93), (0, 94), (0, 95), (0, 96), (0, 97), (1, 0))

Severity = Literal["error", "warning"]


class Kind(StrEnum):
    """The name of every finding, stable for records and tests."""

    BAG_DECLARATION_MISSING = "BagDeclarationMissing"
    BAG_DECLARATION_INVALID = "BagDeclarationInvalid"
    UNSUPPORTED_VERSION = "UnsupportedVersion"
    UNSUPPORTED_ENCODING = "UnsupportedEncoding"
    PAYLOAD_DIRECTORY_MISSING = "PayloadDirectoryMissing"
    NO_PAYLOAD_MANIFEST = "NoPayloadManifest"
    UNSUPPORTED_ALGORITHM = "UnsupportedAlgorithm"
    ALGORITHM_NAME = "AlgorithmNameNotNormalised"
    WEAK_ALGORITHMS_ONLY = "WeakAlgorithmsOnly"
    TAG_FILE_ENCODING = "TagFileEncoding"
    BYTE_ORDER_MARK = "ByteOrderMark"
    LINE_TOO_LONG = "LineTooLong"
    TOO_MANY_ENTRIES = "TooManyEntries"
    MALFORMED_LINE = "MalformedLine"
    BLANK_LINE = "BlankLine"
    MD5SUM_MARKER = "Md5sumMarker"
    DOT_SLASH_PREFIX = "DotSlashPrefix"
    UNSAFE_PATH = "UnsafePath"
    OUTSIDE_PAYLOAD = "OutsidePayload"
    PAYLOAD_IN_TAG_MANIFEST = "PayloadInTagManifest"
    TAG_MANIFEST_LISTED = "TagManifestListed"
    PAYLOAD_MANIFEST_UNCOVERED = "PayloadManifestNotInTagManifest"
    TAG_FILE_UNCOVERED = "TagFileNotInTagManifest"
    TAG_MANIFESTS_DIFFER = "TagManifestsDiffer"
    DUPLICATE_ENTRY = "DuplicateEntry"
    CONFLICTING_ENTRY = "ConflictingEntry"
    NAME_VARIANTS = "NameVariants"
    NORMALISATION_MISMATCH = "NormalisationMismatch"
    LISTS_DIRECTORY = "ManifestListsDirectory"
    FILE_MISSING = "FileMissing"
    FETCH_INCOMPLETE = "FetchIncomplete"
    FETCH_NOT_IN_MANIFEST = "FetchNotInManifest"
    FETCH_LENGTH_MISMATCH = "FetchLengthMismatch"
    FETCH_PRESENT = "FetchFilePresent"
    ABSENT_SYSTEM_FILE = "AbsentSystemFile"
    UNLISTED_FILE = "UnlistedFile"
    NOT_IN_EVERY_MANIFEST = "NotInEveryManifest"
    CHECKSUM_MISMATCH = "ChecksumMismatch"
    UNREADABLE_FILE = "UnreadableFile"
    FILE_CHANGED = "FileChanged"
    SYMLINK = "Symlink"
    SPECIAL_FILE = "SpecialFile"
    TOO_DEEP = "TooDeep"
    NAME_COLLISION = "NameCollision"
    NON_UTF8_NAME = "NonUtf8Name"
    SYSTEM_FILE = "SystemFile"
    EMPTY_DIRECTORY = "EmptyDirectory"
    UNENCODED_PERCENT = "UnencodedPercent"
    PERCENT_LITERAL_NAME = "PercentLiteralName"
    BAG_INFO_MALFORMED = "BagInfoMalformed"
    BAG_INFO_STYLE = "BagInfoStyle"
    RESERVED_ELEMENT_REPEATED = "ReservedElementRepeated"
    PAYLOAD_OXUM_MALFORMED = "PayloadOxumMalformed"
    PAYLOAD_OXUM_MISMATCH = "PayloadOxumMismatch"
    FINDINGS_TRUNCATED = "FindingsTruncated"


@dataclass(frozen=True)
class Finding:
    """One named problem: ``kind`` is the class name, ``path`` the bag-relative file."""

    kind: Kind
    severity: Severity
    path: str | None
    message: str
    rule: str

    def __str__(self) -> str:
        """One line, safe for a terminal: names from the bag may hold controls."""
        where = f"{_printable(self.path)}: " if self.path is not None else ""
        return f"{self.kind}: {where}{_printable(self.message)} ({self.rule})"


@dataclass(frozen=True)
class InfoField:
    """One bag-info.txt element in file order: ``value`` unfolded (§2.2.2), ``raw`` as read."""

    label: str
    value: str
    raw: str
    line: int


@dataclass(frozen=True)
class PayloadFile:
    """A regular file under data/: exact name bytes, size and the bag's own digests.

    ``digests`` are the manifests' values by algorithm (lower-case hex); ``verified`` is
    true when each was recomputed and matched (false when there are none). ``listed_as``
    holds manifest names that differ from the on-disk name (normalisation or case
    variants, percent-literal names).
    """

    path: str
    path_bytes: bytes
    size: int
    digests: tuple[tuple[str, str], ...]
    verified: bool
    listed_as: tuple[str, ...] = ()

    def digest(self, algorithm: str) -> str | None:
        return dict(self.digests).get(algorithm)


@dataclass(frozen=True)
class TagFile:
    """A regular file outside data/, with the tag manifests' digests for it (if any)."""

    path: str
    path_bytes: bytes
    size: int
    role: str
    digests: tuple[tuple[str, str], ...]
    verified: bool


@dataclass(frozen=True)
class FetchEntry:
    """One fetch.txt line (§2.2.3); custody never fetches, it only records."""

    url: str
    length: int | None
    path: str
    present: bool


@dataclass(frozen=True)
class BagValidation:
    """Everything custody learnt about one bag. ``valid`` is true only with no errors."""

    path: str
    errors: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    version: str | None
    encoding: str | None
    info_file: str | None
    info: tuple[InfoField, ...]
    payload: tuple[PayloadFile, ...]
    tag_files: tuple[TagFile, ...]
    payload_algorithms: tuple[str, ...]
    tag_algorithms: tuple[str, ...]
    payload_oxum: tuple[int, int] | None
    payload_octets: int
    payload_streams: int
    fetch: tuple[FetchEntry, ...]
    files_hashed: int
    bytes_hashed: int

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.errors + self.warnings

    def info_values(self, label: str) -> tuple[str, ...]:
        """Values of one element, matching the label case-insensitively (§2.2.2)."""
        return tuple(f.value for f in self.info if f.label.casefold() == label.casefold())


class BagInvalidError(InputError):
    """A bag was refused; ``validation`` holds every reason."""

    def __init__(self, validation: BagValidation) -> None:
        first = validation.errors[0] if validation.errors else None
        more = len(validation.errors) - 1
        tail = f" (and {more} more)" if more > 0 else ""
        super().__init__(f"{validation.path} is not a valid BagIt bag: {first}{tail}")
        self.validation = validation


def require_valid(validation: BagValidation) -> BagValidation:
    """Return ``validation`` if the bag is valid, else raise ``BagInvalidError``."""
    if not validation.valid:
        raise BagInvalidError(validation)
    return validation


# §2.4: algorithm names are the lower-cased common name with non-alphanumerics removed.
# Values: hashlib name, hex length. md5/sha1 are accepted for backwards compatibility.
_ALGORITHMS: Final[dict[str, tuple[str, int]]] = {
    "md5": ("md5", 32),
    "sha1": ("sha1", 40),
    "sha224": ("sha224", 56),
    "sha256": ("sha256", 64),
    "sha384": ("sha384", 96),
    "sha512": ("sha512", 128),
    "sha3224": ("sha3_224", 56),
    "sha3256": ("sha3_256", 64),
    "sha3384": ("sha3_384", 96),
    "sha3512": ("sha3_512", 128),
    "blake2b512": ("blake2b", 128),
    "blake2s256": ("blake2s", 64),
}
# Names other tools write (bagit-python uses hashlib's names) that map to the above.
_ALGORITHM_ALIASES: Final[dict[str, str]] = {
    "sha3_224": "sha3224",
    "sha3_256": "sha3256",
    "sha3_384": "sha3384",
    "sha3_512": "sha3512",
    "blake2b": "blake2b512",
    "blake2s": "blake2s256",
    "sha-1": "sha1",
    "sha-224": "sha224",
    "sha-256": "sha256",
    "sha-384": "sha384",
    "sha-512": "sha512",
}
_WEAK: Final = frozenset({"md5", "sha1"})

# §2.1.1: ENCODING is a name from IANA's character-set registry. Only these names (and
# their registered aliases) are accepted: an open codec lookup would also admit Python's
# own non-charset codecs. Values: Python codec, whether a BOM is part of the encoding.
_ENCODINGS: Final[dict[str, tuple[str, bool]]] = {
    "utf-8": ("utf-8", False),
    "us-ascii": ("ascii", False),
    "ascii": ("ascii", False),
    "utf-16": ("utf-16", True),
    "utf-16le": ("utf-16-le", False),
    "utf-16be": ("utf-16-be", False),
    "utf-32": ("utf-32", True),
    "utf-32le": ("utf-32-le", False),
    "utf-32be": ("utf-32-be", False),
    "iso-8859-1": ("latin-1", False),
    "iso_8859-1": ("latin-1", False),
    "latin1": ("latin-1", False),
    "l1": ("latin-1", False),
    **{
        f"iso-8859-{n}": (f"iso8859-{n}", False)
        for n in (2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16)
    },
    **{f"windows-{n}": (f"cp{n}", False) for n in range(1250, 1259)},
    "koi8-r": ("koi8-r", False),
    "koi8-u": ("koi8-u", False),
    "shift_jis": ("shift_jis", False),
    "euc-jp": ("euc_jp", False),
    "iso-2022-jp": ("iso2022_jp", False),
    "euc-kr": ("euc_kr", False),
    "gb2312": ("gb2312", False),
    "gbk": ("gbk", False),
    "gb18030": ("gb18030", False),
    "big5": ("big5", False),
}

# Files an operating system or file manager drops into folders by itself.
_SYSTEM_NAMES: Final = frozenset(
    {".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db", ".directory", "icon\r"}
)

_MANIFEST_NAME = re.compile(r"^(tag)?manifest-(.+)\.txt$", re.DOTALL)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
_PERCENT_1_0 = re.compile(r"%(0[AaDd]|25)")
_DECL_LABELS: Final = ("BagIt-Version", "Tag-File-Character-Encoding")
_VERSION = re.compile(r"^([0-9]+)\.([0-9]+)$")
_OXUM = re.compile(r"^([0-9]+)\.([0-9]+)$")
_SHOULD_NOT_REPEAT: Final = ("bagging-date", "bag-size", "bag-group-identifier", "bag-count")
_EMPTY_DIGESTS: Final = {
    name: hashlib.new(hname, usedforsecurity=False).hexdigest()
    for name, (hname, _hexlen) in _ALGORITHMS.items()
}

_O_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY: Final = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_O_NOATIME: Final = getattr(os, "O_NOATIME", 0)


# Bidirectional controls reorder what a reader sees (a risk in right-to-left scripts).
_BIDI_CONTROLS: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                                  "\u2066\u2067\u2068\u2069")


def _printable(text: str) -> str:
    """Escape control and bidi-control characters so a finding stays one honest line."""
    if text.isprintable() and not _BIDI_CONTROLS.intersection(text):
        return text
    out = []
    for ch in text:
        if ch in _BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def _show(name: bytes) -> str:
    """A bag-relative name for messages: UTF-8 where it is, escapes where it is not."""
    text = name.decode("utf-8", "backslashreplace")
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _nfc_key(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _fold_key(name: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


@dataclass
class _Node:
    size: int
    dev: int
    ino: int
    mtime_ns: int


@dataclass
class _Entry:
    """One parsed manifest line, before and after it is matched to a file."""

    manifest: str
    algorithm: str
    digest: str
    path: str
    line: int
    key: bytes | None = None


@dataclass
class _Manifest:
    name: str
    algorithm: str
    tag: bool
    entries: list[_Entry] = field(default_factory=list)
    # file key -> digest, for the files this manifest covers
    covers: dict[bytes, str] = field(default_factory=dict)


@dataclass
class _Encoding:
    name: str
    codec: str
    bom_part_of_encoding: bool


class _Validator:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []
        self._kind_counts: dict[tuple[Kind, Severity], int] = {}
        self.files: dict[bytes, _Node] = {}
        self.dirs: set[bytes] = set()
        self.version: str | None = None
        self.version_info: tuple[int, int] = (1, 0)
        self.encoding: _Encoding | None = None
        self.info_file: str | None = None
        self.info: list[InfoField] = []
        self.manifests: list[_Manifest] = []
        self.fetch: list[FetchEntry] = []
        self.fetch_keys: set[bytes] = set()
        self.absent_system: list[tuple[str, int]] = []
        self.listed_as: dict[bytes, set[str]] = {}
        self.computed: dict[bytes, dict[str, str]] = {}
        self.unreadable: set[bytes] = set()
        self.mismatched: set[bytes] = set()
        self.files_hashed = 0
        self.bytes_hashed = 0
        self.oxum: tuple[int, int] | None = None
        self.root_fd = -1
        # entry id -> the name as written, when percent-decoding changed it (§2.1.3)
        self._raw_names: dict[int, str] = {}

    # --- findings -------------------------------------------------------------------

    def add(
        self, kind: Kind, path: str | None, message: str, rule: str, severity: Severity = "error"
    ) -> None:
        count = self._kind_counts.get((kind, severity), 0) + 1
        self._kind_counts[(kind, severity)] = count
        if count > MAX_FINDINGS_PER_KIND:
            return
        finding = Finding(kind, severity, path, message, rule)
        (self.errors if severity == "error" else self.warnings).append(finding)

    def warn(self, kind: Kind, path: str | None, message: str, rule: str) -> None:
        self.add(kind, path, message, rule, "warning")

    def _close_findings(self) -> None:
        for (kind, severity), count in self._kind_counts.items():
            if count > MAX_FINDINGS_PER_KIND:
                more = count - MAX_FINDINGS_PER_KIND
                finding = Finding(
                    Kind.FINDINGS_TRUNCATED,
                    severity,
                    None,
                    f"{more} more {kind} {severity}s not listed",
                    "custody cap",
                )
                (self.errors if severity == "error" else self.warnings).append(finding)

    # --- reading the bag without following links ----------------------------------------

    def open_root(self) -> None:
        flags = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
        try:
            self.root_fd = os.open(self.path, flags)
        except FileNotFoundError:
            raise InputError(f"{self.path}: no such folder; give the bag's folder") from None
        except OSError as exc:
            # Linux answers ENOTDIR rather than ELOOP for a link when O_DIRECTORY is set.
            with contextlib.suppress(OSError):
                if stat.S_ISLNK(os.lstat(self.path).st_mode):
                    raise InputError(
                        f"{self.path} is a symbolic link; give the bag's real folder"
                    ) from None
            if exc.errno == errno.ELOOP:
                raise InputError(
                    f"{self.path} is a symbolic link; give the bag's real folder"
                ) from None
            if exc.errno == errno.ENOTDIR:
                raise InputError(
                    f"{self.path} is not a folder; a BagIt bag is a folder (unpack it first)"
                ) from None
            raise InputError(f"{self.path}: cannot open the bag: {exc.strerror}") from None

    def walk(self) -> None:
        """Inventory every entry with lstat semantics; links and devices are findings."""
        self._walk_dir(self.root_fd, b"", 0)

    def _walk_dir(self, fd: int, rel: bytes, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.add(Kind.TOO_DEEP, _show(rel), f"folders nest deeper than {MAX_DEPTH} levels",
                     "custody cap")
            return
        try:
            with os.scandir(fd) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.add(Kind.UNREADABLE_FILE, _show(rel) or ".", f"cannot list: {exc.strerror}",
                     "RFC 8493 §3")
            return
        if not entries and rel.startswith(b"data/"):
            self.warn(Kind.EMPTY_DIRECTORY, _show(rel),
                      "empty folder in the payload: no manifest can record it", "RFC 8493 §2.1.3")
        for entry in entries:
            name = os.fsencode(entry.name)
            key = rel + b"/" + name if rel else name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                self.add(Kind.UNREADABLE_FILE, _show(key), f"cannot stat: {exc.strerror}",
                         "RFC 8493 §3")
                continue
            mode = st.st_mode
            if stat.S_ISLNK(mode):
                self.add(Kind.SYMLINK, _show(key),
                         "symbolic link in the bag: custody never follows links",
                         "RFC 8493 §5.1")
            elif stat.S_ISDIR(mode):
                self.dirs.add(key)
                try:
                    child = os.open(name, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC,
                                    dir_fd=fd)
                except OSError as exc:
                    self.add(Kind.UNREADABLE_FILE, _show(key), f"cannot open: {exc.strerror}",
                             "RFC 8493 §3")
                    continue
                try:
                    self._walk_dir(child, key, depth + 1)
                finally:
                    os.close(child)
            elif stat.S_ISREG(mode):
                self.files[key] = _Node(st.st_size, st.st_dev, st.st_ino, st.st_mtime_ns)
            else:
                self.add(Kind.SPECIAL_FILE, _show(key),
                         "not a regular file (device, pipe or socket)", "RFC 8493 §2")

    def open_file(self, key: bytes) -> int:
        """Open ``key`` beneath the root one component at a time, never through a link."""
        parts = key.split(b"/")
        fd = self.root_fd
        opened: list[int] = []
        try:
            for part in parts[:-1]:
                fd = os.open(part, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC,
                             dir_fd=fd)
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
            self.add(Kind.FILE_CHANGED, _show(key), "changed while the bag was read", "RFC 8493 §3")
            return None
        except OSError as exc:
            self.add(Kind.UNREADABLE_FILE, _show(key), f"cannot read: {exc.strerror}",
                     "RFC 8493 §3")
            return None
        with open(fd, "rb", closefd=True) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            self.add(Kind.LINE_TOO_LONG, _show(key), f"larger than {limit} bytes", "custody cap")
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
            self.add(Kind.FILE_CHANGED, show, "changed while the bag was read", "RFC 8493 §3")
            return
        except OSError as exc:
            self.add(Kind.UNREADABLE_FILE, show, f"cannot read: {exc.strerror}", "RFC 8493 §3")
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
                        self.add(Kind.LINE_TOO_LONG, show,
                                 f"line {lineno} is longer than {MAX_LINE_CHARS} characters; "
                                 "the rest of the file was not read", "custody cap")
                        return
                    if lineno == 1 and body.startswith("\ufeff"):
                        body = body[1:]
                        if enc.codec == "utf-8":
                            self.add(Kind.BYTE_ORDER_MARK, show,
                                     "begins with a byte-order mark, which UTF-8 tag files "
                                     "must not", "RFC 8493 §2.3")
                        elif not enc.bom_part_of_encoding:
                            self.warn(Kind.BYTE_ORDER_MARK, show,
                                      f"begins with a byte-order mark that {enc.name} does not "
                                      "need", "RFC 8493 §2.3")
                    if lineno > max_lines:
                        self.add(Kind.TOO_MANY_ENTRIES, show,
                                 f"more than {max_lines} lines for a bag of {len(self.files)} "
                                 "files; the rest was not read", "custody cap")
                        return
                    yield lineno, body
            except UnicodeDecodeError:
                self.add(Kind.TAG_FILE_ENCODING, show,
                         f"line {lineno + 1} is not valid {enc.name}, the encoding bagit.txt "
                         "declares", "RFC 8493 §2.3")

    # --- bagit.txt -------------------------------------------------------------------

    def declaration(self) -> bool:
        """Parse bagit.txt (§2.1.1); False when the bag cannot be read further."""
        rule = "RFC 8493 §2.1.1"
        if b"bagit.txt" not in self.files:
            self.add(Kind.BAG_DECLARATION_MISSING, "bagit.txt",
                     "missing: every bag must declare itself in bagit.txt", rule)
            return False
        data = self.read_bounded(b"bagit.txt", MAX_DECLARATION_BYTES)
        if data is None:
            return False
        if data.startswith(b"\xef\xbb\xbf"):
            self.add(Kind.BYTE_ORDER_MARK, "bagit.txt", "begins with a byte-order mark", rule)
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.add(Kind.BAG_DECLARATION_INVALID, "bagit.txt", "is not valid UTF-8", rule)
            return False
        lines = _LINE_BREAK.split(text)
        if lines and lines[-1] == "":
            lines.pop()  # the last line's ending (§2.3 recommends one)
        while lines and lines[-1].strip() == "":
            lines.pop()
            self.warn(Kind.BLANK_LINE, "bagit.txt", "blank line after the two declarations",
                      rule)
        parsed: list[tuple[str, str, str]] = []
        for n, line in enumerate(lines, 1):
            label, sep, value = line.partition(":")
            if not sep:
                self.add(Kind.BAG_DECLARATION_INVALID, "bagit.txt",
                         f"line {n} is not 'Label: value'", rule)
                return False
            parsed.append((label, value, line))
        if len(parsed) != 2:
            self.add(Kind.BAG_DECLARATION_INVALID, "bagit.txt",
                     f"has {len(parsed)} lines; it must have exactly two", rule)
        found: dict[str, str] = {}
        for n, (label, value, _line) in enumerate(parsed[:2]):
            want = _DECL_LABELS[n]
            if label.strip().casefold() != want.casefold():
                self.add(Kind.BAG_DECLARATION_INVALID, "bagit.txt",
                         f"line {n + 1} must be '{want}: …', found {label.strip()!r}", rule)
                continue
            if label.strip() != want:
                self.warn(Kind.BAG_DECLARATION_INVALID, "bagit.txt",
                          f"label {label.strip()!r} is written in another case than {want!r}",
                          rule)
            found[want] = value
        version_raw = found.get("BagIt-Version")
        if version_raw is None:
            if not any(f.kind == Kind.BAG_DECLARATION_INVALID for f in self.errors):
                self.add(Kind.BAG_DECLARATION_INVALID, "bagit.txt", "no BagIt-Version", rule)
            return False
        match = _VERSION.match(version_raw.strip(" \t"))
        if match is None:
            self.add(Kind.BAG_DECLARATION_INVALID, "bagit.txt",
                     f"BagIt-Version {version_raw.strip()!r} is not M.N", rule)
            return False
        self.version = version_raw.strip(" \t")
        self.version_info = (int(match.group(1)), int(match.group(2)))
        if self.version_info not in SUPPORTED_VERSIONS:
            self.add(Kind.UNSUPPORTED_VERSION, "bagit.txt",
                     f"BagIt-Version {self.version} is not one custody knows the rules of "
                     "(0.93–0.97, 1.0)", rule)
            return False
        if self.version_info >= (1, 0):
            # 1.0 allows exactly "Label: value"; older versions allowed free whitespace
            # around the colon (§2.2.2, last paragraph before the reserved elements).
            for label, value, line in parsed[:2]:
                if label != label.strip() or not re.fullmatch(r"[ \t][^ \t](.*[^ \t])?", value):
                    self.add(Kind.BAG_DECLARATION_INVALID, "bagit.txt",
                             f"{line!r}: BagIt 1.0 requires 'Label: value' with one space "
                             "after the colon and none elsewhere", rule)
        encoding_raw = found.get("Tag-File-Character-Encoding")
        if encoding_raw is None:
            self.add(Kind.BAG_DECLARATION_INVALID, "bagit.txt",
                     "no Tag-File-Character-Encoding", rule)
            return False
        name = encoding_raw.strip(" \t")
        known = _ENCODINGS.get(name.lower())
        if known is None:
            self.add(Kind.UNSUPPORTED_ENCODING, "bagit.txt",
                     f"Tag-File-Character-Encoding {name!r} is not a character set custody "
                     "reads (UTF-8 is recommended)", rule)
            return False
        self.encoding = _Encoding(name, known[0], known[1])
        if known[0] != "utf-8":
            self.warn(Kind.UNSUPPORTED_ENCODING, "bagit.txt",
                      f"tag files are in {name}; UTF-8 is strongly recommended", "RFC 8493 §2.3")
        return True

    # --- bag-info.txt ------------------------------------------------------------------

    def metadata(self) -> None:
        """Parse bag-info.txt (package-info.txt before 0.96) keeping every element (§2.2.2)."""
        name = "package-info.txt" if self.version_info <= (0, 95) else "bag-info.txt"
        key = name.encode()
        if key not in self.files:
            return
        self.info_file = name
        rule = "RFC 8493 §2.2.2"
        strict = self.version_info >= (1, 0)
        node = self.files[key]
        if node.size > MAX_INFO_BYTES:
            self.add(Kind.LINE_TOO_LONG, name, f"larger than {MAX_INFO_BYTES} bytes",
                     "custody cap")
            return
        current: list[str] | None = None  # [label, value, raw, line]
        fields: list[InfoField] = []

        def close() -> None:
            if current is not None:
                fields.append(InfoField(current[0], current[1], current[2], int(current[3])))

        for lineno, line in self.text_lines(key, MAX_INFO_FIELDS * 4):
            if line.strip(" \t") == "":
                self.warn(Kind.BLANK_LINE, name, f"line {lineno} is blank", rule)
                continue
            if line[0] in " \t":
                if current is None:
                    self.add(Kind.BAG_INFO_MALFORMED, name,
                             f"line {lineno} continues a value but no element precedes it", rule)
                    continue
                # Padding of a continued line is not part of the value; the break is.
                current[1] += "\n" + line.lstrip(" \t")
                current[2] += "\n" + line
                continue
            close()
            current = None
            label, sep, value = line.partition(":")
            if not sep:
                self.add(Kind.BAG_INFO_MALFORMED, name,
                         f"line {lineno} has no ':' between label and value", rule)
                continue
            if label.strip(" \t") == "":
                self.add(Kind.BAG_INFO_MALFORMED, name, f"line {lineno} has an empty label", rule)
                continue
            if strict:
                if label != label.strip(" \t"):
                    self.add(Kind.BAG_INFO_MALFORMED, name,
                             f"line {lineno}: label {label!r} starts or ends with whitespace",
                             rule)
                    label = label.strip(" \t")
                if value == "":
                    self.warn(Kind.BAG_INFO_STYLE, name, f"line {lineno}: {label} has no value",
                              rule)
                elif value[0] not in " \t":
                    self.add(Kind.BAG_INFO_MALFORMED, name,
                             f"line {lineno}: no whitespace after the colon", rule)
                else:
                    value = value[1:]
            else:
                label = label.strip(" \t")
                value = value.strip(" \t")
            if len(fields) >= MAX_INFO_FIELDS:
                self.add(Kind.TOO_MANY_ENTRIES, name, f"more than {MAX_INFO_FIELDS} elements",
                         "custody cap")
                current = None
                break
            current = [label, value, line, str(lineno)]
        close()
        self.info = fields
        self._reserved_elements(name)

    def _reserved_elements(self, name: str) -> None:
        rule = "RFC 8493 §2.2.2"
        by_label: dict[str, list[InfoField]] = {}
        for f in self.info:
            by_label.setdefault(f.label.casefold(), []).append(f)
        for label in _SHOULD_NOT_REPEAT:
            if len(by_label.get(label, [])) > 1:
                self.warn(Kind.RESERVED_ELEMENT_REPEATED, name,
                          f"{by_label[label][0].label} appears {len(by_label[label])} times",
                          rule)
        for f in by_label.get("bagging-date", []):
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", f.value.strip()):
                self.warn(Kind.BAG_INFO_STYLE, name,
                          f"Bagging-Date {f.value!r} is not YYYY-MM-DD", rule)
        oxums = by_label.get("payload-oxum", [])
        if not oxums:
            return
        if len(oxums) > 1:
            distinct = {f.value.strip() for f in oxums}
            if self.version_info >= (1, 0) or len(distinct) > 1:
                self.add(Kind.PAYLOAD_OXUM_MALFORMED, name,
                         f"Payload-Oxum appears {len(oxums)} times; it must appear once", rule)
                return
            self.warn(Kind.RESERVED_ELEMENT_REPEATED, name, "Payload-Oxum repeated", rule)
        match = _OXUM.fullmatch(oxums[0].value.strip(" \t"))
        if match is None:
            self.add(Kind.PAYLOAD_OXUM_MALFORMED, name,
                     f"Payload-Oxum {oxums[0].value!r} is not OctetCount.StreamCount", rule)
            return
        self.oxum = (int(match.group(1)), int(match.group(2)))

    # --- manifests ----------------------------------------------------------------------

    def find_manifests(self) -> None:
        for key in sorted(k for k in self.files if b"/" not in k):
            name = key.decode("utf-8", "surrogateescape")
            match = _MANIFEST_NAME.match(name)
            if match is None:
                continue
            tag = match.group(1) is not None
            raw_alg = match.group(2)
            alg = raw_alg
            if alg not in _ALGORITHMS:
                alias = _ALGORITHM_ALIASES.get(alg.lower())
                normal = re.sub(r"[^0-9a-z]", "", alg.lower())
                alg = alias or (normal if normal in _ALGORITHMS else "")
                if not alg:
                    self.add(Kind.UNSUPPORTED_ALGORITHM, _show(key),
                             f"algorithm {raw_alg!r} is not one custody can compute, so this "
                             "manifest cannot be checked", "RFC 8493 §2.4")
                    continue
                self.warn(Kind.ALGORITHM_NAME, _show(key),
                          f"algorithm name {raw_alg!r} is not normalised (expected {alg!r})",
                          "RFC 8493 §2.4")
            self.manifests.append(_Manifest(name, alg, tag))
        payload = [m for m in self.manifests if not m.tag]
        if not payload:
            self.add(Kind.NO_PAYLOAD_MANIFEST, None,
                     "no payload manifest (manifest-<algorithm>.txt)", "RFC 8493 §2.1.3")
        for tag in (False, True):
            algs = {m.algorithm for m in self.manifests if m.tag == tag}
            if algs and algs <= _WEAK:
                which = "tag manifests" if tag else "payload manifests"
                self.warn(Kind.WEAK_ALGORITHMS_ONLY, None,
                          f"the {which} use only {', '.join(sorted(algs))}, which detect "
                          "accidental damage but not deliberate substitution",
                          "RFC 8493 §2.4, §5.2")

    def decode_path(self, raw: str, where: str, line: int) -> str:
        """RFC 8493 §2.1.3: %0A, %0D and %25 (only those) are percent-encoded in 1.0."""
        if self.version_info < (1, 0) or "%" not in raw:
            return raw
        rest = _PERCENT_1_0.sub("", raw)
        if "%" in rest:
            self.warn(Kind.UNENCODED_PERCENT, where,
                      f"line {line}: '%' not written as %25 in {raw!r}", "RFC 8493 §2.1.3")
        return _PERCENT_1_0.sub(
            lambda m: {"0a": "\n", "0d": "\r", "25": "%"}[m.group(1).lower()], raw
        )

    def check_path(self, path: str, where: str, line: int) -> bool:
        """Reject any path that could leave the bag or name no file (§5.1)."""
        rule = "RFC 8493 §5.1"
        problem = None
        if path == "":
            problem = "empty path"
        elif "\x00" in path:
            problem = "NUL character in path"
        elif path.startswith("/"):
            problem = "absolute path"
        elif path.startswith("~"):
            problem = "home-directory reference"
        elif re.match(r"^[A-Za-z]:", path) or path.startswith("\\"):
            problem = "Windows drive or UNC path"
        else:
            for part in path.split("/"):
                if part in ("", ".", ".."):
                    problem = f"path component {part!r} (only plain names are allowed)"
                    break
        if problem is not None:
            self.add(Kind.UNSAFE_PATH, where, f"line {line}: {problem}: {path!r}", rule)
            return False
        if "\\" in path:
            self.warn(Kind.UNSAFE_PATH, where,
                      f"line {line}: backslash in {path!r}; '/' is the only separator",
                      "RFC 8493 §2.1.3")
        return True

    def parse_manifest(self, manifest: _Manifest) -> None:
        rule = "RFC 8493 §2.2.1" if manifest.tag else "RFC 8493 §2.1.3"
        hexlen = _ALGORITHMS[manifest.algorithm][1]
        where = manifest.name
        key = where.encode("utf-8", "surrogateescape")
        seen: dict[str, _Entry] = {}
        budget = len(self.files) + ENTRY_SLACK
        for lineno, line in self.text_lines(key, budget):
            if line.strip(" \t") == "":
                self.warn(Kind.BLANK_LINE, where, f"line {lineno} is blank", rule)
                continue
            match = re.match(r"([^ \t]+)[ \t]+(.*)\Z", line, re.DOTALL)
            if match is None or not _HEX.match(match.group(1)):
                self.add(Kind.MALFORMED_LINE, where,
                         f"line {lineno} is not 'checksum filepath': {line[:200]!r}", rule)
                continue
            digest, path = match.group(1).lower(), match.group(2)
            if len(digest) != hexlen:
                self.add(Kind.MALFORMED_LINE, where,
                         f"line {lineno}: {len(digest)} hex digits, {manifest.algorithm} has "
                         f"{hexlen}", rule)
                continue
            if path.startswith("*"):
                literal = path.encode("utf-8", "surrogateescape")
                if not (manifest.tag and literal in self.files):
                    self.warn(Kind.MD5SUM_MARKER, where,
                              f"line {lineno}: md5sum's binary-mode '*' before {path[1:]!r}; "
                              "the bag fails strict validation", "RFC 8493 §6.1.3")
                    path = path[1:]
            if path.startswith("./"):
                self.warn(Kind.DOT_SLASH_PREFIX, where,
                          f"line {lineno}: leading './' in {path!r}", rule)
                while path.startswith("./"):
                    path = path[2:]
            raw_path = path
            path = self.decode_path(path, where, lineno)
            if not self.check_path(path, where, lineno):
                continue
            if manifest.tag:
                if path.startswith("data/"):
                    self.add(Kind.PAYLOAD_IN_TAG_MANIFEST, where,
                             f"line {lineno}: a tag manifest must not list payload file "
                             f"{path!r}", rule)
                    continue
                if "/" not in path and path.startswith("tagmanifest-"):
                    if self.version_info >= (1, 0):
                        self.add(Kind.TAG_MANIFEST_LISTED, where,
                                 f"line {lineno}: a tag manifest must not list tag manifest "
                                 f"{path!r}", rule)
                        continue
                    # 0.97 did not forbid it; the entry is still checked like any other.
                    self.warn(Kind.TAG_MANIFEST_LISTED, where,
                              f"line {lineno}: lists tag manifest {path!r}", rule)
            elif not path.startswith("data/"):
                self.add(Kind.OUTSIDE_PAYLOAD, where,
                         f"line {lineno}: {path!r} is outside the payload directory data/",
                         rule)
                continue
            previous = seen.get(path)
            if previous is not None:
                if previous.digest != digest:
                    self.add(Kind.CONFLICTING_ENTRY, where,
                             f"lines {previous.line} and {lineno} give {path!r} different "
                             "checksums", rule)
                elif self.version_info >= (1, 0):
                    self.add(Kind.DUPLICATE_ENTRY, where,
                             f"lines {previous.line} and {lineno} both list {path!r}; each "
                             "file must be listed exactly once", rule)
                else:
                    self.warn(Kind.DUPLICATE_ENTRY, where,
                              f"lines {previous.line} and {lineno} both list {path!r}", rule)
                continue
            entry = _Entry(manifest.name, manifest.algorithm, digest, path, lineno)
            entry_raw = raw_path if raw_path != path else None
            seen[path] = entry
            manifest.entries.append(entry)
            if entry_raw is not None:
                self._raw_names[id(entry)] = entry_raw

    # --- fetch.txt ----------------------------------------------------------------------

    def parse_fetch(self) -> None:
        key = b"fetch.txt"
        if key not in self.files:
            return
        rule = "RFC 8493 §2.2.3"
        budget = len(self.files) + ENTRY_SLACK
        for lineno, line in self.text_lines(key, budget):
            if line.strip(" \t") == "":
                self.warn(Kind.BLANK_LINE, "fetch.txt", f"line {lineno} is blank", rule)
                continue
            match = re.match(r"([^ \t]+)[ \t]+([^ \t]+)[ \t]+(.*)\Z", line, re.DOTALL)
            if match is None:
                self.add(Kind.MALFORMED_LINE, "fetch.txt",
                         f"line {lineno} is not 'url length filepath'", rule)
                continue
            url, length_raw, path = match.groups()
            if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url):
                self.add(Kind.MALFORMED_LINE, "fetch.txt",
                         f"line {lineno}: {url!r} is not an absolute URI", rule)
            length: int | None = None
            if length_raw != "-":
                if not length_raw.isdigit() or not length_raw.isascii():
                    self.add(Kind.MALFORMED_LINE, "fetch.txt",
                             f"line {lineno}: length {length_raw!r} is neither digits nor '-'",
                             rule)
                    continue
                length = int(length_raw)
            path = self.decode_path(path, "fetch.txt", lineno)
            if not self.check_path(path, "fetch.txt", lineno):
                continue
            if not path.startswith("data/"):
                self.add(Kind.OUTSIDE_PAYLOAD, "fetch.txt",
                         f"line {lineno}: {path!r} is not a payload file; fetch.txt must not "
                         "list tag files", rule)
                continue
            pkey = path.encode("utf-8", "surrogateescape")
            present = pkey in self.files
            self.fetch.append(FetchEntry(url, length, path, present))
            self.fetch_keys.add(pkey)
            if not present:
                self.add(Kind.FETCH_INCOMPLETE, path,
                         f"listed in fetch.txt ({url}) but not in the bag; custody does not "
                         "fetch, so the bag is incomplete", "RFC 8493 §2.2.3, §3")
            elif length is not None and length != self.files[pkey].size:
                self.warn(Kind.FETCH_LENGTH_MISMATCH, path,
                          f"fetch.txt gives {length} bytes, the file has "
                          f"{self.files[pkey].size}", "RFC 8493 §5.3")
        if self.fetch and all(f.present for f in self.fetch):
            self.warn(Kind.FETCH_PRESENT, "fetch.txt",
                      "every file it lists is already in the bag; nothing was fetched", rule)

    # --- matching manifest entries to files -------------------------------------------------

    def resolve(self, manifest: _Manifest) -> None:
        """Match each entry to exactly one file on disk, or make the finding that says why."""
        nfc_index: dict[str, list[bytes]] = {}
        fold_index: dict[str, list[bytes]] = {}

        def build_indexes() -> None:
            # Only built when some entry names no file exactly: most bags never need it.
            if nfc_index:
                return
            for k in self.files:
                if k.startswith(b"data/") == manifest.tag:
                    continue
                try:
                    name = k.decode("utf-8")
                except UnicodeDecodeError:
                    continue
                nfc_index.setdefault(_nfc_key(name), []).append(k)
                fold_index.setdefault(_fold_key(name), []).append(k)

        exact = {e.path.encode("utf-8", "surrogateescape"): e for e in manifest.entries}
        by_nfc: dict[str, list[_Entry]] = {}
        for e in manifest.entries:
            by_nfc.setdefault(_fold_key(e.path), []).append(e)
        for group in by_nfc.values():
            if len(group) > 1:
                names = ", ".join(repr(e.path) for e in group)
                self.warn(Kind.NAME_VARIANTS, manifest.name,
                          f"entries differ only in case or Unicode normalisation: {names}",
                          "RFC 8493 §6.1.1.3")
        rule = "RFC 8493 §3"
        for entry in manifest.entries:
            key = entry.path.encode("utf-8", "surrogateescape")
            if key in self.files:
                self._cover(manifest, entry, key)
                continue
            raw = self._raw_names.get(id(entry))
            if raw is not None and raw.encode("utf-8", "surrogateescape") in self.files:
                rkey = raw.encode("utf-8", "surrogateescape")
                if rkey not in exact:
                    self.warn(Kind.PERCENT_LITERAL_NAME, manifest.name,
                              f"line {entry.line}: {raw!r} names the file literally; RFC 8493 "
                              f"reads it as {entry.path!r} (bagit-python writes names this "
                              "way)", "RFC 8493 §2.1.3")
                    self._cover(manifest, entry, rkey, as_written=raw)
                    continue
            if key in self.dirs:
                self.add(Kind.LISTS_DIRECTORY, entry.path,
                         f"{manifest.name} line {entry.line} lists a folder; manifests list "
                         "files only", "RFC 8493 §2.1.3")
                continue
            build_indexes()
            nfc_hits = [k for k in nfc_index.get(_nfc_key(entry.path), []) if k != key]
            if len(nfc_hits) == 1:
                target = nfc_hits[0]
                if target in exact:
                    self.warn(Kind.NAME_VARIANTS, _show(target),
                              f"{manifest.name} lists it twice, in two Unicode normalisation "
                              "forms; both entries are checked against this one file",
                              "RFC 8493 §6.1.1.3")
                else:
                    self.warn(Kind.NORMALISATION_MISMATCH, _show(target),
                              f"{manifest.name} names it in another Unicode normalisation "
                              f"form ({entry.path!r})", "RFC 8493 §6.1.1.2")
                self._cover(manifest, entry, target)
                continue
            fold_hits = [
                k for k in fold_index.get(_fold_key(entry.path), []) if k in exact and k != key
            ]
            if len(fold_hits) == 1:
                self.warn(Kind.NAME_VARIANTS, _show(fold_hits[0]),
                          f"{manifest.name} also lists it as {entry.path!r} (differs only in "
                          "case), as a case-insensitive filesystem leaves it; both entries are "
                          "checked against this one file", "RFC 8493 §6.1.1.1")
                self._cover(manifest, entry, fold_hits[0])
                continue
            base = entry.path.rsplit("/", 1)[-1]
            if (
                not manifest.tag
                and (base.lower() in _SYSTEM_NAMES or base.startswith("._"))
                and entry.digest == _EMPTY_DIGESTS[manifest.algorithm]
                and self._all_empty(entry.path)
            ):
                if all(p != entry.path for p, _ in self.absent_system):
                    self.absent_system.append((entry.path, 0))
                    self.warn(Kind.ABSENT_SYSTEM_FILE, entry.path,
                              "operating-system metadata file listed as empty but absent; "
                              "no content is missing", "RFC 8493 §3")
                continue
            if key in self.fetch_keys:
                continue  # FETCH_INCOMPLETE already says why
            self.add(Kind.FILE_MISSING, entry.path,
                     f"listed in {manifest.name} (line {entry.line}) but not in the bag", rule)

    def _all_empty(self, path: str) -> bool:
        """True when every manifest that lists ``path`` gives the digest of zero bytes."""
        return all(
            e.digest == _EMPTY_DIGESTS[m.algorithm]
            for m in self.manifests
            for e in m.entries
            if e.path == path
        )

    def _cover(
        self, manifest: _Manifest, entry: _Entry, key: bytes, as_written: str | None = None
    ) -> None:
        entry.key = key
        name = entry.path if as_written is None else as_written
        if name.encode("utf-8", "surrogateescape") != key:
            self.listed_as.setdefault(key, set()).add(name)
        previous = manifest.covers.get(key)
        if previous is not None and previous != entry.digest:
            self.add(Kind.CONFLICTING_ENTRY, _show(key),
                     f"{manifest.name} gives this file two different checksums under two "
                     "names", "RFC 8493 §2.1.3")
        manifest.covers.setdefault(key, entry.digest)

    def completeness(self) -> None:
        """Every payload file in every payload manifest (1.0) or in one (earlier, §3)."""
        payload_manifests = [m for m in self.manifests if not m.tag]
        if not payload_manifests:
            return
        for key in sorted(self.files):
            if not key.startswith(b"data/"):
                continue
            listed = [m.name for m in payload_manifests if key in m.covers]
            show = _show(key)
            if not listed:
                try:
                    key.decode("utf-8")
                except UnicodeDecodeError:
                    self.add(Kind.NON_UTF8_NAME, show,
                             "name is not valid UTF-8, so no manifest can name it",
                             "RFC 8493 §2.1.3")
                self.add(Kind.UNLISTED_FILE, show, "in the payload but in no manifest",
                         "RFC 8493 §2.1.3")
            elif len(listed) < len(payload_manifests):
                missing = ", ".join(m.name for m in payload_manifests if key not in m.covers)
                if self.version_info >= (1, 0):
                    self.add(Kind.NOT_IN_EVERY_MANIFEST, show, f"not listed in {missing}",
                             "RFC 8493 §2.1.3, §3")
                else:
                    self.warn(Kind.NOT_IN_EVERY_MANIFEST, show,
                              f"not listed in {missing} (allowed before BagIt 1.0)",
                              "BagIt 0.97 §3")
        self.fetch_not_in_manifest(payload_manifests)

    def fetch_not_in_manifest(self, payload_manifests: Sequence[_Manifest]) -> None:
        listed = {m.name: {e.path for e in m.entries} for m in payload_manifests}
        for f in self.fetch:
            for m in payload_manifests:
                if f.path not in listed[m.name]:
                    self.add(Kind.FETCH_NOT_IN_MANIFEST, f.path,
                             f"listed in fetch.txt but not in {m.name}", "RFC 8493 §2.2.3")

    def tag_coverage(self) -> None:
        """§2.2.1: each tag manifest lists every payload manifest, SHOULD list the rest."""
        tag_manifests = [m for m in self.manifests if m.tag]
        if not tag_manifests:
            return
        payload_names = {m.name.encode() for m in self.manifests if not m.tag}
        tag_keys = {
            k for k in self.files
            if not k.startswith(b"data/") and not (
                b"/" not in k and k.startswith(b"tagmanifest-") and k.endswith(b".txt")
            )
        }
        for m in tag_manifests:
            for name in sorted(payload_names - set(m.covers)):
                # A 1.0 rule; before it an unlisted payload manifest was merely unprotected.
                self.add(Kind.PAYLOAD_MANIFEST_UNCOVERED, m.name,
                         f"does not list payload manifest {_show(name)}", "RFC 8493 §2.2.1",
                         "error" if self.version_info >= (1, 0) else "warning")
        covered_somewhere = set().union(*(set(m.covers) for m in tag_manifests))
        for key in sorted(tag_keys - covered_somewhere - payload_names):
            self.warn(Kind.TAG_FILE_UNCOVERED, _show(key),
                      "tag file in no tag manifest: its content is not protected",
                      "RFC 8493 §2.2.1")
        sets = {frozenset(m.covers) for m in tag_manifests}
        if len(sets) > 1:
            self.warn(Kind.TAG_MANIFESTS_DIFFER, None,
                      "the tag manifests do not list the same tag files", "RFC 8493 §2.2.1")

    # --- hashing --------------------------------------------------------------------------

    def hash_all(self) -> None:
        wanted: dict[bytes, set[str]] = {}
        for m in self.manifests:
            for key in m.covers:
                wanted.setdefault(key, set()).add(m.algorithm)
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        for key in sorted(wanted):
            self._hash_one(key, sorted(wanted[key]), view)
        for m in self.manifests:
            for key, digest in m.covers.items():
                got = self.computed.get(key, {}).get(m.algorithm)
                if got is None:
                    continue  # unreadable: already a finding, never called a mismatch
                if got != digest:
                    self.mismatched.add(key)
                    self.add(Kind.CHECKSUM_MISMATCH, _show(key),
                             f"{m.algorithm} is {got}, {m.name} says {digest}",
                             "RFC 8493 §3")

    def _hash_one(self, key: bytes, algorithms: list[str], view: memoryview) -> None:
        show = _show(key)
        try:
            fd = self.open_file(key)
        except _Changed:
            self.add(Kind.FILE_CHANGED, show, "changed while the bag was read", "RFC 8493 §3")
            self.unreadable.add(key)
            return
        except OSError as exc:
            self.add(Kind.UNREADABLE_FILE, show, f"cannot read: {exc.strerror}", "RFC 8493 §3")
            self.unreadable.add(key)
            return
        hashers = [
            hashlib.new(_ALGORITHMS[a][0], usedforsecurity=a not in _WEAK) for a in algorithms
        ]
        total = 0
        try:
            # Nothing read here is trusted until every digest below has matched.
            while True:
                n = os.readv(fd, [view])
                if n == 0:
                    break
                chunk = view[:n]
                for h in hashers:
                    h.update(chunk)
                total += n
            after = os.fstat(fd)
        except OSError as exc:
            self.add(Kind.UNREADABLE_FILE, show, f"cannot read: {exc.strerror}", "RFC 8493 §3")
            self.unreadable.add(key)
            return
        finally:
            os.close(fd)
        node = self.files[key]
        if total != node.size or after.st_size != node.size or after.st_mtime_ns != node.mtime_ns:
            self.add(Kind.FILE_CHANGED, show, "changed while it was being read", "RFC 8493 §3")
            self.unreadable.add(key)
            return
        self.computed[key] = {a: h.hexdigest() for a, h in zip(algorithms, hashers, strict=True)}
        self.files_hashed += 1
        self.bytes_hashed += total

    # --- whole-payload checks -----------------------------------------------------------------

    def payload_oxum(self) -> tuple[int, int]:
        payload = [n for k, n in self.files.items() if k.startswith(b"data/")]
        octets = sum(n.size for n in payload)
        streams = len(payload) + len(self.absent_system)
        if self.oxum is not None and self.oxum != (octets, streams):
            self.add(Kind.PAYLOAD_OXUM_MISMATCH, self.info_file,
                     f"Payload-Oxum declares {self.oxum[0]} bytes in {self.oxum[1]} files; the "
                     f"payload holds {octets} bytes in {streams} files", "RFC 8493 §2.2.2")
        return octets, streams

    def names(self) -> None:
        """Collisions a case-insensitive or normalising filesystem would make (§6.1.1)."""
        if b"data" not in self.dirs:
            self.add(Kind.PAYLOAD_DIRECTORY_MISSING, "data",
                     "the payload directory data/ is missing", "RFC 8493 §2.1.2")
        groups: dict[str, list[bytes]] = {}
        for key in list(self.files) + sorted(self.dirs):
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                continue
            groups.setdefault(_fold_key(name), []).append(key)
        for members in groups.values():
            if len(members) > 1:
                shown = ", ".join(repr(_show(k)) for k in sorted(members))
                how = (
                    "Unicode normalisation"
                    if len({_nfc_key(k.decode()) for k in members}) < len(members)
                    else "case"
                )
                self.warn(Kind.NAME_COLLISION, _show(sorted(members)[0]),
                          f"names differ only in {how} ({shown}); they would collide on "
                          "macOS or Windows", "RFC 8493 §6.1.1.3")
        for key in self.files:
            base = key.rsplit(b"/", 1)[-1].decode("utf-8", "replace")
            system = base.lower() in _SYSTEM_NAMES or base.startswith("._")
            if key.startswith(b"data/") and system:
                self.warn(Kind.SYSTEM_FILE, _show(key),
                          "operating-system metadata file in the payload", "RFC 8493 §6.1")

    # --- result ---------------------------------------------------------------------------

    def result(self, octets: int, streams: int) -> BagValidation:
        self._close_findings()
        digests: dict[bytes, dict[str, str]] = {}
        for m in self.manifests:
            for key, value in m.covers.items():
                digests.setdefault(key, {})[m.algorithm] = value
        def verified(key: bytes) -> bool:
            return (
                key in digests
                and key in self.computed
                and key not in self.unreadable
                and key not in self.mismatched
            )

        payload = []
        tags = []
        roles = self._roles()
        for key in sorted(self.files):
            node = self.files[key]
            text = key.decode("utf-8", "surrogateescape")
            d = tuple(sorted(digests.get(key, {}).items()))
            if key.startswith(b"data/"):
                payload.append(PayloadFile(text, key, node.size, d, verified(key),
                                           tuple(sorted(self.listed_as.get(key, ())))))
            else:
                tags.append(TagFile(text, key, node.size, roles.get(key, "other"), d,
                                    verified(key)))
        return BagValidation(
            path=self.path,
            errors=tuple(self.errors),
            warnings=tuple(self.warnings),
            version=self.version,
            encoding=self.encoding.name if self.encoding else None,
            info_file=self.info_file,
            info=tuple(self.info),
            payload=tuple(payload),
            tag_files=tuple(tags),
            payload_algorithms=tuple(m.algorithm for m in self.manifests if not m.tag),
            tag_algorithms=tuple(m.algorithm for m in self.manifests if m.tag),
            payload_oxum=self.oxum,
            payload_octets=octets,
            payload_streams=streams,
            fetch=tuple(self.fetch),
            files_hashed=self.files_hashed,
            bytes_hashed=self.bytes_hashed,
        )

    def _roles(self) -> dict[bytes, str]:
        roles = {b"bagit.txt": "declaration", b"fetch.txt": "fetch"}
        if self.info_file:
            roles[self.info_file.encode()] = "metadata"
        for m in self.manifests:
            roles[m.name.encode("utf-8", "surrogateescape")] = (
                "tag-manifest" if m.tag else "payload-manifest"
            )
        return roles

    def run(self) -> BagValidation:
        self.open_root()
        try:
            self.walk()
            if self.declaration():
                self.metadata()
                self.find_manifests()
                for m in self.manifests:
                    self.parse_manifest(m)
                self.parse_fetch()
                for m in self.manifests:
                    self.resolve(m)
                self.completeness()
                self.tag_coverage()
                self.hash_all()
            self.names()
            octets, streams = self.payload_oxum()
            return self.result(octets, streams)
        finally:
            os.close(self.root_fd)


class _Changed(Exception):
    """A file is not the one the walk saw (swapped for a link or another file)."""


def validate_bag(path: str | os.PathLike[str]) -> BagValidation:
    """Validate the bag at ``path`` (a folder) strictly, reading it and writing nothing.

    Raises ``InputError`` only when ``path`` cannot be opened as a folder at all (missing,
    a file, a symbolic link, no permission); every problem inside the bag is a finding.
    """
    return _Validator(path).run()


def main(argv: Sequence[str] | None = None, *, err: Callable[[str], object] | None = None) -> int:
    """``python -m custody.acquisition.sources.bagit BAG``: 0 valid, 1 invalid, 2 usage."""
    args = list(sys.argv[1:] if argv is None else argv)
    write = err or (lambda line: print(line, file=sys.stderr))
    if len(args) != 1 or args[0].startswith("-"):
        write("usage: python -m custody.acquisition.sources.bagit BAG")
        return 2
    try:
        result = validate_bag(args[0])
    except InputError as exc:
        write(f"error: {exc}")
        return 1
    for finding in result.warnings:
        write(f"warning: {finding}")
    for finding in result.errors:
        write(f"error: {finding}")
    return 0 if result.valid else 1


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
