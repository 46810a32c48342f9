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

May import: the standard library, ``custody.errors``, ``custody.i18n`` and the siblings
``claims`` and ``said``.

Layout: ``model`` (the result, tdesktop's field names) and ``reader``
(``read_telegram_export``).
"""

from __future__ import annotations

from custody.acquisition.sources.telegram.model import (
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
from custody.acquisition.sources.telegram.reader import (
    read_telegram_export,
)

__all__ = [
    "MEDIA_FIELDS",
    "PLACEHOLDERS",
    "RESULT_JSON",
    "MediaState",
    "TelegramChat",
    "TelegramExport",
    "TelegramLimits",
    "TelegramMedia",
    "TelegramMessage",
    "TelegramTime",
    "read_telegram_export",
]
