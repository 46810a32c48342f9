"""WhatsApp chat exports ("Export chat"): the chat text, its media, and what it claims.

Owns ``read_whatsapp_export(path)``: a folder, a ``.zip`` or the chat ``.txt`` itself in;
a ``ChatExport`` out, listing every message with its time *as written*, sender *as
written* and verbatim text, every attachment the text names (present in the export or
missing), media the text says were left out, files in the export no message names, and
the chat file itself (which is evidence too). Nothing is changed or extracted.

Everything read from the text is a claim of the export. WhatsApp writes no time zone or
offset: a time is the wall clock of the exporting phone's settings, recorded here as a
naive local time with the day/month order used to read it. When no line of the file
decides that order (no day above 12, no impossible date), the result says so and carries
every candidate reading rather than guessing.

The format is not documented by WhatsApp. What this module follows, and where from:

* Line layouts. Android: ``12/31/23, 9:41 PM - Name: text`` and ``23-03-2022 13:31 -``;
  iOS: ``[31/12/2023, 21:41:05] Name: text``; system lines carry no ``Name:``. Real exports
  in starkdmi/whats_json @ 760b3a0a063f8e576156e72f5807c6ab283e0943, ``test/data/android``,
  ``test/data/ios``, ``test/data/languages`` (English, Arabic, Dutch, Czech, Russian, ...);
  Pustur/whatsapp-chat-parser ``src/parser.ts`` and ``tests/parser.test.ts`` @ 140675c1
  (``p.m.``, ``klo`` between date and time, dotted dates, LRM before the date).
* Arabic iOS: Arabic-Indic digits, U+200F after each date part, Arabic comma U+060C, a
  no-break space before ``م``/``ص``, ``<المُرفق: 00000035-PHOTO-….jpg>`` attachments, and
  "لم يتم إدراج الصورة" (image omitted) - whats_json ``test/data/languages/arabic_ios.txt``,
  ``arabic2_ios.txt``, ``test/data/chats_unique/WhatsApp Chat - Elon Musk (Arabic+Media).txt``.
  Arabic Android (``٢٤‏/٤‏/٢٠٢٢، ٢:٠٧ م - Name: text``): mtln/chat-export
  ``tests/test_arabic_locale.py`` @ 22fa5d3b (pull request #30, "from a real export").
* U+202F (narrow no-break space) before AM/PM: Pustur/whatsapp-chat-parser issue #248;
  U+00A0 inside ``p. m.``: issue #224.
* Attachments. iOS ``<attached: 00000012-PHOTO-2023-12-31-21-41-05.jpg>``, documents as
  ``Report.pdf • 2 pages <attached: 00000047-Report.pdf>``; Android
  ``IMG-20231231-WA0003.jpg (file attached)`` with any caption on the next lines; without
  media ``<Media omitted>`` (Android) and ``image omitted`` (iOS): whats_json as above.
  Arabic Android strings - "(الملف مرفق)"/"(ملف مرفق)" and "<تم استبعاد الوسائط>" - appear
  in several independent public parsers but in no export this module could cite; they are
  listed as reported, and attachments are also recognised by shape (a WhatsApp media name,
  or a name that exists in the export) so an unknown translation does not hide one.

Known limitation: WhatsApp does not escape message text, so a line inside a message that
itself begins with a date and time in the file's layout reads as a new message.

May import: the standard library, ``custody.errors`` and the sibling ``claims``/``safezip``.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from custody.acquisition.sources.claims import (
    ChatExportError,
    ExportFile,
    FolderRoot,
    MediaClaim,
    Problem,
    has_bidi_control,
    nfc,
    strip_bidi,
    unsafe_name_reason,
)
from custody.acquisition.sources.safezip import SafeZip, ZipLimits

DateOrder = Literal["DMY", "MDY", "YMD"]
Platform = Literal["android", "ios", "unknown"]
MessageKind = Literal["text", "system", "attachment", "media_omitted", "deleted"]
AttachmentStatus = Literal["present", "missing", "unsafe_name"]

TIME_ZONE_NOTE = (
    "WhatsApp writes no time zone or UTC offset: times are the wall clock of the exporting"
    " phone's settings, read here as naive local times"
)

_ORDERS: tuple[DateOrder, ...] = ("DMY", "MDY", "YMD")
_SENDER_SCAN = 256  # characters searched for the ": " that ends a sender's name
_PHRASE_SCAN = 96  # characters: longer messages are no generated phrase
_ATTACHMENT_SCAN = 1024  # characters: a document's title, a bullet, pages and its name

# --- the strings WhatsApp writes (see the module docstring for every source) -------------

# Inside the parentheses after an Android attachment name.
ANDROID_ATTACHED = {
    "file attached": "whats_json test/data/android (English)",
    "bestand bijgevoegd": "whats_json test/data/languages/deutch_android_media.txt (Dutch)",
    "soubor byl přiložen": "whats_json test/data/android (Czech)",
    "файл добавлен": "whats_json test/data/android (Russian)",
    "datei angehängt": "mtln/chat-export issue #7; prabhakar267/WA-Reader issue #86",
    "الملف مرفق": "reported by public parsers, not seen in a cited export",
    "ملف مرفق": "reported by public parsers, not seen in a cited export",
}
# Before the colon in an iOS ``<marker: name>``.
IOS_ATTACHED = {
    "attached": "whats_json test/data/languages/english_ios_media.txt",
    "المُرفق": "whats_json chats_unique/WhatsApp Chat - Elon Musk (Arabic+Media).txt",
    "مرفق": "reported by public parsers, not seen in a cited export",
}
# A whole message saying the media was left out of the export (older iOS wrote the iOS
# phrases inside <...>: whats_json chats_unique/eng_chat.txt; both forms are read).
OMITTED = {
    "<media omitted>": "whats_json test/data/android (English)",
    "image omitted": "whats_json test/data/languages/english_ios.txt",
    "video omitted": "idem",
    "audio omitted": "idem",
    "sticker omitted": "idem",
    "gif omitted": "idem",
    "contact card omitted": "idem",
    "لم يتم إدراج الصورة": "whats_json test/data/languages/arabic_ios.txt",
    "لم يتم إدراج الفيديوهات": "idem",
    "لم يتم إدراج المقاطع الصوتية": "idem",
    "لم يتم إدراج بطاقة جهة اتصال": "idem",
    "لم يتم إدراج صورة gif": "idem",
    "تم حذف الملصقات": "idem (the sticker placeholder)",
    "<تم استبعاد الوسائط>": "reported by public parsers, not seen in a cited export",
}
# Ending a message that names a document left out: ``Name.pdf • 2 pages document omitted``.
OMITTED_DOCUMENT = {
    "document omitted": "whats_json test/data/languages/english_ios.txt",
    "لم يتم إدراج المستند": "whats_json test/data/languages/arabic2_ios.txt",
}
DELETED = {
    "this message was deleted": "whats_json test/data/android and ios (English)",
    "you deleted this message": "idem",
    "تم حذف هذه الرسالة": "whats_json test/data/languages/arabic_ios.txt",
    "لقد حذفت هذه الرسالة": "whats_json ios/WhatsApp Chat - Elon Musk (Arabic).txt",
    "أنت حذفت هذه الرسالة": "whats_json test/data/languages/arabic_ios.txt",
}
EDITED_SUFFIXES = ("<this message was edited>",)
_EDITED_SCAN = 64

# WhatsApp's own media names: Android ``IMG-20231231-WA0003.jpg``; iOS
# ``00000012-PHOTO-2023-12-31-21-41-05.jpg`` and documents ``00000046-Some file.txt``.
_ANDROID_MEDIA_NAME = re.compile(r"(?:IMG|VID|PTT|AUD|STK|DOC)-\d{8}-WA\d{4,}(?:\.\w{1,8})?")
_IOS_MEDIA_NAME = re.compile(r"\d{8}-.+")

# Chat file names: Android names the text after the chat, iOS always ``_chat.txt`` and
# names the archive instead (whats_json test/data/android, test/data/ios).
_CHAT_FILE_NAMES = (
    re.compile(r"WhatsApp Chat with (?P<name>.+)\.txt"),
    re.compile(r"Chat WhatsApp s uživatelem (?P<name>.+)\.txt"),
    re.compile(r"Чат WhatsApp с контактом (?P<name>.+)\.txt"),
)
_CONTAINER_NAMES = (re.compile(r"WhatsApp Chat - (?P<name>.+?)(?:\.zip)?"),)
IOS_CHAT_FILE = "_chat.txt"

# --- reading a line's header -------------------------------------------------------------

# Deleted before matching a header; the text keeps them (see ``_Normalised``).
_DROP = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff")
_TO_SPACE = frozenset("\u00a0\u202f\u2009\u2007")
_DIGITS = {chr(0x660 + i): str(i) for i in range(10)} | {chr(0x6F0 + i): str(i) for i in range(10)}

_HEADER_SCAN = 96  # characters: the longest header, with marks around every part, fits
_HEADER = re.compile(
    r"""
    (?P<open>\[)?
    (?P<a>\d{1,4})(?P<sep>[./-])\ ?(?P<b>\d{1,2})(?P=sep)\ ?(?P<c>\d{1,4})\.?
    ,?\ (?:klo\ )?
    (?P<h>\d{1,2})(?P<tsep>[:.])(?P<mi>\d{2})(?:(?P=tsep)(?P<s>\d{2}))?
    (?:\ ?(?P<ampm>[AaPp]\.?\ ?[Mm]\.?|ص|م))?
    (?P<close>(?(open)\]\ |(?:\ [-–]\ |:\ )))
    """,
    re.VERBOSE,
)
_IOS_ATTACHMENT = re.compile(r"<\s*(?P<marker>[^<>:]{1,40}?)\s*:\s?(?P<name>[^<>]{1,512}?)\s*>\s*$")
_ANDROID_ATTACHMENT = re.compile(
    r"(?P<name>.{1,512}\.[^\W_]{1,8})\s\((?P<marker>[^()]{1,40})\)\s*$"
)


_PLAIN_TABLE = str.maketrans(dict.fromkeys(_DROP) | dict.fromkeys(_TO_SPACE, " "))
_DIGIT_TABLE = str.maketrans(
    dict.fromkeys(_DROP) | dict.fromkeys(_TO_SPACE, " ") | _DIGITS | {"\u060c": ","}
)
_TRAILING = " \t" + "".join(sorted(_DROP | _TO_SPACE))
_SPECIAL = re.compile(
    "[" + "".join(sorted(_DROP | _TO_SPACE)) + "\u060c\u0660-\u0669\u06f0-\u06f9]"
)
# A header can only begin with a digit, after marks and an optional bracket: lines that
# cannot are skipped before the (costlier) normalised match.
_MAY_BE_HEADER = re.compile(
    "["
    + "".join(sorted(_DROP))
    + "]*\\[?["
    + "".join(sorted(_DROP))
    + "]*[0-9\u0660-\u0669\u06f0-\u06f9]"
)


@dataclass(frozen=True)
class _Normalised:
    """A line with directional marks dropped and look-alike characters mapped, plus where
    each remaining character came from, so every match maps back to the verbatim text."""

    text: str
    origin: Sequence[int]

    @classmethod
    def of(cls, line: str, *, digits: bool, limit: int | None = None) -> _Normalised:
        """``limit``: normalise only that many leading characters (headers and senders
        are short; message bodies can be long)."""
        if limit is not None:
            line = line[:limit]
        if _SPECIAL.search(line) is None:
            return cls(line, range(len(line)))
        text = line.translate(_DIGIT_TABLE if digits else _PLAIN_TABLE)
        if len(text) == len(line):
            return cls(text, range(len(line)))
        return cls(text, [i for i, ch in enumerate(line) if ch not in _DROP])

    def span(self, line: str, start: int, end: int) -> str:
        """The verbatim text of ``line`` covering normalised characters ``start:end``."""
        if start >= end:
            return ""
        return line[self.origin[start] : self.origin[end - 1] + 1]

    def after(self, end: int, line: str) -> int:
        """Index in ``line`` just after normalised character ``end - 1``."""
        return self.origin[end - 1] + 1 if end else 0


@dataclass(frozen=True)
class _Header:
    line_no: int
    time_as_written: str
    a: str
    b: str
    c: str
    hour: int
    minute: int
    second: int | None
    ampm: str | None
    layout: Literal["bracket", "dash", "colon"]
    rest: str  # verbatim, after the header's separator


def _match_header(line: str, line_no: int) -> _Header | None:
    if _MAY_BE_HEADER.match(line) is None:
        return None
    norm = _Normalised.of(line, digits=True, limit=_HEADER_SCAN)
    m = _HEADER.match(norm.text)
    if m is None:
        return None
    a, c = m["a"], m["c"]
    # A year is written with four digits at either end, or with two at the end.
    if len(a) == 4:
        if len(c) > 2:
            return None
    elif len(a) > 2 or len(c) not in (2, 4):
        return None
    time_end = m.end("ampm") if m["ampm"] else m.end("mi") if m["s"] is None else m.end("s")
    # Verbatim from just inside the bracket (marks there belong to the date) or from the
    # date's first digit, to the end of the time or its AM/PM.
    start = norm.after(m.end("open"), line) if m["open"] else norm.origin[m.start("a")]
    return _Header(
        line_no=line_no,
        time_as_written=line[start : norm.origin[time_end - 1] + 1],
        a=a,
        b=m["b"],
        c=c,
        hour=int(m["h"]),
        minute=int(m["mi"]),
        second=None if m["s"] is None else int(m["s"]),
        ampm=m["ampm"],
        layout="bracket"
        if m["open"]
        else "dash"
        if "-" in m["close"] or "–" in m["close"]
        else "colon",
        rest=line[norm.after(m.end(), line) :],
    )


def _date_under(header: _Header, order: DateOrder) -> date | None:
    a, b, c = int(header.a), int(header.b), int(header.c)
    if order == "YMD":
        if len(header.a) != 4:
            return None
        year, month, day = a, b, c
    else:
        if len(header.a) == 4:
            return None
        # WhatsApp appeared in 2009: a two-digit year is 20yy.
        year = c + 2000 if len(header.c) == 2 else c
        month, day = (b, a) if order == "DMY" else (a, b)
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _clock(header: _Header) -> tuple[int, int, int] | None:
    hour, minute, second = header.hour, header.minute, header.second or 0
    if minute > 59 or second > 59:
        return None
    if header.ampm is None:
        return (hour, minute, second) if hour <= 23 else None
    # 1-12 on the usual 12-hour clock; 0-11 where a locale counts from 0 ("0:13 PM"):
    # either way the hour modulo 12 plus the half of the day is the one reading.
    if hour > 12:
        return None
    pm = header.ampm == "م" or header.ampm[0] in "Pp"
    return (hour % 12 + (12 if pm else 0), minute, second)


# --- the result ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeReading:
    """One way to read a header's date: the order assumed and the naive local time."""

    order: DateOrder
    local_time: datetime

    def __post_init__(self) -> None:
        if self.local_time.tzinfo is not None:
            raise ValueError("WhatsApp times carry no zone: a reading must be naive")


