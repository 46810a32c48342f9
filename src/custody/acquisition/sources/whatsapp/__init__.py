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

May import: the standard library, ``custody.errors``, ``custody.i18n`` and the siblings
``claims``/``safezip``/``said``.

Layout: ``formats`` (phrases, header layouts, normalising a line), ``model`` (the result),
``reader`` (``read_whatsapp_export``) and ``messages`` (lines to messages and attachments).
"""

from __future__ import annotations

from custody.acquisition.sources.whatsapp.formats import (
    ANDROID_ATTACHED,
    DELETED,
    EDITED_SUFFIXES,
    IOS_ATTACHED,
    IOS_CHAT_FILE,
    OMITTED,
    OMITTED_DOCUMENT,
    TIME_ZONE_NOTE,
    AttachmentStatus,
    DateOrder,
    MessageKind,
    Platform,
)
from custody.acquisition.sources.whatsapp.model import (
    ChatExport,
    ExportSource,
    ReadLimits,
    TimeReading,
    WhatsAppAttachment,
    WhatsAppMessage,
)
from custody.acquisition.sources.whatsapp.reader import (
    read_whatsapp_export,
)

__all__ = [
    "ANDROID_ATTACHED",
    "DELETED",
    "EDITED_SUFFIXES",
    "IOS_ATTACHED",
    "IOS_CHAT_FILE",
    "OMITTED",
    "OMITTED_DOCUMENT",
    "TIME_ZONE_NOTE",
    "AttachmentStatus",
    "ChatExport",
    "DateOrder",
    "ExportSource",
    "MessageKind",
    "Platform",
    "ReadLimits",
    "TimeReading",
    "WhatsAppAttachment",
    "WhatsAppMessage",
    "read_whatsapp_export",
]
