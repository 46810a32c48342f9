"""The documenter's commands in Arabic (issue 18): init, keys, ingest, catalogue, log, show,
history, tag, event, vault, case, exhibit, agent, sign, repair and ``verify --fast``.

Each test runs the real CLI with ``--lang ar`` and looks for the Arabic of a message that
command prints, taken from the compiled catalog (so the test follows the translation, not a
copy of it), and checks the English sentence is gone. Until the lead compiles the catalogs
with these messages, the tests skip ("catalog not compiled yet"). ``--json`` is English in
every language: the JSON of init, catalogue, log, keys list and ``verify --fast`` is
compared between an English run and an Arabic one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import SAMPLES, Result, copy_media, run_custody
from custody import i18n

Message = str | tuple[str, str]


@pytest.fixture(autouse=True)
def _english_afterwards() -> Iterator[None]:
    """A run with --lang ar leaves the process speaking Arabic: later tests expect English."""
    yield
    i18n.set_language("en")


def arabic(message: Message, n: int | None = None) -> str:
    """The Arabic of ``message`` (for ``n``, if it has plural forms); skips when the compiled
    catalog does not have it yet."""
    with i18n.speaking("ar"):
        if isinstance(message, tuple):
            assert n is not None
            text = i18n.ngettext(message[0], message[1], n)
            english = message[0] if n == 1 else message[1]
        else:
            text = i18n._(message)
            english = message
    if text == english:
        pytest.skip(f"catalog not compiled yet: no Arabic for {english[:60]!r}")
    return text


def words(text: str) -> str:
    """The longest stretch of a message's own words: no {field}, no [markup]."""
    parts = re.split(r"\{[^}]*\}|\[[^\]]*\]", text)
    return max((p.strip() for p in parts), key=len)


def flat(text: str) -> str:
    """Whitespace made single spaces (prose is wrapped at the terminal's width)."""
    return " ".join(text.split())


def said(message: Message, output: str, n: int | None = None) -> None:
    """``output`` carries the Arabic of ``message``, and not its English."""
    translated = arabic(message, n)
    assert flat(words(translated)) in flat(output), (words(translated), output)
    english = message if isinstance(message, str) else message[0 if n == 1 else 1]
    assert flat(words(english)) not in flat(output), (words(english), output)


def has_arabic(text: str) -> bool:
    return re.search(r"[\u0600-\u06FF]", text) is not None


def card(tmp_path: Path, name: str = "card") -> Path:
    """A copy of the shipped sample media, as a memory card outside the root."""
    return copy_media(SAMPLES, tmp_path / name)


def first_item(cli: Callable[..., Result], root: Path) -> str:
    """The record number of the first item in ``root``'s ledger."""
    records = cli("log", "--root", root, "--type", "item", "--json").json()["records"]
    return str(records[0]["seq"])


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


# ---- init ------------------------------------------------------------------------------