@dataclass(frozen=True)
class WhatsAppMessage:
    """One message as the chat text writes it. Every field is a claim of the export."""

    index: int
    line: int  # 1-based line of its header in the chat file
    last_line: int
    time_as_written: str  # verbatim, directional marks and original digits kept
    readings: tuple[TimeReading, ...]  # one if the order is known; none if unreadable
    seconds_written: bool  # Android writes minutes only
    sender: str | None  # verbatim; None for a system line
    text: str  # verbatim, lines joined with "\n"
    kind: MessageKind
    marker: str | None = None  # the generated phrase that set ``kind``, as written
    attachment_name: str | None = None  # as written
    omitted_name: str | None = None  # a document named beside "document omitted"
    edited: bool = False  # the text ends with WhatsApp's "edited" note

    @property
    def local_time(self) -> datetime | None:
        """The naive local time when exactly one reading survives, else None."""
        return self.readings[0].local_time if len(self.readings) == 1 else None

    @property
    def sender_plain(self) -> str | None:
        return None if self.sender is None else strip_bidi(self.sender).strip()

    @property
    def text_plain(self) -> str:
        return strip_bidi(self.text)


@dataclass(frozen=True)
class WhatsAppAttachment:
    """A file a message names, and whether the export holds it."""

    name: str  # as written in the chat text
    message_index: int
    line: int
    form: Literal["ios", "android"]
    marker: str  # "attached", "file attached", "المُرفق", ... as written
    marker_known: bool  # the marker is one of the strings this module cites
    status: AttachmentStatus
    file: ExportFile | None = None  # path in the export, size, SHA-256 when present
    name_match: Literal["exact", "unicode-normalised"] | None = None
    note: str | None = None

    @property
    def path_in_export(self) -> str | None:
        return self.file.path if self.file else None


