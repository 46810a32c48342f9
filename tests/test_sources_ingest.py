"""``custody ingest --as whatsapp|telegram|bagit`` through the real CLI, then ``show``,
``history``, ``verify`` and the report.

The exports are built by ``chat_fixtures`` from real media, in the layouts of real exports
(Android/English and iOS/Arabic WhatsApp, a Telegram channel); bags are made by
bagit-python, the Library of Congress's own tool. What is asserted is checked from outside
custody where it can be: the copies with ``sha256sum`` and Python's ``zipfile``, the
records with plain ``json``, the copied bag with ``bagit.py --validate``, the report as
the HTML a person reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import unicodedata
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bagit
import pytest
from tests.helpers import (
    committed_value,
    every_line_valid,
    files_under,
    latest_items,
    ledger_lines,
    sha256sum_tree,
    tool,
)

import chat_fixtures as fx
from conftest import Result, snapshot, validate
from custody.acquisition.sources.safezip import SafeZip
from custody.errors import InputError

NNBSP = "\u202f"


def provenance(item: Any, kind: str) -> dict[str, Any]:
    entry = next((p for p in item.body.get("provenance", []) if p["kind"] == kind), None)
    assert entry is not None, f"{item.body['path']}: no {kind} entry"
    return entry  # type: ignore[no-any-return]


def evidence_files(root: Path) -> list[bytes]:
    """Files in the evidence tree, outside custody's own .custody folder."""
    return [n for n in files_under(root) if not n.startswith(b".custody/")]


def by_name(root: Path, suffix: str) -> Any:
    (found,) = [i for p, i in latest_items(root).items() if p.decode().endswith(suffix)]
    return found


# --- WhatsApp -----------------------------------------------------------------------------------


