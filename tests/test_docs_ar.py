"""docs/ar/: the Arabic quick start and verification guide, run as written.

Every ```sh / ```bash block of docs/ar/quickstart.md, then of docs/ar/verify-guide.md, is
run in order by one bash per document (``set -e -o pipefail``): the documenter's walk-through
in a temporary home of its own, then the lawyer's in another, on the bundle and public key
the documenter handed over. ``custody`` is the real console command found on PATH, as a
reader's shell would find it (tests/test_readme.py's approach).

What is not literally the reader's machine, and why:

* ``HOME`` (and ``CUSTODY_HOME`` below it, the default place), ``XDG_RUNTIME_DIR`` (the
  signing agent's socket) and the working folders are temporary; the documenter's home
  holds ``~/custody/samples/field-dump/field-dump-01``, the shipped sample the quick start
  ingests as a card;
* ``/media/usb`` (the reader's USB stick, as the quick start says) is a folder of the
  documenter's temporary home;
* ``$TSA_URL``, which the documents set to a public authority in a block marked as skipped,
  is the loopback authority of tests/tsa.py; the lawyer's ``tsa-root.pem``, which the guide
  downloads from that authority in a block marked as skipped, is its root certificate;
* the passphrase the documenter would type comes from ``CUSTODY_PASSPHRASE``.

A block preceded by ``<!-- test: skip: REASON -->`` is not run (set-up with apt, a real
memory card, a revocation that would end the walk-through...); the reason is required. A
command whose line ends in ``# exit N`` must exit with N (the UNCONFIRMED verdicts: 10); every
other command must exit 0. The Arabic report's commands (``custody report --lang ar``) need
the Arabic report strings (issue 18 point 4): until they are on this branch those blocks are
left out, everything else is run, and the test then says so by skipping at its end.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.tsa import running_tsa

from conftest import PASSPHRASE, REPO, SAMPLES, copy_media

DOCS = REPO / "docs" / "ar"
RUN = ("quickstart.md", "verify-guide.md")
SKIP_MARK = re.compile(r"^<!-- test: skip: (?P<reason>\S.*?) -->$")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
EXIT_MARK = re.compile(r"#\s*exit (?P<code>\d+)\b")
ARABIC_REPORT = REPO / "src" / "custody" / "delivery" / "report" / "templates" / "strings"


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # the opening fence's line, counting from 1
    lang: str
    code: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"docs/ar/{self.doc}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang in ("sh", "bash")

    def exits(self) -> list[tuple[str, int]]:
        """Each line of the block with the exit code it must give: 0, or the N of a
        one-line custody command ending in ``# exit N``."""
        lines = self.code.splitlines()
        found = []
        for number, line in enumerate(lines):
            match = EXIT_MARK.search(line)
            if match:
                follows = number > 0 and lines[number - 1].endswith("\\")
                assert line.startswith("custody ") and not follows, (
                    f"{self.where}: '# exit N' marks a one-line custody command"
                )
            found.append((line, int(match.group("code")) if match else 0))
        return found


def blocks(doc: str) -> list[Block]:
    """Every fenced block of a document, with the skip mark before it, if any."""
    found: list[Block] = []
    pending: str | None = None
    lines = (DOCS / doc).read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        mark = SKIP_MARK.match(lines[i])
        fence = FENCE.match(lines[i])
        if mark:
            assert pending is None, f"docs/ar/{doc}:{i + 1}: two skip marks for one block"
            pending = mark.group("reason")
        elif "<!-- test:" in lines[i]:
            raise AssertionError(f"docs/ar/{doc}:{i + 1}: '<!-- test: skip: REASON -->' expected")
        elif fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            block = Block(doc, i + 1, fence.group("lang"), "\n".join(lines[i + 1 : end]), pending)
            assert block.runs or pending is None, f"{block.where}: a skip mark on a block never run"
            found.append(block)
            pending, i = None, end
        i += 1
    assert pending is None, f"docs/ar/{doc}: a skip mark with no block after it"
    return found


def needs_arabic_report(block: Block) -> bool:
    return bool(re.search(r"custody report .*--lang ar", block.code))


def arabic_report_available() -> bool:
    return (ARABIC_REPORT / "ar.toml").is_file()


