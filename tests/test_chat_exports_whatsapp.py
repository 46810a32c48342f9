"""WhatsApp chat exports: real layouts, real media, and what the result may claim.

Digests are checked with ``hashlib`` on the files written by the fixtures, never with
custody's own code; times are checked against values worked out by hand from the text.
"""

from __future__ import annotations

import os
import unicodedata
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_fixtures import (
    IOS_GROUP,
    IOS_PHONE,
    LRM,
    NNBSP,
    RLM,
    android_export,
    ios_export_folder,
    ios_export_zip,
    sha256,
    zip_folder,
)
from custody.acquisition.sources.claims import ChatExportError, UnsafeArchiveError
from custody.acquisition.sources.whatsapp import (
    TIME_ZONE_NOTE,
    ChatExport,
    WhatsAppMessage,
    read_whatsapp_export,
)
from custody.errors import CustodyError, InputError


def by_line(export: ChatExport, line: int) -> WhatsAppMessage:
    return next(m for m in export.messages if m.line == line)


# --- Android, English, 12-hour, month/day/year ---------------------------------------------


def test_android_export_messages_as_written(tmp_path: Path) -> None:
    built = android_export(tmp_path)
    export = read_whatsapp_export(built.path)

    assert export.source.kind == "folder"
    assert export.platform == "android"
    assert "date, time - " in export.platform_reason
    assert export.conversation_name == "Abu Khalil"
    assert export.conversation_name_from == "WhatsApp Chat with Abu Khalil.txt"
    assert export.date_order == "MDY" and not export.date_order_ambiguous
    assert "not day/month/year: line 1" in export.date_order_reason  # 12/29/23 decides
    assert export.time_zone_note == TIME_ZONE_NOTE

    system = export.messages[0]
    assert system.kind == "system" and system.sender is None
    assert system.text.startswith("Messages and calls are end-to-end encrypted.")

    multi = export.messages[1]
    assert (multi.line, multi.last_line) == (2, 4)
    assert multi.sender == "Abu Khalil"
    assert multi.text == (
        "We reached the checkpoint at 7:40.\nThe soldiers were already there.\n"
        "Three trucks, no plates."
    )
    assert multi.time_as_written == f"12/29/23, 8:02{NNBSP}PM"  # the narrow space kept
    assert multi.local_time == datetime(2023, 12, 29, 20, 2)
    assert [r.order for r in multi.readings] == ["MDY"]
    assert not multi.seconds_written

    photo = by_line(export, 5)
    assert photo.kind == "attachment"
    assert photo.attachment_name == "IMG-20231231-WA0003.jpg"
    assert photo.text.endswith("\nNorth gate, taken from the roof")  # the caption kept
    assert photo.local_time == datetime(2023, 12, 31, 21, 41)

    deleted = by_line(export, 8)
    assert deleted.kind == "deleted" and deleted.sender == "Rana Haddad"
    voice = by_line(export, 9)
    assert voice.local_time == datetime(2024, 1, 1, 0, 5)  # 12:05 AM is just after midnight
    assert by_line(export, 14).local_time == datetime(2024, 1, 1, 12, 20)  # 12:20 PM: noon
    omitted = by_line(export, 13)
    assert omitted.kind == "media_omitted" and omitted.marker == "<Media omitted>"


def test_android_attachments_present_missing_and_unnamed(tmp_path: Path) -> None:
    built = android_export(tmp_path)
    export = read_whatsapp_export(built.path)
    status = {a.name: a.status for a in export.attachments}
    assert status == {
        "IMG-20231231-WA0003.jpg": "present",
        "VID-20231231-WA0004.mp4": "present",
        "PTT-20240101-WA0005.opus": "present",
        "IMG-20240101-WA0006.jpg": "missing",
        "تقرير أولي.pdf": "present",
        "أدلة 02.jpg": "present",
    }
    for att in export.attachments:
        assert att.form == "android" and att.marker == "file attached" and att.marker_known
        if att.file is not None:
            on_disk = built.files[att.file.path]
            assert att.file.sha256 == sha256(on_disk)
            assert att.file.size == on_disk.stat().st_size
    [nfd] = [a for a in export.attachments if a.name == "أدلة 02.jpg"]
    assert nfd.name_match == "unicode-normalised"
    assert nfd.path_in_export == unicodedata.normalize("NFD", "أدلة 02.jpg")
    assert [a.name for a in export.missing] == ["IMG-20240101-WA0006.jpg"]
    assert [f.path for f in export.unnamed_files] == ["IMG-20231230-WA0001.jpg"]
    chat = built.files["WhatsApp Chat with Abu Khalil.txt"]
    assert export.chat_file.sha256 == sha256(chat)
    assert export.chat_file.path == chat.name


