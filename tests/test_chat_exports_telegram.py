"""Telegram Desktop JSON exports: linking media to messages, offsets, missing files.

The fixtures' local times come from the system ``date`` program in a named zone, their
digests are checked with ``hashlib`` and their message and media counts with ``jq`` -
implementations independent of the reader under test.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chat_fixtures import (
    CHANNEL,
    CHANNEL_ID,
    REPORT,
    sha256,
    telegram_account_export,
    telegram_channel_export,
    telegram_private_export,
)
from custody.acquisition.sources.claims import ChatExportError
from custody.acquisition.sources.telegram import (
    TelegramExport,
    TelegramLimits,
    TelegramMedia,
    read_telegram_export,
)


def jq(expression: str, document: Path) -> str:
    out = subprocess.run(
        ["jq", "-r", expression, os.fspath(document)],
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def media_of(export: TelegramExport, message_id: int) -> list[TelegramMedia]:
    return [m for m in export.media if m.message_id == message_id]


def test_channel_export_links_media_to_posts(tmp_path: Path) -> None:
    root, _document = telegram_channel_export(tmp_path)
    export = read_telegram_export(root)
    assert export.form == "single_chat"
    [chat] = export.chats
    assert (chat.name, chat.type, chat.id) == (CHANNEL, "public_channel", CHANNEL_ID)
    assert len(chat.messages) == int(jq(".messages | length", root / "result.json"))
    assert export.result_json.sha256 == sha256(root / "result.json")

    post = export.message(0, 41)
    assert post is not None
    assert post.from_name == CHANNEL and post.from_id == f"channel{CHANNEL_ID}"
    assert post.author_signature == "سارة"
    # Entities flattened faithfully: every part's text, in order, nothing added.
    assert post.text == "عاجل: قصف على #حلب الآن — المصدر هنا عبر @field_monitor"
    assert json.loads(post.text_raw_json)[4] == {
        "type": "text_link",
        "text": "هنا",
        "href": "https://example.org/r/1",
    }
    assert post.text_entities_raw_json is not None
    assert post.time.as_written == jq(".messages[1].date", root / "result.json")
    assert post.time.utc == datetime(2023, 12, 31, 19, 41, 5, tzinfo=UTC)
    assert post.time.utc_offset_minutes == 180  # Damascus has kept +03:00 since 2022
    assert export.offsets_seen == (180,)

    [photo] = media_of(export, 41)
    assert photo.status == "present" and photo.field == "photo"
    assert photo.file is not None
    assert photo.file.sha256 == sha256(root / photo.file.path)
    assert photo.declared_size == photo.file.size

    video, thumb = media_of(export, 42)
    assert (video.field, video.media_type, video.mime_type) == ("file", "video_file", "video/mp4")
    assert (thumb.field, thumb.status) == ("thumbnail", "present")
    edited = export.message(0, 42)
    assert edited is not None and edited.edited is not None
    assert edited.edited.utc_offset_minutes == 180

    [skipped] = media_of(export, 43)
    assert skipped.status == "missing" and skipped.file is None
    assert skipped.missing_reason == "not downloaded: excluded by the export's settings"
    assert skipped.file_name == "IMG_4411.MOV" and skipped.declared_size == 734003200
    forwarded = export.message(0, 43)
    assert forwarded is not None and forwarded.forwarded_from == "Aleppo Media Center"
    assert export.missing == (skipped,)
    assert export.unreferenced_files == ()
    assert len(export.media) == int(
        jq(
            "[.messages[] | (.photo, .file, .thumbnail) | select(. != null)] | length",
            root / "result.json",
        )
    )


def test_channel_media_claims(tmp_path: Path) -> None:
    root, _ = telegram_channel_export(tmp_path)
    claims = read_telegram_export(root).media_claims()
    photo = claims[0]
    assert photo.platform == "telegram"
    assert photo.conversation == CHANNEL and photo.conversation_id == str(CHANNEL_ID)
    assert photo.message_ref == "message id 41" and photo.message_id == 41
    assert photo.sender == CHANNEL and photo.sender_id == f"channel{CHANNEL_ID}"
    assert photo.notes == ("signed 'سارة'",)
    assert photo.time_as_written == "2023-12-31T22:41:05"
    assert photo.time_readings == ("2023-12-31T22:41:05",)
    assert photo.utc_time == datetime(2023, 12, 31, 19, 41, 5, tzinfo=UTC)
    assert photo.utc_offset_minutes == 180
    assert "exporting computer" in photo.time_zone_note
    assert photo.as_dict()["utc_time"] == "2023-12-31T19:41:05Z"
    missing = claims[-1]
    assert missing.status == "missing" and missing.forwarded_from == "Aleppo Media Center"
    assert missing.media_name == "IMG_4411.MOV"


def test_private_chat_across_a_summer_time_change(tmp_path: Path) -> None:
    root, _ = telegram_private_export(tmp_path)
    export = read_telegram_export(root)
    assert export.offsets_seen == (60, 120)  # Berlin before and after 2024-03-31
    voice = export.message(0, 100)
    assert voice is not None and voice.time.utc_offset_minutes == 60
    [audio] = media_of(export, 100)
    assert audio.media_type == "voice_message" and audio.status == "present"

    forwarded = export.message(0, 101)
    assert forwarded is not None and forwarded.forwarded and forwarded.forwarded_from is None
    assert forwarded.time.utc_offset_minutes == 120
    codes = [p.code for p in export.problems]
    assert "SIZE_DIFFERS" in codes  # the JSON claims 1 byte; the file is the real photo

    [absent] = media_of(export, 102)
    assert absent.status == "missing"
    assert absent.missing_reason == "named in the JSON but not in the folder"

    big = export.message(0, 104)
    assert big is not None and big.forwarded_from == "Syrian Archive"
    assert big.text == "الرقة — فيديو كامل"
    [too_large] = media_of(export, 104)
    assert too_large.status == "missing" and too_large.file_name == "raqqa_drone.mp4"
    assert too_large.missing_reason == "not downloaded: larger than the export's size limit"
    sticker, sticker_thumb = media_of(export, 105)
    assert (sticker.media_type, sticker.status) == ("sticker", "present")
    assert (sticker_thumb.field, sticker_thumb.status) == ("thumbnail", "present")

    call = export.message(0, 103)
    assert call is not None and call.kind == "service"
    assert (call.actor, call.action) == ("Rami", "phone_call")

    assert [f.path for f in export.unreferenced_files] == ["photos/photo_9@01-04-2024_02-00-00.jpg"]
    claims = {c.message_id: c for c in export.media_claims()}
    assert "forwarded; the export writes the origin's name as null" in claims[101].notes
    assert any("the file holds" in n for n in claims[101].notes)


def test_full_account_export(tmp_path: Path) -> None:
    root, _ = telegram_account_export(tmp_path)
    export = read_telegram_export(root / "result.json")
    assert export.form == "full_account"
    assert [(c.name, c.type, c.listed_in) for c in export.chats] == [
        ("Rami", "personal_chat", "chats"),
        (None, "saved_messages", "chats"),
        ("Old channel", "public_channel", "left_chats"),
    ]
    saved = export.message(1, 8)
    assert saved is not None and saved.saved_from == "شبكة الرصد الميداني"
    paths = {m.path_in_export for m in export.media if m.status == "present"}
    assert paths == {
        "chats/chat_01/photos/photo_1@02-01-2024_10-00-00.jpg",
        f"chats/chat_02/files/{REPORT}",
        "profile_pictures/photo_1@01-01-2024_09-00-00.jpg",
    }
    profile = next(m for m in export.media if m.origin == "profile_picture")
    assert profile.chat_index is None and profile.message_id is None
    story = next(m for m in export.media if m.origin == "story")
    assert story.status == "missing" and story.field == "media"
    assert story.missing_reason == "not downloaded: excluded by the export's settings"
    assert export.unreferenced_files == ()
    assert (
        len(export.media)
        == int(
            jq(
                "[.chats.list[].messages[] | (.photo, .file) | select(. != null)] | length",
                root / "result.json",
            )
        )
        + 2  # the profile picture and the story
    )


def test_export_without_unixtime_says_the_offset_is_unknown(tmp_path: Path) -> None:
    root = tmp_path / "old"
    root.mkdir()
    document = {
        "name": "Old",
        "type": "personal_chat",
        "id": 1,
        "messages": [
            {
                "id": 1,
                "type": "message",
                "date": "2019-05-01T10:00:00",
                "from": "A",
                "from_id": "user1",
                "text": "hello",
            }
        ],
    }
    (root / "result.json").write_text(json.dumps(document), encoding="utf-8")
    export = read_telegram_export(root)
    time = export.chats[0].messages[0].time
    assert time.local_time == datetime(2019, 5, 1, 10, 0)
    assert time.utc is None and time.utc_offset_minutes is None
    assert "no date_unixtime" in time.note
    assert export.offsets_seen == ()


def test_date_and_unixtime_that_disagree_are_named(tmp_path: Path) -> None:
    root = tmp_path / "odd"
    root.mkdir()
    message = {
        "id": 1,
        "type": "message",
        "date": "2024-01-01T10:00:17",
        "date_unixtime": "1704103200",
        "text": "",
    }
    (root / "result.json").write_text(
        json.dumps({"name": "x", "type": "personal_chat", "id": 1, "messages": [message]})
    )
    export = read_telegram_export(root)
    assert export.chats[0].messages[0].time.utc_offset_minutes is None
    assert "OFFSET_IMPLAUSIBLE" in {p.code for p in export.problems}


def test_tdesktop_control_character_escapes_are_read_and_reported(tmp_path: Path) -> None:
    root = tmp_path / "esc"
    root.mkdir()
    # SerializeString writes U+000B as "\x0B" and keeps "\\x" for a literal backslash-x.
    raw = (
        '{"name": "x", "type": "personal_chat", "id": 1, "messages": [{"id": 1,'
        ' "type": "message", "date": "2024-01-01T10:00:00", "date_unixtime": "1704103200",'
        ' "text": "a\\x0Bb \\\\x0B c"}]}'
    )
    (root / "result.json").write_text(raw, encoding="utf-8")
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)  # strict JSON refuses it, as any other reader would
    export = read_telegram_export(root)
    assert export.escapes_repaired == 1
    assert export.chats[0].messages[0].text == "a\x0bb \\x0B c"
    assert "NONSTANDARD_ESCAPES" in {p.code for p in export.problems}
    assert export.result_json.sha256 == sha256(root / "result.json")  # of the bytes as given


# --- hostile inputs ------------------------------------------------------------------------


def write(root: Path, text: str) -> Path:
    root.mkdir(exist_ok=True)
    (root / "result.json").write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "holds a JSON list"),
        ('"chat"', "holds a JSON str"),
        ("{}", "neither 'messages' nor 'chats'"),
        ("{", "not valid JSON"),
        ('{"messages": [], "messages": []}', "the key 'messages' twice"),
        ('{"messages": [NaN]}', "not usable JSON"),
        ("[" * 100_000 + "]" * 100_000, "not usable JSON"),
    ],
)
def test_result_json_that_is_no_export(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ChatExportError, match=message):
        read_telegram_export(write(tmp_path / "x", text))


def test_wrong_types_are_named_problems(tmp_path: Path) -> None:
    document = {
        "name": 5,
        "type": "personal_chat",
        "id": "not a number",
        "messages": [
            "not an object",
            {"type": "message", "text": "no id"},
            {"id": "7", "type": "message"},
            {
                "id": 8,
                "type": "message",
                "date": 12,
                "date_unixtime": [1],
                "from": 3,
                "text": 9,
                "photo": 7,
                "photo_file_size": "big",
            },
            {
                "id": 9,
                "type": "message",
                "date": "2024-13-45T99:00:00",
                "date_unixtime": "99999999999999999999",
                "text": [1, {"type": "bold"}],
                "file": "",
            },
            {
                "id": 10,
                "type": "message",
                "date": "2024-01-01T10:00:00",
                "date_unixtime": "1704103200",
                "text": "ok",
            },
        ],
    }
    export = read_telegram_export(write(tmp_path / "x", json.dumps(document)))
    codes = {p.code for p in export.problems}
    assert {
        "FIELD_WRONG_TYPE",
        "MESSAGE_NOT_AN_OBJECT",
        "MESSAGE_WITHOUT_ID",
        "TIME_UNREADABLE",
        "MEDIA_VALUE_EMPTY",
    } <= codes
    [chat] = export.chats
    assert chat.name is None and chat.id is None
    assert [m.message_id for m in chat.messages] == [8, 9, 10]
    assert chat.messages[2].time.utc_offset_minutes is not None
    export = read_telegram_export(write(tmp_path / "y", '{"messages": {"a": 1}}'))
    assert "MESSAGES_NOT_A_LIST" in {p.code for p in export.problems}
    export = read_telegram_export(write(tmp_path / "z", '{"chats": {"list": 3}}'))
    assert export.chats == () and export.form == "full_account"


def test_media_paths_never_resolve_outside_the_export(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"secret")
    root = tmp_path / "export"
    (root / "photos").mkdir(parents=True)
    os.symlink(outside / "secret.jpg", root / "photos" / "linked.jpg")
    os.symlink(outside, root / "linked_dir")
    paths = [
        "../outside/secret.jpg",
        "../../etc/passwd",
        "/etc/passwd",
        "photos/../../outside/secret.jpg",
        "photos\\..\\..\\outside\\secret.jpg",
        "photos/linked.jpg",
        "linked_dir/secret.jpg",
        "photos/\x00.jpg",
    ]
    messages = [
        {
            "id": i,
            "type": "message",
            "date": "2024-01-01T10:00:00",
            "date_unixtime": "1704103200",
            "photo": p,
            "text": "",
        }
        for i, p in enumerate(paths, start=1)
    ]
    export = read_telegram_export(
        write(
            root, json.dumps({"name": "x", "type": "personal_chat", "id": 1, "messages": messages})
        )
    )
    assert [m.status for m in export.media] == ["unsafe"] * len(paths)
    assert all(m.file is None for m in export.media)
    assert all(c.sha256 is None for c in export.media_claims())
    codes = [p.code for p in export.problems]
    assert codes.count("MEDIA_PATH_UNSAFE") == len(paths)
    assert codes.count("SYMLINK_IGNORED") == 2  # the walk saw both links and left them


def test_html_export_and_other_wrong_inputs(tmp_path: Path) -> None:
    html = tmp_path / "html"
    html.mkdir()
    (html / "messages.html").write_text("<html></html>")
    with pytest.raises(ChatExportError, match="HTML export"):
        read_telegram_export(html)
    with pytest.raises(ChatExportError, match=r"no result\.json"):
        read_telegram_export(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ChatExportError, match="not a Telegram Desktop export"):
        read_telegram_export(tmp_path / "notes.txt")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "result.json").write_bytes(b'{"messages": ["caf\xe9"]}')
    with pytest.raises(ChatExportError, match="not UTF-8"):
        read_telegram_export(bad)
    os.symlink(bad / "result.json", html / "result.json")
    with pytest.raises(ChatExportError, match="symbolic link"):
        read_telegram_export(html)
    big = write(tmp_path / "big", json.dumps({"messages": ["x" * 2000]}))
    with pytest.raises(ChatExportError, match="larger than 1000 bytes"):
        read_telegram_export(big, limits=TelegramLimits(max_json_bytes=1000))
