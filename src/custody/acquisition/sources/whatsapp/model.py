"""What reading a WhatsApp export returns: messages, attachments, the export itself, and
``ChatExport.media_claims`` (the shared ``MediaClaim`` shape)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from custody.acquisition.sources.claims import (
    ExportFile,
    MediaClaim,
    Problem,
    strip_bidi,
)
from custody.acquisition.sources.safezip import ZipLimits
from custody.acquisition.sources.said import Said
from custody.acquisition.sources.whatsapp.formats import (
    TIME_ZONE_NOTE,
    AttachmentStatus,
    DateOrder,
    MessageKind,
    Platform,
)
from custody.i18n import N_

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
                    else (att.note or Said(N_("the export does not contain this file"))),
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
                    reason=Said(N_("the chat says this media was left out of the export")),
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
            message_ref=Said(N_("line {line}"), line=msg.line),
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
