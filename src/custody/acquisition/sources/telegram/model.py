"""What reading a Telegram Desktop export returns: times as written and derived, messages,
chats, media, and ``TelegramExport.media_claims`` (the shared ``MediaClaim`` shape); the
field names and placeholders tdesktop writes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from custody.acquisition.sources.claims import (
    ExportFile,
    MediaClaim,
    Problem,
)
from custody.acquisition.sources.said import Said
from custody.i18n import N_

RESULT_JSON = "result.json"


MEDIA_FIELDS = (
    ("photo", "photo_file_size"),
    ("file", "file_size"),
    ("thumbnail", "thumbnail_file_size"),
    ("contact_vcard", "contact_vcard_file_size"),
)


# Why a medium is not in the export, by the placeholder tdesktop writes instead of its path
# (recorded in English, shown in the run's language).
_EXCLUDED = Said(N_("not downloaded: excluded by the export's settings"))
_TOO_LARGE = Said(N_("not downloaded: larger than the export's size limit"))
_UNAVAILABLE = Said(N_("not downloaded: unavailable at export"))
PLACEHOLDERS = {
    "(File not included. Change data exporting settings to download.)": _EXCLUDED,
    "(File exceeds maximum size. Change data exporting settings to download.)": _TOO_LARGE,
    "(File unavailable, please try again later)": _UNAVAILABLE,
    "(Photo not included. Change data exporting settings to download.)": _EXCLUDED,
    "(Photo exceeds maximum size. Change data exporting settings to download.)": _TOO_LARGE,
    "(Photo unavailable, please try again later)": _UNAVAILABLE,
}
# Where a medium that no message names comes from (its message_ref).
_ORIGINS = {"profile_picture": Said(N_("profile picture")), "story": Said(N_("story"))}
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
                        Said(N_("message id {id}"), id=media.message_id)
                        if media.message_id is not None
                        else _ORIGINS.get(media.origin, media.origin)
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