@dataclass(frozen=True)
class ExportSource:
    """What was handed over: a folder, a ZIP archive, or the chat file alone."""

    kind: Literal["folder", "zip", "chat-file"]
    path: str  # as given
    container: ExportFile | None = None  # the archive itself, measured


@dataclass(frozen=True)
class ChatExport:
    """A WhatsApp chat export as read. See the module docstring for what is a claim."""

    source: ExportSource
    chat_file: ExportFile  # becomes an item of its own
    conversation_name: str | None  # read from a file or archive name; a claim
    conversation_name_from: str  # the name it was read from, verbatim
    platform: Platform
    platform_reason: str
    date_order: DateOrder | None
    date_order_candidates: tuple[DateOrder, ...]
    date_order_ambiguous: bool
    date_order_reason: str
    messages: tuple[WhatsAppMessage, ...]
    attachments: tuple[WhatsAppAttachment, ...]
    unnamed_files: tuple[ExportFile, ...]  # in the export, named by no message
    problems: tuple[Problem, ...]
    time_zone_note: str = TIME_ZONE_NOTE
    # When the order is ambiguous: what WhatsApp's own media names (which carry a date)
    # say about it. A hint for a person to weigh, never used to pick a reading.
    date_order_hint: str | None = None

    @property
    def missing(self) -> tuple[WhatsAppAttachment, ...]:
        """Attachments the chat names but the export lacks (or names unsafely)."""
        return tuple(a for a in self.attachments if a.status != "present")

    @property
    def omitted(self) -> tuple[WhatsAppMessage, ...]:
        """Messages saying their media was left out of the export."""
        return tuple(m for m in self.messages if m.kind == "media_omitted")

    def media_claims(self) -> tuple[MediaClaim, ...]:
        """One claim per attachment and per omitted medium, in message order."""
        where = self.source.path.rstrip("/").rsplit("/", 1)[-1]
        source = f"the WhatsApp export {where!r} (chat file {self.chat_file.path})"
        by_index = {m.index: m for m in self.messages}
        claims: list[MediaClaim] = []
        for att in self.attachments:
            msg = by_index[att.message_index]
            claims.append(
                self._claim(
                    source,
                    msg,
                    media_name=att.name,
                    role="attachment",
                    status="present"
                    if att.status == "present"
                    else ("unsafe" if att.status == "unsafe_name" else "missing"),
                    reason=None
                    if att.status == "present"
                    else (att.note or "the export does not contain this file"),
                    file=att.file,
                    notes=tuple(n for n in (att.note,) if n and att.status == "present"),
                )
            )
        for msg in self.omitted:
            claims.append(
                self._claim(
                    source,
                    msg,
                    media_name=msg.omitted_name or msg.marker or "",
                    role="omitted",
                    status="omitted",
                    reason="the chat says this media was left out of the export",
                    file=None,
                    notes=(),
                )
            )
        claims.sort(key=lambda c: c.message_id or 0)
        return tuple(claims)

    def _claim(
        self,
        source: str,
        msg: WhatsAppMessage,
        *,
        media_name: str,
        role: str,
        status: Literal["present", "missing", "omitted", "unsafe"],
        reason: str | None,
        file: ExportFile | None,
        notes: tuple[str, ...],
    ) -> MediaClaim:
        return MediaClaim(
            platform="whatsapp",
            source=source,
            conversation=self.conversation_name,
            conversation_id=None,
            message_ref=f"line {msg.line}",
            message_id=msg.index,
            sender=msg.sender,
            sender_id=None,
            time_as_written=msg.time_as_written,
            time_readings=tuple(f"{r.local_time.isoformat()} ({r.order})" for r in msg.readings),
            time_ambiguous=len(msg.readings) > 1,
            time_zone_note=self.time_zone_note,
            utc_time=None,
            utc_offset_minutes=None,
            text=msg.text,
            media_name=media_name,
            media_role=role,
            status=status,
            missing_reason=reason,
            path_in_export=file.path if file else None,
            size=file.size if file else None,
            sha256=file.sha256 if file else None,
            notes=notes,
        )


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadLimits:
    """Caps on what one export may make this reader do."""

    max_chat_bytes: int = 512 << 20
    max_folder_entries: int = 200_000
    zip: ZipLimits = field(default_factory=ZipLimits)


