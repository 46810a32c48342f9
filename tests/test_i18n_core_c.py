"""What ``custody.acquisition`` says in Arabic, and what it never says in Arabic.

Through the real CLI: ingest and catalogue errors, a WhatsApp export's missing media and a
bag's findings are said in Arabic with ``--lang ar``, with the same exit codes as in English;
``--json`` is the same in both languages; and an Arabic-language ingest writes no Arabic
into the ledger or any file custody keeps (the sentences a source reader both records and
shows are ``Said``: English in the record, Arabic on the screen).

The Arabic catalog is compiled by the lead when branches merge: a test that needs a message
the compiled catalog does not carry yet skips, saying so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bagit
import pytest
from tests.helpers import latest_items, sha256sum_tree

import chat_fixtures as fx
from conftest import Result, run_custody
from custody import i18n
from custody.errors import ExitCode

ARABIC = re.compile(r"[\u0600-\u06FF]")
ARABIC_WORD = re.compile(r"[\u0600-\u06FF]+")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")


@pytest.fixture(autouse=True)
def english_afterwards() -> Iterator[None]:
    """A run with --lang ar leaves this process speaking Arabic: set it back."""
    yield
    i18n.set_language("en")


def arabic(message: str, plural: str | None = None, n: int = 1) -> str:
    """The Arabic of a catalog message, or a skip while the catalog lacks it."""
    with i18n.speaking("ar"):
        said = i18n._(message) if plural is None else i18n.ngettext(message, plural, n)
    if said in (message, plural):
        pytest.skip(f"catalog not compiled yet: no Arabic for {message!r}")
    return said


def second_root(cli: Callable[..., Result], path: Path) -> Path:
    """Another evidence root, signed by the same key ('alice', already in the keyring)."""
    assert cli("init", path).code == 0
    return path


def tiny_png() -> bytes:
    """A valid 1x1 PNG, made here: metadata with nothing in it but what exiftool says."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def english_export(tmp: Path) -> Path:
    """An Android export in English with ASCII names only: a line before the first message
    (a problem the reader records), a photo it holds, one it names but lacks, and media the
    chat says were left out."""
    folder = tmp / "WhatsApp Chat with Sami"
    folder.mkdir(parents=True)
    chat = "\n".join(
        [
            "exported on a phone in Aleppo",
            fx._android_line(
                "12/31/23", "9:41 PM", "Sami: IMG-20231231-WA0003.png (file attached)"
            ),
            fx._android_line("1/1/24", "12:07 AM", "Sami: IMG-20240101-WA0006.jpg (file attached)"),
            fx._android_line("1/1/24", "12:15 AM", "Sami: <Media omitted>"),
        ]
    )
    (folder / "WhatsApp Chat with Sami.txt").write_text(chat + "\n", encoding="utf-8")
    (folder / "IMG-20231231-WA0003.png").write_bytes(tiny_png())
    return folder


