"""What a bag validation finds and returns: finding names, findings, the bag's files and
metadata, and the caps. Plain frozen data; see the package docstring."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from custody.acquisition.sources.said import translated
from custody.errors import InputError
from custody.i18n import _, ngettext

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
    """One named problem: ``kind`` is the class name, ``path`` the bag-relative file.

    ``message`` is English (a ``Said``): it is recorded with the bag's provenance and is
    the same in ``--json`` whatever the language; ``str()`` says it in the language of the
    run, for people.
    """

    kind: Kind
    severity: Severity
    path: str | None
    message: str
    rule: str

    def __str__(self) -> str:
        """One line, safe for a terminal: names from the bag may hold controls.

        The kind, the path and the rule stay as they are in every language (a program that
        reads these lines keys on ``KIND: ``); only the message is translated."""
        where = f"{_printable(self.path)}: " if self.path is not None else ""
        return f"{self.kind}: {where}{_printable(translated(self.message))} ({self.rule})"


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
        if more > 0:
            message = ngettext(
                "{path} is not a valid BagIt bag: {first} (and {n} more)",
                "{path} is not a valid BagIt bag: {first} (and {n} more)",
                more,
            ).format(path=validation.path, first=first, n=more)
        else:
            message = _("{path} is not a valid BagIt bag: {first}").format(
                path=validation.path, first=first
            )
        super().__init__(message)
        self.validation = validation


def require_valid(validation: BagValidation) -> BagValidation:
    """Return ``validation`` if the bag is valid, else raise ``BagInvalidError``."""
    if not validation.valid:
        raise BagInvalidError(validation)
    return validation


# Bidirectional controls reorder what a reader sees (a risk in right-to-left scripts).
_BIDI_CONTROLS: Final = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


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