def test_android_media_claims_name_everything_the_lead_records(tmp_path: Path) -> None:
    export = read_whatsapp_export(android_export(tmp_path).path)
    claims = export.media_claims()
    assert [c.media_role for c in claims].count("omitted") == 1
    photo = next(c for c in claims if c.media_name == "IMG-20231231-WA0003.jpg")
    assert photo.platform == "whatsapp"
    assert photo.source == (
        "the WhatsApp export 'WhatsApp Chat with Abu Khalil'"
        " (chat file WhatsApp Chat with Abu Khalil.txt)"
    )
    assert photo.conversation == "Abu Khalil"
    assert photo.sender == "Abu Khalil"
    assert photo.message_ref == "line 5"
    assert photo.time_as_written == f"12/31/23, 9:41{NNBSP}PM"
    assert photo.time_readings == ("2023-12-31T21:41:00 (MDY)",)
    assert not photo.time_ambiguous
    assert photo.utc_time is None and photo.utc_offset_minutes is None
    assert photo.status == "present" and photo.path_in_export == "IMG-20231231-WA0003.jpg"
    missing = next(c for c in claims if c.media_name == "IMG-20240101-WA0006.jpg")
    assert missing.status == "missing" and missing.sha256 is None
    record = photo.as_dict()
    assert record["time_readings"] == ["2023-12-31T21:41:00 (MDY)"]
    assert record["sha256"] == photo.sha256


def test_android_export_zip_form_reads_the_same(tmp_path: Path) -> None:
    built = android_export(tmp_path)
    folder = read_whatsapp_export(built.path)
    archive = zip_folder(built.path, tmp_path / "WhatsApp Chat with Abu Khalil.zip")
    zipped = read_whatsapp_export(archive)
    assert zipped.source.kind == "zip"
    assert zipped.source.container is not None
    assert zipped.source.container.sha256 == sha256(archive)
    assert zipped.messages == folder.messages
    assert zipped.attachments == folder.attachments
    assert zipped.unnamed_files == folder.unnamed_files
    assert zipped.chat_file == folder.chat_file


def test_chat_file_given_alone_reads_its_folder(tmp_path: Path) -> None:
    built = android_export(tmp_path)
    export = read_whatsapp_export(built.files["WhatsApp Chat with Abu Khalil.txt"])
    assert export.source.kind == "chat-file"
    assert {a.name for a in export.missing} == {"IMG-20240101-WA0006.jpg"}


# --- iOS, Arabic, 24-hour, day/month/year with RLM marks ----------------------------------


