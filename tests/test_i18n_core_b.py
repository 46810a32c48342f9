"""Arabic for timestamps, evidence records and bundles (issue 18), through the real CLI.

The messages of ``custody.timestamps`` (``ers`` included) and ``custody.delivery`` apart
from the report go through the catalog. Two things are tested here:

* a person running custody in Arabic reads Arabic where these packages speak - an
  authority that cannot be reached, a reply refused, a tampered bundle's findings and
  checks, the plan of ``custody renew`` - and every exit code is the English run's;
* what these packages *write* never changes with the language: the ledger's records (the
  gaps a ``timestamp`` record lists keep the authorities' answers in English), the
  air-gapped responses file, every file of a bundle (byte for byte, apart from the time it
  was made), the register, and ``--json``.

The Arabic comes from the compiled catalog (``custody.i18n``); until the merged catalogs are
compiled, a test that needs a translation skips with "catalog not compiled yet".
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from tests.tsa import running_tsa
from tests.tsa_longterm import DAY, YEAR, clocked_tsa

from conftest import PASSPHRASE, Result
from custody import i18n
from custody.cli.app import run
from custody.errors import ExitCode

CLI = Callable[..., Result]
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
ARABIC = re.compile("[\u0600-\u06ff]")
# Times and dates that differ between two runs a second apart (a bundle's "created", the
# day of bag-info.txt, "judged at" in a verification).
MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?)?")
DEAD = "http://127.0.0.1:9/tsa"  # the discard port: connection refused at once
# Files of a bundle that carry the moment it was made (and the tag manifests, which list
# their digests); every other file must be the same bytes whatever the language. The
# Arabic instructions (HOW-TO-VERIFY.ar.txt, when bundles carry them) are the one file
# that may hold Arabic, and they too are the same in every run.
TIMED = ("custody/index.json", "bag-info.txt", "HOW-TO-VERIFY.txt", "HOW-TO-VERIFY.ar.txt")


class _Keep(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def arabic(message: str, plural: str | None = None, count: int = 1, **fields: object) -> str:
    """The catalog's Arabic for ``message`` (the form for ``count`` when ``plural`` is given),
    with ``fields`` filled and the others left as ``{name}``; skips the test while the
    catalog has no translation for it."""
    with i18n.speaking("ar"):
        text = i18n.ngettext(message, plural, count) if plural is not None else i18n._(message)
    if text in (message, plural):
        pytest.skip("catalog not compiled yet")
    return text.format_map(_Keep(fields))


def fixed(text: str) -> str:
    """The longest stretch of ``text`` between its unfilled ``{fields}``: what any run prints."""
    return max(re.split(r"\{[^{}]*\}", text), key=len).strip(" :؛،")


def text_of(data: bytes) -> str:
    """A file's text, or nothing for binary files (tokens, certificates, DER evidence
    records: compared byte for byte, and random bytes can look like any letter)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return ""


def calm(text: str) -> str:
    return MOMENT.sub("<time>", text)


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def configure(root: Path, *urls: str) -> None:
    path = root / ".custody" / "config.toml"
    document = tomllib.loads(path.read_text())
    document["timestamps"] = {"tsa": list(urls), "min_success": 1, "timeout": 10.0, "roots": []}
    path.write_text(tomli_w.dumps(document))


def records(root: Path) -> list[dict[str, Any]]:
    data = (root / ".custody" / "ledger.jsonl").read_bytes()
    return [json.loads(line)["signed"] for line in data.splitlines()]


@pytest.fixture(autouse=True)
def _language_restored() -> Iterator[None]:
    """A run in Arabic leaves this process speaking Arabic; the tests after these must not."""
    before = i18n.current_language()
    yield
    i18n.set_language(before)


# --- a root stamped and put under an evidence record, every step run in Arabic -------------


@dataclass(frozen=True)
class Stamped:
    root: Path
    tsa_roots: Path  # the authority's root certificate: what a verifier trusts


def _down(body: bytes) -> bytes:
    raise OSError("the OCSP responder is down")


@pytest.fixture(scope="module")
def stamped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stamped]:
    """Two plain files catalogued, timestamped and put under an RFC 4998 evidence record,
    all with ``--lang ar``, while the authority's revocation services are down (no CRL
    published: HTTP 404; the OCSP responder fails: HTTP 500), so that its records list
    gaps with the reasons the services gave."""
    if shutil.which("faketime") is None:
        pytest.skip("faketime is needed (scripts/setup.sh installs it)")
    base = tmp_path_factory.mktemp("i18n-core-b")
    root = base / "evidence"
    before = i18n.current_language()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CUSTODY_HOME", str(base / "home"))
        env.setenv("CUSTODY_PASSPHRASE", PASSPHRASE)
        for name in ("CUSTODY_ROOT", "CUSTODY_LANG", "CUSTODY_DEBUG"):
            env.delenv(name, raising=False)
        assert run(["init", str(root)]) == 0
        assert run(["keys", "generate", "--name", "alice"]) == 0
        media = root / "statements"
        media.mkdir()
        (media / "witness-1.txt").write_text("Statement of the first witness, 2024-03-12.\n")
        (media / "witness-2.txt").write_text("Statement of the second witness, 2024-03-13.\n")
        with clocked_tsa(base, "TSA One", not_before=NOW - YEAR, not_after=NOW + YEAR) as one:
            one.clock = NOW - DAY
            configure(root, one.url)
            roots = base / "tsa-roots.pem"
            roots.write_bytes(one.root_pem.read_bytes())
            env.setattr(one, "_ocsp", _down)
            stamp = ["--lang", "ar", "catalogue", str(media), "--root", str(root), "--timestamp"]
            assert run(stamp) == 0
            assert (
                run(["--lang", "ar", "renew", "--root", str(root), "--tsa-root", str(roots)]) == 0
            )
    i18n.set_language(before)
    yield Stamped(root, roots)


