"""``read_telegram_export``: ``result.json`` read strictly (duplicate keys refused, tdesktop's
``\\xNN`` escapes repaired and said so), every chat, message and media file walked, and
the export folder measured."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from custody.acquisition.sources.claims import (
    ChatExportError,
    ExportFile,
    FolderRoot,
    Problem,
    unsafe_name_reason,
)
from custody.acquisition.sources.said import Said, translated
from custody.acquisition.sources.telegram.model import (
    _LOCAL,
    _MAX_OFFSET_MINUTES,
    _SUPPORT_FOLDERS,
    _TDESKTOP_ESCAPE,
    _UNIX,
    MEDIA_FIELDS,
    PLACEHOLDERS,
    RESULT_JSON,
    MediaState,
    TelegramChat,
    TelegramExport,
    TelegramLimits,
    TelegramMedia,
    TelegramMessage,
    TelegramTime,
)
from custody.i18n import N_, _


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
    raise ValueError(_("{name} is not a JSON value").format(name=name))


def _parse_json(text: str, where: str) -> tuple[object, int, list[Problem]]:
    problems: list[Problem] = []
    repaired = 0
    for attempt in range(2):
        try:
            value = json.loads(text, object_pairs_hook=_object, parse_constant=_no_constant)
            return value, repaired, problems
        except _Duplicate as exc:
            raise ChatExportError(
                _(
                    "{name}: an object has the key {key} twice; Telegram Desktop never writes"
                    " that, and readers would disagree on its value"
                ).format(name=where, key=repr(exc.args[0]))
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
                        Said.ngettext(
                            "{n} control character written as Telegram Desktop's '\\xNN' (not"
                            " JSON) was read as '\\u00NN'",
                            "{n} control characters written as Telegram Desktop's '\\xNN' (not"
                            " JSON) were read as '\\u00NN'",
                            repaired,
                        ),
                        where,
                    )
                )
                continue
            raise ChatExportError(
                _("{name} is not valid JSON (line {line}, column {column}: {why})").format(
                    name=where, line=exc.lineno, column=exc.colno, why=exc.msg
                )
            ) from None
        except (ValueError, RecursionError) as exc:
            raise ChatExportError(
                _("{name} is not usable JSON ({why})").format(name=where, why=exc)
            ) from None
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

    def note(self, code: str, message: Said, where: str) -> None:
        self.problems.append(Problem(code, message, where))

    # --- typed access: a wrong type is a named problem and the field counts as absent ---

    def text_field(self, obj: dict[str, object], key: str, where: str) -> str | None:
        value = obj.get(key)
        if value is None or isinstance(value, str):
            return value
        self.note("FIELD_WRONG_TYPE", Said(N_("{key} should be a string"), key=repr(key)), where)
        return None

    def int_field(self, obj: dict[str, object], key: str, where: str) -> int | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.note(
            "FIELD_WRONG_TYPE", Said(N_("{key} should be a whole number"), key=repr(key)), where
        )
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
            self.note(
                "FIELD_WRONG_TYPE",
                Said(N_("{key} should be a decimal string"), key=repr(f"{key}_unixtime")),
                where,
            )
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
                self.note(
                    "TIME_UNREADABLE",
                    Said(N_("{key} is not YYYY-MM-DDTHH:MM:SS"), key=repr(key)),
                    where,
                )
        utc = None
        if unix_written is not None:
            try:
                utc = datetime.fromtimestamp(int(unix_written), UTC)
            except (OverflowError, OSError, ValueError):
                self.note(
                    "TIME_UNREADABLE",
                    Said(N_("{key} is out of range"), key=repr(f"{key}_unixtime")),
                    where,
                )
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
                note = Said(
                    N_(
                        "no UTC offset: {key} and {unix} differ by {seconds} s, which is no"
                        " time zone's offset"
                    ),
                    key=repr(key),
                    unix=repr(f"{key}_unixtime"),
                    seconds=f"{seconds:+.0f}",
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
            status, reason = "missing", Said(N_("not downloaded: {placeholder}"), placeholder=value)
            self.note(
                "PLACEHOLDER_UNKNOWN", Said(N_("a placeholder this reader does not know")), where
            )
        elif (unsafe := unsafe_name_reason(value)) is not None:
            status, reason = "unsafe", unsafe
            self.note(
                "MEDIA_PATH_UNSAFE",
                Said(
                    N_("the JSON names a file outside the export or no file at all: {why}"),
                    why=unsafe,
                ),
                Said(N_("{where}: {value}"), where=where, value=ascii(value)),
            )
        else:
            measured, why = self.measure(value)
            if measured is not None:
                status = "present"
                if declared is not None and declared != measured.size:
                    self.note(
                        "SIZE_DIFFERS",
                        Said(
                            N_("the JSON says {declared} bytes, the file holds {size}"),
                            declared=declared,
                            size=measured.size,
                        ),
                        Said(N_("{where}: {value}"), where=where, value=value),
                    )
            elif why == "missing":
                status, reason = "missing", Said(N_("named in the JSON but not in the folder"))
            else:
                status, reason = "unsafe", why
                self.note(
                    "MEDIA_PATH_UNSAFE",
                    why if isinstance(why, Said) else Said(why or ""),
                    Said(N_("{where}: {value}"), where=where, value=value),
                )
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
        where: str = Said(N_("chat #{n}"), n=index + 1)
        if not isinstance(raw, dict):
            self.note(
                "CHAT_NOT_AN_OBJECT", Said(N_("a chat entry is not an object; skipped")), where
            )
            return None
        name = self.text_field(raw, "name", where)
        chat_id = self.int_field(raw, "id", where)
        where = Said(N_("chat {name}"), name=repr(name)) if name else where
        messages = raw.get("messages")
        if not isinstance(messages, list):
            self.note("MESSAGES_NOT_A_LIST", Said(N_("'messages' is missing or not a list")), where)
            messages = []
        read: list[TelegramMessage] = []
        seen: set[int] = set()
        for position, item in enumerate(messages):
            msg = self.message(item, index, where, position + 1)
            if msg is None:
                continue
            if msg.message_id in seen:
                self.note("MESSAGE_ID_REPEATED", Said(N_("two messages share an id")), where)
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

    def message(
        self, raw: object, chat_index: int, chat: str, position: int
    ) -> TelegramMessage | None:
        where: str = Said(N_("{chat}, message #{n}"), chat=chat, n=position)
        if not isinstance(raw, dict):
            self.note(
                "MESSAGE_NOT_AN_OBJECT", Said(N_("a message is not an object; skipped")), where
            )
            return None
        message_id = self.int_field(raw, "id", where)
        if message_id is None:
            self.note(
                "MESSAGE_WITHOUT_ID", Said(N_("a message has no usable 'id'; skipped")), where
            )
            return None
        where = Said(N_("{chat}, message id {id}"), chat=chat, id=message_id)
        time = self.time(raw, "date", where) or TelegramTime(
            None, None, None, None, None, "no date in the export"
        )
        text, text_json = self.flatten(raw.get("text", ""), where)
        entities = raw.get("text_entities")
        if entities is not None:
            entity_text, _json = self.flatten(entities, where)
            if isinstance(entities, list) and entity_text != text:
                self.note(
                    "TEXT_ENTITIES_DIFFER",
                    Said(N_("'text' and 'text_entities' do not spell the same text")),
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
                self.note(
                    "MEDIA_VALUE_EMPTY", Said(N_("{key} names nothing"), key=repr(key)), where
                )
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
            self.note("FIELD_WRONG_TYPE", Said(N_("'text' should be a string or a list")), where)
            return "", raw
        parts: list[str] = []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(str(part["text"]))
            else:
                self.note(
                    "FIELD_WRONG_TYPE",
                    Said(N_("a text part is neither a string nor an entity")),
                    where,
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
                self.note(
                    "FIELD_WRONG_TYPE", Said(N_("{key} should be a list"), key=repr(key)), key
                )
                continue
            for position, item in enumerate(items):
                where = f"{key} #{position + 1}"
                if not isinstance(item, dict):
                    self.note("FIELD_WRONG_TYPE", Said(N_("an entry is not an object")), where)
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
        raise ChatExportError(
            _("cannot read {path}: {why}").format(path=given, why=exc.strerror)
        ) from None
    if stat.S_ISLNK(st.st_mode):
        raise ChatExportError(
            _("{path} is a symbolic link; give the export itself").format(path=given)
        )
    if stat.S_ISDIR(st.st_mode):
        folder, json_name = given, RESULT_JSON
    elif stat.S_ISREG(st.st_mode) and given.suffix.lower() == ".json":
        folder, json_name = given.parent, given.name
    else:
        raise ChatExportError(
            _("{path} is not a Telegram Desktop export: give its folder or its result.json").format(
                path=given
            )
        )
    with FolderRoot(folder) as root:
        fd, why = root.open_file(json_name)
        if fd is None:
            if why == "missing":
                html_fd, _why = root.open_file("messages.html")
                if html_fd is not None:
                    os.close(html_fd)
                    raise ChatExportError(
                        _(
                            "no {name} in {folder}: this is an HTML export; export again"
                            " choosing 'Machine-readable JSON'"
                        ).format(name=json_name, folder=folder)
                    )
                raise ChatExportError(
                    _("no {name} in {folder}").format(name=json_name, folder=folder)
                )
            raise ChatExportError(
                _("cannot read {name} in {folder}: {why}").format(
                    name=json_name, folder=folder, why=translated(why)
                )
            )
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
        reader.note(
            "BYTE_ORDER_MARK", Said(N_("the JSON begins with a UTF-8 byte order mark")), json_name
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ChatExportError(
            _(
                "{name} in {folder} is not UTF-8 (byte offset {offset}); Telegram Desktop"
                " writes UTF-8"
            ).format(name=json_name, folder=folder, offset=exc.start)
        ) from None
    top, repaired, more = _parse_json(text, json_name)
    reader.problems += more
    if not isinstance(top, dict):
        raise ChatExportError(
            _(
                "{name} in {folder} holds a JSON {type}, not the object Telegram Desktop writes"
            ).format(name=json_name, folder=folder, type=type(top).__name__)
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
                reader.note(
                    "FIELD_WRONG_TYPE", Said(N_("{key} should hold a 'list'"), key=repr(key)), key
                )
                continue
            for raw in listing:
                chat = reader.chat(raw, len(chats), key)
                if chat is not None:
                    chats.append(chat)
        reader.account_media(top)
    else:
        raise ChatExportError(
            _(
                "{name} in {folder} has neither 'messages' nor 'chats': not a Telegram Desktop"
                " export"
            ).format(name=json_name, folder=folder)
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
            reader.note("UNREADABLE_FILE", Said(N_("not measured: {why}"), why=why), name)
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