def test_ios_arabic_zip(tmp_path: Path) -> None:
    built = ios_export_zip(tmp_path)
    export = read_whatsapp_export(built.path)
    assert export.platform == "ios"
    assert "[date, time]" in export.platform_reason and "_chat.txt" in export.platform_reason
    assert export.conversation_name == IOS_GROUP
    assert export.conversation_name_from == f"WhatsApp Chat - {IOS_GROUP}.zip"
    assert export.date_order == "DMY"
    assert export.chat_file.path == "_chat.txt"

    first = export.messages[0]
    assert first.sender == IOS_GROUP  # iOS writes the chat's own system lines under its name
    assert first.time_as_written == f"{RLM}29{RLM}/12{RLM}/2023\u060c 20:02:11"
    assert first.local_time == datetime(2023, 12, 29, 20, 2, 11) and first.seconds_written

    multi = export.messages[1]
    assert multi.text == "وصلنا إلى الحاجز\nكان الجنود هناك قبلنا\nثلاث شاحنات بلا لوحات"
    assert "\r" not in multi.text

    deleted = next(m for m in export.messages if m.kind == "deleted")
    assert deleted.text == f"{RLM}تم حذف هذه الرسالة."
    assert deleted.text_plain == "تم حذف هذه الرسالة."

    phone = next(m for m in export.messages if m.sender == IOS_PHONE)
    assert phone.sender_plain == "+963\u00a0944\u00a0123\u00a0456"
    assert phone.kind == "media_omitted"

    atts = {a.name: a for a in export.attachments}
    assert set(atts) == {
        "00000012-PHOTO-2023-12-31-21-41-05.jpg",
        "00000013-VIDEO-2023-12-31-21-43-20.mp4",
        "00000015-AUDIO-2024-01-01-00-05-12.opus",
        "00000016-PHOTO-2024-01-01-00-07-30.jpg",
        "00000017-تقرير أولي.pdf",
    }
    assert atts["00000016-PHOTO-2024-01-01-00-07-30.jpg"].status == "missing"
    for name, att in atts.items():
        assert att.form == "ios" and att.marker == "المُرفق" and att.marker_known
        if att.status == "present":
            assert att.file is not None and att.file.sha256 == sha256(built.files[name])
    document = next(m for m in export.messages if m.attachment_name == "00000017-تقرير أولي.pdf")
    assert document.text.startswith("تقرير أولي.pdf • ")  # the title iOS writes before it
    assert export.unnamed_files == ()