def test_records_keep_the_authorities_answers_in_english(stamped: Stamped) -> None:
    # Shown to a person, this answer is Arabic; kept in a record, it never is.
    arabic("{label} answered HTTP {status} {reason}")
    kinds = [r["type"] for r in records(stamped.root)]
    assert "timestamp" in kinds and "evidence-record" in kinds
    gaps = [
        gap
        for record in records(stamped.root)
        for gap in record["body"].get("validation_missing", [])
    ]
    assert any(
        "OCSP responder" in gap["reason"] and "answered HTTP 500" in gap["reason"] for gap in gaps
    ), gaps
    ledger = (stamped.root / ".custody" / "ledger.jsonl").read_text(encoding="utf-8")
    assert not ARABIC.search(ledger)


def test_a_bundle_is_the_same_bytes_in_arabic(stamped: Stamped, cli: CLI, tmp_path: Path) -> None:
    arabic("timestamp authority")  # the catalog speaks Arabic
    english, arabic_bundle = tmp_path / "en", tmp_path / "ar"
    made = cli("export", "--all", "--root", stamped.root, "--out", english)
    assert made.code == 0, made.err
    made_ar = cli("--lang", "ar", "export", "--all", "--root", stamped.root, "--out", arabic_bundle)
    assert made_ar.code == made.code, made_ar.err
    ours, theirs = files_of(english), files_of(arabic_bundle)
    assert set(theirs) == set(ours)
    # the bundle carries what these packages write: tokens, material, the evidence record
    assert any(name.startswith("custody/timestamps/") for name in ours)
    assert any(name.startswith("custody/validation/") for name in ours)
    assert any(name.startswith("custody/evidence/") for name in ours)
    for name, data in theirs.items():
        if name != "HOW-TO-VERIFY.ar.txt":
            assert not ARABIC.search(text_of(data)), name
        if name in TIMED:
            assert calm(data.decode()) == calm(ours[name].decode()), name
        elif name.startswith("tagmanifest-"):
            kept = [line for line in data.decode().splitlines() if line.split("  ")[1] not in TIMED]
            same = [line for line in ours[name].decode().splitlines()
                    if line.split("  ")[1] not in TIMED]  # fmt: skip
            assert kept == same, name
        else:
            assert data == ours[name], name
    # Verified in either language: the same exit code, the same JSON. (A first verification
    # remembers the bundle's checkpoint in the verifier's home; the two compared see it.)
    trust = ("--tsa-root", stamped.tsa_roots)
    assert cli("verify", arabic_bundle, *trust).code in (0, ExitCode.UNCONFIRMED)
    spoken = cli("--lang", "ar", "verify", arabic_bundle, *trust, "--json")
    plain = cli("verify", arabic_bundle, *trust, "--json")
    assert plain.code == spoken.code and plain.code in (0, ExitCode.UNCONFIRMED), plain.out
    assert calm(spoken.out) == calm(plain.out)
    assert not ARABIC.search(spoken.out)
    # ...and a person reading it in Arabic reads the checks in Arabic.
    document = plain.json()
    proofs = next(c for c in document["checks"] if c["name"] == "inclusion proofs")
    said = cli("--lang", "ar", "verify", arabic_bundle, *trust)
    assert said.code == plain.code
    expected = arabic(
        "{n} records proven in the {size}-record ledger with root {root}",
        "{n} records proven in the {size}-record ledger with root {root}",
        count=proofs["covered"],
        n=proofs["covered"],
        size=document["ledger_size"],
        root=document["tree_root"],
    )
    assert expected in said.out
    assert proofs["detail"] in cli("verify", arabic_bundle, *trust).out  # English as it was