def test_init_in_arabic_and_its_json_is_the_english_one(
    tmp_path: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    english = cli("init", tmp_path / "b", "--json")
    in_arabic = cli("--lang", "ar", "init", tmp_path / "c", "--json")
    monkeypatch.setenv("CUSTODY_LANG", "ar")
    from_environment = cli("init", tmp_path / "d", "--json")
    monkeypatch.delenv("CUSTODY_LANG")
    assert english.code == in_arabic.code == from_environment.code == 0
    for other, name in ((in_arabic, "c"), (from_environment, "d")):
        assert other.out.replace(str(tmp_path / name), str(tmp_path / "b")) == english.out
        assert not has_arabic(other.out + other.err)

    made = cli("--lang", "ar", "init", tmp_path / "a")
    assert made.code == 0, made.err
    said("Initialised evidence root [bold]{path}[/] (digests: {digests})", made.err)
    assert str(tmp_path / "a") in made.err  # the path is printed as it is, copy-pasteable


# ---- keys and the passphrase -------------------------------------------------------------


def test_keys_generate_list_export_in_arabic(
    tmp_path: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = cli("--lang", "ar", "keys", "generate", "--name", "Amina Haddad")
    assert made.code == 0, made.err
    english = cli("keys", "list", "--json")
    assert cli("--lang", "ar", "keys", "list", "--json").out == english.out
    said("Created key [bold]{name}[/] ({role}) for {holder}", made.err)
    said("Key file:", made.out)
    said("(encrypted with your passphrase; never share this file)", made.out)
    # The steps keep their commands exactly, so they can be copied.
    assert "custody keys export amina-haddad --private --out /media/usb/amina-haddad.key" in (
        made.out
    )
    assert "custody trust add <fingerprint>" in made.out
    assert "Back up the key" not in made.out

    listed = cli("--lang", "ar", "keys", "list")
    assert listed.code == 0
    header = listed.out.splitlines()[0]  # a pipe: plain lines, the headings first
    assert header.split(" | ") == [
        arabic(h) for h in ("handle", "holder", "role", "fingerprint", "created", "key file")
    ]
    assert "amina-haddad | Amina Haddad | documenter" in listed.out

    backup = tmp_path / "backup.key"
    exported = cli("--lang", "ar", "keys", "export", "amina-haddad", "--private", "--out", backup)
    assert exported.code == 0
    said("encrypted backup of {name} written to {path} (mode 0600)", exported.err)
    public = cli("--lang", "ar", "keys", "export", "amina-haddad")
    assert public.out.startswith("-----BEGIN PUBLIC KEY-----")  # what a program reads: as is

    # No terminal and no CUSTODY_PASSPHRASE: the one-line error is in Arabic too.
    monkeypatch.delenv("CUSTODY_PASSPHRASE")
    refused = cli("--lang", "ar", "keys", "generate", "--name", "bob")
    assert refused.code != 0 and len(refused.err.strip().splitlines()) == 1
    said("no passphrase: set CUSTODY_PASSPHRASE or run in a terminal", refused.err)
    assert words(arabic("custody: error: {message}")) in refused.err


# ---- ingest, catalogue and the JSON they print ---------------------------------------------


def test_ingest_and_catalogue_in_arabic(
    tmp_path: Path, evidence: Path, cli: Callable[..., Result]
) -> None:
    source = card(tmp_path)
    count = len(files_under(source))
    ingested = cli("--lang", "ar", "ingest", source, "--into", "card-01", "--root", evidence)
    assert ingested.code == 0, ingested.err
    said(
        ("Copied {n} file ({size}), {present} already present",
         "Copied {n} files ({size}), {present} already present"),
        ingested.err,
        count,
    )  # fmt: skip
    said("Catalogue summary", ingested.out)
    said("new items", ingested.out)
    # The same card again: nothing copied, and the files already held are named.
    again = cli("--lang", "ar", "ingest", source, "--into", "card-02", "--root", evidence)
    assert again.code == 0, again.err
    said(
        ("[bold yellow]ALREADY IN THE EVIDENCE ROOT[/]: {n} file ({size}) has the same content "
         "as an earlier record, so it was not copied again (--again copies it anyway):",
         "[bold yellow]ALREADY IN THE EVIDENCE ROOT[/]: {n} files ({size}) have the same "
         "content as earlier records, so they were not copied again (--again copies them "
         "anyway):"),
        again.err,
        count,
    )  # fmt: skip

    # A folder already in the root, catalogued in place.
    inside = copy_media(SAMPLES, evidence / "media")
    catalogued = cli("--lang", "ar", "catalogue", inside, "--root", evidence)
    assert catalogued.code == 0, catalogued.err
    said("duplicates of earlier content", catalogued.out)
    # A usage error of the command is Arabic too.
    refused = cli("--lang", "ar", "ingest", source, "--proofmode-key", "AB", "--root", evidence)
    assert refused.code == 2
    said("--proofmode-key applies to --as proofmode only", refused.err)


def test_catalogue_and_log_json_are_the_same_in_arabic(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    assert cli("keys", "generate", "--name", "alice").code == 0
    roots = {}
    for lang in ("en", "ar"):
        root = tmp_path / f"root-{lang}"
        assert cli("init", root).code == 0
        copy_media(SAMPLES, root / "media")
        roots[lang] = root
    english = cli("catalogue", roots["en"] / "media", "--root", roots["en"], "--json")
    in_arabic = cli(
        "--lang", "ar", "catalogue", roots["ar"] / "media", "--root", roots["ar"], "--json"
    )
    assert english.code == in_arabic.code == 0, in_arabic.err
    assert english.json()["added"] > 0
    # (The samples' own names are partly Arabic: equality with the English run is the test.)
    assert in_arabic.out.replace(str(roots["ar"]), str(roots["en"])) == english.out
    assert in_arabic.err == english.err == ""

    # The same ledger read twice: the JSON is byte for byte the same in both languages.
    log_en = cli("log", "--root", roots["ar"], "--json")
    log_ar = cli("--lang", "ar", "log", "--root", roots["ar"], "--json")
    assert log_en.code == log_ar.code == 0
    assert log_ar.out == log_en.out
    # And across the two roots, apart from times (and what they make: line hashes, roots).
    other = cli("--lang", "ar", "log", "--root", roots["en"], "--json").json()["records"]
    mine = log_ar.json()["records"]
    assert [(r["seq"], r["type"], r["signer"]) for r in other] == [
        (r["seq"], r["type"], r["signer"]) for r in mine
    ]
    items = [r["summary"] for r in mine if r["type"] == "item"]
    assert items == [r["summary"] for r in other if r["type"] == "item"]

    # The text of log: headings in Arabic, the rows' facts as they are.
    text = cli("--lang", "ar", "log", "--root", roots["ar"])
    assert text.code == 0
    assert text.out.splitlines()[0].split(" | ") == [
        "#",
        arabic("type"),
        arabic("time (UTC)"),
        arabic("signer"),
        arabic("summary"),
    ]


# ---- reading the ledger: show, history ------------------------------------------------------


def test_show_and_history_in_arabic(
    tmp_path: Path, evidence: Path, cli: Callable[..., Result]
) -> None:
    copy_media(SAMPLES, evidence / "media")
    assert cli("catalogue", evidence / "media", "--root", evidence).code == 0
    first = cli("log", "--root", evidence, "--type", "item", "--json").json()["records"][0]
    shown = cli("--lang", "ar", "show", str(first["seq"]), "--root", evidence)
    assert shown.code == 0, shown.err
    title = arabic("Record {seq} ({type})").format(seq=first["seq"], type="item")
    assert shown.out.splitlines()[0] == title
    said("previous line SHA-256", shown.out)
    assert "\npath: " in shown.out  # a field of the record keeps its name

    history = cli("--lang", "ar", "history", str(first["seq"]), "--root", evidence)
    assert history.code == 0, history.err
    lines = history.out.splitlines()
    assert lines[1].split(" | ")[1:] == [
        arabic("time (UTC)"),
        arabic("what"),
        arabic("by"),
        arabic("detail"),
    ]
    assert f" | {arabic('catalogued')} | " in lines[2]

    refused = cli("--lang", "ar", "history", "--root", evidence)
    assert refused.code == 2
    said("name one item: ITEM, or select items with --tag, --incident, --exhibit", refused.err)


# ---- tag, events, vault ----------------------------------------------------------------------


def test_tag_events_and_vault_in_arabic(
    tmp_path: Path, evidence: Path, cli: Callable[..., Result]
) -> None:
    copy_media(SAMPLES, evidence / "media")
    assert cli("catalogue", evidence / "media", "--root", evidence).code == 0
    item = first_item(cli, evidence)

    tagged = cli("--lang", "ar", "tag", item, "--tag", "march", "--root", evidence)
    assert tagged.code == 0, tagged.err
    prefix = arabic("record {seq}: {summary}").split("{summary}")[0]
    seq = tagged.out.split(":")[0].split()[-1]
    assert tagged.out.startswith(prefix.format(seq=seq))

    refused = cli("--lang", "ar", "event", "transfer", item, "--root", evidence)
    assert refused.code == 2
    said("say who receives custody with --to NAME", refused.err)
    moved = cli("--lang", "ar", "event", "transfer", item, "--to", "Lawyer", "--root", evidence)
    assert moved.code == 0, moved.err
    assert not moved.out.startswith("record ")

    vault = tmp_path / "vault"
    copied = cli("--lang", "ar", "vault", "copy", vault, "--root", evidence)
    assert copied.code == 0, copied.err
    count = len(cli("log", "--root", evidence, "--type", "item", "--json").json()["records"])
    said(
        ("{n} item copied to {dest} and re-read; ledger of {records} records written; "
         "check it with: custody verify --root {dest}",
         "{n} items copied to {dest} and re-read; ledger of {records} records written; "
         "check it with: custody verify --root {dest}"),
        copied.out,
        count,
    )  # fmt: skip
    assert f"custody verify --root {vault}" in copied.out  # the command stays whole


# ---- case and exhibits -----------------------------------------------------------------------


def test_case_and_exhibits_in_arabic(
    tmp_path: Path, evidence: Path, cli: Callable[..., Result]
) -> None:
    nothing = cli("--lang", "ar", "case", "show", "--root", evidence)
    assert nothing.code == 0
    said("No case recorded: 'custody case set --name NAME ...'", nothing.out)
    made = cli("--lang", "ar", "case", "set", "--name", "Douma 2018", "--number", "ICC-01",
               "--root", evidence)  # fmt: skip
    assert made.code == 0, made.err
    assert "Douma 2018" in made.out and has_arabic(made.out)
    shown = cli("--lang", "ar", "case", "show", "--root", evidence)
    assert f"{arabic('name')}: Douma 2018" in shown.out
    assert f"{arabic('number')}: ICC-01" in shown.out
    said("from signed record {record} (key {signer})", shown.out)

    copy_media(SAMPLES, evidence / "media")
    assert cli("catalogue", evidence / "media", "--root", evidence).code == 0
    item = first_item(cli, evidence)
    given = cli("--lang", "ar", "exhibit", "assign", item, "--root", evidence)
    assert given.code == 0, given.err
    said("exhibit {label}: item record {item} {path} (record {record})", given.out)
    listed = cli("--lang", "ar", "exhibit", "list", "--root", evidence)
    said(
        "exhibit {label} | item record {item} | {path} | sha256 {sha256} | "
        "given at record {record}",
        listed.out,
    )
    assert "P-1" in listed.out


# ---- agent -----------------------------------------------------------------------------------


def test_agent_in_arabic(cli: Callable[..., Result]) -> None:
    english = cli("agent", "status", "--json")
    assert cli("--lang", "ar", "agent", "status", "--json").out == english.out
    status = cli("--lang", "ar", "agent", "status")
    assert status.code == 0
    said("No agent is running: signing commands ask for the passphrase.", status.out)
    stopped = cli("--lang", "ar", "agent", "stop")
    assert stopped.code == 0
    said("No agent is running.", stopped.out)
    none = cli("--lang", "ar", "agent", "start")
    assert none.code != 0
    said("no signing key yet: run 'custody keys generate --name NAME'", none.err)


# ---- the ledger itself: sign, repair ---------------------------------------------------------


def test_sign_and_repair_in_arabic(evidence: Path, cli: Callable[..., Result]) -> None:
    signed = cli("--lang", "ar", "sign", "--root", evidence)
    assert signed.code == 0, signed.err
    last = cli("log", "--root", evidence, "--last", "1", "--json").json()["records"][-1]
    assert last["type"] == "checkpoint"
    size = cli("show", str(last["seq"]), "--root", evidence, "--json").json()["record"]["signed"][
        "body"
    ]["tree_size"]
    said(
        ("checkpoint record {seq}: {n} record, root {root}",
         "checkpoint record {seq}: {n} records, root {root}"),
        signed.out,
        size,
    )  # fmt: skip
    fine = cli("--lang", "ar", "repair", "--root", evidence)
    assert fine.code == 0
    said("Nothing to repair: the ledger ends with a complete record.", fine.out)


# ---- verify --fast, through Typer and through the fast path ---------------------------------


def test_fast_fixity_in_arabic_on_both_doors(
    tmp_path: Path, evidence: Path, cli: Callable[..., Result], env: Path
) -> None:
    from custody.cli.fixity import FAST_NOTICE

    copy_media(SAMPLES, evidence / "media")
    assert cli("catalogue", evidence / "media", "--root", evidence).code == 0
    # What programs read first: the same JSON in both languages, through both doors.
    english = cli("verify", "--fast", "--root", evidence, "--json")
    assert cli("--lang", "ar", "verify", "--fast", "--root", evidence, "--json").out == (
        english.out
    )
    assert json.loads(english.out)["notice"] == FAST_NOTICE
    quick_json = run_custody(
        "verify", "--fast", evidence, "--json",
        env={"CUSTODY_LANG": "ar", "CUSTODY_HOME": str(env)},
    )  # fmt: skip
    assert quick_json.stdout == english.out

    checked = cli("--lang", "ar", "verify", "--fast", "--root", evidence)
    assert checked.code == 0, checked.err
    files = len(files_under(evidence / "media"))
    said(
        ("FIXITY OK (fast check): {n} file matches its recorded digests in {root}",
         "FIXITY OK (fast check): {n} files match their recorded digests in {root}"),
        checked.out,
        files,
    )  # fmt: skip
    notice = arabic(FAST_NOTICE)
    assert flat(checked.out).endswith(flat(notice))
    # Never the verdict of a full verification, in either language (docs/ar/glossary.md).
    assert "VERIFIED" not in checked.out and "تمّ التحقق" not in checked.out

    # The fast path answers before Typer loads; CUSTODY_LANG chooses its language.
    quick = run_custody(
        "verify", "--fast", evidence, env={"CUSTODY_LANG": "ar", "CUSTODY_HOME": str(env)}
    )
    assert quick.returncode == 0, quick.stderr
    assert flat(quick.stdout).endswith(flat(notice))


def test_fast_path_errors_in_arabic(tmp_path: Path, env: Path) -> None:
    missing = tmp_path / "no-root-here"
    missing.mkdir()
    quick = run_custody(
        "verify", "--fast", missing, env={"CUSTODY_LANG": "ar", "CUSTODY_HOME": str(env)}
    )
    assert quick.returncode != 0
    prefix = words(arabic("custody: error: {message}"))
    assert quick.stderr.startswith(prefix), quick.stderr
    assert len(quick.stderr.strip().splitlines()) == 1


def test_messages_with_fields_keep_every_field_in_arabic() -> None:
    """Every message of these modules, translated, still fills every field it names (a
    missing or misspelled field would raise at run time or drop a path)."""
    from babel.messages.extract import extract_from_file

    folder = Path(__file__).resolve().parents[1] / "src" / "custody" / "cli"
    names = ("acquire", "keys", "ledger", "events", "case", "agent", "inspect", "setup",
             "common", "fastpath", "fixity")  # fmt: skip
    field = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
    arabic("Catalogue summary")  # skips until the catalog is compiled with these messages
    checked = 0
    with i18n.speaking("ar"):
        for name in names:
            found = extract_from_file(
                "python", os.fspath(folder / f"{name}.py"),
                keywords={"_": None, "ngettext": (1, 2), "N_": None},
            )  # fmt: skip
            for _line, message, _comments, _context in found:
                if isinstance(message, tuple):
                    counts = (0, 1, 2, 3, 11, 100)
                    forms = [i18n.ngettext(message[0], message[1], n) for n in counts]
                    wanted = set(field.findall(message[1]))
                else:
                    forms = [i18n._(message)]
                    wanted = set(field.findall(message))
                for form in forms:
                    got = set(field.findall(form))
                    assert got <= wanted, (message, form)
                    assert wanted - got <= {"n"}, (message, form)
                    assert re.findall(r"\[[^\]]*\]", form) == re.findall(
                        r"\[[^\]]*\]", message if isinstance(message, str) else message[0]
                    ), (message, form)  # rich markup: the same tags, no new brackets
                    values = {f: "x" for f in wanted}
                    form.format(**values)
                    checked += 1
    assert checked > 100
