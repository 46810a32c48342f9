"""Telegram Desktop exports ("Export chat history" / "Export Telegram data", JSON form).

Owns ``read_telegram_export(path)``: the export folder (or its ``result.json``) in; a
``TelegramExport`` out, linking every media file the JSON names to its chat, message id,
time, author and text, listing media the export did not download, and files in the
folder that nothing names. Nothing is changed.

The schema followed is the one Telegram Desktop writes, read from its source:
telegramdesktop/tdesktop @ 929032d598f7c521adc1869152463cf9e1160533,
``Telegram/SourceFiles/export/output/export_output_json.cpp`` (last changed in
b929e2a7b2b0d36bc23f64c682000a200394fac6):

* Top level: a single-chat export is one object ``{"name", "type", "id", "messages"}``
  (``JsonWriter::writeDialogStart`` with ``onlySinglePeer()``); a full-account export is
  ``{"about", "personal_information", "profile_pictures", "stories", ..., "chats":
  {"about", "list": [...]}, "left_chats": {"about", "list": [...]}}``.
* A message (``SerializeMessage``): ``id``, ``type`` ("message", "service" or, alone,
  "unsupported"), ``date`` - ``QDateTime::fromSecsSinceEpoch(date).toString(Qt::ISODate)``,
  the *exporting computer's* local time without an offset - and ``date_unixtime`` (a
  decimal string; added 2022-06-08, commit 96bd9ae81c), ``edited``/``edited_unixtime``,
  ``from``/``from_id`` ("user123", "channel123", "chat123"), ``author`` (a channel post's
  signature), ``forwarded_from``, ``saved_from``, ``actor``/``actor_id``/``action`` for
  service messages, ``text`` (a string, or an array of strings and ``{"type", "text", ...}``
  entity objects) and ``text_entities`` (always objects, added 2022-09-14, 84400f5912).
* Media: ``photo`` (+ ``photo_file_size``), ``file`` (+ ``file_size``, ``file_name``,
  ``media_type``, ``mime_type``), ``thumbnail`` (+ ``thumbnail_file_size``),
  ``contact_vcard``; each a path relative to the export folder, or, when not downloaded, a
  placeholder from ``pushPath``: "(File not included. Change data exporting settings to
  download.)", "(File exceeds maximum size. ...)", "(File unavailable, please try again
  later)" (and "Photo ..." for profile pictures and stories).
* Strings: ``SerializeString`` writes control characters other than \\n, \\r, \\t as
  ``\\x0B``-style escapes, which JSON does not allow. Such a file is read by turning exactly
  those escapes into ``\\u000B`` - and the result says it was done.

The export's UTC offset is derived per message as ``date`` minus ``date_unixtime``: it is
the offset of the computer that made the export at that moment (not the sender's), and it
cannot be derived when ``date_unixtime`` is absent (exports before mid-2022).

May import: the standard library, ``custody.errors`` and the sibling ``claims``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from custody.acquisition.sources.claims import (
    ChatExportError,
    ExportFile,
    FolderRoot,
    MediaClaim,
    Problem,
    unsafe_name_reason,
)

RESULT_JSON = "result.json"
MEDIA_FIELDS = (
    ("photo", "photo_file_size"),
    ("file", "file_size"),
    ("thumbnail", "thumbnail_file_size"),
    ("contact_vcard", "contact_vcard_file_size"),
)
PLACEHOLDERS = {
    "(File not included. Change data exporting settings to download.)": (
        "not downloaded: excluded by the export's settings"
    ),
    "(File exceeds maximum size. Change data exporting settings to download.)": (
        "not downloaded: larger than the export's size limit"
    ),
    "(File unavailable, please try again later)": "not downloaded: unavailable at export",
    "(Photo not included. Change data exporting settings to download.)": (
        "not downloaded: excluded by the export's settings"
    ),
    "(Photo exceeds maximum size. Change data exporting settings to download.)": (
        "not downloaded: larger than the export's size limit"
    ),
    "(Photo unavailable, please try again later)": "not downloaded: unavailable at export",
}
_SUPPORT_FOLDERS = ("css/", "js/", "images/")
_LOCAL = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})")
_UNIX = re.compile(r"-?\d{1,12}")
_TDESKTOP_ESCAPE = re.compile(r"\\(x[01][0-9A-F]|.)", re.DOTALL)
_MAX_OFFSET_MINUTES = 18 * 60

MediaState = Literal["present", "missing", "unsafe"]


@dataclass(frozen=True)
class TelegramTime:
    """A time as the export writes it, and what can be derived from it."""

    as_written: str | None  # "date", verbatim (local time of the exporting computer)
    unixtime_as_written: str | None  # "date_unixtime", verbatim
    local_time: datetime | None  # naive
    utc: datetime | None  # from date_unixtime
    utc_offset_minutes: int | None  # local minus UTC, when both are there and agree
    note: str  # how the offset was derived, or why it could not be


@dataclass(frozen=True)
class TelegramMessage:
    """One message as the export writes it. Every field is a claim of the export."""

    chat_index: int
    message_id: int
    kind: str  # "message", "service", "unsupported", or what the file says
    time: TelegramTime
    edited: TelegramTime | None
    from_name: str | None  # "from" (a person, or the channel for channel posts)
    from_id: str | None
    author_signature: str | None  # "author": a channel post's signature
    actor: str | None  # service messages
    actor_id: str | None
    action: str | None
    forwarded: bool  # the message carries "forwarded_from" (its value may be null)
    forwarded_from: str | None  # as written; None when absent or written as null
    saved_from: str | None
    reply_to_message_id: int | None
    text: str  # the entity array flattened: every part's text, in order
    text_raw_json: str  # "text" exactly as parsed, re-serialised
    text_entities_raw_json: str | None


@dataclass(frozen=True)
class TelegramChat:
    index: int
    listed_in: Literal["single", "chats", "left_chats"]
    name: str | None
    type: str | None  # "personal_chat", "public_channel", "private_group", ...
    id: int | None
    messages: tuple[TelegramMessage, ...]


@dataclass(frozen=True)
class TelegramMedia:
    """One media file the JSON names, and what the folder holds for it."""

    origin: Literal["message", "profile_picture", "story"]
    chat_index: int | None
    message_id: int | None
    field: str  # "photo", "file", "thumbnail", "contact_vcard", "media"
    value_as_written: str  # the path, or the placeholder written instead
    status: MediaState
    missing_reason: str | None = None
    file: ExportFile | None = None  # measured when present
    declared_size: int | None = None  # what the JSON says; a claim
    file_name: str | None = None  # "file_name": the name the sender's file had; a claim
    media_type: str | None = None  # "voice_message", "video_file", "sticker", ...
    mime_type: str | None = None

    @property
    def path_in_export(self) -> str | None:
        return self.file.path if self.file else None


@dataclass(frozen=True)
class TelegramExport:
    root: str
    result_json: ExportFile  # becomes an item of its own
    form: Literal["single_chat", "full_account"]
    chats: tuple[TelegramChat, ...]
    media: tuple[TelegramMedia, ...]
    unreferenced_files: tuple[ExportFile, ...]  # in the folder, named by nothing
    support_files: tuple[str, ...]  # the HTML export's css/js/images/*.html, if any
    offsets_seen: tuple[int, ...]  # distinct UTC offsets (minutes) derived from messages
    problems: tuple[Problem, ...]
    escapes_repaired: int = 0  # "\x0B"-style escapes read as "\u000B"

    @property
    def missing(self) -> tuple[TelegramMedia, ...]:
        return tuple(m for m in self.media if m.status != "present")

    def message(self, chat_index: int, message_id: int) -> TelegramMessage | None:
        for msg in self.chats[chat_index].messages:
            if msg.message_id == message_id:
                return msg
        return None

    def media_claims(self) -> tuple[MediaClaim, ...]:
        """One claim per media file the export names, in chat and message order."""
        source = f"the Telegram Desktop export {Path(self.root).name!r} ({RESULT_JSON})"
        index = {(c.index, m.message_id): m for c in self.chats for m in c.messages}
        claims: list[MediaClaim] = []
        for media in self.media:
            chat = self.chats[media.chat_index] if media.chat_index is not None else None
            msg = (
                index.get((media.chat_index, media.message_id))
                if media.chat_index is not None and media.message_id is not None
                else None
            )
            time = msg.time if msg else None
            notes: list[str] = []
            if msg and msg.author_signature:
                notes.append(f"signed {msg.author_signature!r}")
            if msg and msg.forwarded and msg.forwarded_from is None:
                notes.append("forwarded; the export writes the origin's name as null")
            if msg and msg.edited and msg.edited.as_written:
                notes.append(f"edited {msg.edited.as_written}")
            if (
                media.declared_size is not None
                and media.file is not None
                and (media.declared_size != media.file.size)
            ):
                notes.append(
                    f"the export says {media.declared_size} bytes; the file holds {media.file.size}"
                )
            claims.append(
                MediaClaim(
                    platform="telegram",
                    source=source,
                    conversation=chat.name if chat else None,
                    conversation_id=str(chat.id) if chat and chat.id is not None else None,
                    message_ref=(
                        f"message id {media.message_id}"
                        if media.message_id is not None
                        else media.origin.replace("_", " ")
                    ),
                    message_id=media.message_id,
                    sender=(msg.from_name or msg.actor) if msg else None,
                    sender_id=(msg.from_id or msg.actor_id) if msg else None,
                    time_as_written=(time.as_written or "") if time else "",
                    time_readings=(
                        (time.local_time.isoformat(),) if time and time.local_time else ()
                    ),
                    time_ambiguous=False,
                    time_zone_note=time.note if time else "no time for this file",
                    utc_time=time.utc if time else None,
                    utc_offset_minutes=time.utc_offset_minutes if time else None,
                    text=msg.text if msg else "",
                    media_name=media.file_name or media.value_as_written,
                    media_role=media.field + (f" ({media.media_type})" if media.media_type else ""),
                    forwarded_from=msg.forwarded_from if msg else None,
                    saved_from=msg.saved_from if msg else None,
                    status=media.status,
                    missing_reason=media.missing_reason,
                    path_in_export=media.path_in_export,
                    size=media.file.size if media.file else None,
                    sha256=media.file.sha256 if media.file else None,
                    notes=tuple(notes),
                )
            )
        return tuple(claims)


@dataclass(frozen=True)
class TelegramLimits:
    max_json_bytes: int = 1 << 30
    max_folder_entries: int = 500_000


class _Duplicate(Exception):
    pass


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _Duplicate(key)
        result[key] = value
    return result


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")


def _parse_json(text: str, where: str) -> tuple[object, int, list[Problem]]:
    problems: list[Problem] = []
    repaired = 0
    for attempt in range(2):
        try:
            value = json.loads(text, object_pairs_hook=_object, parse_constant=_no_constant)
            return value, repaired, problems
        except _Duplicate as exc:
            raise ChatExportError(
                f"{where}: an object has the key {exc.args[0]!r} twice; Telegram Desktop never"
                " writes that, and readers would disagree on its value"
            ) from None
        except json.JSONDecodeError as exc:
            if (
                attempt == 0
                and exc.msg.startswith("Invalid \\escape")
                and text[exc.pos : exc.pos + 2] == "\\x"
            ):
                text, repaired = _repair_escapes(text)
                problems.append(
                    Problem(
                        "NONSTANDARD_ESCAPES",
                        f"{repaired} control character(s) written as Telegram Desktop's"
                        " '\\xNN' (not JSON) were read as '\\u00NN'",
                        where,
                    )
                )
                continue
            raise ChatExportError(
                f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        except (ValueError, RecursionError) as exc:
            raise ChatExportError(f"{where} is not usable JSON ({exc})") from None
    raise AssertionError("unreachable")


def _repair_escapes(text: str) -> tuple[str, int]:
    count = 0

    def one(match: re.Match[str]) -> str:
        nonlocal count
        body = match.group(1)
        if len(body) == 3:
            count += 1
            return "\\u00" + body[1:]
        return match.group(0)

    return _TDESKTOP_ESCAPE.sub(one, text), count


class _Reader:
    def __init__(self, root: FolderRoot, where: str) -> None:
        self.root = root
        self.where = where
        self.problems: list[Problem] = []
        self.media: list[TelegramMedia] = []
        self.offsets: set[int] = set()
        self._measured: dict[str, tuple[ExportFile | None, str | None]] = {}

    def note(self, code: str, message: str, where: str) -> None:
        self.problems.append(Problem(code, message, where))

    # --- typed access: a wrong type is a named problem and the field counts as absent ---

    def text_field(self, obj: dict[str, object], key: str, where: str) -> str | None:
        value = obj.get(key)
        if value is None or isinstance(value, str):
            return value
        self.note("FIELD_WRONG_TYPE", f"{key!r} should be a string", where)
        return None

    def int_field(self, obj: dict[str, object], key: str, where: str) -> int | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.note("FIELD_WRONG_TYPE", f"{key!r} should be a whole number", where)
        return None

    def time(self, obj: dict[str, object], key: str, where: str) -> TelegramTime | None:
        if key not in obj and f"{key}_unixtime" not in obj:
            return None
        written = self.text_field(obj, key, where)
        raw_unix = obj.get(f"{key}_unixtime")
        unix_written: str | None
        if raw_unix is None:
            unix_written = None
        elif isinstance(raw_unix, str) and _UNIX.fullmatch(raw_unix):
            unix_written = raw_unix
        elif isinstance(raw_unix, int) and not isinstance(raw_unix, bool):
            unix_written = str(raw_unix)
        else:
            self.note("FIELD_WRONG_TYPE", f"'{key}_unixtime' should be a decimal string", where)
            unix_written = None
        local = None
        if written is not None:
            m = _LOCAL.fullmatch(written)
            if m:
                try:
                    y, mo, d, h, mi, sec = (int(g) for g in m.groups())
                    local = datetime(y, mo, d, h, mi, sec)
                except ValueError:
                    local = None
            if local is None:
                self.note("TIME_UNREADABLE", f"{key!r} is not YYYY-MM-DDTHH:MM:SS", where)
        utc = None
        if unix_written is not None:
            try:
                utc = datetime.fromtimestamp(int(unix_written), UTC)
            except (OverflowError, OSError, ValueError):
                self.note("TIME_UNREADABLE", f"'{key}_unixtime' is out of range", where)
        offset = None
        if local is None or utc is None:
            note = (
                "no UTC offset: the export has no date_unixtime (Telegram Desktop added it"
                " in June 2022); the time is the exporting computer's local time"
                if unix_written is None
                else "no UTC offset: the local time could not be read"
            )
        else:
            seconds = (local - utc.replace(tzinfo=None)).total_seconds()
            if seconds % 60 or abs(seconds) > _MAX_OFFSET_MINUTES * 60:
                note = (
                    f"no UTC offset: {key!r} and '{key}_unixtime' differ by {seconds:+.0f} s,"
                    " which is no time zone's offset"
                )
                self.note("OFFSET_IMPLAUSIBLE", note, where)
            else:
                offset = int(seconds // 60)
                note = (
                    f"UTC{_format_offset(offset)}: the exporting computer's offset at that"
                    f" moment ({key!r} minus '{key}_unixtime'), not necessarily the sender's"
                )
                if key == "date":
                    self.offsets.add(offset)
        return TelegramTime(written, unix_written, local, utc, offset, note)

    # --- media -------------------------------------------------------------------------

    def measure(self, path: str) -> tuple[ExportFile | None, str | None]:
        if path not in self._measured:
            self._measured[path] = self.root.hash_file(path)
        return self._measured[path]

    def media_value(
        self,
        value: str,
        *,
        origin: Literal["message", "profile_picture", "story"],
        chat_index: int | None,
        message_id: int | None,
        field: str,
        declared: int | None,
        extra: dict[str, str | None],
        where: str,
    ) -> None:
        status: MediaState
        reason: str | None = None
        measured: ExportFile | None = None
        if value in PLACEHOLDERS:
            status, reason = "missing", PLACEHOLDERS[value]
        elif value.startswith("(") and value.endswith(")") and "/" not in value:
            status, reason = "missing", f"not downloaded: {value}"
            self.note("PLACEHOLDER_UNKNOWN", "a placeholder this reader does not know", where)
        elif (unsafe := unsafe_name_reason(value)) is not None:
            status, reason = "unsafe", unsafe
            self.note(
                "MEDIA_PATH_UNSAFE",
                f"the JSON names a file outside the export or no file at all: {unsafe}",
                f"{where}: {value!a}",
            )
        else:
            measured, why = self.measure(value)
            if measured is not None:
                status = "present"
                if declared is not None and declared != measured.size:
                    self.note(
                        "SIZE_DIFFERS",
                        f"the JSON says {declared} bytes, the file holds {measured.size}",
                        f"{where}: {value}",
                    )
            elif why == "missing":
                status, reason = "missing", "named in the JSON but not in the folder"
            else:
                status, reason = "unsafe", why
                self.note("MEDIA_PATH_UNSAFE", why or "", f"{where}: {value}")
        self.media.append(
            TelegramMedia(
                origin=origin,
                chat_index=chat_index,
                message_id=message_id,
                field=field,
                value_as_written=value,
                status=status,
                missing_reason=reason,
                file=measured,
                declared_size=declared,
                file_name=extra.get("file_name"),
                media_type=extra.get("media_type"),
                mime_type=extra.get("mime_type"),
            )
        )

    # --- messages ----------------------------------------------------------------------

    def chat(
        self, raw: object, index: int, listed_in: Literal["single", "chats", "left_chats"]
    ) -> TelegramChat | None:
        where = f"chat #{index + 1}"
        if not isinstance(raw, dict):
            self.note("CHAT_NOT_AN_OBJECT", "a chat entry is not an object; skipped", where)
            return None
        name = self.text_field(raw, "name", where)
        chat_id = self.int_field(raw, "id", where)
        where = f"chat {name!r}" if name else where
        messages = raw.get("messages")
        if not isinstance(messages, list):
            self.note("MESSAGES_NOT_A_LIST", "'messages' is missing or not a list", where)
            messages = []
        read: list[TelegramMessage] = []
        seen: set[int] = set()
        for position, item in enumerate(messages):
            msg = self.message(item, index, f"{where}, message #{position + 1}")
            if msg is None:
                continue
            if msg.message_id in seen:
                self.note("MESSAGE_ID_REPEATED", "two messages share an id", where)
            seen.add(msg.message_id)
            read.append(msg)
        return TelegramChat(
            index=index,
            listed_in=listed_in,
            name=name,
            type=self.text_field(raw, "type", where),
            id=chat_id,
            messages=tuple(read),
        )

    def message(self, raw: object, chat_index: int, where: str) -> TelegramMessage | None:
        if not isinstance(raw, dict):
            self.note("MESSAGE_NOT_AN_OBJECT", "a message is not an object; skipped", where)
            return None
        message_id = self.int_field(raw, "id", where)
        if message_id is None:
            self.note("MESSAGE_WITHOUT_ID", "a message has no usable 'id'; skipped", where)
            return None
        where = f"{where.rsplit(', ', 1)[0]}, message id {message_id}"
        time = self.time(raw, "date", where) or TelegramTime(
            None, None, None, None, None, "no date in the export"
        )
        text, text_json = self.flatten(raw.get("text", ""), where)
        entities = raw.get("text_entities")
        if entities is not None:
            entity_text, _ = self.flatten(entities, where)
            if isinstance(entities, list) and entity_text != text:
                self.note(
                    "TEXT_ENTITIES_DIFFER",
                    "'text' and 'text_entities' do not spell the same text",
                    where,
                )
        message = TelegramMessage(
            chat_index=chat_index,
            message_id=message_id,
            kind=self.text_field(raw, "type", where) or "message",
            time=time,
            edited=self.time(raw, "edited", where),
            from_name=self.text_field(raw, "from", where),
            from_id=self.text_field(raw, "from_id", where),
            author_signature=self.text_field(raw, "author", where),
            actor=self.text_field(raw, "actor", where),
            actor_id=self.text_field(raw, "actor_id", where),
            action=self.text_field(raw, "action", where),
            forwarded="forwarded_from" in raw,
            forwarded_from=self.text_field(raw, "forwarded_from", where),
            saved_from=self.text_field(raw, "saved_from", where),
            reply_to_message_id=self.int_field(raw, "reply_to_message_id", where),
            text=text,
            text_raw_json=text_json,
            text_entities_raw_json=(
                None if entities is None else json.dumps(entities, ensure_ascii=False)
            ),
        )
        for key, size_key in MEDIA_FIELDS:
            if key not in raw:
                continue
            value = self.text_field(raw, key, where)
            if not value:
                self.note("MEDIA_VALUE_EMPTY", f"{key!r} names nothing", where)
                continue
            self.media_value(
                value,
                origin="message",
                chat_index=chat_index,
                message_id=message_id,
                field=key,
                declared=self.int_field(raw, size_key, where),
                extra={
                    "file_name": self.text_field(raw, "file_name", where)
                    if key == "file"
                    else None,
                    "media_type": (
                        self.text_field(raw, "media_type", where) if key != "photo" else None
                    ),
                    "mime_type": self.text_field(raw, "mime_type", where)
                    if key == "file"
                    else None,
                },
                where=where,
            )
        return message

    def flatten(self, value: object, where: str) -> tuple[str, str]:
        """Telegram's text: a string, or an array of strings and entity objects whose
        ``text`` parts, in order, are the message (entities only mark them up)."""
        raw = json.dumps(value, ensure_ascii=False)
        if isinstance(value, str):
            return value, raw
        if not isinstance(value, list):
            self.note("FIELD_WRONG_TYPE", "'text' should be a string or a list", where)
            return "", raw
        parts: list[str] = []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(str(part["text"]))
            else:
                self.note(
                    "FIELD_WRONG_TYPE", "a text part is neither a string nor an entity", where
                )
        return "".join(parts), raw

    def account_media(self, top: dict[str, object]) -> None:
        lists: tuple[tuple[str, str, Literal["profile_picture", "story"]], ...] = (
            ("profile_pictures", "photo", "profile_picture"),
            ("stories", "media", "story"),
        )
        for key, field, origin in lists:
            items = top.get(key)
            if items is None:
                continue
            if not isinstance(items, list):
                self.note("FIELD_WRONG_TYPE", f"{key!r} should be a list", key)
                continue
            for position, item in enumerate(items):
                where = f"{key} #{position + 1}"
                if not isinstance(item, dict):
                    self.note("FIELD_WRONG_TYPE", "an entry is not an object", where)
                    continue
                value = self.text_field(item, field, where)
                if value:
                    self.media_value(
                        value,
                        origin=origin,
                        chat_index=None,
                        message_id=None,
                        field=field,
                        declared=None,
                        extra={},
                        where=where,
                    )


def _format_offset(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def read_telegram_export(
    path: str | os.PathLike[str], *, limits: TelegramLimits | None = None
) -> TelegramExport:
    """Read a Telegram Desktop JSON export: its folder, or the ``result.json`` in it.

    Raises ``ChatExportError`` (an ``InputError``) when the export cannot be read as one;
    everything else odd becomes a ``Problem`` in the result.
    """
    limits = limits or TelegramLimits()
    given = Path(path)
    try:
        st = os.lstat(given)
    except OSError as exc:
        raise ChatExportError(f"cannot read {given}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise ChatExportError(f"{given} is a symbolic link; give the export itself")
    if stat.S_ISDIR(st.st_mode):
        folder, json_name = given, RESULT_JSON
    elif stat.S_ISREG(st.st_mode) and given.suffix.lower() == ".json":
        folder, json_name = given.parent, given.name
    else:
        raise ChatExportError(
            f"{given} is not a Telegram Desktop export: give its folder or its result.json"
        )
    with FolderRoot(folder) as root:
        fd, why = root.open_file(json_name)
        if fd is None:
            if why == "missing":
                html_fd, _ = root.open_file("messages.html")
                if html_fd is not None:
                    os.close(html_fd)
                raise ChatExportError(
                    f"no {json_name} in {folder}"
                    + (
                        ": this is an HTML export; export again choosing 'Machine-readable JSON'"
                        if html_fd is not None
                        else ""
                    )
                )
            raise ChatExportError(f"cannot read {json_name} in {folder}: {why}")
        os.close(fd)
        data = root.read_bytes(json_name, limits.max_json_bytes)
        # The digest is of the very bytes parsed below, so it describes what was read.
        measured = ExportFile(json_name, len(data), hashlib.sha256(data).hexdigest())
        return _read(root, folder, json_name, data, measured, limits)


def _read(
    root: FolderRoot,
    folder: Path,
    json_name: str,
    data: bytes,
    measured: ExportFile,
    limits: TelegramLimits,
) -> TelegramExport:
    reader = _Reader(root, json_name)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        reader.note("BYTE_ORDER_MARK", "the JSON begins with a UTF-8 byte order mark", json_name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ChatExportError(
            f"{json_name} in {folder} is not UTF-8 (byte offset {exc.start}); Telegram"
            " Desktop writes UTF-8"
        ) from None
    top, repaired, more = _parse_json(text, json_name)
    reader.problems += more
    if not isinstance(top, dict):
        raise ChatExportError(
            f"{json_name} in {folder} holds a JSON {type(top).__name__}, not the object"
            " Telegram Desktop writes"
        )
    chats: list[TelegramChat] = []
    form: Literal["single_chat", "full_account"]
    if "messages" in top:
        form = "single_chat"
        chat = reader.chat(top, 0, "single")
        if chat is not None:
            chats.append(chat)
    elif "chats" in top or "left_chats" in top:
        form = "full_account"
        for key in ("chats", "left_chats"):
            block = top.get(key)
            if block is None:
                continue
            listing = block.get("list") if isinstance(block, dict) else None
            if not isinstance(listing, list):
                reader.note("FIELD_WRONG_TYPE", f"'{key}' should hold a 'list'", key)
                continue
            for raw in listing:
                chat = reader.chat(raw, len(chats), key)
                if chat is not None:
                    chats.append(chat)
        reader.account_media(top)
    else:
        raise ChatExportError(
            f"{json_name} in {folder} has neither 'messages' nor 'chats': not a Telegram"
            " Desktop export"
        )
    names, walk_problems = root.walk(recursive=True, max_entries=limits.max_folder_entries)
    reader.problems += walk_problems
    referenced = {m.file.path for m in reader.media if m.file is not None}
    support = tuple(n for n in names if n.endswith(".html") or n.startswith(_SUPPORT_FOLDERS))
    unreferenced: list[ExportFile] = []
    for name in names:
        if name == json_name or name in referenced or name in support:
            continue
        found, why = reader.measure(name)
        if found is None:
            reader.note("UNREADABLE_FILE", f"not measured: {why}", name)
        else:
            unreferenced.append(found)
    return TelegramExport(
        root=os.fspath(folder),
        result_json=measured,
        form=form,
        chats=tuple(chats),
        media=tuple(reader.media),
        unreferenced_files=tuple(unreferenced),
        support_files=support,
        offsets_seen=tuple(sorted(reader.offsets)),
        problems=tuple(reader.problems),
        escapes_repaired=repaired,
    )