def test_a_tampered_bundle_is_reported_in_arabic(
    stamped: Stamped, cli: CLI, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    assert cli("export", "--all", "--root", stamped.root, "--out", bundle).code == 0
    index = json.loads((bundle / "custody" / "index.json").read_text())
    item = index["items"][0]["record"]
    (bundle / "custody" / "proofs" / f"record-{item}.json").unlink()
    (bundle / "data" / "planted.txt").write_text("not catalogued\n")
    trust = ("--tsa-root", stamped.tsa_roots)
    assert cli("verify", bundle, *trust).code == ExitCode.FINDINGS  # as the next ones see it
    spoken = cli("--lang", "ar", "verify", bundle, *trust, "--json")
    plain = cli("verify", bundle, *trust, "--json")
    assert plain.code == spoken.code == ExitCode.FINDINGS
    assert calm(spoken.out) == calm(plain.out)
    codes = {f["code"] for f in plain.json()["findings"]}
    assert {"PROOF_INVALID", "FILE_UNEXPECTED", "FILE_MISSING"} <= codes
    english = cli("verify", bundle, *trust)
    said = cli("--lang", "ar", "verify", bundle, *trust)
    assert english.code == said.code == ExitCode.FINDINGS
    for message, filled in (
        ("in data/ but in no manifest", {}),
        ("no inclusion proof in the bundle", {}),
        ("listed in {manifest} but absent", {"manifest": "tagmanifest-sha256.txt"}),
    ):
        assert message.format(**filled) in english.out
        assert arabic(message, **filled) in said.out
    # The register is a file: English, whatever the language it is made in.
    register = tmp_path / "register.csv"
    register_ar = tmp_path / "register-ar.csv"
    made = cli("register", bundle, *trust, "--out", register)
    made_ar = cli("--lang", "ar", "register", bundle, *trust, "--out", register_ar)
    assert made.code == made_ar.code == ExitCode.FINDINGS, made_ar.err
    assert register_ar.read_bytes() == register.read_bytes()
    table = register_ar.read_text(encoding="utf-8-sig")
    assert "NOT VERIFIED" in table and "no inclusion proof in the bundle" in table
    assert not ARABIC.search(table)


def test_an_authority_that_cannot_be_reached_in_arabic(
    cli: CLI, evidence: Path, tmp_path: Path
) -> None:
    (evidence / "note.txt").write_text("a note\n")
    assert cli("catalogue", evidence / "note.txt", "--root", evidence).code == 0
    configure(evidence, DEAD)
    said = cli("--lang", "ar", "timestamp", "--root", evidence)
    english = cli("timestamp", "--root", evidence)
    assert said.code == english.code == ExitCode.TIMESTAMP_PENDING
    assert "connection refused" in english.out
    label = f"{arabic('timestamp authority')} {DEAD}"
    assert arabic("cannot reach {label}: connection refused", label=label) in said.out
    assert fixed(arabic("unreachable: {error}")) in said.out
    # Across the air gap: the replies document is a file (English); its reader speaks Arabic.
    requests, replies = tmp_path / "requests.json", tmp_path / "replies.json"
    made = cli("--lang", "ar", "timestamp", "--request-out", requests, "--root", evidence)
    assert made.code == 0, made.err
    fetched = cli("--lang", "ar", "timestamp", "fetch", requests, "--out", replies)
    assert fetched.code == ExitCode.TIMESTAMP_PENDING
    assert arabic("cannot reach {label}: connection refused", label=label) in fetched.out
    document = replies.read_text(encoding="utf-8")
    assert not ARABIC.search(document)
    [reply] = json.loads(document)["responses"]
    assert (
        reply["error"]
        == f"unreachable: cannot reach timestamp authority {DEAD}: connection refused"
    )


def test_a_refused_reply_in_arabic(cli: CLI, evidence: Path, tmp_path: Path) -> None:
    (evidence / "note.txt").write_text("a note\n")
    assert cli("catalogue", evidence / "note.txt", "--root", evidence).code == 0
    with running_tsa(tmp_path, "reject") as tsa:
        configure(evidence, tsa.url)
        said = cli("--lang", "ar", "timestamp", "--root", evidence)
        english = cli("timestamp", "--root", evidence)
    assert said.code == english.code == ExitCode.TIMESTAMP_PENDING
    assert "response refused (TIMESTAMP_INVALID): status: the TSA refused" in english.out
    assert fixed(arabic("response refused ({finding}): {reason}")) in said.out
    assert fixed(arabic("the TSA refused: {status}")) in said.out
    assert "TIMESTAMP_INVALID" in said.out  # finding class names stay English


def test_the_renewal_plan_in_arabic(stamped: Stamped, cli: CLI) -> None:
    later = (NOW + 2 * YEAR).strftime("%Y-%m-%d")
    args = ("renew", "--dry-run", "--root", stamped.root, "--tsa-root", stamped.tsa_roots,
            "--before", later)  # fmt: skip
    plain = cli(*args, "--json")
    spoken = cli("--lang", "ar", *args, "--json")
    assert plain.code == spoken.code == 0, plain.err
    assert calm(spoken.out) == calm(plain.out) and not ARABIC.search(spoken.out)
    [action] = plain.json()["actions"]
    assert action["reason"].startswith("the last timestamp lapses at ")
    said = cli("--lang", "ar", *args)
    assert said.code == plain.code
    assert fixed(arabic("the last timestamp lapses at {time}")) in said.out