def arabic_in_kept_files(root: Path, source_words: frozenset[str] = frozenset()) -> list[str]:
    """Files under ``root/.custody`` holding an Arabic letter: SQLite files cell by cell
    (a blob counts as text when it is all UTF-8), other files as UTF-8 text, and binary files
    by the UTF-8 bytes of Arabic letters. ``source_words``: Arabic the source itself wrote (a
    claim recorded verbatim), set aside."""

    def strip(text: str) -> str:
        for word in source_words:
            text = text.replace(word, "")
        return text

    found = []
    for path in sorted((root / ".custody").rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if data.startswith(b"SQLite format 3\x00"):
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                tables = [
                    r[0] for r in db.execute("select name from sqlite_master where type='table'")
                ]
                for table in tables:
                    for row in db.execute(f'select * from "{table}"'):  # our own tables
                        for cell in row:
                            if isinstance(cell, bytes):  # a blob: text only if all UTF-8
                                try:
                                    cell = cell.decode("utf-8")
                                except UnicodeDecodeError:
                                    continue  # digests and tree nodes
                            if isinstance(cell, str) and ARABIC.search(strip(cell)):
                                found.append(f"{path.relative_to(root)}:{table}")
            continue
        try:
            text = strip(data.decode("utf-8"))
        except UnicodeDecodeError:
            if re.search(rb"[\xd8-\xdb][\x80-\xbf]", data):
                found.append(str(path.relative_to(root)))
            continue
        if ARABIC.search(text):
            found.append(str(path.relative_to(root)))
    return found


def normalised(text: str, *roots: Path) -> Any:
    for root in roots:
        text = text.replace(str(root), "<ROOT>")
    return json.loads(_TIME.sub("<TIME>", text))


# --- errors in Arabic, exit codes as in English -------------------------------------------------


def test_a_missing_source_is_said_in_arabic_with_the_same_exit_code(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    absent = tmp_path / "card-that-is-not-there"
    said = arabic("{path}: no such file or folder").format(path=absent)
    english = cli("ingest", absent, "--root", evidence)
    translated = cli("--lang", "ar", "ingest", absent, "--root", evidence)
    assert english.code == translated.code == ExitCode.USAGE
    assert f"{absent}: no such file or folder" in english.err
    assert said in translated.err, translated.err
    assert "no such file or folder" not in translated.err
    # catalogue says the same of a path inside the root that is not there.
    inside = evidence / "not-there"
    catalogued = cli("--lang", "ar", "catalogue", inside, "--root", evidence)
    assert catalogued.code == ExitCode.USAGE
    assert arabic("{path}: no such file or folder").format(path=inside) in catalogued.err
    # A source that holds the evidence root: the path stays as typed, the rest is Arabic.
    refused = cli("--lang", "ar", "ingest", evidence.parent, "--root", evidence)
    assert refused.code == cli("ingest", evidence.parent, "--root", evidence).code
    assert (
        arabic("{path} contains the evidence root; ingest a folder beside it").format(
            path=evidence.parent
        )
        in refused.err
    )


def test_a_whatsapp_export_missing_media_is_said_in_arabic(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    (tmp_path / "export").mkdir()
    built = fx.android_export(tmp_path / "export")
    lacks = arabic("the export does not contain this file")
    english = cli(
        "ingest", built.path, "--as", "whatsapp", "--root", second_root(cli, tmp_path / "en")
    )
    translated = cli("--lang", "ar", "ingest", built.path, "--as", "whatsapp", "--root", evidence)
    assert english.code == translated.code == ExitCode.OK, translated.err
    # What happened, where, in Arabic; the names stay exactly as the export writes them.
    assert "IMG-20240101-WA0006.jpg" in translated.err
    assert lacks in translated.err
    assert "the export does not contain this file" in english.err
    assert arabic("line {line}").format(line=10) in translated.err
    source = arabic("the WhatsApp export {name} (chat file {chat})").format(
        name=repr(built.path.name), chat=f"{built.path.name}.txt"
    )
    assert source in translated.err
    assert arabic("the chat says this media was left out of the export") in translated.err
    # The records are the English ones, whatever the language of the run.
    chat = next(i for p, i in latest_items(evidence).items() if p.endswith(b".txt"))
    entry = next(p for p in chat.body["provenance"] if p["kind"] == "whatsapp")
    reasons = {m["media_name"]: m["reason"] for m in entry["missing_media"]}
    assert reasons["IMG-20240101-WA0006.jpg"] == "the export does not contain this file"
    assert (
        entry["source"]
        == f"the WhatsApp export {built.path.name!r} (chat file {built.path.name}.txt)"
    )


def test_an_arabic_ingest_writes_no_arabic_and_records_what_english_records(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    export = english_export(tmp_path / "export")
    missing = arabic("the export does not contain this file")
    result = cli("--lang", "ar", "ingest", export, "--as", "whatsapp", "--root", evidence)
    assert result.code == ExitCode.OK, result.err
    assert missing in result.err, "the run spoke Arabic"
    assert arabic_in_kept_files(evidence) == []
    assert sha256sum_tree(evidence / export.name) == sha256sum_tree(export)
    # The same export ingested in English records exactly the same claims and problems.
    other = second_root(cli, tmp_path / "english-root")
    assert cli("ingest", export, "--as", "whatsapp", "--root", other).code == ExitCode.OK

    def claims(root: Path) -> dict[bytes, Any]:
        return {p: item.body.get("provenance") for p, item in latest_items(root).items()}

    assert claims(evidence) == claims(other)
    chat = claims(evidence)[f"{export.name}/{export.name}.txt".encode()]
    problems = {p["code"]: p["message"] for p in chat[0]["problems"]}
    assert problems["TEXT_BEFORE_FIRST_MESSAGE"] == (
        "1 line before the first message header was not read"
    )


def test_an_arabic_bag_intake_records_its_warnings_in_english(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    bag = tmp_path / "bag"
    (bag / "photos").mkdir(parents=True)
    (bag / "photos" / "gate.png").write_bytes(tiny_png())
    bagit.make_bag(str(bag), {"Source-Organization": "Field team 3"}, checksums=["md5"])
    (bag / "data" / "empty").mkdir()  # a warning custody records: an empty payload folder
    arabic("empty folder in the payload: no manifest can record it")
    result = cli("--lang", "ar", "ingest", bag, "--as", "bagit", "--root", evidence)
    assert result.code == ExitCode.OK, result.err
    assert ARABIC.search(result.err)
    assert "WeakAlgorithmsOnly" in result.err  # finding names stay as they are
    assert arabic_in_kept_files(evidence) == []
    declaration = next(
        p
        for item in latest_items(evidence).values()
        for p in item.body.get("provenance", [])
        if p.get("tag_role") == "declaration"
    )
    messages = [(w["kind"], w["message"]) for w in declaration["warnings"]]
    assert ("EmptyDirectory", "empty folder in the payload: no manifest can record it") in messages
    assert any(
        kind == "WeakAlgorithmsOnly" and text.startswith("the payload manifests use only md5")
        for kind, text in messages
    ), messages


# --- what programs read: the same in every language -------------------------------------------


def test_ingest_json_is_the_same_with_and_without_lang_ar(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    card = tmp_path / "card"
    card.mkdir()
    (card / "gate.png").write_bytes(tiny_png())
    os.symlink("gate.png", card / "link.png")  # skipped, with a reason, in both languages
    export = english_export(tmp_path / "export")
    other = second_root(cli, tmp_path / "english-root")
    runs: dict[str, list[Any]] = {}
    for label, root, lang in (("en", other, []), ("ar", evidence, ["--lang", "ar"])):
        outputs = []
        for args in (["ingest", card], ["ingest", export, "--as", "whatsapp"]):
            done = cli(*lang, *args, "--root", root, "--json")
            assert not ARABIC.search(done.out + done.err), done.err
            outputs.append((done.code, normalised(done.out, root)))
        runs[label] = outputs
    assert runs["en"] == runs["ar"]
    skipped = runs["ar"][0][1]["skipped"]
    assert [s["reason"] for s in skipped] == ["symbolic link, not followed"]
    assert runs["ar"][0][0] == ExitCode.FINDINGS


def test_bagit_validate_keeps_its_line_format_and_says_the_message_in_arabic(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    bag = tmp_path / "bag"
    (bag / "photos").mkdir(parents=True)
    (bag / "photos" / "gate.png").write_bytes(tiny_png())
    bagit.make_bag(str(bag), checksums=["sha256"])
    (bag / "data" / "photos" / "gate.png").write_bytes(b"changed")
    arabic("{algorithm} is {got}, {name} says {digest}")
    english = cli("bagit", "validate", bag)
    translated = cli("--lang", "ar", "bagit", "validate", bag)
    assert english.code == translated.code == ExitCode.FINDINGS
    lines = translated.err.splitlines()
    assert lines and all(line.startswith(("error: ", "warning: ")) for line in lines)
    # The kind, the path and the rule are the same lines' format in every language.
    mismatch = next(line for line in lines if "ChecksumMismatch" in line)
    assert mismatch.startswith("error: ChecksumMismatch: data/photos/gate.png: ")
    assert mismatch.endswith("(RFC 8493 §3)")
    assert ARABIC.search(mismatch) and " is " not in mismatch and "sha256" in mismatch
    assert english.err.count("\n") == translated.err.count("\n")
    # The fast path (no Typer: what conformance harnesses start once per bag) alike.
    fast = run_custody("bagit", "validate", bag, env={"CUSTODY_LANG": "ar"})
    assert fast.returncode == ExitCode.FINDINGS
    assert [line.split(": ", 2)[:2] for line in fast.stderr.splitlines()] == [
        line.split(": ", 2)[:2] for line in english.err.splitlines()
    ]
    assert ARABIC.search(fast.stderr)
    as_json = [cli(*lang, "bagit", "validate", bag, "--json") for lang in ([], ["--lang", "ar"])]
    assert as_json[0].out == as_json[1].out and not ARABIC.search(as_json[1].out)


@pytest.mark.skipif(shutil.which("gpg") is None, reason="GnuPG (gpg) not installed")
def test_a_proofmode_bad_signature_is_said_in_arabic_and_recorded_in_english(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path
) -> None:
    from pgpy.constants import HashAlgorithm

    from test_proofmode import _make_key, make_bundle, sign

    bad_said = arabic(
        "BAD signature: {what} does not verify; the file or the signature was changed after signing"
    )
    photo = tmp_path / "IMG_0001.png"
    photo.write_bytes(tiny_png())
    key = _make_key(2048, HashAlgorithm.SHA1)
    bundle = make_bundle(key, photo)
    bundle.replace(".asc", sign(key, b"a different photograph"))
    archive = bundle.write_zip(tmp_path / "share.zip")
    other = second_root(cli, tmp_path / "english-root")
    english = cli("ingest", archive, "--as", "proofmode", "--root", other)
    translated = cli("--lang", "ar", "ingest", archive, "--as", "proofmode", "--root", evidence)
    assert english.code == translated.code == ExitCode.FINDINGS, translated.err
    assert bad_said.split("{what}")[0] in translated.err, translated.err
    assert "BAD signature" in english.err and "BAD signature" not in translated.err
    # The proof's own fields (the phone's language and locale) are Arabic: claims, verbatim.
    written = frozenset(
        word
        for data in bundle.files.values()
        for word in ARABIC_WORD.findall(data.decode("utf-8", "replace"))
    )
    assert written, "the fixture's proof carries Arabic of its own"
    assert arabic_in_kept_files(evidence, written) == []

    def proof(root: Path) -> dict[str, Any]:
        item = next(i for p, i in latest_items(root).items() if p.endswith(b"IMG_0001.png"))
        return next(p for p in item.body["provenance"] if p["kind"] == "proofmode")

    recorded = proof(evidence)
    assert recorded["checks"] == proof(other)["checks"]
    reasons = {c["name"]: c["reason"] for c in recorded["checks"]}
    assert reasons["media_signature"].startswith("BAD signature: ")