def script(doc: str, substitutions: dict[str, str], left_out: list[str]) -> str:
    """One bash script running the document's blocks in order, each command checked."""
    parts = ["set -eo pipefail", "trap 'echo \"FAILED (exit $?): $BASH_COMMAND\" >&2' ERR"]
    for block in blocks(doc):
        if not block.runs or block.skip is not None:
            continue
        if needs_arabic_report(block) and not arabic_report_available():
            left_out.append(block.where)
            continue
        parts.append(f"echo '### {block.where}' >&2")
        for line, expected in block.exits():
            for place, real in substitutions.items():
                line = line.replace(place, real)
            if expected == 0:
                parts.append(line)
                continue
            # The newline after the command ends its '# exit N' comment; '||' keeps set -e
            # from stopping at the code the document says the command exits with.
            parts.append(f"__rc=0\n{{ {line}\n}} || __rc=$?")
            parts.append(
                f'if [ "$__rc" -ne {expected} ]; then echo "{block.where}: expected exit '
                f'{expected}, got $__rc" >&2; exit 99; fi'
            )
    return "\n".join(parts) + "\n"


def person(home: Path, bin_dir: Path, runtime: Path, **extra: str) -> dict[str, str]:
    """The environment of one reader: their own home, nothing of this test's custody state."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CUSTODY_", "XDG_", "LC_"))
        and k not in ("PYTHONPATH", "LANGUAGE", "LANG", "HOME", "PATH")
    }
    return {
        **kept,
        "HOME": str(home),
        "CUSTODY_HOME": str(home / ".local" / "share" / "custody"),
        "XDG_RUNTIME_DIR": str(runtime),
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        **extra,
    }


def run_doc(
    doc: str, cwd: Path, env: dict[str, str], subs: dict[str, str], left_out: list[str]
) -> str:
    done = subprocess.run(
        ["/bin/bash", "-c", script(doc, subs, left_out)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{doc} (exit {done.returncode}):\n{done.stderr[-5000:]}"
    return done.stdout


@pytest.fixture
def places(tmp_path: Path) -> Iterator[dict[str, Path]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "custody"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH="{REPO / "src"}" exec "{sys.executable}" -m custody "$@"\n'
    )
    wrapper.chmod(0o755)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    documenter, lawyer = tmp_path / "documenter", tmp_path / "lawyer"
    copy_media(
        SAMPLES / "field-dump-01",
        documenter / "custody" / "samples" / "field-dump" / "field-dump-01",
    )
    (documenter / "media" / "usb").mkdir(parents=True)
    (lawyer / "received").mkdir(parents=True)
    found = {"bin": bin_dir, "run": runtime, "documenter": documenter, "lawyer": lawyer}
    yield found
    # The quick start stops its agent; if it failed before that, stop it here.
    subprocess.run(
        [str(wrapper), "agent", "stop"],
        env=person(documenter, bin_dir, runtime),
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_the_quick_start_and_the_verification_guide_run_as_written(
    places: dict[str, Path],
) -> None:
    documenter, lawyer = places["documenter"], places["lawyer"]
    left_out: list[str] = []
    with running_tsa(places["documenter"].parent, "ok", include_chain=True) as tsa:
        env = person(documenter, places["bin"], places["run"],
                     CUSTODY_PASSPHRASE=PASSPHRASE, TSA_URL=tsa.url)  # fmt: skip
        usb = documenter / "media" / "usb"
        run_doc("quickstart.md", documenter, env, {"/media/usb/": f"{usb}/"}, left_out)
        assert tsa.queries, "the quick start's timestamps came from the loopback authority"
        root = documenter / "cases" / "case-001"
        card = root / "card-01" / "field-dump-01"
        assert (card / "WhatsApp" / "Media" / "WhatsApp Images" / "تضامن 01.jpg").is_file()
        assert (usb / "amina.key").is_file() and (usb / "case-001" / ".custody").is_dir()
        assert (usb / "replies.json").is_file()
        handover = documenter / "handover"
        bundle = handover / "case-001-bundle"
        assert (bundle / "data" / "card-01" / "field-dump-01" / "DCIM").is_dir()
        # --withhold all: no disclosed collector, source path or volume travels.
        assert not (bundle / "custody" / "disclosures.jsonl").exists()
        index = json.loads((bundle / "custody" / "index.json").read_text())
        assert index["timestamps"], "the handover is covered by a timestamp"
        # The transfer recorded before the export travels with the bundle.
        records = [json.loads(line)["signed"] for line in
                   (bundle / "custody" / "records.jsonl").read_text().splitlines()]  # fmt: skip
        assert any(r["type"] == "event" and r["body"].get("action") == "transfer" for r in records)

        # The lawyer receives the bundle and the public key; the authority's root comes
        # from the authority (here: the loopback one's).
        received = lawyer / "received"
        shutil.copy2(handover / "case-001-bundle.zip", received)
        shutil.copy2(handover / "amina.pem", received)
        shutil.copy2(tsa.root_pem, received / "tsa-root.pem")
        env = person(lawyer, places["bin"], places["run"])
        said = run_doc("verify-guide.md", received, env, {}, left_out)
    verdict = json.loads((received / "verify.json").read_text())
    assert verdict["verdict"] == "unconfirmed" and verdict["intact"] is True
    # What the guide tells the reader to expect from the standard tools, they printed.
    assert '"verdict": "unconfirmed"' in said  # the grep of verify.json
    assert said.count(": OK\n") >= len(index["items"])  # sha256sum -c, one line a file
    lines = (received / "case-001-bundle" / "custody" / "records.jsonl").read_text()
    assert said.count("Signature Verified Successfully") == len(lines.splitlines())
    assert "ALL CHECKS PASSED" in said and "SOME CHECKS FAILED" not in said
    assert "Time stamp:" in said and said.count("Verification: OK") == len(index["timestamps"])
    trust = json.loads((lawyer / ".local" / "share" / "custody" / "trust.json").read_text())
    assert "اتصال هاتفي" in json.dumps(trust, ensure_ascii=False)  # the note, as typed
    assert not (received / "case-001-bundle" / "msg.bin").exists()
    if left_out:
        pytest.skip(
            "every other command ran as the documents say; not run: "
            + ", ".join(left_out)
            + " (custody report --lang ar needs the Arabic report strings, issue 18 point 4)"
        )
    assert (received / "report-ar.pdf").read_bytes().startswith(b"%PDF")
    assert "</html>" in (received / "report-ar-en.html").read_text(encoding="utf-8")


def test_every_block_is_run_or_says_why_not() -> None:
    for doc in RUN:
        found = [b for b in blocks(doc) if b.runs]
        assert sum(b.skip is None for b in found) >= 10, f"{doc}: most of it must run"
        for block in found:
            block.exits()  # well-formed exit marks
            assert block.code.strip(), f"{block.where}: empty block"


def test_the_verification_guide_shows_an_unconfirmed_verdict_then_a_verified_one() -> None:
    found = [b for b in blocks("verify-guide.md") if b.runs and b.skip is None]
    codes = [code for b in found for line, code in b.exits() if "custody verify" in line]
    assert codes[0] == 10 and 0 in codes[codes.index(10) :]


def _params(command: Any) -> dict[str, Any]:
    import click

    options: dict[str, Any] = {}
    for param in command.get_params(click.Context(command)):
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                options[name] = param
    return options


def _custody_commands(block: Block) -> list[list[str]]:
    joined = block.code.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        if not line.strip().startswith("custody "):
            continue
        words = shlex.split(line, comments=True)
        for stop in ("|", ">", "<", "&&", ";", "||"):
            if stop in words:
                words = words[: words.index(stop)]
        commands.append(words)
    return commands


def _resolve(top: Any, words: list[str], where: str) -> None:
    """Walk ``custody WORDS`` down the real command tree; every option must exist there."""
    import click

    command: Any = top
    i = 1
    while i < len(words):
        word = words[i]
        if word.startswith("--"):
            name = word.split("=", 1)[0]
            options = _params(command)
            assert name in options, f"{where}: '{command.name}' has no option {name}"
            takes_value = not (options[name].is_flag or options[name].count)
            i += 2 if takes_value and "=" not in word else 1
            continue
        if isinstance(command, click.Group) and word in command.commands:
            command = command.commands[word]
        i += 1
    runs = not isinstance(command, click.Group) or command.invoke_without_command
    done = runs or {"--help", "--version"} & set(words)
    assert done, f"{where}: '{' '.join(words)}' names no command"


def test_every_command_and_option_shown_exists() -> None:
    """Also the blocks that are not run: a documented option must be a real one."""
    import typer.main

    import custody.cli.app  # noqa: F401 (registers every command on the Typer app)
    from custody.cli.common import app

    top = typer.main.get_command(app)
    seen = 0
    for doc in RUN:
        for block in blocks(doc):
            if block.runs:
                for words in _custody_commands(block):
                    _resolve(top, words, block.where)
                    seen += 1
    assert seen >= 30


def _outside_code(text: str) -> list[str]:
    return re.split(r"```.*?```", text, flags=re.S)


def test_right_to_left_documents_with_left_to_right_code() -> None:
    for doc in (*RUN, "README.md"):
        lines = (DOCS / doc).read_text(encoding="utf-8").splitlines()
        body = [line for line in lines if line.strip()]
        assert body[0].startswith('<div dir="rtl" lang="ar">') and body[-1] == "</div>", doc
        for number, line in enumerate(lines):
            if not line.startswith("```") or line == "```":
                continue
            before = [x for x in lines[:number] if x.strip()][-1]
            assert before == '<div dir="ltr">', (
                f"docs/ar/{doc}:{number + 1}: code not in an ltr div"
            )
            close = next(j for j in range(number + 1, len(lines)) if lines[j] == "```")
            after = next(x for x in lines[close + 1 :] if x.strip())
            assert after == "</div>", f"docs/ar/{doc}:{close + 1}: the ltr div is not closed"
        # Code inside Arabic prose is isolated left to right (a Markdown `--lang ar` in a
        # right-to-left line shows as "lang ar--"): <code dir="ltr">, which GitHub keeps.
        text = "\n".join(lines)
        for prose in _outside_code(text):
            assert "`" not in prose, f'{doc}: inline code not in <code dir="ltr">'
        # Prose in Arabic: Western digits only (glossary), and no invisible direction marks
        # that would break a copied path or command.
        assert not re.search("[\u0660-\u0669\u06f0-\u06f9]", text), f"{doc}: Arabic-Indic digits"
        assert not re.search("[\u200e\u200f\u202a-\u202e\u2066-\u2069]", text), f"{doc}: bidi marks"


def test_the_glossary_words_are_the_ones_used() -> None:
    glossary = (DOCS / "glossary.md").read_text(encoding="utf-8")
    rows = dict(
        (m.group(2).strip(), m.group(1).strip())
        for m in re.finditer(r"^\| ([^|]+) \| ([^|]+) \|", glossary, re.M)
    )
    guide = (DOCS / "verify-guide.md").read_text(encoding="utf-8")
    quick = (DOCS / "quickstart.md").read_text(encoding="utf-8")
    for english in ("VERIFIED", "UNCONFIRMED", "FAILED"):
        assert f"**{rows[english]}**" in guide, english  # the verdict table uses the glossary's
    text = quick + guide
    for english in ("evidence root", "ledger", "fingerprint", "timestamp", "passphrase",
                    "bundle", "trust store", "timestamp authority (TSA)", "item", "tag",
                    "note / annotation", "keyring", "agent", "vault", "collector",
                    "withheld", "commitment", "air gap", "exit code"):  # fmt: skip
        forms = re.split("، | / ", rows[english])
        assert any(form in text for form in forms), (english, forms)
    # A documenter's note is a تعليق: ملاحظة is what verification finds.
    assert "ملاحظة" not in quick.split("## 10.")[0], "ملاحظة means a finding (glossary)"


def test_the_index_links_every_document_and_the_readme_links_the_index() -> None:
    top = (REPO / "README.md").read_text(encoding="utf-8").splitlines()[:5]
    assert any("(docs/ar/README.md)" in line and "بالعربية" in line for line in top)
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for name in ("glossary.md", "quickstart.md", "verify-guide.md", "report.md"):
        assert f"]({name})" in index, name
    for doc in (*RUN, "README.md"):
        text = "\n".join(_outside_code((DOCS / doc).read_text(encoding="utf-8")))
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if target.startswith("http"):
                continue
            path = (DOCS / target).resolve()
            # report.md (the Arabic report's pictures) is written beside this work, for
            # issue 18 point 4; every other link must resolve now.
            assert path.exists() or target == "report.md", f"docs/ar/{doc}: broken link {target}"