def test_ios_folder_and_zip_agree(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    zipped = read_whatsapp_export(ios_export_zip(tmp_path / "a").path)
    folder = read_whatsapp_export(ios_export_folder(tmp_path / "b").path)
    assert folder.messages == zipped.messages
    assert folder.attachments == zipped.attachments
    assert folder.conversation_name == IOS_GROUP


def test_arabic_indic_digits_and_arabic_half_day_markers(tmp_path: Path) -> None:
    # iOS Arabic with a 12-hour clock (whats_json test/data/languages/arabic_ios.txt) and
    # Android Arabic (mtln/chat-export tests/test_arabic_locale.py).
    ios = (
        "[١٨\u200f/٣\u200f/٢٠٢٢\u060c ٢:٥٦:٠٠\u00a0م] Dmitry S: Hello\r\n"
        "[٢٧\u200f/٣\u200f/٢٠٢٢\u060c ١٢:٠٥:٣٥\u00a0ص] Dmitry S: بعد منتصف الليل\r\n"
    )
    (tmp_path / "ios").mkdir()
    (tmp_path / "ios" / "_chat.txt").write_text(ios, encoding="utf-8")
    export = read_whatsapp_export(tmp_path / "ios")
    assert export.date_order == "DMY"
    assert export.messages[0].local_time == datetime(2022, 3, 18, 14, 56)
    assert export.messages[1].local_time == datetime(2022, 3, 27, 0, 5, 35)
    assert export.messages[0].time_as_written == "١٨\u200f/٣\u200f/٢٠٢٢\u060c ٢:٥٦:٠٠\u00a0م"

    android = "٢٤\u200f/٤\u200f/٢٠٢٢، ٢:٠٧ م - عمار لبنان: السلام\n"
    (tmp_path / "android").mkdir()
    (tmp_path / "android" / "WhatsApp Chat with عمار.txt").write_text(android, encoding="utf-8")
    export = read_whatsapp_export(tmp_path / "android")
    assert export.platform == "android"
    assert export.messages[0].sender == "عمار لبنان"
    assert export.messages[0].local_time == datetime(2022, 4, 24, 14, 7)


def test_other_layouts(tmp_path: Path) -> None:
    cases = {
        # Dutch Android: dashes, no comma (whats_json languages/deutch_android_media.txt)
        "23-03-2022 13:31 - Dmitry S: Hello\n": datetime(2022, 3, 23, 13, 31),
        # Spanish: "p. m." with a no-break space (Pustur/whatsapp-chat-parser #224)
        "20/6/2017 8:28\u00a0p.\u00a0m. - Michelle: test\n": datetime(2017, 6, 20, 20, 28),
        # Finnish iOS: dots and "klo" (Pustur tests/parser.test.ts, format5)
        "13.6.2018 klo 21.25.15 - a: m\n": datetime(2018, 6, 13, 21, 25, 15),
        # year first (chat-miner test_yyyymmdd_24hrs.txt)
        "[2018/06/13, 21:25:15] a: m\n": datetime(2018, 6, 13, 21, 25, 15),
        # older iOS: "date time: Name: text" (whats_json chats_unique/eng_chat.txt)
        "13/06/15 10:59:59: Giorgia: Text me\n": datetime(2015, 6, 13, 10, 59, 59),
        # a leading LRM, "a.m." (visioning_texts issue #24)
        f"{LRM}[31/12/2019, 2:14:40 a.m.] Bryce: hi\n": datetime(2019, 12, 31, 2, 14, 40),
    }
    for number, (text, expected) in enumerate(cases.items()):
        folder = tmp_path / str(number)
        folder.mkdir()
        (folder / "_chat.txt").write_text(text, encoding="utf-8")
        export = read_whatsapp_export(folder)
        assert export.messages[0].local_time == expected, text
        assert export.messages[0].sender is not None


# --- the date order ------------------------------------------------------------------------


AMBIGUOUS = (
    "03/01/2024, 10:15 - Samir: Arrived\n"
    "03/01/2024, 10:16 - Samir: IMG-20240103-WA0001.jpg (file attached)\n"
    "04/01/2024, 09:00 - Samir: Leaving now\n"
)


def test_ambiguous_date_order_carries_every_reading(tmp_path: Path) -> None:
    (tmp_path / "WhatsApp Chat with Samir.txt").write_text(AMBIGUOUS, encoding="utf-8")
    export = read_whatsapp_export(tmp_path)
    assert export.date_order is None and export.date_order_ambiguous
    assert export.date_order_candidates == ("DMY", "MDY")
    assert "DATE_ORDER_AMBIGUOUS" in {p.code for p in export.problems}
    first = export.messages[0]
    assert first.local_time is None
    assert {r.order: r.local_time for r in first.readings} == {
        "DMY": datetime(2024, 1, 3, 10, 15),
        "MDY": datetime(2024, 3, 1, 10, 15),
    }
    # The media name's date agrees with day/month/year; that stays a hint, not a decision.
    assert export.date_order_hint == (
        "DMY: 1 of 1 dated media name(s) agree; MDY: 0 of 1 dated media name(s) agree"
    )
    claim = export.media_claims()[0]
    assert claim.time_ambiguous
    assert claim.time_readings == ("2024-01-03T10:16:00 (DMY)", "2024-03-01T10:16:00 (MDY)")
    assert claim.status == "missing"


def test_one_late_line_decides_the_order_for_the_whole_file(tmp_path: Path) -> None:
    text = AMBIGUOUS + "13/01/2024, 08:00 - Samir: Back\n"
    (tmp_path / "_chat.txt").write_text(text, encoding="utf-8")
    export = read_whatsapp_export(tmp_path)
    assert export.date_order == "DMY" and not export.date_order_ambiguous
    assert export.messages[0].local_time == datetime(2024, 1, 3, 10, 15)
    assert "line 4" in export.date_order_reason


def test_impossible_dates_give_a_named_problem(tmp_path: Path) -> None:
    text = "13/01/2024, 08:00 - A: one\n01/13/2024, 08:00 - A: two\n"
    (tmp_path / "_chat.txt").write_text(text, encoding="utf-8")
    export = read_whatsapp_export(tmp_path)
    assert export.date_order is None and export.date_order_candidates == ()
    assert "DATE_ORDER_INCONSISTENT" in {p.code for p in export.problems}
    assert [r.order for r in export.messages[0].readings] == ["DMY"]
    assert [r.order for r in export.messages[1].readings] == ["MDY"]


def test_time_that_is_no_time_of_day(tmp_path: Path) -> None:
    (tmp_path / "_chat.txt").write_text("13/01/2024, 25:61 - A: x\n", encoding="utf-8")
    export = read_whatsapp_export(tmp_path)
    assert export.messages[0].readings == ()
    assert "UNREADABLE_TIME" in {p.code for p in export.problems}


# --- hostile inputs ------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


CHAT = b"13/01/2024, 08:00 - A: IMG-20240113-WA0001.jpg (file attached)\n"


def test_zip_with_parent_traversal_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "x.zip", {"_chat.txt": CHAT, "../evil.jpg": b"x"})
    with pytest.raises(UnsafeArchiveError, match=r"'\.\./evil\.jpg' refused: .*'\.\.'"):
        read_whatsapp_export(archive)
    archive = _zip(tmp_path / "y.zip", {"_chat.txt": CHAT, "/etc/cron.d/x": b"x"})
    with pytest.raises(UnsafeArchiveError, match="absolute path"):
        read_whatsapp_export(archive)


