"""The library's messages in Arabic, and nothing Arabic where custody keeps its records.

Through the real CLI (the ``cli`` fixture): an error a documenter meets (no evidence root, a
wrong passphrase) and a finding a lawyer meets (a file changed after it was catalogued) read
in Arabic with ``--lang ar``, with the exit codes of the English run; ``--json`` is the same
bytes with and without ``--lang ar``; and a whole documenter's day run with ``--lang ar``
leaves no Arabic letter in the ledger, its index or any file custody wrote, apart from what
the documenter typed.

The Arabic assertions skip while the compiled catalog does not carry these messages yet (the
lead compiles ``locale/incoming/*.po`` into ``ar/LC_MESSAGES/custody.mo`` when merging); the
file checks never skip.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import SAMPLES, Result, copy_media
from custody import i18n
from custody.errors import ExitCode

ARABIC = re.compile("[\u0600-\u06ff]+(?:[\u0600-\u06ff\\s]*[\u0600-\u06ff])?")
# What the documenter types in Arabic: the only Arabic custody may keep.
TYPED_TEXT = "شوهد الفيديو في ساحة البلدة"
TYPED_TAG = "حلب"
TYPED_HOLDER = "أمينة العلي"


@pytest.fixture(autouse=True)
def english_afterwards() -> Iterator[None]:
    """Each run sets the language of the process; later tests expect English."""
    yield
    i18n.set_language(i18n.SOURCE_LANGUAGE)


def arabic(message: str, **fields: object) -> str:
    """``message`` as the Arabic catalog says it, or skip if the catalog lacks it yet."""
    with i18n.speaking("ar"):
        said = i18n._(message)
    if said == message:
        pytest.skip("catalog not compiled yet: the Arabic catalog lacks this message")
    return said.format(**fields) if fields else said


def arabic_plural(singular: str, plural: str, n: int, **fields: object) -> str:
    with i18n.speaking("ar"):
        said = i18n.ngettext(singular, plural, n)
    if said in (singular, plural):
        pytest.skip("catalog not compiled yet: the Arabic catalog lacks this message")
    return said.format(n=n, **fields)


def error_line(result: Result) -> str:
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err  # one line, never a traceback
    return lines[0]


def small_root(cli: Callable[..., Result], tmp_path: Path) -> Path:
    """An evidence root with a photo and a text file catalogued by 'alice'."""
    root = tmp_path / "evidence"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    copy_media(SAMPLES / "misc" / "odd", root / "media")
    (root / "media" / "statement.txt").write_text("the witness statement, as written down\n")
    result = cli("catalogue", root / "media", "--root", root)
    assert result.code == 0, result.err
    return root


# --- errors a documenter meets ----------------------------------------------------------------


def test_no_evidence_root_is_said_in_arabic_with_the_same_exit_code(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "not-a-root"
    outside.mkdir()
    monkeypatch.chdir(outside)
    english = cli("log")
    assert english.code == ExitCode.NOT_A_ROOT
    assert "not inside an evidence root" in error_line(english)
    said = cli("--lang", "ar", "log")
    assert said.code == english.code == ExitCode.NOT_A_ROOT
    line = error_line(said)
    expected = arabic(
        "not inside an evidence root ({path} or any parent): run 'custody init' or pass --root",
        path=outside.resolve(),
    )
    assert expected in line
    assert "not inside an evidence root" not in line
    # The commands and options the documenter must type stay as they are typed.
    assert "'custody init'" in line and "--root" in line


def test_wrong_passphrase_is_said_in_arabic_and_writes_nothing(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "evidence"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    copy_media(SAMPLES / "misc" / "odd", root / "media")
    monkeypatch.setenv("CUSTODY_PASSPHRASE", "wrong horse battery")
    english = cli("catalogue", root / "media", "--root", root)
    assert english.code == ExitCode.KEY_ERROR
    said = cli("--lang", "ar", "catalogue", root / "media", "--root", root)
    assert said.code == english.code == ExitCode.KEY_ERROR
    line = error_line(said)
    assert arabic("wrong passphrase for key {name!r}", name="alice") in line
    assert "wrong passphrase" not in line
    assert (root / ".custody" / "ledger.jsonl").read_bytes() == b""


# --- a finding a lawyer meets -----------------------------------------------------------------


def test_a_modified_file_is_reported_in_arabic_with_the_same_exit_code(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    root = small_root(cli, tmp_path)
    statement = root / "media" / "statement.txt"
    data = bytearray(statement.read_bytes())
    data[4] ^= 0x20  # same size, other content: every digest differs
    statement.write_bytes(bytes(data))

    english = cli("verify", root)
    assert english.code == ExitCode.FINDINGS
    finding = "content differs from the record: blake3, sha256 digests differ"
    assert finding in english.out, english.out
    said = cli("--lang", "ar", "verify", root)
    assert said.code == english.code == ExitCode.FINDINGS
    expected = arabic_plural(
        "content differs from {against}: {algorithms} digest differs",
        "content differs from {against}: {algorithms} digests differ",
        2,
        against=arabic("the record"),
        algorithms="blake3, sha256",
    )
    assert expected in said.out
    assert "content differs" not in said.out
    # What identifies the finding stays as it is: its class, the path, the digests.
    assert "FILE_MODIFIED" in said.out and "media/statement.txt" in said.out


def test_verify_json_with_findings_is_the_same_bytes_in_every_language(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    root = small_root(cli, tmp_path)
    (root / "media" / "statement.txt").write_text("THE WITNESS STATEMENT, AS WRITTEN DOWN\n")
    (root / "media" / "added later.txt").write_text("nobody catalogued this\n")

    first = cli("verify", root, "--json")
    in_arabic = cli("--lang", "ar", "verify", root, "--json")
    again = cli("verify", root, "--json")
    assert first.code == in_arabic.code == again.code == ExitCode.FINDINGS
    assert in_arabic.out == again.out == first.out
    document = in_arabic.json()
    codes = {f["code"] for f in document["findings"]}
    assert {"FILE_MODIFIED", "FILE_UNEXPECTED"} <= codes
    assert not ARABIC.search(in_arabic.out)
    assert not ARABIC.search(in_arabic.err)


# --- nothing Arabic where custody keeps things --------------------------------------------------


def _arabic_in_file(path: Path) -> list[str]:
    """The Arabic runs in a file custody wrote (text, or the text values of its SQLite index)."""
    data = path.read_bytes()
    if data.startswith(b"SQLite format 3\0"):
        found: list[str] = []
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master")]
            for table in tables:
                if not re.fullmatch(r"\w+", table):
                    continue
                try:
                    rows = db.execute(f"SELECT * FROM {table}").fetchall()
                except sqlite3.DatabaseError:
                    continue  # an index, not a table
                for row in rows:
                    for value in row:
                        if isinstance(value, str):
                            found += ARABIC.findall(value)
                        elif isinstance(value, bytes):
                            # Names are kept as bytes; raw digests are not text at all.
                            with contextlib.suppress(UnicodeDecodeError):
                                found += ARABIC.findall(value.decode("utf-8"))
        return found
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # Binary files custody writes hold digests, never words; a new kind is named here.
        pytest.fail(f"{path} is neither text nor custody's SQLite index: check it by hand")
    return ARABIC.findall(text)


def test_a_day_in_arabic_leaves_no_arabic_in_the_ledger_or_any_file_custody_wrote(
    cli: Callable[..., Result], tmp_path: Path, env: Path
) -> None:
    root = tmp_path / "evidence"
    day = [
        ("init", root),
        ("keys", "generate", "--name", TYPED_HOLDER, "--handle", "amina"),
        ("keys", "generate", "--name", "bob", "--role", "custodian"),
    ]
    for args in day:
        result = cli("--lang", "ar", *args)
        assert result.code == 0, result.err
    copy_media(SAMPLES / "misc" / "odd", root / "media")
    (root / "media" / "statement.txt").write_text("the witness statement\n")
    photo = "media/Café Témoin 04.jpg"
    steps: list[tuple[object, ...]] = [
        ("catalogue", root / "media", "--root", root, "--key", "amina", "--collector", "Amina"),
        ("event", "note", root / photo, "--text", TYPED_TEXT, "--key", "amina", "--root", root),
        ("event", "transfer", root / photo, "--to", "counsel", "--reason", "for the filing",
         "--key", "amina", "--root", root),
        ("tag", root / "media" / "statement.txt", "--tag", TYPED_TAG, "--key", "amina",
         "--root", root),
        ("sign", "--root", root, "--key", "amina"),
        ("event", "copy", root / "media" / "statement.txt", "--dest", tmp_path / "copies",
         "--key", "amina", "--root", root),
        ("sign", "--root", root, "--key", "amina"),
    ]  # fmt: skip
    for args in steps:
        result = cli("--lang", "ar", *args)
        assert result.code == 0, (args, result.err)
    # Verifying remembers the checkpoint in the custody home; a failed one changes nothing.
    assert cli("--lang", "ar", "verify", root).code in (ExitCode.OK, ExitCode.UNCONFIRMED)
    (root / "media" / "statement.txt").write_text("changed\n")
    failed = cli("--lang", "ar", "verify", root)
    assert failed.code == ExitCode.FINDINGS
    if _catalog_has("size differs from the record"):
        # The run spoke Arabic: this is not a run that quietly stayed English.
        assert arabic("size differs from the record") in failed.out

    written = [
        p
        for base in (root / ".custody", env, tmp_path / "copies")
        for p in sorted(base.rglob("*"))
        if p.is_file() and not p.is_symlink()
    ]
    assert root / ".custody" / "ledger.jsonl" in written
    typed = {TYPED_TEXT, TYPED_TAG, TYPED_HOLDER}
    stray = {
        f"{p}: {run!r}"
        for p in written
        for run in _arabic_in_file(p)
        if not any(run in value for value in typed)
    }
    assert not stray, "Arabic custody wrote on its own:\n" + "\n".join(sorted(stray))
    # And what was typed is kept exactly as typed.
    ledger = (root / ".custody" / "ledger.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in ledger.splitlines()]
    bodies = [r["signed"]["body"] for r in records]
    assert any(b.get("text") == TYPED_TEXT for b in bodies)
    assert any(TYPED_TAG in (b.get("tags") or []) for b in bodies)
    assert any(b.get("holder") == TYPED_HOLDER for b in bodies)


def _catalog_has(message: str) -> bool:
    with i18n.speaking("ar"):
        return i18n._(message) != message
