"""Issue 18's proof that a documenter can work entirely in Arabic, and that nothing a program
or a court file reads changes with the language.

One documenter's whole day runs as real ``custody`` processes with ``--lang ar``: init,
a key, ingest of the shipped sample card, a timestamp from the loopback authority
(tests/tsa.py), a custody event, verify, export, verify of the bundle, and the Arabic
report. Then:

* nothing it printed is an English message of the catalog (every message id of
  ``custody.pot`` is turned into a pattern, its ``{fields}`` matching anything, and searched
  for in the output), and no other run of English words is left (a message never marked);
* the same flow with ``--json``, in English and with ``--lang ar``, prints byte-identical
  JSON once times, signatures, tree heads and the two roots' paths are set aside;
* nothing custody wrote - the ledger, its index, the bundle - holds an Arabic letter,
  except the bundle's Arabic instructions and the report, which are Arabic on purpose.

The catalogs themselves are checked by tests/test_i18n_catalogs.py (``msgfmt --check``).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from tests.tsa import TSA, running_tsa

from conftest import PASSPHRASE, REPO, SAMPLES

TEMPLATE = REPO / "src" / "custody" / "locale" / "custody.pot"
FIELD = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*(?:[!:][^}]*)?\}")
ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
ITEM = "card-01/sdcard/DCIM/Camera/VID_20201023_202729.mp4"
# What the documenter types (names, places) and what is English by design (glossary:
# finding class names, command names) may appear in Arabic output.
TYPED = ("Amina Haddad", "Legal team", "Samsung SM-G975F")
# Files that are Arabic on purpose.
ARABIC_BY_DESIGN = {"HOW-TO-VERIFY.ar.txt"}


@dataclass
class Step:
    argv: list[str]
    code: int
    out: str
    err: str


class Runner:
    """Runs the real console command in a subprocess with one home and one TSA."""

    def __init__(self, home: Path, cwd: Path, tsa: TSA) -> None:
        self.home, self.cwd, self.tsa = home, cwd, tsa
        self.steps: list[Step] = []

    def __call__(self, *args: str | os.PathLike[str], ok: tuple[int, ...] = (0,)) -> Step:
        argv = [os.fspath(a) for a in args]
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CUSTODY_ROOT", "CUSTODY_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES")
        }
        env.update(
            CUSTODY_HOME=str(self.home),
            CUSTODY_PASSPHRASE=PASSPHRASE,
            LANG="C.UTF-8",
            PYTHONPATH=str(REPO / "src"),
            COLUMNS="80",
        )
        done = subprocess.run(
            [sys.executable, "-m", "custody", *argv],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        step = Step(argv, done.returncode, done.stdout, done.stderr)
        self.steps.append(step)
        assert done.returncode in ok, f"{argv}: exit {done.returncode}\n{done.stderr[-3000:]}"
        return step


def _configure_tsa(root: Path, tsa: TSA) -> None:
    import tomllib

    import tomli_w

    config = root / ".custody" / "config.toml"
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    data["timestamps"] = {"tsa": [tsa.url], "min_success": 1, "timeout": 10.0}
    config.write_text(tomli_w.dumps(data), encoding="utf-8")


def documenter_day(run: Runner, root: Path, lang: list[str], *, json_out: bool) -> list[Step]:
    """The flow of issue 18's "done when", in one language; returns the steps' output."""
    j = ["--json"] if json_out else []
    first = len(run.steps)
    run(*lang, "init", root, *j)
    _configure_tsa(root, run.tsa)
    if not json_out or not any(run.home.joinpath("keys").glob("*")):
        run(*lang, "keys", "generate", "--name", "Amina Haddad", *j)
    card = run.cwd / f"media-{root.name}" / "sdcard"
    shutil.copytree(SAMPLES / "field-dump-01", card)
    common = ["--root", root]
    run(*lang, "ingest", card, "--into", "card-01", "--collector",
        "Amina Haddad", "--source", "Samsung SM-G975F", *common, *j)  # fmt: skip
    run(*lang, "event", "transfer", ITEM, "--to", "Legal team", "--reason", "handover",
        *common, *j)  # fmt: skip
    run(*lang, "timestamp", "--tsa-root", run.tsa.root_pem, *common, *j)
    run(*lang, "verify", "--tsa-root", run.tsa.root_pem, *common, *j)
    bundle = run.cwd / f"bundle-{root.name}"
    run(*lang, "export", "--all", "--out", bundle, *common, *j)
    run(*lang, "verify", bundle, "--tsa-root", run.tsa.root_pem, *j)
    if not json_out:
        run("report", bundle, "--lang", "ar", "--out", run.cwd / f"report-{root.name}.html")
    return run.steps[first:]


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TSA]:
    with running_tsa(tmp_path_factory.mktemp("tsa"), "ok", include_chain=True) as server:
        yield server


@pytest.fixture(scope="module")
def arabic_day(tmp_path_factory: pytest.TempPathFactory, tsa: TSA) -> tuple[Runner, Path]:
    work = tmp_path_factory.mktemp("arabic-day")
    run = Runner(work / "home", work, tsa)
    documenter_day(run, work / "root", ["--lang", "ar"], json_out=False)
    return run, work


def _sample_names() -> list[str]:
    """The sample card's own file names (some Arabic): evidence, not custody's words."""
    card = SAMPLES / "field-dump-01"
    forms = {
        form
        for path in card.rglob("*")
        for part in path.relative_to(card).parts
        for form in (part, unicodedata.normalize("NFC", part), unicodedata.normalize("NFD", part))
    }
    return sorted(forms, key=len, reverse=True)


def _without_sample_names(text: str) -> str:
    for name in _sample_names():
        text = text.replace(name, "")
    return text


def _sqlite_text(path: Path) -> str:
    """Every text cell of a SQLite file (the ledger index), read-only."""
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cells: list[str] = []
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                cells.extend(v for v in row if isinstance(v, str))
        return "\n".join(cells)
    finally:
        db.close()


def _catalog_patterns() -> list[tuple[str, re.Pattern[str]]]:
    with TEMPLATE.open("rb") as handle:
        catalog = read_po(handle)
    patterns: list[tuple[str, re.Pattern[str]]] = []
    for message in catalog:
        for text in message.id if isinstance(message.id, tuple) else (message.id,):
            if not text:
                continue
            for line in text.splitlines():
                chunks = [c for c in FIELD.split(line)]
                literal = max((c.strip() for c in chunks), key=len, default="")
                # Only what can only be this message: two words of English at least.
                if len(re.findall(r"[A-Za-z]{2,}", literal)) < 2:
                    continue
                body = ".*?".join(re.escape(c) for c in chunks)
                patterns.append((line, re.compile(body)))
    return patterns


def _english_runs(text: str) -> list[str]:
    """Runs of four or more English words: a sentence no catalog message covers."""
    for typed in TYPED:
        text = text.replace(typed, " ")
    text = re.sub(r"`[^`]*`|'[^']*'|\"[^\"]*\"", " ", text)  # quoted commands and values
    text = re.sub(r"\bcustody( [a-z-]+)*", " ", text)  # commands as typed
    words = re.split(r"(\s+)", text)
    runs: list[str] = []
    current: list[str] = []
    for word in words:
        if word.isspace() or not word:
            continue
        if re.fullmatch(r"[A-Za-z]{2,}[,.:;]?", word) and not word.isupper():
            current.append(word)
            continue
        if len(current) >= 4:
            runs.append(" ".join(current))
        current = []
    if len(current) >= 4:
        runs.append(" ".join(current))
    return runs


def test_the_arabic_day_prints_no_english_message(arabic_day: tuple[Runner, Path]) -> None:
    run, _work = arabic_day
    printed = "\n".join(step.out + "\n" + step.err for step in run.steps[:-1])  # not the HTML
    assert ARABIC.search(_without_sample_names(printed)), "the Arabic run printed no Arabic"
    left = sorted(
        {line for line, pattern in _catalog_patterns() for hit in [pattern.search(printed)] if hit}
    )
    assert not left, "English catalog messages printed in an Arabic run:\n" + "\n".join(left)
    runs = sorted({r for step in run.steps[:-1] for r in _english_runs(step.out + step.err)})
    assert not runs, "English sentences in an Arabic run (not marked?):\n" + "\n".join(runs)


def test_the_arabic_day_wrote_no_arabic_into_what_programs_and_courts_read(
    arabic_day: tuple[Runner, Path],
) -> None:
    _run, work = arabic_day
    names = _sample_names()
    written = [work / "root" / ".custody", work / "bundle-root"]
    offenders = []
    for top in written:
        for path in sorted(top.rglob("*")):
            if not path.is_file() or path.name in ARABIC_BY_DESIGN:
                continue
            if top.name.startswith("bundle") and path.relative_to(top).parts[0] == "data":
                continue  # the evidence itself
            data = path.read_bytes()
            if data.startswith(b"SQLite format 3\x00"):
                text = _sqlite_text(path)
            else:
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    continue  # DER, timestamp tokens: binary formats custody does not word
            for name in names:
                text = text.replace(name, "")
            if ARABIC.search(text):
                offenders.append(str(path.relative_to(work)))
    assert not offenders, f"Arabic written into files programs read: {offenders}"


def test_the_arabic_report_is_arabic(arabic_day: tuple[Runner, Path]) -> None:
    _run, work = arabic_day
    html = (work / "report-root.html").read_text(encoding="utf-8")
    assert re.search(r"<html[^>]*\bdir=\"rtl\"", html) and re.search(r"\blang=\"ar\"", html)
    assert len(ARABIC.findall(html)) > 500


_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
_SECRET_LOOKING = re.compile(r"[A-Za-z0-9+/=_-]{40,}")


def _normalised(text: str, root: Path, cwd: Path) -> object:
    """JSON with what must differ between two runs set aside: times, the folders of the
    two runs, and values that are digests of timed content (signatures, record hashes,
    tree heads, token bytes). File digests are equal in both runs and would survive, but
    are set aside with the rest: the two runs' keys differ, so do their records."""
    text = text.replace(str(root), "<ROOT>").replace(str(cwd), "<WORK>")
    text = _TIME.sub("<TIME>", text)
    text = _SECRET_LOOKING.sub("<DIGEST>", text)
    text = re.sub(r"(?:[0-9a-f]{4} ){3,}[0-9a-f]{4}", "<FINGERPRINT>", text)  # as people read them
    value = json.loads(text)

    def scrub(node: object) -> object:
        if isinstance(node, dict):
            return {
                k: ("<SECONDS>" if k in ("seconds", "elapsed", "duration") else scrub(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [scrub(v) for v in node]
        return node

    return scrub(value)


def test_json_is_the_same_in_arabic_and_english(tmp_path: Path, tsa: TSA) -> None:
    outputs: dict[str, list[object]] = {}
    for label, lang in (("en", []), ("ar", ["--lang", "ar"])):
        work = tmp_path / label
        work.mkdir()
        run = Runner(work / "home", work, tsa)
        steps = documenter_day(run, work / "root", lang, json_out=True)
        outputs[label] = [
            ([a.replace(str(work), "<WORK>") for a in step.argv[len(lang):]], step.code,
             _normalised(step.out, work / "root", work))
            for step in steps
        ]  # fmt: skip
        assert all(not ARABIC.search(_without_sample_names(s.out + s.err)) for s in steps), (
            "a --json run printed Arabic"
        )
    assert len(outputs["en"]) == len(outputs["ar"])
    for english, arabic in zip(outputs["en"], outputs["ar"], strict=True):
        if english != arabic:
            diff = difflib.unified_diff(
                json.dumps(english, indent=1, ensure_ascii=False).splitlines(),
                json.dumps(arabic, indent=1, ensure_ascii=False).splitlines(),
                "English", "--lang ar", lineterm="",
            )  # fmt: skip
            pytest.fail("--json differs with --lang ar:\n" + "\n".join(diff))
