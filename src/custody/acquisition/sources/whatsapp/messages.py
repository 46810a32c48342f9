"""From lines to messages: splitting at headers, deciding the day/month order, reading
each message's sender, kind and attachment, finding the attachment in the export, and
what the layout says about the platform and the conversation."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from custody.acquisition.sources.claims import (
    ExportFile,
    Problem,
    has_bidi_control,
    nfc,
    strip_bidi,
    unsafe_name_reason,
)
from custody.acquisition.sources.said import Said
from custody.acquisition.sources.whatsapp.formats import (
    _ANDROID_ATTACHMENT,
    _ANDROID_MEDIA_NAME,
    _ATTACHMENT_SCAN,
    _CHAT_FILE_NAMES,
    _CONTAINER_NAMES,
    _EDITED_SCAN,
    _IOS_ATTACHMENT,
    _IOS_MEDIA_NAME,
    _ORDERS,
    _PHRASE_SCAN,
    _PLAIN_TABLE,
    _SENDER_SCAN,
    _TRAILING,
    ANDROID_ATTACHED,
    DELETED,
    EDITED_SUFFIXES,
    IOS_ATTACHED,
    IOS_CHAT_FILE,
    OMITTED,
    OMITTED_DOCUMENT,
    AttachmentStatus,
    DateOrder,
    MessageKind,
    Platform,
    _clock,
    _date_under,
    _Header,
    _match_header,
    _Normalised,
)
from custody.acquisition.sources.whatsapp.model import (
    TimeReading,
    WhatsAppAttachment,
    WhatsAppMessage,
)
from custody.i18n import N_

# The date orders as a person names them (shown when no order reads every line).
_ORDER_NAMES = {
    "DMY": Said(N_("day/month/year")),
    "MDY": Said(N_("month/day/year")),
    "YMD": Said(N_("year/month/day")),
}


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
                Said.ngettext(
                    "{n} line before the first message header was not read",
                    "{n} lines before the first message header were not read",
                    leading,
                ),
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
    # Recorded in English (date_order_reason); shown too when no order fits (a Said).
    why = Said.joined(
        "; ",
        [
            Said(
                N_("not {order}: line {line} ({time}) is no calendar date so read"),
                order=_ORDER_NAMES[o],
                line=h.line_no,
                time=repr(h.time_as_written),
            )
            for o, h in killed.items()
            if (o == "YMD") == year_first
        ],
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
    return (
        None,
        (),
        Said(N_("no single date order reads every line as a date: {why}"), why=why),
        per_header,
    )


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
                Said(
                    N_("the time {time} is not a time of day"),
                    time=repr(header.time_as_written),
                ),
                Said(N_("{file} line {line}"), file=where, line=header.line_no),
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
        reason = Said(N_("the name holds a path separator"))
    hit, match = (None, None) if reason else files.find(name)
    if reason is not None:
        status: AttachmentStatus = "unsafe_name"
        note = reason
        problems.append(
            Problem(
                "ATTACHMENT_NAME_UNSAFE",
                Said(
                    N_("the chat names an attachment that cannot be a file in the export: {why}"),
                    why=reason,
                ),
                Said(N_("line {line}: {name}"), line=msg.line, name=ascii(name)),
            )
        )
    elif hit is None:
        status = "missing"
    else:
        status = "present"
        if match == "unicode-normalised":
            note = Said(N_("the file's name is stored in another Unicode normalisation form"))
    if reason is None and has_bidi_control(bare):
        note = Said(
            N_("the name holds a directional control character and may display misleadingly")
        )
        problems.append(
            Problem(
                "BIDI_CONTROL_IN_ATTACHMENT_NAME",
                note,
                Said(N_("line {line}: {name}"), line=msg.line, name=ascii(name)),
            )
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
