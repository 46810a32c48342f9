"""The lines of a WhatsApp chat file: the generated phrases (attached, omitted, deleted,
edited) in the languages cited in the package docstring, the header layouts, how a line
is normalised (directional marks, Arabic-Indic digits) so every match maps back to the
verbatim text, and how a header's date and clock are read."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

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