def _central_entry(data: bytes, member: str) -> int:
    at = data.find(b"PK\x01\x02")
    while data[at + 46 : at + 46 + len(member.encode())] != member.encode():
        at = data.find(b"PK\x01\x02", at + 4)
        assert at >= 0
    return at


def _declare_size(archive: Path, member: str, size: int) -> None:
    """Rewrite the uncompressed size a member declares, in its local header and in the
    central directory (APPNOTE 4.3.7, 4.3.12), as a zip bomb would."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(member)
    data[info.header_offset + 22 : info.header_offset + 26] = size.to_bytes(4, "little")
    cd = _central_entry(bytes(data), member)
    data[cd + 24 : cd + 28] = size.to_bytes(4, "little")
    archive.write_bytes(bytes(data))


def test_zip_member_declaring_a_gigabyte_is_refused_before_reading(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "bomb.zip", {"_chat.txt": CHAT, "IMG-20240113-WA0001.jpg": b"x" * 5000}
    )
    _declare_size(archive, "IMG-20240113-WA0001.jpg", 1 << 30)
    with zipfile.ZipFile(archive) as zf:  # what an unsuspecting reader would believe
        assert zf.getinfo("IMG-20240113-WA0001.jpg").file_size == 1 << 30
    with pytest.raises(UnsafeArchiveError, match=r"1073741824 bytes .* zip bomb"):
        read_whatsapp_export(archive)


def test_real_high_ratio_member_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "zeros.zip", {"_chat.txt": CHAT, "VID-x.mp4": bytes(64 << 20)})
    with pytest.raises(UnsafeArchiveError, match="more than 100 to 1"):
        read_whatsapp_export(archive)


def test_zip_symlink_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("_chat.txt", CHAT)
        info = zipfile.ZipInfo("IMG-20240113-WA0001.jpg")
        info.create_system = 3
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    listing = os.popen(f"zipinfo {archive}").read()  # the independent view of the fixture
    assert "lrwxrwxrwx" in listing
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        read_whatsapp_export(archive)


def test_zip_duplicate_names_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "dup.zip"
    with pytest.warns(UserWarning), zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("_chat.txt", CHAT)
        zf.writestr("IMG-20240113-WA0001.jpg", b"first")
        zf.writestr("IMG-20240113-WA0001.jpg", b"second")
    with pytest.raises(UnsafeArchiveError, match="same name"):
        read_whatsapp_export(archive)
    nfc, nfd = (unicodedata.normalize(f, "أدلة.jpg") for f in ("NFC", "NFD"))
    archive = _zip(tmp_path / "nfd.zip", {"_chat.txt": CHAT, nfc: b"a", nfd: b"b"})
    with pytest.raises(UnsafeArchiveError, match="Unicode normalisation"):
        read_whatsapp_export(archive)


def test_zip_crc_damage_is_a_clear_error(tmp_path: Path) -> None:
    archive = tmp_path / "crc.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("_chat.txt", CHAT)
        zf.writestr("IMG-20240113-WA0001.jpg", b"JPEG" * 1000)
    data = bytearray(archive.read_bytes())
    data[data.index(b"JPEGJPEG") + 100] ^= 0xFF
    archive.write_bytes(bytes(data))
    unzip = os.popen(f"unzip -t {archive} 2>&1").read()  # Info-ZIP agrees it is damaged
    assert "bad CRC" in unzip
    with pytest.raises(UnsafeArchiveError, match=r"IMG-20240113-WA0001\.jpg.*damaged.*CRC"):
        read_whatsapp_export(archive)


def test_zip_overlapping_members_are_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "overlap.zip", {"_chat.txt": CHAT, "a.jpg": b"a" * 100})
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        first = zf.getinfo("_chat.txt").header_offset
    cd = _central_entry(bytes(data), "a.jpg")
    data[cd + 42 : cd + 46] = first.to_bytes(4, "little")  # point it at _chat.txt's data
    archive.write_bytes(bytes(data))
    with pytest.raises(UnsafeArchiveError, match=r"overlaps|local header"):
        read_whatsapp_export(archive)


def test_zip_member_claiming_more_data_than_the_archive_holds(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "long.zip", {"_chat.txt": CHAT, "a.jpg": b"a" * 100})
    data = bytearray(archive.read_bytes())
    cd = _central_entry(bytes(data), "a.jpg")
    data[cd + 20 : cd + 24] = (1 << 20).to_bytes(4, "little")  # compressed size: 1 MiB
    archive.write_bytes(bytes(data))
    with pytest.raises(UnsafeArchiveError, match="runs past the end"):
        read_whatsapp_export(archive)


def test_zip_encrypted_member_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "enc.zip", {"_chat.txt": CHAT})
    data = bytearray(archive.read_bytes())
    data[6] |= 1  # local header flag
    cd = _central_entry(bytes(data), "_chat.txt")
    data[cd + 8] |= 1  # central directory flag
    archive.write_bytes(bytes(data))
    with pytest.raises(UnsafeArchiveError, match="encrypted"):
        read_whatsapp_export(archive)


def test_not_a_zip_and_truncated_zip(tmp_path: Path) -> None:
    fake = tmp_path / "chat.zip"
    fake.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(UnsafeArchiveError, match="not a readable ZIP"):
        read_whatsapp_export(fake)
    real = _zip(tmp_path / "t.zip", {"_chat.txt": CHAT})
    real.write_bytes(real.read_bytes()[:-30])
    with pytest.raises(UnsafeArchiveError):
        read_whatsapp_export(real)


def test_non_utf8_chat_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "_chat.txt").write_bytes(
        b"13/01/2024, 08:00 - A: ok\n13/01/2024, 08:01 - A: caf\xe9\n"
    )
    with pytest.raises(ChatExportError, match=r"not UTF-8 text \(byte 0xE9 at line 2\)"):
        read_whatsapp_export(tmp_path)
    (tmp_path / "_chat.txt").write_bytes("13/01/2024, 08:00 - A: x\n".encode("utf-16"))
    with pytest.raises(ChatExportError, match="UTF-16"):
        read_whatsapp_export(tmp_path)


LINKED = "00000001-PHOTO-2024-01-13-08-00-04.jpg"


def test_attachment_names_never_resolve_outside_the_export(tmp_path: Path) -> None:
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"outside")
    (export_dir / "_chat.txt").write_text(
        "\n".join(
            [
                f"[13/01/2024, 08:00:00] A: {LRM}<attached: ../../etc/passwd>",
                f"[13/01/2024, 08:00:01] A: {LRM}<attached: ../secret.jpg>",
                "13/01/2024, 08:00:02 - A: ..\\secret.jpg (file attached)",
                f"[13/01/2024, 08:00:03] A: {LRM}<attached: /etc/passwd>",
                f"[13/01/2024, 08:00:04] A: {LRM}<attached: {LINKED}>",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    os.symlink(secret, export_dir / LINKED)
    export = read_whatsapp_export(export_dir)
    states = [(a.name, a.status, a.file) for a in export.attachments]
    assert states == [
        ("../../etc/passwd", "unsafe_name", None),
        ("../secret.jpg", "unsafe_name", None),
        ("..\\secret.jpg", "unsafe_name", None),
        ("/etc/passwd", "unsafe_name", None),
        (LINKED, "missing", None),  # a link is not a file
    ]
    codes = [p.code for p in export.problems]
    assert codes.count("ATTACHMENT_NAME_UNSAFE") == 4
    assert "SYMLINK_IGNORED" in codes
    assert all(c.status in ("unsafe", "missing") for c in export.media_claims())


def test_links_and_odd_paths_given_as_the_export(tmp_path: Path) -> None:
    built = android_export(tmp_path)
    link = tmp_path / "link"
    os.symlink(built.path, link)
    with pytest.raises(ChatExportError, match="symbolic link"):
        read_whatsapp_export(link)
    with pytest.raises(ChatExportError, match="cannot read"):
        read_whatsapp_export(tmp_path / "absent")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ChatExportError, match="neither a folder nor a file"):
        read_whatsapp_export(tmp_path / "fifo")


def test_folders_without_a_chat_or_with_several(tmp_path: Path) -> None:
    with pytest.raises(ChatExportError, match="no WhatsApp chat file"):
        read_whatsapp_export(tmp_path)
    (tmp_path / "a.txt").write_text("hello\n")
    (tmp_path / "b.txt").write_text("hello\n")
    with pytest.raises(ChatExportError, match=r"several \.txt files"):
        read_whatsapp_export(tmp_path)
    (tmp_path / "b.txt").unlink()
    with pytest.raises(ChatExportError, match="no line reads as a WhatsApp message"):
        read_whatsapp_export(tmp_path)


def test_symlinked_chat_file_in_folder_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("13/01/2024, 08:00 - A: x\n")
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    os.symlink(outside, export_dir / "_chat.txt")
    with pytest.raises(ChatExportError, match="no WhatsApp chat file"):
        read_whatsapp_export(export_dir)


def test_every_error_is_a_custody_input_error() -> None:
    assert issubclass(ChatExportError, InputError)
    assert issubclass(UnsafeArchiveError, ChatExportError)


LINE_PARTS = st.sampled_from(
    [
        "12/31/23, 9:41 PM - ",
        "[31/12/2023, 21:41:05] ",
        "٢٤\u200f/٤\u200f/٢٠٢٢، ٢:٠٧ م - ",
        "Name: ",
        "<attached: ",
        "../",
        "IMG-20231231-WA0003.jpg",
        " (file attached)",
        ">",
        "\u200e",
        "\u202e",
        "<Media omitted>",
        "99/99/99, 99:99 - ",
        "\r",
        " • ",
        "document omitted",
    ]
)


@given(st.lists(st.lists(LINE_PARTS | st.text(max_size=8), max_size=6), max_size=12))
def test_any_text_reads_or_fails_cleanly(
    tmp_path_factory: pytest.TempPathFactory, lines: list[list[str]]
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    text = "\n".join("".join(parts) for parts in lines)
    (folder / "_chat.txt").write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        export = read_whatsapp_export(folder)
    except CustodyError:
        return
    for message in export.messages:
        assert message.line >= 1
        for attachment in export.attachments:
            if attachment.file is not None:
                assert "/" not in attachment.file.path


def test_zip_with_the_export_in_a_folder(tmp_path: Path) -> None:
    # A re-zipped export: the chat and its media one folder down, plus a stray file.
    built = ios_export_folder(tmp_path)
    archive = tmp_path / "handover.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in sorted(built.files):
            zf.write(built.files[name], f"WhatsApp Chat - {IOS_GROUP}/{name}")
        zf.writestr("notes/readme.txt", b"from the documenter")
    export = read_whatsapp_export(archive)
    assert export.chat_file.path == f"WhatsApp Chat - {IOS_GROUP}/_chat.txt"
    assert export.conversation_name == IOS_GROUP
    assert export.conversation_name_from == f"WhatsApp Chat - {IOS_GROUP}"
    present = [a.path_in_export for a in export.attachments if a.status == "present"]
    assert all(p is not None and p.startswith(f"WhatsApp Chat - {IOS_GROUP}/") for p in present)
    assert len(present) == 4
    assert [f.path for f in export.unnamed_files] == ["notes/readme.txt"]