def read_whatsapp_export(
    path: str | os.PathLike[str], *, limits: ReadLimits | None = None
) -> ChatExport:
    """Read a WhatsApp chat export: a folder, a ``.zip`` archive, or the chat ``.txt``.

    Raises ``ChatExportError`` (an ``InputError``) when it cannot be read at all, and
    ``UnsafeArchiveError`` for an archive no export tool would write. Everything else
    odd becomes a ``Problem`` in the result.
    """
    limits = limits or ReadLimits()
    given = Path(path)
    try:
        st = os.lstat(given)
    except OSError as exc:
        raise ChatExportError(f"cannot read {given}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise ChatExportError(f"{given} is a symbolic link; give the export itself")
    if stat.S_ISDIR(st.st_mode):
        with FolderRoot(given) as root:
            return _read_folder(root, given, None, limits)
    if not stat.S_ISREG(st.st_mode):
        raise ChatExportError(f"{given} is neither a folder nor a file")
    if _is_zip(given):
        with SafeZip(given, limits.zip) as archive:
            return _read_zip(archive, given, limits)
    if given.suffix.lower() == ".txt":
        with FolderRoot(given.parent) as root:
            return _read_folder(root, given, given.name, limits)
    raise ChatExportError(
        f"{given} is not a WhatsApp export: give the folder, the .zip or the chat .txt"
    )


def _is_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise ChatExportError(f"cannot read {path}: {exc.strerror}") from None
    return head in (b"PK\x03\x04", b"PK\x05\x06") or path.suffix.lower() == ".zip"


def _choose_chat_file(names: Sequence[str], where: Path) -> tuple[str, list[Problem]]:
    """The chat text among ``names`` (paths in the export)."""
    base = {n: n.rsplit("/", 1)[-1] for n in names}
    known = [n for n, b in base.items() if b == IOS_CHAT_FILE] + [
        n for n, b in base.items() if any(p.fullmatch(b) for p in _CHAT_FILE_NAMES)
    ]
    if len(known) == 1:
        return known[0], []
    if len(known) > 1:
        raise ChatExportError(
            f"{where} holds several chat files ({', '.join(sorted(known))}); give one of them"
        )
    texts = [n for n, b in base.items() if b.lower().endswith(".txt")]
    if len(texts) == 1:
        return texts[0], [
            Problem(
                "CHAT_FILE_NAME_UNUSUAL",
                "the chat file is not named as WhatsApp names it; read it as the chat",
                texts[0],
            )
        ]
    if not texts:
        raise ChatExportError(
            f"no WhatsApp chat file ({IOS_CHAT_FILE} or 'WhatsApp Chat with ….txt') in {where}"
        )
    raise ChatExportError(
        f"{where} holds several .txt files and none is named as a chat file; give the chat"
        " .txt itself"
    )


def _read_folder(
    root: FolderRoot, given: Path, chat_name: str | None, limits: ReadLimits
) -> ChatExport:
    names, problems = root.walk(recursive=False, max_entries=limits.max_folder_entries)
    if chat_name is None:
        chat_name, more = _choose_chat_file(names, given)
        problems += more
    elif chat_name not in names:
        raise ChatExportError(f"{given} is not a regular file inside its folder")
    data = root.read_bytes(chat_name, limits.max_chat_bytes)
    files: dict[str, ExportFile] = {}
    for name in names:
        measured, why = root.hash_file(name)
        if measured is None:
            problems.append(Problem("UNREADABLE_FILE", f"not measured: {why}", name))
        else:
            files[name] = measured
    chat_file = _chat_file(chat_name, data, files.get(chat_name), given)
    kind: Literal["folder", "chat-file"] = "folder" if given.is_dir() else "chat-file"
    container_name = given.name if kind == "folder" else given.parent.name
    return _build(
        ExportSource(kind, os.fspath(given)),
        chat_file,
        data,
        files,
        "",
        container_name,
        problems,
    )


def _read_zip(archive: SafeZip, given: Path, limits: ReadLimits) -> ChatExport:
    problems = list(archive.problems)
    names = [m.name for m in archive.members]
    chat_name, more = _choose_chat_file(names, given)
    problems += more
    data = archive.read(chat_name, limits.max_chat_bytes)
    # Every member is read in full once, so damage anywhere is found now, not later.
    files = {name: archive.measure(name) for name in names}
    folder = chat_name.rsplit("/", 1)[0] + "/" if "/" in chat_name else ""
    return _build(
        ExportSource("zip", os.fspath(given), archive.measure_archive()),
        _chat_file(chat_name, data, files[chat_name], given),
        data,
        files,
        folder,
        given.name,
        problems,
    )


def _chat_file(name: str, data: bytes, measured: ExportFile | None, where: Path) -> ExportFile:
    """The chat file as parsed: its digest is of the very bytes read for parsing."""
    parsed = ExportFile(name, len(data), hashlib.sha256(data).hexdigest())
    if measured is not None and measured != parsed:
        raise ChatExportError(f"{name} in {where} changed while it was being read; read it again")
    return parsed


def _decode(data: bytes, where: str) -> tuple[str, list[Problem]]:
    problems: list[Problem] = []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ChatExportError(f"{where} is UTF-16 text; WhatsApp writes UTF-8 - was it re-saved?")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        problems.append(Problem("BYTE_ORDER_MARK", "the chat file begins with a UTF-8 BOM", where))
    try:
        return data.decode("utf-8"), problems
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ChatExportError(
            f"{where} is not UTF-8 text (byte 0x{data[exc.start]:02X} at line {line});"
            " WhatsApp writes UTF-8 - was the file re-saved in another encoding?"
        ) from None


def _build(
    source: ExportSource,
    chat_file: ExportFile,
    data: bytes,
    files: dict[str, ExportFile],
    folder: str,
    container_name: str,
    problems: list[Problem],
) -> ChatExport:
    text, more = _decode(data, chat_file.path)
    problems += more
    # Only "\n" ends a line: str.splitlines would also split at U+2028, U+0085 and others
    # that may sit inside a message.
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    headers, bodies = _split_messages(lines, problems, chat_file.path)
    if not headers:
        raise ChatExportError(
            f"{chat_file.path}: no line reads as a WhatsApp message (date, time, then"
            " ' - ' or '[…] '); not a WhatsApp chat export this reader knows"
        )
    order, candidates, reason, per_header = _decide_order(headers)
    if order is None and len(candidates) > 1:
        problems.append(
            Problem(
                "DATE_ORDER_AMBIGUOUS",
                "no date in the file decides between "
                + " and ".join(candidates)
                + "; every message carries each reading",
            )
        )
    elif not candidates:
        problems.append(Problem("DATE_ORDER_INCONSISTENT", reason))
    local = {
        p[len(folder) :]: f
        for p, f in files.items()
        if p.startswith(folder) and "/" not in p[len(folder) :]
    }
    local.pop(chat_file.path[len(folder) :], None)
    beside = _Files(local)
    messages: list[WhatsAppMessage] = []
    attachments: list[WhatsAppAttachment] = []
    for i, (h, body) in enumerate(zip(headers, bodies, strict=True)):
        message, found = _message(i, h, body, per_header[i], beside, problems, chat_file.path)
        messages.append(message)
        if found is not None:
            attachments.append(_attachment(message, found, beside, folder, problems))
    odd = [
        m.line for m in messages if any(not 2009 <= r.local_time.year <= 2100 for r in m.readings)
    ]
    if odd:
        problems.append(
            Problem(
                "YEAR_IMPLAUSIBLE",
                f"{len(odd)} message(s) read to a year WhatsApp (2009-) could not have written;"
                " is the phone set to another calendar?",
                f"{chat_file.path} line {odd[0]}",
            )
        )
    named = {a.file.path for a in attachments if a.file is not None}
    unnamed = tuple(f for p, f in sorted(files.items()) if p != chat_file.path and p not in named)
    for f in files.values():
        if has_bidi_control(f.path):
            problems.append(
                Problem(
                    "BIDI_CONTROL_IN_FILE_NAME",
                    "a file name holds a directional control character; it may display"
                    " as a different name",
                    ascii(f.path),
                )
            )
    platform, platform_reason = _platform(headers, attachments, chat_file.path)
    conversation, named_from = _conversation(chat_file.path, container_name)
    return ChatExport(
        source=source,
        chat_file=chat_file,
        conversation_name=conversation,
        conversation_name_from=named_from,
        platform=platform,
        platform_reason=platform_reason,
        date_order=order,
        date_order_candidates=candidates,
        date_order_ambiguous=order is None and len(candidates) > 1,
        date_order_reason=reason,
        date_order_hint=_order_hint(messages, attachments) if len(candidates) > 1 else None,
        messages=tuple(messages),
        attachments=tuple(attachments),
        unnamed_files=unnamed,
        problems=tuple(problems),
    )


def _split_messages(
    lines: list[str], problems: list[Problem], where: str
) -> tuple[list[_Header], list[list[str]]]:
    headers: list[_Header] = []
    bodies: list[list[str]] = []
    leading = 0
    for no, line in enumerate(lines, start=1):
        header = _match_header(line, no)
        if header is not None:
            headers.append(header)
            bodies.append([])
        elif headers:
            bodies[-1].append(line)
        elif line.strip():
            leading += 1
    if leading:
        problems.append(
            Problem(
                "TEXT_BEFORE_FIRST_MESSAGE",
                f"{leading} line(s) before the first message header were not read",
                where,
            )
        )
    return headers, bodies


def _decide_order(
    headers: list[_Header],
) -> tuple[DateOrder | None, tuple[DateOrder, ...], str, list[tuple[DateOrder, ...]]]:
    """The date order that reads every header as a real date, and why."""
    per_header = [tuple(o for o in _ORDERS if _date_under(h, o)) for h in headers]
    alive = list(_ORDERS)
    killed: dict[DateOrder, _Header] = {}
    for h, valid in zip(headers, per_header, strict=True):
        for order in list(alive):
            if order not in valid:
                alive.remove(order)
                killed[order] = h
    names = {"DMY": "day/month/year", "MDY": "month/day/year", "YMD": "year/month/day"}
    # Orders ruled out by where the four-digit year stands need no example line.
    year_first = any(len(h.a) == 4 for h in headers)
    why = "; ".join(
        f"not {names[o]}: line {h.line_no} ({h.time_as_written!r}) is no calendar date so read"
        for o, h in killed.items()
        if (o == "YMD") == year_first
    )
    if len(alive) == 1:
        return (
            alive[0],
            (alive[0],),
            f"{names[alive[0]]}" + (f" ({why})" if why else ""),
            [(alive[0],) if alive[0] in v else () for v in per_header],
        )
    if alive:
        return (
            None,
            tuple(alive),
            "every date in the file reads as " + " and as ".join(names[o] for o in alive),
            [tuple(o for o in v if o in alive) for v in per_header],
        )
    return None, (), "no single date order reads every line as a date: " + why, per_header


class _Files:
    """The files beside the chat file, for deciding whether a name is in the export."""

    def __init__(self, local: dict[str, ExportFile]) -> None:
        self.local = local
        self.by_nfc: dict[str, list[str]] = {}
        for name in local:
            self.by_nfc.setdefault(nfc(name), []).append(name)

    def find(self, name: str) -> tuple[str | None, Literal["exact", "unicode-normalised"] | None]:
        bare = strip_bidi(name).strip()
        for candidate in dict.fromkeys((name, bare)):
            if candidate in self.local:
                return candidate, "exact"
        twins = self.by_nfc.get(nfc(bare), [])
        if len(twins) == 1:
            return twins[0], "unicode-normalised"
        return None, None


@dataclass(frozen=True)
class _Found:
    name: str  # as written
    marker: str  # as written
    form: Literal["ios", "android"]
    marker_known: bool


def _message(
    index: int,
    header: _Header,
    body: list[str],
    orders: tuple[DateOrder, ...],
    files: _Files,
    problems: list[Problem],
    where: str,
) -> tuple[WhatsAppMessage, _Found | None]:
    clock = _clock(header)
    readings: list[TimeReading] = []
    if clock is None:
        problems.append(
            Problem(
                "UNREADABLE_TIME",
                f"the time {header.time_as_written!r} is not a time of day",
                f"{where} line {header.line_no}",
            )
        )
    else:
        for order in orders:
            day = _date_under(header, order)
            if day is not None:
                readings.append(TimeReading(order, datetime(day.year, day.month, day.day, *clock)))
    sender, first = _split_sender(header.rest)
    text = "\n".join([first, *body])
    kind: MessageKind = "system" if sender is None else "text"
    marker: str | None = None
    omitted_name: str | None = None
    found = _find_attachment(first, files) if sender is not None else None
    if found is not None:
        kind, marker = "attachment", found.marker
    elif sender is not None and len(first) <= _PHRASE_SCAN:
        plain = _plain(first)
        if (
            plain in _KEYS["omitted"]
            or plain.removeprefix("<").removesuffix(">") in _KEYS["omitted"]
        ):
            kind, marker = "media_omitted", first.strip()
        elif (doc := _omitted_document(first)) is not None:
            kind, marker, omitted_name = "media_omitted", first.strip(), doc
        elif len(text) <= _PHRASE_SCAN and _plain(text) in _KEYS["deleted"]:
            kind, marker = "deleted", text.strip()
    message = WhatsAppMessage(
        index=index,
        line=header.line_no,
        last_line=header.line_no + len(body),
        time_as_written=header.time_as_written,
        readings=tuple(readings),
        seconds_written=header.second is not None,
        sender=sender,
        text=text,
        kind=kind,
        marker=marker,
        attachment_name=found.name if found else None,
        omitted_name=omitted_name,
        edited=_plain(text[-_EDITED_SCAN:]).endswith(EDITED_SUFFIXES),
    )
    return message, found


def _split_sender(rest: str) -> tuple[str | None, str]:
    norm = _Normalised.of(rest, digits=False, limit=_SENDER_SCAN)
    at = norm.text.find(": ")
    if at <= 0:
        return None, rest
    colon = norm.origin[at]
    return rest[:colon], rest[colon + 2 :]


def _plain(text: str) -> str:
    """For comparing with the known phrases: no marks, no diacritics, folded case.
    Text far longer than any phrase is returned unfolded: it cannot match one."""
    if len(text) > _PHRASE_SCAN:
        return text
    folded = text.translate(_PLAIN_TABLE)
    if not folded.isascii():
        # Diacritics (Arabic harakat, Latin accents) vary between app versions: drop them.
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
        folded = unicodedata.normalize("NFC", folded)
    return folded.strip().rstrip(".").strip().casefold()


_KEYS = {
    "android": frozenset(_plain(k) for k in ANDROID_ATTACHED),
    "ios": frozenset(_plain(k) for k in IOS_ATTACHED),
    "omitted": frozenset(_plain(k) for k in OMITTED),
    "deleted": frozenset(_plain(k) for k in DELETED),
}
_OMITTED_DOCUMENT = re.compile(
    r"\s(?:" + "|".join(re.escape(k) for k in OMITTED_DOCUMENT) + r")\s*$", re.IGNORECASE
)


def _omitted_document(first: str) -> str | None:
    """The document name before "document omitted", as written, if that is the message."""
    folded = first.casefold()
    if not any(phrase in folded for phrase in OMITTED_DOCUMENT):
        return None
    norm = _Normalised.of(first, digits=False)
    m = _OMITTED_DOCUMENT.search(norm.text)
    if m is None or not norm.text[: m.start()].strip():
        return None
    title = norm.span(first, 0, m.start())
    # iOS writes "Name.pdf • 2 pages" before the phrase; the name is before the bullet.
    return strip_bidi(title.split(" \u2022", 1)[0]).strip()


def _find_attachment(first: str, files: _Files) -> _Found | None:
    """An attachment written at the end of ``first``: iOS ``<marker: name>`` or Android
    ``name (marker)``. Taken as one when the marker is a cited string, the name is one
    WhatsApp gives its media, or a file of that name is in the export."""
    if not first.rstrip(_TRAILING).endswith((">", ")")) or len(first) > _ATTACHMENT_SCAN:
        return None
    norm = _Normalised.of(first, digits=False)
    form: Literal["ios", "android"]
    m = _IOS_ATTACHMENT.search(norm.text)
    if m is not None:
        form, names, own = "ios", _KEYS["ios"], _IOS_MEDIA_NAME
        offset = 0
    else:
        stripped = norm.text.rstrip()
        offset = len(stripped) - len(stripped.lstrip())
        m = _ANDROID_ATTACHMENT.fullmatch(stripped.lstrip())
        if m is None:
            return None
        form, names, own = "android", _KEYS["android"], _ANDROID_MEDIA_NAME
    name = norm.span(first, m.start("name") + offset, m.end("name") + offset)
    marker = norm.span(first, m.start("marker") + offset, m.end("marker") + offset)
    known = _plain(marker) in names
    if known or own.fullmatch(strip_bidi(name).strip()) or files.find(name)[0] is not None:
        return _Found(name.strip(), marker, form, known)
    return None


def _attachment(
    msg: WhatsAppMessage,
    found: _Found,
    files: _Files,
    folder: str,
    problems: list[Problem],
) -> WhatsAppAttachment:
    name = found.name
    bare = strip_bidi(name).strip()
    note: str | None = None
    reason = unsafe_name_reason(bare)
    if reason is None and ("/" in bare or "\\" in bare):
        reason = "the name holds a path separator"
    hit, match = (None, None) if reason else files.find(name)
    if reason is not None:
        status: AttachmentStatus = "unsafe_name"
        note = reason
        problems.append(
            Problem(
                "ATTACHMENT_NAME_UNSAFE",
                "the chat names an attachment that cannot be a file in the export: " + reason,
                f"line {msg.line}: {name!a}",
            )
        )
    elif hit is None:
        status = "missing"
    else:
        status = "present"
        if match == "unicode-normalised":
            note = "the file's name is stored in another Unicode normalisation form"
    if reason is None and has_bidi_control(bare):
        note = "the name holds a directional control character and may display misleadingly"
        problems.append(
            Problem("BIDI_CONTROL_IN_ATTACHMENT_NAME", note, f"line {msg.line}: {name!a}")
        )
    return WhatsAppAttachment(
        name=name,
        message_index=msg.index,
        line=msg.line,
        form=found.form,
        marker=found.marker,
        marker_known=found.marker_known,
        status=status,
        file=files.local[hit] if hit is not None else None,
        name_match=match,
        note=note,
    )


_NAME_DATES = (
    re.compile(r"-(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})-WA\d"),  # IMG-20231231-WA0003.jpg
    re.compile(r"-(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})-\d{2}-\d{2}-\d{2}\."),  # iOS
)


def _order_hint(
    messages: Sequence[WhatsAppMessage], attachments: Sequence[WhatsAppAttachment]
) -> str | None:
    """Which readings agree with the date inside WhatsApp's media names. The name's date
    is the day the phone saved the file, usually the day the message arrived."""
    agree: dict[DateOrder, int] = {}
    compared = 0
    for att in attachments:
        for pattern in _NAME_DATES:
            m = pattern.search(att.name)
            if m is None:
                continue
            try:
                named = date(int(m["y"]), int(m["m"]), int(m["d"]))
            except ValueError:
                continue
            compared += 1
            for reading in messages[att.message_index].readings:
                if reading.local_time.date() == named:
                    agree[reading.order] = agree.get(reading.order, 0) + 1
            break
    if not compared:
        return None
    return "; ".join(
        f"{order}: {agree.get(order, 0)} of {compared} dated media name(s) agree"
        for order in _ORDERS
        if any(order == r.order for msg in messages for r in msg.readings)
    )


def _platform(
    headers: list[_Header], attachments: Sequence[WhatsAppAttachment], chat_path: str
) -> tuple[Platform, str]:
    votes: dict[str, list[str]] = {"ios": [], "android": []}
    layouts = {h.layout for h in headers}
    if layouts == {"bracket"}:
        votes["ios"].append("every message line begins '[date, time]' as WhatsApp for iOS writes")
    elif layouts == {"colon"}:
        votes["ios"].append("every message line begins 'date, time: ' as older iOS versions wrote")
    elif layouts == {"dash"}:
        votes["android"].append(
            "every message line begins 'date, time - ' as WhatsApp for Android writes"
        )
    forms = {a.form for a in attachments}
    if "ios" in forms:
        votes["ios"].append("attachments are written '<attached: …>'")
    if "android" in forms:
        votes["android"].append("attachments are written '… (file attached)'")
    base = chat_path.rsplit("/", 1)[-1]
    if base == IOS_CHAT_FILE:
        votes["ios"].append(f"the chat file is named {IOS_CHAT_FILE}")
    elif any(p.fullmatch(base) for p in _CHAT_FILE_NAMES):
        votes["android"].append("the chat file is named after the chat")
    if votes["ios"] and not votes["android"]:
        return "ios", "; ".join(votes["ios"])
    if votes["android"] and not votes["ios"]:
        return "android", "; ".join(votes["android"])
    if not votes["ios"]:
        return "unknown", "no sign of either"
    return "unknown", "conflicting signs: " + "; ".join(
        f"{k}: {', '.join(v)}" for k, v in votes.items()
    )


def _conversation(chat_path: str, container: str) -> tuple[str | None, str]:
    base = chat_path.rsplit("/", 1)[-1]
    for pattern in _CHAT_FILE_NAMES:
        m = pattern.fullmatch(base)
        if m:
            return m["name"], base
    if "/" in chat_path:
        folder = chat_path.rsplit("/", 1)[0].rsplit("/", 1)[-1]
        for pattern in _CONTAINER_NAMES:
            m = pattern.fullmatch(folder)
            if m:
                return m["name"], folder
    for pattern in _CONTAINER_NAMES:
        m = pattern.fullmatch(container)
        if m:
            return m["name"], container
    return None, base if base != IOS_CHAT_FILE else container
