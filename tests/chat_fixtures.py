"""Builders for realistic chat exports, made at test time from real media.

The media are real files from the corpus (``../shared/corpus``) or the shipped samples,
copied under the names a phone gives them. The chat texts follow the layouts of real
exports (see the docstrings of ``custody.acquisition.sources.whatsapp`` and ``telegram``);
the Telegram dates are produced by the system's own ``date`` program in a given time zone,
as Telegram Desktop's ``QDateTime::toString(Qt::ISODate)`` produces them - not by custody.
Every fixture is named after what it holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import media_source

NNBSP = "\u202f"  # narrow no-break space before AM/PM (Pustur/whatsapp-chat-parser #248)
RLM = "\u200f"
LRM = "\u200e"
LRE, PDF = "\u202a", "\u202c"


def media(name: str) -> Path:
    """A real media file from the corpus or samples, found by its file name."""
    wanted = unicodedata.normalize("NFC", name)
    for folder, _dirs, files in os.walk(media_source()):
        for found in files:
            if unicodedata.normalize("NFC", found) == wanted:
                return Path(folder) / found
    raise FileNotFoundError(name)


PHOTO = "IMG-20240312-WA0001.jpg"  # a WhatsApp image as received on Android
PHOTO_2 = "تضامن 01.jpg"
PHOTO_NFD = "أدلة 02.jpg"  # stored in NFD in the corpus
VIDEO = "VID_20201023_202729.mp4"
VOICE = "PTT-20240312-WA0005.opus"
REPORT = "تقرير أولي.pdf"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def put(folder: Path, name: str, source: str) -> Path:
    target = folder / name
    shutil.copyfile(media(source), target)
    return target


# --- WhatsApp -----------------------------------------------------------------------------


def _android_line(date: str, time: str, rest: str) -> str:
    clock, half = time.split(" ")
    return f"{date}, {clock}{NNBSP}{half} - {rest}"


ANDROID_NAME = "Abu Khalil"
ANDROID_CHAT = (
    "\n".join(
        [
            _android_line(
                "12/29/23",
                "8:02 PM",
                "Messages and calls are end-to-end encrypted. No one outside of this chat, not"
                " even WhatsApp, can read or listen to them. Tap to learn more.",
            ),
            _android_line("12/29/23", "8:02 PM", "Abu Khalil: We reached the checkpoint at 7:40."),
            "The soldiers were already there.",
            "Three trucks, no plates.",
            _android_line(
                "12/31/23", "9:41 PM", "Abu Khalil: IMG-20231231-WA0003.jpg (file attached)"
            ),
            "North gate, taken from the roof",
            _android_line(
                "12/31/23", "9:43 PM", "Abu Khalil: VID-20231231-WA0004.mp4 (file attached)"
            ),
            _android_line("12/31/23", "9:50 PM", "Rana Haddad: This message was deleted"),
            _android_line(
                "1/1/24", "12:05 AM", "Rana Haddad: PTT-20240101-WA0005.opus (file attached)"
            ),
            _android_line(
                "1/1/24", "12:07 AM", "Abu Khalil: IMG-20240101-WA0006.jpg (file attached)"
            ),
            _android_line("1/1/24", "12:10 AM", f"Abu Khalil: {REPORT} (file attached)"),
            _android_line("1/1/24", "12:11 AM", f"Abu Khalil: {PHOTO_NFD} (file attached)"),
            _android_line("1/1/24", "12:15 AM", "Rana Haddad: <Media omitted>"),
            _android_line("1/1/24", "12:20 PM", "Rana Haddad: Received, thanks"),
        ]
    )
    + "\n"
)


@dataclass(frozen=True)
class Built:
    path: Path  # what is handed to the reader
    files: dict[str, Path]  # name in the export -> the file written


def android_export(tmp: Path) -> Built:
    """Android, English, 12-hour clock, month/day/year, sent as separate files.

    Holds: a multi-line message, a photo with a caption, a video, a voice note, a deleted
    message, an attachment not in the export (IMG-20240101-WA0006.jpg), a document with
    an Arabic name, a photo whose name the folder stores in NFD, "<Media omitted>", and a
    photo no message names.
    """
    folder = tmp / f"WhatsApp Chat with {ANDROID_NAME}"
    folder.mkdir()
    chat = folder / f"WhatsApp Chat with {ANDROID_NAME}.txt"
    chat.write_text(ANDROID_CHAT, encoding="utf-8")
    files = {chat.name: chat}
    for name, source in (
        ("IMG-20231231-WA0003.jpg", PHOTO),
        ("VID-20231231-WA0004.mp4", VIDEO),
        ("PTT-20240101-WA0005.opus", VOICE),
        (REPORT, REPORT),
        (unicodedata.normalize("NFD", PHOTO_NFD), PHOTO_NFD),
        ("IMG-20231230-WA0001.jpg", PHOTO_2),
    ):
        files[name] = put(folder, name, source)
    return Built(folder, files)


def _ios_line(day: str, clock: str, rest: str, generated: bool = False) -> str:
    d, m, y = day.split("/")
    head = f"[{RLM}{d}{RLM}/{m}{RLM}/{y}\u060c {clock}] {rest}"
    return (RLM + head) if generated else head


IOS_GROUP = "لجنة التوثيق"
IOS_PHONE = f"{LRE}+963\u00a0944\u00a0123\u00a0456{PDF}"
IOS_CHAT = (
    "\r\n".join(
        [
            _ios_line(
                "29/12/2023",
                "20:02:11",
                f"{IOS_GROUP}: {RLM}الرسائل والمكالمات مشفرة تمامًا بين الطرفين، بحيث لا يستطيع"
                " أحد خارج هذه الدردشة، ولا حتى شركة واتساب نفسها، قراءتها أو الاستماع إليها.",
            ),
            _ios_line("31/12/2023", "21:40:00", "أبو خليل: وصلنا إلى الحاجز"),
            "كان الجنود هناك قبلنا",
            "ثلاث شاحنات بلا لوحات",
            _ios_line(
                "31/12/2023",
                "21:41:05",
                f"أبو خليل: {RLM}<المُرفق: 00000012-PHOTO-2023-12-31-21-41-05.jpg>",
                True,
            ),
            _ios_line(
                "31/12/2023",
                "21:43:20",
                f"أبو خليل: {RLM}<المُرفق: 00000013-VIDEO-2023-12-31-21-43-20.mp4>",
                True,
            ),
            _ios_line("31/12/2023", "21:50:00", f"رنا حداد: {RLM}تم حذف هذه الرسالة.", True),
            _ios_line(
                "1/1/2024",
                "00:05:12",
                f"رنا حداد: {RLM}<المُرفق: 00000015-AUDIO-2024-01-01-00-05-12.opus>",
                True,
            ),
            _ios_line(
                "1/1/2024",
                "00:07:30",
                f"أبو خليل: {RLM}<المُرفق: 00000016-PHOTO-2024-01-01-00-07-30.jpg>",
                True,
            ),
            _ios_line(
                "1/1/2024",
                "00:10:02",
                f"أبو خليل: {REPORT} • {RLM}3 صفحات {RLM}<المُرفق: 00000017-{REPORT}>",
                True,
            ),
            _ios_line("1/1/2024", "00:12:00", f"{IOS_PHONE}: {RLM}لم يتم إدراج الصورة", True),
            _ios_line("1/1/2024", "12:20:45", "رنا حداد: شكراً، وصلت"),
        ]
    )
    + "\r\n"
)

IOS_MEDIA = (
    ("00000012-PHOTO-2023-12-31-21-41-05.jpg", PHOTO),
    ("00000013-VIDEO-2023-12-31-21-43-20.mp4", VIDEO),
    ("00000015-AUDIO-2024-01-01-00-05-12.opus", VOICE),
    (f"00000017-{REPORT}", REPORT),
)


def ios_export_zip(tmp: Path) -> Built:
    """iOS, Arabic, 24-hour clock, day/month/year with RLM marks, as iOS shares it: one
    ZIP named after the chat, holding ``_chat.txt`` and the media."""
    archive = tmp / f"WhatsApp Chat - {IOS_GROUP}.zip"
    files: dict[str, Path] = {}
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("_chat.txt", IOS_CHAT.encode("utf-8"))
        for name, source in IOS_MEDIA:
            zf.write(media(source), name)
            files[name] = media(source)
    return Built(archive, files)


def ios_export_folder(tmp: Path) -> Built:
    folder = tmp / f"WhatsApp Chat - {IOS_GROUP}"
    folder.mkdir()
    chat = folder / "_chat.txt"
    chat.write_bytes(IOS_CHAT.encode("utf-8"))
    files = {chat.name: chat}
    for name, source in IOS_MEDIA:
        files[name] = put(folder, name, source)
    return Built(folder, files)


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for item in sorted(folder.iterdir()):
            zf.write(item, item.name)
    return archive


# --- Telegram -----------------------------------------------------------------------------


def local_iso(unixtime: int, zone: str) -> str:
    """What Telegram Desktop writes as "date" on a computer set to ``zone``, computed by
    the system's ``date`` program (an implementation independent of custody)."""
    out = subprocess.run(
        ["date", "-d", f"@{unixtime}", "+%Y-%m-%dT%H:%M:%S"],
        env={"PATH": "/usr/bin:/bin", "TZ": zone, "LC_ALL": "C"},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def stamp(unixtime: int, zone: str) -> dict[str, str]:
    return {"date": local_iso(unixtime, zone), "date_unixtime": str(unixtime)}


CHANNEL_ID = 1987654321
CHANNEL = "شبكة الرصد الميداني"
ZONE = "Asia/Damascus"


def telegram_channel_export(tmp: Path) -> tuple[Path, dict[str, Any]]:
    """A public channel's single-chat export: posts signed by authors, a photo, a video
    with its thumbnail, a forwarded post, a file the export did not download, and Arabic
    text with entities (bold, hashtag, link, mention)."""
    root = tmp / "ChatExport_2024-01-02"
    for sub in ("photos", "video_files", "files"):
        (root / sub).mkdir(parents=True)
    t0 = 1704051665  # 2023-12-31T19:41:05Z
    shutil.copyfile(media(PHOTO), root / "photos" / "photo_1@31-12-2023_22-41-05.jpg")
    shutil.copyfile(media(VIDEO), root / "video_files" / "VID_20231231.mp4")
    shutil.copyfile(media(PHOTO_2), root / "video_files" / "VID_20231231.mp4_thumb.jpg")
    entities_text = [
        {"type": "bold", "text": "عاجل:"},
        " قصف على ",
        {"type": "hashtag", "text": "#حلب"},
        " الآن — المصدر ",
        {"type": "text_link", "text": "هنا", "href": "https://example.org/r/1"},
        " عبر ",
        {"type": "mention", "text": "@field_monitor"},
    ]
    as_objects = [p if isinstance(p, dict) else {"type": "plain", "text": p} for p in entities_text]
    channel_from = {"from": CHANNEL, "from_id": f"channel{CHANNEL_ID}"}
    document = {
        "name": CHANNEL,
        "type": "public_channel",
        "id": CHANNEL_ID,
        "messages": [
            {
                "id": 1,
                "type": "service",
                **stamp(t0 - 86400 * 30, ZONE),
                "actor": CHANNEL,
                "actor_id": f"channel{CHANNEL_ID}",
                "action": "create_channel",
                "title": CHANNEL,
                "text": "",
                "text_entities": [],
            },
            {
                "id": 41,
                "type": "message",
                **stamp(t0, ZONE),
                **channel_from,
                "author": "سارة",
                "photo": "photos/photo_1@31-12-2023_22-41-05.jpg",
                "photo_file_size": (root / "photos/photo_1@31-12-2023_22-41-05.jpg").stat().st_size,
                "width": 640,
                "height": 480,
                "text": entities_text,
                "text_entities": as_objects,
            },
            {
                "id": 42,
                "type": "message",
                **stamp(t0 + 140, ZONE),
                "edited": local_iso(t0 + 600, ZONE),
                "edited_unixtime": str(t0 + 600),
                **channel_from,
                "author": "سارة",
                "file": "video_files/VID_20231231.mp4",
                "file_name": "VID_20231231.mp4",
                "file_size": (root / "video_files/VID_20231231.mp4").stat().st_size,
                "thumbnail": "video_files/VID_20231231.mp4_thumb.jpg",
                "thumbnail_file_size": (root / "video_files/VID_20231231.mp4_thumb.jpg")
                .stat()
                .st_size,
                "media_type": "video_file",
                "mime_type": "video/mp4",
                "duration_seconds": 12,
                "width": 1920,
                "height": 1080,
                "text": "فيديو من الموقع",
                "text_entities": [{"type": "plain", "text": "فيديو من الموقع"}],
            },
            {
                "id": 43,
                "type": "message",
                **stamp(t0 + 3600, ZONE),
                **channel_from,
                "forwarded_from": "Aleppo Media Center",
                "file": "(File not included. Change data exporting settings to download.)",
                "file_name": "IMG_4411.MOV",
                "file_size": 734003200,
                "media_type": "video_file",
                "mime_type": "video/quicktime",
                "text": "",
                "text_entities": [],
            },
        ],
    }
    (root / "result.json").write_text(
        json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return root, document


PRIVATE_ZONE = "Europe/Berlin"


def telegram_private_export(tmp: Path) -> tuple[Path, dict[str, Any]]:
    """A personal chat across the March 2024 change to summer time in Berlin: a voice
    message, a forwarded photo (its origin's name written as null), a photo named in the
    JSON but absent from the folder, a forwarded video too large for the export's settings
    (with Arabic text in entities), a sticker with its thumbnail, a phone call, and a photo
    file nothing names."""
    root = tmp / "ChatExport_2024-04-01"
    for sub in ("photos", "voice_messages", "stickers"):
        (root / sub).mkdir(parents=True)
    before = 1711843200 - 3600  # 2024-03-30T23:00:00Z, winter time (+01:00)
    after = 1711843200 + 86400  # 2024-03-31T23:00:00Z, summer time (+02:00)
    shutil.copyfile(media(VOICE), root / "voice_messages" / "audio_1@31-03-2024_00-00-00.ogg")
    shutil.copyfile(media(PHOTO_2), root / "photos" / "photo_2@01-04-2024_01-00-00.jpg")
    shutil.copyfile(media(PHOTO), root / "photos" / "photo_9@01-04-2024_02-00-00.jpg")
    shutil.copyfile(media(PHOTO_2), root / "stickers" / "sticker.webp")
    shutil.copyfile(media(PHOTO), root / "stickers" / "sticker.webp_thumb.jpg")
    rami = {"from": "Rami", "from_id": "user5550001"}
    document = {
        "name": "Rami",
        "type": "personal_chat",
        "id": 5550001,
        "messages": [
            {
                "id": 100,
                "type": "message",
                **stamp(before, PRIVATE_ZONE),
                **rami,
                "file": "voice_messages/audio_1@31-03-2024_00-00-00.ogg",
                "file_size": (root / "voice_messages/audio_1@31-03-2024_00-00-00.ogg")
                .stat()
                .st_size,
                "media_type": "voice_message",
                "mime_type": "audio/ogg",
                "duration_seconds": 7,
                "text": "",
                "text_entities": [],
            },
            {
                "id": 101,
                "type": "message",
                **stamp(after, PRIVATE_ZONE),
                **rami,
                "forwarded_from": None,
                "photo": "photos/photo_2@01-04-2024_01-00-00.jpg",
                "photo_file_size": 1,  # deliberately wrong: the file holds more
                "width": 800,
                "height": 600,
                "text": "from the other group",
                "text_entities": [{"type": "plain", "text": "from the other group"}],
            },
            {
                "id": 102,
                "type": "message",
                **stamp(after + 60, PRIVATE_ZONE),
                "from": "Me",
                "from_id": "user777",
                "photo": "photos/photo_3@01-04-2024_01-01-00.jpg",
                "photo_file_size": 51234,
                "text": "",
                "text_entities": [],
            },
            {
                "id": 104,
                "type": "message",
                **stamp(after + 90, PRIVATE_ZONE),
                **rami,
                "forwarded_from": "Syrian Archive",
                "file": "(File exceeds maximum size. Change data exporting settings to download.)",
                "file_name": "raqqa_drone.mp4",
                "file_size": 2147483000,
                "media_type": "video_file",
                "mime_type": "video/mp4",
                "text": [
                    {"type": "bold", "text": "الرقة"},
                    " — ",
                    {"type": "italic", "text": "فيديو كامل"},
                ],
                "text_entities": [
                    {"type": "bold", "text": "الرقة"},
                    {"type": "plain", "text": " — "},
                    {"type": "italic", "text": "فيديو كامل"},
                ],
            },
            {
                "id": 105,
                "type": "message",
                **stamp(after + 95, PRIVATE_ZONE),
                **rami,
                "file": "stickers/sticker.webp",
                "file_size": (root / "stickers/sticker.webp").stat().st_size,
                "thumbnail": "stickers/sticker.webp_thumb.jpg",
                "media_type": "sticker",
                "sticker_emoji": "👍",
                "mime_type": "image/webp",
                "text": "",
                "text_entities": [],
            },
            {
                "id": 103,
                "type": "service",
                **stamp(after + 120, PRIVATE_ZONE),
                "actor": "Rami",
                "actor_id": "user5550001",
                "action": "phone_call",
                "duration_seconds": 65,
                "discard_reason": "hangup",
                "text": "",
                "text_entities": [],
            },
        ],
    }
    (root / "result.json").write_text(
        json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return root, document


def telegram_account_export(tmp: Path) -> tuple[Path, dict[str, Any]]:
    """A full-account export: "chats" → "list" with two chats in chats/chat_NN/ folders,
    a left channel, a profile picture, and a story whose photo was not downloaded."""
    root = tmp / "DataExport_2024-01-05"
    for sub in ("chats/chat_01/photos", "chats/chat_02/files", "profile_pictures"):
        (root / sub).mkdir(parents=True)
    shutil.copyfile(media(PHOTO), root / "chats/chat_01/photos/photo_1@02-01-2024_10-00-00.jpg")
    shutil.copyfile(media(REPORT), root / "chats/chat_02/files" / REPORT)
    shutil.copyfile(media(PHOTO_2), root / "profile_pictures/photo_1@01-01-2024_09-00-00.jpg")
    t = 1704186000  # 2024-01-02T09:00:00Z
    document = {
        "about": "Here is the data you requested.",
        "personal_information": {
            "user_id": 777,
            "first_name": "Me",
            "last_name": "",
            "phone_number": "+49 000 0000000",
        },
        "profile_pictures": [
            {**stamp(t - 86400, ZONE), "photo": "profile_pictures/photo_1@01-01-2024_09-00-00.jpg"}
        ],
        "stories": [
            {
                **stamp(t - 3600, ZONE),
                "pinned": False,
                "media": "(Photo not included. Change data exporting settings to download.)",
            }
        ],
        "chats": {
            "about": "This page lists all chats from this export.",
            "list": [
                {
                    "name": "Rami",
                    "type": "personal_chat",
                    "id": 5550001,
                    "messages": [
                        {
                            "id": 7,
                            "type": "message",
                            **stamp(t, ZONE),
                            "from": "Rami",
                            "from_id": "user5550001",
                            "photo": "chats/chat_01/photos/photo_1@02-01-2024_10-00-00.jpg",
                            "text": "صورة",
                            "text_entities": [{"type": "plain", "text": "صورة"}],
                        }
                    ],
                },
                {
                    "type": "saved_messages",
                    "id": 777,
                    "messages": [
                        {
                            "id": 8,
                            "type": "message",
                            **stamp(t + 60, ZONE),
                            "from": "Me",
                            "from_id": "user777",
                            "saved_from": "شبكة الرصد الميداني",
                            "file": f"chats/chat_02/files/{REPORT}",
                            "file_name": REPORT,
                            "mime_type": "application/pdf",
                            "text": "",
                            "text_entities": [],
                        }
                    ],
                },
            ],
        },
        "left_chats": {
            "about": "This page lists all supergroups and channels from this export that"
            " you've left.",
            "list": [{"name": "Old channel", "type": "public_channel", "id": 42, "messages": []}],
        },
    }
    (root / "result.json").write_text(
        json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return root, document