def test_whatsapp_ios_zip_arabic_claims_copies_and_missing_media(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    built = fx.ios_export_zip(outside)
    before = snapshot(outside)
    result = cli(
        "ingest", built.path, "--as", "whatsapp", "--into", "case", "--root", evidence, "--json"
    )
    assert result.code == 0, result.err
    document = result.json()
    validate(document, "cli-ingest.schema.json")
    assert snapshot(outside) == before, "the export itself is never touched"
    source = document["source"]
    folder = evidence / "case" / built.path.stem
    assert source["archive"] == f"case/{built.path.name}"
    # The archive is kept as received, and every member unpacked byte for byte (Python's
    # zipfile, not custody's reader, says what each member holds).
    assert tool("cmp", built.path, evidence / "case" / built.path.name).returncode == 0
    with zipfile.ZipFile(built.path) as archive:
        members = {
            i.filename: hashlib.sha256(archive.read(i)).hexdigest() for i in archive.infolist()
        }
    copied = sha256sum_tree(folder)
    assert {k.decode(): v for k, v in copied.items()} == members
    records = latest_items(evidence)
    archive_sha = hashlib.sha256(built.path.read_bytes()).hexdigest()
    for name, sha in members.items():
        item = records[f"case/{built.path.stem}/{name}".encode()]
        assert item.sha256 == sha
        acquisition = item.body["acquisition"]
        assert acquisition["archive_member"] == name
        assert acquisition["archive_sha256"] == archive_sha
        # The archive's path on this machine is a salted commitment (issue 17), its value
        # kept beside the ledger.
        assert "source_path" not in acquisition and "volume" not in acquisition
        assert committed_value(evidence, item.body, "source_path") == os.fspath(
            built.path.resolve()
        )
    # What the export says of the video, as it says it.
    video = provenance(by_name(evidence, "00000013-VIDEO-2023-12-31-21-43-20.mp4"), "whatsapp")
    assert video["role"] == "media"
    assert video["sender"] == "أبو خليل"
    assert video["conversation"] == fx.IOS_GROUP
    assert video["time_as_written"] == f"{fx.RLM}31{fx.RLM}/12{fx.RLM}/2023\u060c 21:43:20"
    assert video["time_readings"] == ["2023-12-31T21:43:20 (DMY)"]
    assert video["time_ambiguous"] is False
    assert "no time zone" in video["time_zone_note"]
    assert video["message_ref"] == "line 6"
    chat = by_name(evidence, "/_chat.txt")
    assert video["chat_file"] == {
        "path": f"case/{built.path.stem}/_chat.txt",
        "sha256": chat.sha256,
    }
    assert chat.sha256 == hashlib.sha256(fx.IOS_CHAT.encode()).hexdigest()
    # The chat file lists what the chat names but the export lacks, never silently.
    listed = provenance(chat, "whatsapp")
    assert listed["role"] == "chat-file" and listed["platform"] == "ios"
    statuses = {m["media_name"]: m["status"] for m in listed["missing_media"]}
    assert statuses["00000016-PHOTO-2024-01-01-00-07-30.jpg"] == "missing"
    assert "omitted" in statuses.values()
    assert {m["status"] for m in source["missing"]} == {"missing", "omitted"}
    assert {r["role"] for r in source["roles"]} == {"archive", "chat-file", "media"}


def test_whatsapp_android_folder_english_through_show_history_verify_and_report(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    built = fx.android_export(tmp_path)
    result = cli("ingest", built.path, "--as", "whatsapp", "--root", evidence)
    assert result.code == 0, result.err
    # The person at the terminal is told what is missing, and by whom it was sent.
    assert "MISSING IMG-20240101-WA0006.jpg (line 10, from Abu Khalil" in result.err
    assert "OMITTED" in result.err and "<Media omitted>" in result.err
    assert sha256sum_tree(evidence / built.path.name) == sha256sum_tree(built.path)
    photo = by_name(evidence, "IMG-20231231-WA0003.jpg")
    claim = provenance(photo, "whatsapp")
    assert claim["sender"] == "Abu Khalil" and claim["conversation"] == "Abu Khalil"
    assert claim["time_as_written"] == f"12/31/23, 9:41{NNBSP}PM"
    assert claim["time_readings"] == ["2023-12-31T21:41:00 (MDY)"]
    assert claim["text"].endswith("North gate, taken from the roof")
    unnamed = provenance(by_name(evidence, "IMG-20231230-WA0001.jpg"), "whatsapp")
    assert unnamed["role"] == "unnamed-file"
    # A document with an Arabic name, and a photo whose name the folder stores in NFD.
    assert provenance(by_name(evidence, fx.REPORT), "whatsapp")["role"] == "media"
    nfd = unicodedata.normalize("NFD", fx.PHOTO_NFD)
    assert provenance(by_name(evidence, nfd), "whatsapp")["role"] == "media"

    shown = cli("show", str(photo.seq), "--root", evidence)
    assert shown.code == 0, shown.err
    assert "according to the WhatsApp export 'WhatsApp Chat with Abu Khalil'" in shown.out
    assert "Sender (claimed)" in shown.out and "North gate, taken from the roof" in shown.out
    as_json = cli("show", str(photo.seq), "--root", evidence, "--json")
    validate(as_json.json(), "cli-show.schema.json")
    history = cli("history", str(photo.seq), "--root", evidence, "--json")
    validate(history.json(), "cli-history.schema.json")
    (ingested,) = [e for e in history.json()["entries"] if e["kind"] == "ingested"]
    assert "according to the WhatsApp export" in ingested["summary"]
    assert "sent by \u201cAbu Khalil\u201d" in ingested["summary"]
    assert ingested["detail"]["provenance"][0]["kind"] == "whatsapp"

    verified = cli("verify", evidence, "--json")
    assert verified.code == 0, verified.out
    document = verified.json()
    validate(document, "cli-verify.schema.json")
    (row,) = [r for r in document["provenance"] if r["seq"] == photo.seq]
    (check,) = row["entries"][0]["rechecks"]
    assert (check["check"], check["recorded"], check["now"]) == ("chat_file", "passed", "passed")
    plain = cli("verify", evidence)
    assert "provenance | according to the WhatsApp export" in plain.out

    page = tmp_path / "report.html"
    assert cli("report", evidence, "--out", page).code == 0
    html = page.read_text()
    assert "According to the WhatsApp export" in html
    assert "Sender (claimed)" in html and "Re-checked now: chat_file" in html


def test_whatsapp_resume_and_refusals(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    built = fx.ios_export_zip(tmp_path)
    assert cli("ingest", built.path, "--as", "whatsapp", "--root", evidence).code == 0
    lines = ledger_lines(evidence)
    again = cli("ingest", built.path, "--as", "whatsapp", "--root", evidence, "--json")
    assert again.code == 0, again.err
    assert again.json()["already_present"] == len(again.json()["source"]["roles"])
    assert ledger_lines(evidence) == lines, "nothing new to record"
    # Usage errors: exit 2, one line, nothing written.
    chat_txt = tmp_path / "chat.txt"
    chat_txt.write_text("hello")
    for args in (
        ("ingest", built.path, built.path, "--as", "whatsapp"),
        ("ingest", chat_txt, "--as", "whatsapp"),
        ("ingest", built.path, "--as", "signal"),
        ("ingest", built.path, "--proofmode-key", "AB" * 20),
        ("ingest", built.path, "--as", "whatsapp", "--proofmode-key", "AB" * 20),
    ):
        refused = cli(*args, "--root", evidence)
        assert refused.code == 2, (args, refused.err)
        assert refused.err.count("\n") == 1, refused.err
    link = tmp_path / "link.zip"
    link.symlink_to(built.path)
    assert cli("ingest", link, "--as", "whatsapp", "--root", evidence).code == 2
    assert ledger_lines(evidence) == lines


@pytest.mark.parametrize("hostile", ["../escape.jpg", "link", "twice"])
def test_a_hostile_export_zip_is_refused_before_anything_is_copied(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path, hostile: str
) -> None:
    built = fx.ios_export_zip(tmp_path)
    with zipfile.ZipFile(built.path, "a") as archive:
        if hostile == "link":
            info = zipfile.ZipInfo("00000099-PHOTO-2024-01-01-00-00-00.jpg")
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
        elif hostile == "twice":
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                archive.writestr("_chat.txt", b"a second chat file")
        else:
            archive.writestr(hostile, b"outside")
    lines = ledger_lines(evidence)
    result = cli("ingest", built.path, "--as", "whatsapp", "--root", evidence)
    assert result.code == 3, result.err
    assert "refused" in result.err
    assert ledger_lines(evidence) == lines
    assert evidence_files(evidence) == [], "nothing copied into the evidence tree"
    assert not list(tmp_path.rglob("escape.jpg"))
    assert list((evidence / ".custody" / "tmp").iterdir()) == []


def test_extract_all_never_leaves_its_folder(tmp_path: Path) -> None:
    """SafeZip.extract_all: a file where a folder must go is refused; the target must be new."""
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a", b"file")
        zf.writestr("a/b", b"under a file")
    with SafeZip(archive) as z, pytest.raises(InputError, match="cannot be made"):
        z.extract_all(tmp_path / "out")
    with SafeZip(archive) as z, pytest.raises(InputError, match="cannot make the folder"):
        z.extract_all(tmp_path / "out")  # exists now
    good = tmp_path / "g.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("d/e/f.txt", b"deep")
    with SafeZip(good) as z:
        (written,) = z.extract_all(tmp_path / "g")
    assert written.path.read_bytes() == b"deep"
    assert written.sha256 == hashlib.sha256(b"deep").hexdigest()
    assert oct((tmp_path / "g").stat().st_mode & 0o777) == "0o700"


# --- Telegram -----------------------------------------------------------------------------------


def test_telegram_channel_export_folder_and_zip(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    root, document = fx.telegram_channel_export(tmp_path)
    result = cli("ingest", root, "--as", "telegram", "--into", "tg", "--root", evidence, "--json")
    assert result.code == 0, result.err
    validate(result.json(), "cli-ingest.schema.json")
    missing = result.json()["source"]["missing"]
    assert [(m["name"], m["where"]) for m in missing] == [("IMG_4411.MOV", "message id 43")]
    photo = provenance(by_name(evidence, "photos/photo_1@31-12-2023_22-41-05.jpg"), "telegram")
    message = document["messages"][1]
    assert photo["message_id"] == message["id"] == 41
    assert photo["time_as_written"] == message["date"]
    assert photo["utc_time"] == "2023-12-31T19:41:05Z"
    assert photo["utc_offset_minutes"] == 180  # Damascus, as the system's `date` wrote it
    assert photo["sender"] == fx.CHANNEL and photo["sender_id"] == f"channel{fx.CHANNEL_ID}"
    assert photo["conversation_id"] == str(fx.CHANNEL_ID)
    assert "signed 'سارة'" in photo["notes"]
    result_json = by_name(evidence, "tg/ChatExport_2024-01-02/result.json")
    assert provenance(result_json, "telegram")["role"] == "chat-file"
    assert photo["chat_file"]["sha256"] == result_json.sha256
    # The same export zipped one folder down (as people send it) reads the same.
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, f"{root.name}/{path.relative_to(root)}")
    zipped = cli("ingest", archive, "--as", "telegram", "--into", "tgz", "--root", evidence)
    assert zipped.code == 0, zipped.err
    again = provenance(
        by_name(
            evidence, "tgz/export/ChatExport_2024-01-02/photos/photo_1@31-12-2023_22-41-05.jpg"
        ),
        "telegram",
    )
    assert {k: v for k, v in again.items() if k not in ("chat_file", "source")} == {
        k: v for k, v in photo.items() if k not in ("chat_file", "source")
    }
    assert "'export.zip'" in again["source"]
    photo_path = "tg/ChatExport_2024-01-02/photos/photo_1@31-12-2023_22-41-05.jpg"
    history = cli("history", photo_path, "--root", evidence, "--json").json()
    (ingested,) = [e for e in history["entries"] if e["kind"] == "ingested"]
    assert "according to the Telegram Desktop export" in ingested["summary"]
    assert f"posted by \u201c{fx.CHANNEL}\u201d" in ingested["summary"]

    verified = cli("verify", evidence, "--json")
    assert verified.code == 0, verified.out
    validate(verified.json(), "cli-verify.schema.json")
    (row,) = [r for r in verified.json()["provenance"] if r["path"] == photo_path]
    (check,) = row["entries"][0]["rechecks"]
    assert (check["check"], check["recorded"], check["now"]) == ("chat_file", "passed", "passed")
    page = tmp_path / "report.html"
    assert cli("report", evidence, "--out", page).code == 0
    html = page.read_text()
    assert "According to the Telegram Desktop export" in html
    assert "Time in UTC (claimed)" in html and "2023-12-31T19:41:05Z" in html


# --- BagIt ---------------------------------------------------------------------------------------


def make_bag(folder: Path, algorithms: list[str]) -> Path:
    shutil.copytree(fx.media(fx.PHOTO).parent, folder)
    bagit.make_bag(
        str(folder),
        {
            "Source-Organization": "Syrian Archive",
            "External-Identifier": "SA-2024-001",
            "Contact-Name": "رنا حداد",
        },
        checksums=algorithms,
    )
    return folder


def test_bagit_bag_is_validated_copied_and_keeps_its_own_digests(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    bag = make_bag(tmp_path / "bag", ["sha256", "sha512"])
    result = cli("ingest", bag, "--as", "bagit", "--root", evidence, "--json")
    assert result.code == 0, result.err
    validate(result.json(), "cli-ingest.schema.json")
    copied = evidence / "bag"
    assert sha256sum_tree(copied) == sha256sum_tree(bag)
    # bagit-python, the independent validator, accepts the copy in the evidence root.
    assert bagit.Bag(str(copied)).is_valid()
    records = latest_items(evidence)
    for name in files_under(bag / "data"):
        item = records[b"bag/data/" + name]
        entry = provenance(item, "bagit")
        assert entry["role"] == "payload" and entry["path_in_source"] == f"data/{name.decode()}"
        data = (bag / "data" / os.fsdecode(name)).read_bytes()
        assert entry["bag_digests"] == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "sha512": hashlib.sha512(data).hexdigest(),
        }
        assert "from 'Syrian Archive' (External-Identifier 'SA-2024-001')" in entry["source"]
    info = provenance(records[b"bag/bag-info.txt"], "bagit")
    assert ["Contact-Name", "رنا حداد"] in info["info"]
    assert every_line_valid(evidence) == {"bagit:payload", "bagit:tag-file"}
    declaration = provenance(records[b"bag/bagit.txt"], "bagit")
    assert declaration["version"] == "0.97" and declaration["payload_files"] > 0
    verified = cli("verify", evidence, "--json")
    assert verified.code == 0, verified.out
    rechecks = [
        c for r in verified.json()["provenance"] for e in r["entries"] for c in e["rechecks"]
    ]
    assert rechecks and all(c["now"] == "passed" for c in rechecks if c["check"] == "bag_digests")


def test_an_invalid_bag_is_refused_with_every_reason_and_nothing_is_copied(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    bag = make_bag(tmp_path / "bag", ["sha256"])
    victim = next(p for p in (bag / "data").iterdir() if p.is_file())
    victim.write_bytes(victim.read_bytes() + b"x")
    (bag / "data" / "smuggled.txt").write_bytes(b"not in the manifest")
    lines = ledger_lines(evidence)
    result = cli("ingest", bag, "--as", "bagit", "--root", evidence)
    assert result.code == 3, result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert any("ChecksumMismatch" in line for line in errors)
    assert any("UnlistedFile" in line and "smuggled.txt" in line for line in errors)
    assert "is not a valid BagIt bag" in result.err.splitlines()[-1]
    assert ledger_lines(evidence) == lines and evidence_files(evidence) == []
    # bagit-python agrees the bag is invalid.
    assert not bagit.Bag(str(bag)).is_valid()


def test_a_zipped_bag_and_md5_only_digests(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    bag = make_bag(tmp_path / "bag", ["md5"])
    archive = tmp_path / "delivery.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(bag.rglob("*")):
            if path.is_file():
                zf.write(path, f"bag/{path.relative_to(bag)}")
    result = cli("ingest", archive, "--as", "bagit", "--root", evidence, "--json")
    assert result.code == 0, result.err
    assert any("WeakAlgorithmsOnly" in w for w in result.json()["source"]["warnings"])
    copied = evidence / "delivery" / "bag"
    assert bagit.Bag(str(copied)).is_valid()
    verified = cli("verify", evidence, "--json").json()
    checks = {c["now"] for r in verified["provenance"] for e in r["entries"] for c in e["rechecks"]}
    assert checks == {"not_checkable"}, "md5 only: the bag's digests cannot be compared offline"


# --- custody bagit validate ----------------------------------------------------------------------


def test_bagit_validate_command(cli: Callable[..., Result], tmp_path: Path) -> None:
    good = make_bag(tmp_path / "good", ["sha256"])
    result = cli("bagit", "validate", good, "--json")
    assert result.code == 0, result.err
    document = result.json()
    validate(document, "cli-bagit-validate.schema.json")
    assert document["valid"] and document["payload_files"] > 0
    next(p for p in (good / "data").iterdir() if p.is_file()).write_bytes(b"changed")
    bad = cli("bagit", "validate", good)
    assert bad.code == 1 and bad.out == ""
    assert all(line.startswith(("error: ", "warning: ")) for line in bad.err.splitlines())
    assert cli("bagit", "validate", tmp_path / "absent").code == 1
    child = subprocess.run(
        [sys.executable, "-m", "custody", "bagit", "validate", str(good)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    assert child.returncode == 1 and "ChecksumMismatch" in child.stderr
    assert json.loads(json.dumps(document))  # plain JSON


def test_copies_are_never_written_through_a_link_in_the_root(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (evidence / "case").symlink_to(elsewhere)
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = fx.ios_export_zip(outside).path
    zipped = cli("ingest", archive, "--as", "whatsapp", "--into", "case", "--root", evidence)
    assert zipped.code == 2 and "through a link" in zipped.err
    folder = fx.android_export(outside).path
    result = cli("ingest", folder, "--as", "whatsapp", "--into", "case", "--root", evidence)
    assert result.code == 1
    assert "COPY FAILED" in result.err and "is a link" in result.err
    assert list(elsewhere.iterdir()) == [], "nothing written outside the evidence root"
