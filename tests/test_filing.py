"""Ready to file: the case, exhibit numbers, the register, certifications, the signed report.

One documenter (alice) records a case, numbers her exhibits, hands exhibit P-1 over and has
her checkpoint timestamped by the loopback RFC 3161 TSA (tests/tsa.py); she exports three
exhibits as a bundle. Counsel, in another custody home, confirms her fingerprint
(``--trusted-key``), verifies the bundle, and makes a signed, timestamped PDF report, a
register and a 902(14) certification from it - all through the real CLI in real
processes. What is asserted is read back with independent tools: the signed PDF with
pyHanko's validator and with poppler's ``pdfsig`` (an NSS database made by ``certutil``),
its text with ``pdftotext``, the XLSX with openpyxl and with LibreOffice (headless
``soffice --convert-to csv``), the digests with ``sha256sum``/``find`` in a shell, the
records with plain ``json``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import ledger_records
from tests.test_bundle import configure_tsa
from tests.test_pdfsign import _nssdb, pdfsig
from tests.tsa import TSA, running_tsa

from conftest import PASSPHRASE, REPO, SAMPLES, run_custody, validate
from custody.delivery.pdfsign import check_signed_pdf

CHROMIUM = shutil.which("chromium")
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
TOOLS = ("chromium", "pdfsig", "certutil", "pdftotext", "pdftoppm")
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS),
    reason="needs chromium, poppler-utils and libnss3-tools (scripts/setup.sh installs them)",
)

CAMERA = SAMPLES / "field-dump-01" / "DCIM" / "Camera"
WHATSAPP = SAMPLES / "field-dump-01" / "WhatsApp" / "Media"
GPS_PHOTO = "media/20160912_100531.jpg"
VIDEO = "media/VID_20201023_202729.mp4"
ARABIC_PHOTO = "media/تضامن 01.jpg"
ARABIC_PDF = "media/تقرير أولي.pdf"
HOSTILE = "media/<script>alert(1)\u202egpj.exe"  # markup and a right-to-left override
FORMULA = "media/=HYPERLINK(1).jpg"  # what a spreadsheet would run as a formula
CASE_NAME = "The Prosecutor v. Example"
CASE_NUMBER = "ICC-01/99-01/26"
COURT = "International Criminal Court, Pre-Trial Chamber I"
RECIPIENT = "Counsel for the Prosecution"
EXHIBITS = {"P-1": GPS_PHOTO, "P-2": VIDEO, "P-3": ARABIC_PHOTO, "P-4": ARABIC_PDF}
BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass
class World:
    base: Path
    root: Path
    alice: dict[str, str]  # the documenter's environment
    counsel: dict[str, str]  # counsel's (another custody home)
    alice_pem: Path
    tsa: TSA
    bundle_zip: Path
    bundle_dir: Path
    seqs: dict[str, int]
    report: Path
    report_json: dict[str, Any]
    ca_pem: Path


def custody(env: dict[str, str], *args: object, cwd: Path | None = None) -> Any:
    result = run_custody(*[str(a) for a in args], env=env, cwd=cwd)
    return result


def ok(env: dict[str, str], *args: object, code: int = 0) -> Any:
    result = custody(env, *args)
    assert result.returncode == code, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result


def _environment(home: Path) -> dict[str, str]:
    return {"CUSTODY_HOME": str(home), "CUSTODY_PASSPHRASE": PASSPHRASE, "CUSTODY_ROOT": ""}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("filing")
    alice, counsel = _environment(base / "alice-home"), _environment(base / "counsel-home")
    root = base / "evidence"
    ok(alice, "init", root)
    ok(alice, "keys", "generate", "--name", "alice")
    media = root / "media"
    media.mkdir()
    for source, target in (
        (CAMERA / "20160912_100531.jpg", GPS_PHOTO),
        (CAMERA / "VID_20201023_202729.mp4", VIDEO),
        (WHATSAPP / "WhatsApp Images" / "تضامن 01.jpg", ARABIC_PHOTO),
        (WHATSAPP / "WhatsApp Documents" / "تقرير أولي.pdf", ARABIC_PDF),
    ):
        shutil.copy2(source, root / target)
    (root / HOSTILE).write_bytes(b"not really an executable\n")
    (root / FORMULA).write_bytes(b"\xff\xd8 not really a picture\n")
    ok(alice, "catalogue", media, "--root", root, "--collector", "Amina Haddad",
       "--source", "Field phone, Aleppo team")  # fmt: skip
    seqs = {r["signed"]["body"]["path"]: r["signed"]["seq"] for r in ledger_records(root)
            if r["signed"]["type"] == "item"}  # fmt: skip
    ok(alice, "case", "set", "--root", root, "--name", CASE_NAME, "--number", CASE_NUMBER,
       "--court", COURT, "--party", "The Prosecutor", "--party", "Example Person")  # fmt: skip
    ok(alice, "exhibit", "assign", *(root / p for p in EXHIBITS.values()), "--root", root)
    ok(alice, "exhibit", "assign", root / HOSTILE, "--prefix", "D-", "--root", root)
    ok(alice, "event", "transfer", "--exhibit", "P-1", "--to", RECIPIENT, "--reason",
       "hand over for trial", "--root", root)  # fmt: skip
    alice_pem = base / "alice.pem"
    ok(alice, "keys", "export", "alice", "--out", alice_pem)
    with running_tsa(base, "ok", include_chain=True) as tsa:
        configure_tsa(root, tsa.url)
        ok(alice, "timestamp", "--root", root)
        exported = json.loads(
            ok(alice, "export", "--exhibit", "P-1", "--exhibit", "P-2", "--exhibit", "P-3",
               "--out", base / "out" / "case-2026-001", "--zip", "--root", root,
               "--json").stdout
        )
        validate(exported, "cli-export.schema.json")
        ok(counsel, "keys", "generate", "--name", "counsel", "--role", "lawyer")
        bundle_zip = Path(exported["zip"])
        report = base / "counsel" / "report.pdf"
        report.parent.mkdir()
        ca_pem = base / "counsel" / "preparer-ca.pem"
        made = ok(counsel, "report", bundle_zip, "--out", report, "--sign",
                  "--trusted-key", alice_pem, "--tsa", tsa.url, "--tsa-root", tsa.root_pem,
                  "--ca-out", ca_pem, "--json")  # fmt: skip
        yield World(
            base, root, alice, counsel, alice_pem, tsa, bundle_zip, Path(exported["out"]),
            seqs, report, json.loads(made.stdout), ca_pem,
        )  # fmt: skip


def pdf_text(pdf: Path) -> str:
    raw = subprocess.run(["pdftotext", "-enc", "UTF-8", pdf, "-"], capture_output=True,
                         check=True, timeout=60).stdout.decode("utf-8")  # fmt: skip
    return BIDI.sub("", raw)


def words(text: str) -> str:
    return " ".join(text.split())


def shell(command: str, cwd: Path) -> str:
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    result = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=120, check=True)  # fmt: skip
    return result.stdout.split()[0]


# --- the case and the exhibits, as records ---------------------------------------------------


def test_case_and_exhibits_are_signed_records_that_verify(world: World) -> None:
    records = ledger_records(world.root)
    for record in records:
        validate(record, "record.schema.json")
    cases = [r["signed"]["body"] for r in records if r["signed"]["type"] == "case"]
    assert cases == [{"court": COURT, "name": CASE_NAME, "number": CASE_NUMBER,
                      "parties": ["The Prosecutor", "Example Person"]}]  # fmt: skip
    exhibits = {r["signed"]["body"]["exhibit"]: r["signed"]["body"]["item"]
                for r in records if r["signed"]["type"] == "exhibit"}  # fmt: skip
    assert set(exhibits) == {*EXHIBITS, "D-1"}
    for label, path in EXHIBITS.items():
        item = exhibits[label]
        assert item["path"] == path and item["seq"] == world.seqs[path]
        assert item["sha256"] == hashlib.sha256((world.root / path).read_bytes()).hexdigest()
    verified = json.loads(ok(world.alice, "verify", "--root", world.root, "--json").stdout)
    checks = {c["name"]: c for c in verified["checks"]}
    assert checks["exhibit numbers"]["passed"] and checks["exhibit numbers"]["covered"] == 5
    shown = json.loads(ok(world.alice, "case", "show", "--root", world.root, "--json").stdout)
    validate(shown, "cli-case-show.schema.json")
    assert shown["case"]["source"] == "ledger" and shown["case"]["number"] == CASE_NUMBER
    listed = json.loads(ok(world.alice, "exhibit", "list", "--root", world.root, "--json").stdout)
    validate(listed, "cli-exhibit-list.schema.json")
    assert [e["exhibit"] for e in listed["exhibits"]] == ["D-1", "P-1", "P-2", "P-3", "P-4"]


def test_a_case_in_the_config_is_shown_as_unsigned_until_one_is_recorded(tmp_path: Path) -> None:
    env = _environment(tmp_path / "home")
    root = tmp_path / "evidence"
    ok(env, "init", root)
    config = root / ".custody" / "config.toml"
    text = config.read_text(encoding="utf-8")
    assert "\n[case]\n" in text  # init writes an empty table; fill it as a user would
    config.write_text(text.replace("\n[case]\n", '\n[case]\nname = "Prosecutor v. X"\n'
                                   'id = "ICC-01/22"\nparties = "The Prosecutor; X"\n'),
                      encoding="utf-8")  # fmt: skip
    shown = json.loads(ok(env, "case", "show", "--root", root, "--json").stdout)
    validate(shown, "cli-case-show.schema.json")
    assert shown["case"]["source"] == "config" and shown["case"]["record"] is None
    assert shown["case"]["number"] == "ICC-01/22"
    assert shown["case"]["parties"] == ["The Prosecutor", "X"]
    assert "not a signed record" in ok(env, "case", "show", "--root", root).stdout
    ok(env, "keys", "generate", "--name", "alice")
    ok(env, "case", "set", "--root", root, "--name", CASE_NAME)
    shown = json.loads(ok(env, "case", "show", "--root", root, "--json").stdout)
    assert shown["case"]["source"] == "ledger" and shown["case"]["name"] == CASE_NAME


def test_exhibit_numbers_are_stable_and_never_reused(world: World, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(world.root, root, symlinks=True)
    env = world.alice
    before = (root / ".custody" / "ledger.jsonl").read_bytes()
    again = json.loads(ok(env, "exhibit", "assign", root / GPS_PHOTO, root / FORMULA,
                          "--root", root, "--json").stdout)  # fmt: skip
    validate(again, "cli-exhibit-assign.schema.json")
    assert [e["exhibit"] for e in again["kept"]] == ["P-1"]  # stable once assigned
    assert [e["exhibit"] for e in again["assigned"]] == ["P-5"]  # the next free number
    # A number already given is refused before anything is written (exit 2).
    grown = (root / ".custody" / "ledger.jsonl").read_bytes()
    refused = custody(env, "exhibit", "assign", root / HOSTILE, "--start", "2",
                      "--root", root)  # fmt: skip
    assert refused.returncode == 0  # HOSTILE already is D-1: kept, nothing to number
    other = root / "media" / "late.txt"
    other.write_text("catalogued late\n")
    ok(env, "catalogue", other, "--root", root)
    grown = (root / ".custody" / "ledger.jsonl").read_bytes()
    refused = custody(env, "exhibit", "assign", other, "--start", "2", "--root", root)
    assert refused.returncode == 2 and "P-2 is already item record" in refused.stderr
    assert (root / ".custody" / "ledger.jsonl").read_bytes() == grown
    assert before != grown
    # A record that reuses a number (written past the CLI, as a forger with the key could)
    # fails verification with EXHIBIT_CONFLICT, and has no effect on what is shown.
    from custody.keys.keyring import Keyring
    from custody.ledger.backends import open_ledger
    from custody.ledger.bodies import ExhibitBody, ItemRef
    from custody.root import EvidenceRoot

    key = Keyring(Path(env["CUSTODY_HOME"]) / "keys").get("alice").unlock(PASSPHRASE)
    late = max(r["signed"]["seq"] for r in ledger_records(root)
               if r["signed"]["type"] == "item")  # fmt: skip
    sha = hashlib.sha256(other.read_bytes()).hexdigest()
    with open_ledger(EvidenceRoot(root)) as ledger, ledger.writer(key) as writer:
        writer.append("exhibit", ExhibitBody("p-1", ItemRef(late, sha, "media/late.txt")).to_json())
    result = json.loads(custody(env, "verify", "--root", root, "--json").stdout)
    codes = [f["code"] for f in result["findings"] if f["severity"] == "error"]
    assert codes == ["EXHIBIT_CONFLICT"] and result["verdict"] == "failed"
    conflict = next(f for f in result["findings"] if f["code"] == "EXHIBIT_CONFLICT")
    assert f"item record {world.seqs[GPS_PHOTO]}" in conflict["message"]
    listed = json.loads(ok(env, "exhibit", "list", "--root", root, "--json").stdout)
    assert {e["exhibit"]: e["item"] for e in listed["exhibits"]}["P-1"] == world.seqs[GPS_PHOTO]


def test_a_self_appointed_key_cannot_number_exhibits(world: World, tmp_path: Path) -> None:
    """Exhibit numbers change the state of evidence: a key that introduced itself after
    record 0 has no authority to give them (UNAUTHORISED_SIGNER), and its number is not
    shown in the report."""
    root = tmp_path / "copy"
    shutil.copytree(world.root, root, symlinks=True)
    mallory = _environment(tmp_path / "mallory-home")
    ok(mallory, "keys", "generate", "--name", "mallory")
    other = root / "media" / "late.txt"
    other.write_text("catalogued late\n")
    ok(mallory, "catalogue", other, "--root", root)  # allowed: new items
    ok(mallory, "exhibit", "assign", other, "--root", root)  # writes P-5, which cannot count
    result = json.loads(custody(world.alice, "verify", "--root", root, "--json").stdout)
    assert "UNAUTHORISED_SIGNER" in {f["code"] for f in result["findings"]}
    assert result["verdict"] == "failed"
    report = tmp_path / "report.html"
    custody(world.alice, "report", root, "--out", report)
    page = report.read_text(encoding="utf-8")
    assert "Exhibit P-1" in page and "Exhibit P-5" not in page


def test_exhibit_selects_items_wherever_tag_does(world: World, tmp_path: Path) -> None:
    env, root = world.alice, world.root
    history = json.loads(ok(env, "history", "--exhibit", "p-1", "--root", root, "--json").stdout)
    validate(history, "cli-history.schema.json")
    assert history["path"] == GPS_PHOTO
    kinds = [e["kind"] for e in history["entries"]]
    assert "exhibit" in kinds and "transfer" in kinds
    case = tmp_path / "case.jsonld"
    ok(env, "export-case", "--exhibit", "P-2", "--out", case, "--root", root)
    graph = json.loads(case.read_text())["@graph"]
    numbers = {n.get("case-investigation:exhibitNumber") for n in graph}
    assert "P-2" in numbers and "P-1" not in numbers
    investigation = next(n for n in graph if n["@type"] == "case-investigation:Investigation")
    assert investigation["uco-core:name"] == CASE_NAME
    facet = investigation["uco-core:hasFacet"][0]
    assert facet["custody:caseNumber"] == CASE_NUMBER and facet["custody:courtOrMechanism"] == COURT
    copy_root = tmp_path / "copy"
    shutil.copytree(root, copy_root, symlinks=True)
    noted = json.loads(ok(env, "event", "note", "--exhibit", "P-4", "--text", "sealed",
                          "--root", copy_root, "--json").stdout)  # fmt: skip
    validate(noted, "cli-event.schema.json")
    named = noted["record"]["signed"]["body"]["items"]
    assert [i["path"] for i in named] == [ARABIC_PDF]
    unknown = custody(env, "export", "--exhibit", "P-99", "--out", tmp_path / "b", "--root", root)
    assert unknown.returncode == 2 and "no item has the exhibit number 'P-99'" in unknown.stderr
    report = tmp_path / "selected.html"
    ok(env, "report", root, "--exhibit", "P-2", "--exhibit", "P-4", "--out", report)
    page = report.read_text(encoding="utf-8")
    assert page.count('<section class="item"') == 2
    assert "shows 2 of the 6 items" in " ".join(page.split())


def test_the_bundle_carries_its_exhibits_and_the_case_and_nothing_else(world: World) -> None:
    lines = (world.bundle_dir / "custody" / "records.jsonl").read_bytes().split(b"\n")[:-1]
    records = [json.loads(line)["signed"] for line in lines]
    exhibits = sorted(r["body"]["exhibit"] for r in records if r["type"] == "exhibit")
    assert exhibits == ["P-1", "P-2", "P-3"]  # not P-4 or D-1: other items stay home
    assert [r["body"]["name"] for r in records if r["type"] == "case"] == [CASE_NAME]
    bag_info = (world.bundle_dir / "bag-info.txt").read_text(encoding="utf-8")
    assert f"External-Identifier: {CASE_NUMBER}" in bag_info
    everything = b"".join(p.read_bytes() for p in world.bundle_dir.rglob("*") if p.is_file())
    assert "أولي".encode() not in everything and b"gpj.exe" not in everything


# --- the signed report -------------------------------------------------------------------------


def test_the_signed_report_is_valid_for_pyhanko_and_pdfsig(world: World) -> None:
    document = world.report_json
    validate(document, "cli-report.schema.json")
    assert document["verdict"] == "verified"
    signed = document["signed"]
    assert signed["level"] == "B-LTA" and signed["document_timestamp"]
    assert signed["sha256"] == hashlib.sha256(world.report.read_bytes()).hexdigest()
    assert world.ca_pem.read_text() == signed["preparer_ca_pem"]
    counsel_key = json.loads(ok(world.counsel, "keys", "list", "--json").stdout)["keys"][0]
    assert signed["custody_key_fingerprint"] == counsel_key["fingerprint"]
    roots = [world.ca_pem.read_bytes(), world.tsa.root_pem.read_bytes()]
    raw = base64_raw_key(world.counsel)
    check = check_signed_pdf(world.report, roots, custody_public_key=raw)
    assert check.ok, check.problems
    assert check.level == "B-LTA" and check.whole_file_covered
    assert check.signer is not None and check.signer.custody_binding.status == "bound"
    db = _nssdb(Path(tempfile.mkdtemp(dir=world.base)) / "nss", *roots)
    sigs, out = pdfsig(world.report, db)
    assert sigs[0]["Signature Validation"] == "Signature is Valid.", out
    assert sigs[0]["Certificate Validation"] == "Certificate is Trusted.", out
    assert sigs[0]["Signer Certificate Common Name"] == "counsel", out
    assert "Total document signed" in sigs[-1], out
    (world.base / "pdfsig-signed-report.txt").write_text(out)


def base64_raw_key(env: dict[str, str]) -> bytes:
    from custody.keys.keyring import Keyring

    return Keyring(Path(env["CUSTODY_HOME"]) / "keys").get("counsel").public.raw


def test_one_changed_byte_makes_pyhanko_and_pdfsig_reject_it(world: World) -> None:
    data = bytearray(world.report.read_bytes())
    at = data.index(b"/Producer (") + len(b"/Producer (")  # inside the first signed range
    data[at] ^= 0x01
    tampered = world.base / "tampered-report.pdf"
    tampered.write_bytes(bytes(data))
    roots = [world.ca_pem.read_bytes(), world.tsa.root_pem.read_bytes()]
    check = check_signed_pdf(tampered, roots)
    assert not check.ok and not check.intact
    assert "SIGNATURE_BROKEN" in {p.code for p in check.problems}
    db = _nssdb(Path(tempfile.mkdtemp(dir=world.base)) / "nss", *roots)
    sigs, out = pdfsig(tampered, db)
    assert sigs[0]["Signature Validation"] == "Digest Mismatch.", out


def test_the_report_carries_what_a_filing_needs(world: World) -> None:
    text = pdf_text(world.report)
    flat = words(text)
    compact = "".join(text.split())
    first = words(text.split("\f", 1)[0])
    for needle in (CASE_NAME, CASE_NUMBER, COURT, "Example Person", "VERIFIED"):
        assert needle in first, needle
    assert "Signed case record" in first
    for label in ("P-1", "P-2", "P-3"):
        assert f"Exhibit {label}" in flat
    assert "P-4" not in flat and "D-1" not in flat
    # Every signer's fingerprint, and how the preparer confirmed it.
    alice = json.loads(ok(world.alice, "keys", "list", "--json").stdout)["keys"][0]
    assert alice["fingerprint"] in compact
    assert f"--trusted-key {world.alice_pem} (this run only)" in flat
    # The bundle's digests, as anyone recomputes them with coreutils.
    unpacked = world.base / "unpacked"
    shutil.unpack_archive(world.bundle_zip, unpacked)
    tree = shell("find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum "
                 "| sha256sum", unpacked / world.bundle_zip.stem)  # fmt: skip
    zip_sha = shell(f"sha256sum '{world.bundle_zip}'", world.base)
    assert tree in compact and zip_sha in compact
    # The custody that made it: its version and the digest of its installed files.
    package = REPO / "src" / "custody"
    tool = shell("find . -type f ! -name '*.pyc' -printf '%P\\0' | LC_ALL=C sort -z "
                 "| xargs -0 sha256sum | sha256sum", package)  # fmt: skip
    assert tool in compact and "custody 0." in flat
    # Capture times in one form, with the zone or saying there is none.
    assert "2020-10-23 20:27:29 (no zone recorded)" in flat  # the video's local time
    assert re.search(r"Catalogued .*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC by", flat)
    assert "Held now by (as recorded) " + RECIPIENT in flat
    assert "Prepared by counsel" in flat


def test_hostile_names_render_as_text(world: World, tmp_path: Path) -> None:
    """A file named with markup and a right-to-left override: escaped, and the override
    shown as [U+202E] instead of reversing what follows it."""
    from tests.test_report import elements

    report = tmp_path / "report.html"
    ok(world.alice, "report", world.root, "--out", report)
    page = report.read_text(encoding="utf-8")
    tags, handlers = elements(page)
    assert "script" not in tags and not handlers
    assert "\u202e" not in page
    assert "&lt;script&gt;alert(1)[U+202E]gpj.exe" in page
    assert "default-src 'none'" in page
    pdf = tmp_path / "report.pdf"
    ok(world.alice, "report", world.root, "--out", pdf)
    assert "<script>alert(1)[U+202E]gpj.exe" in pdf_text(pdf)


# --- the register -----------------------------------------------------------------------------


def test_the_register_reads_back_as_the_ledger_says(world: World, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    xlsx, table = tmp_path / "register.xlsx", tmp_path / "register.csv"
    document = json.loads(ok(world.alice, "register", world.root, "--out", xlsx,
                             "--json").stdout)  # fmt: skip
    validate(document, "cli-register.schema.json")
    ok(world.alice, "register", world.root, "--out", table)
    listing = json.loads(ok(world.alice, "log", "--root", world.root, "--json").stdout)
    validate(listing, "cli-log.schema.json")
    log = listing["records"]
    items = {r["seq"]: r for r in log if r["type"] == "item"}
    sheet = load_workbook(xlsx, read_only=True)["Register"]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    header, body = rows[0], rows[1:]
    assert header[:4] == ["Exhibit", "Name", "Path", "SHA-256"]
    column = {name: header.index(name) for name in header}
    assert len(body) == len(items)
    for row in body:
        record = items[row[column["Ledger record"]]]
        found = re.match(r"(.*?) \((\d+) bytes\)", record["summary"])  # "path (N bytes)..."
        assert found is not None, record
        path, size = found.groups()
        shown = path.replace("\u202e", "[U+202E]")
        assert row[column["Path"]] == shown and row[column["Size (bytes)"]] == int(size)
        stored = json.loads(ok(world.alice, "show", str(record["seq"]), "--root", world.root,
                               "--json").stdout)  # fmt: skip
        validate(stored, "cli-show.schema.json")
        assert row[column["SHA-256"]] == stored["record"]["signed"]["body"]["digests"]["sha256"]
        # 2026-12-05T10:00:00.120000Z is written 2026-12-05 10:00:00.12 UTC
        moment = record["time"].replace("T", " ").removesuffix("Z").rstrip("0").rstrip(".")
        assert row[column["Acquisition time"]] == moment + " UTC"
        assert row[column["Verification status"]] == "VERIFIED"
    by_path = {row[column["Path"]]: row for row in body}
    gps = by_path[GPS_PHOTO]
    assert gps[column["Exhibit"]] == "P-1" and gps[column["Current holder"]] == RECIPIENT
    assert gps[column["Custody events"]] == 1  # the transfer
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(http://127\.0\.0\.1:\d+/tsa\)",
                        gps[column["Trusted timestamp"]])  # fmt: skip
    assert gps[column["Collector"]] == "Amina Haddad"
    assert by_path[FORMULA][column["Name"]] == "=HYPERLINK(1).jpg"  # text, not a formula
    # LibreOffice reads the same cells (headless, as a court registry's machine would).
    if SOFFICE is None:
        pytest.skip("LibreOffice is not installed (Debian libreoffice-calc-nogui)")
    converted = tmp_path / "lo"
    profile = tmp_path / "lo-profile"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    subprocess.run(
        [SOFFICE, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--convert-to",
         "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
         "--outdir", converted, xlsx],
        env=env, capture_output=True, timeout=180, check=True,
    )  # fmt: skip
    # (sheet -1: every sheet, each to register-<sheet>.csv)
    produced = converted / "register-Register.csv"
    assert produced.is_file(), list(converted.iterdir())
    about = (converted / "register-About.csv").read_text(encoding="utf-8")
    assert "Verdict,VERIFIED" in about and CASE_NUMBER in about
    read = list(csv.reader(io.StringIO(produced.read_text(encoding="utf-8"))))
    assert read[0] == header
    expected_rows = [[("" if v is None else str(v)) for v in row] for row in body]
    assert read[1:] == expected_rows
    # The CSV: UTF-8 with a byte-order mark, the same rows, the formula made inert.
    ours = list(csv.reader(io.StringIO(table.read_text(encoding="utf-8-sig"))))
    assert ours[0] == header
    formula = next(r for r in ours if r[column["Path"]] == FORMULA)  # (it starts with "media/")
    assert formula[column["Name"]] == "'=HYPERLINK(1).jpg"
    assert [r[column["SHA-256"]] for r in ours[1:]] == [r[column["SHA-256"]] for r in body]


def test_the_register_can_withhold_collectors(world: World, tmp_path: Path) -> None:
    table = tmp_path / "register.csv"
    ok(world.counsel, "register", world.bundle_zip, "--out", table, "--withhold-collector",
       "--trusted-key", world.alice_pem)  # fmt: skip
    text = table.read_text(encoding="utf-8-sig")
    assert "Amina" not in text and text.count(",withheld,") == 3


# --- certifications ---------------------------------------------------------------------------


def test_a_902_14_certification_from_the_bundle(world: World, tmp_path: Path) -> None:
    pdf = tmp_path / "certification.pdf"
    made = json.loads(ok(world.counsel, "certify", world.bundle_zip, "--template", "fre-902-14",
                         "--out", pdf, "--name", "Bob Advocate", "--title", "Counsel",
                         "--trusted-key", world.alice_pem, "--json").stdout)  # fmt: skip
    validate(made, "cli-certify.schema.json")
    assert made["verdict"] == "verified" and made["items"] == 3
    text = pdf_text(pdf)
    flat, compact = words(text), "".join(text.split())
    for needle in ("902(14)", "Bob Advocate", CASE_NAME, CASE_NUMBER, "penalty of perjury",
                   "Schedule A", "starting point, not legal advice"):  # fmt: skip
        assert needle in flat, needle
    for label in ("P-1", "P-2", "P-3"):
        path = EXHIBITS[label]
        assert label in flat
        assert hashlib.sha256((world.root / path).read_bytes()).hexdigest() in compact
    assert "did NOT succeed" not in flat
    templates = json.loads(ok(world.counsel, "certify", "--list", "--json").stdout)
    validate(templates, "cli-certify.schema.json")
    assert {t["name"] for t in templates["templates"]} >= {"fre-902-14", "custodian-declaration"}


def test_a_certification_of_evidence_that_fails_says_so(world: World, tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    shutil.copytree(world.bundle_dir, folder)
    video = folder / "data" / VIDEO
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0x01
    video.write_bytes(bytes(data))
    page = tmp_path / "declaration.html"
    made = custody(world.counsel, "certify", folder, "--template", "custodian-declaration",
                   "--out", page, "--trusted-key", world.alice_pem)  # fmt: skip
    assert made.returncode == 1
    text = words(page.read_text(encoding="utf-8"))
    assert "did NOT succeed" in text and "NOT VERIFIED" in text


# --- usage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["report", "--out", "r.html", "--sign"], "--sign signs PDF reports"),
        (["report", "--out", "r.pdf", "--level", "B-LT"], "apply only with --sign"),
        (["register", "--out", "r.txt"], "register.csv or --out register.xlsx"),
        (["certify", "--template", "no-such", "--out", "c.html"], "no template 'no-such'"),
        (["certify", "--list", "--out", "c.html"], "--list lists the templates"),
        (["case", "set"], "say what to record"),
        (["exhibit", "assign"], "name the items to number"),
        (["history"], "name one item"),
    ],
)
def test_options_that_cannot_apply_are_usage_errors(
    world: World, args: list[str], message: str, tmp_path: Path
) -> None:
    result = custody({**world.alice, "CUSTODY_ROOT": str(world.root)}, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not any(tmp_path.iterdir())


def test_templates_take_a_language_and_a_firms_changes(world: World, tmp_path: Path) -> None:
    """A translation is one strings file; its direction comes with it. (A test language:
    Arabic is another engineer's work.)"""
    from custody.delivery.report.build import build_report
    from custody.delivery.report.html import render_html
    from custody.trust.policy import TrustPolicy

    firm = tmp_path / "firm"
    (firm / "strings").mkdir(parents=True)
    (firm / "strings" / "xx.toml").write_text(
        '[meta]\nlang = "xx"\ndir = "rtl"\n[overview]\nheading = "ITEMS (XX)"\n', encoding="utf-8"
    )
    report = build_report(world.bundle_zip, policy=TrustPolicy(), thumbnails=False)
    page = render_html(report, lang="xx", template_dir=firm)
    assert '<html lang="xx" dir="rtl">' in page and "ITEMS (XX)" in page
    assert "The evidence, item by item" in page  # what the translation lacks stays English
    both = render_html(report, second="xx", template_dir=firm)
    assert 'class="second" lang="xx" dir="rtl">ITEMS (XX)</span>' in both


def test_a_lawyers_changed_copy_of_a_template_is_used(world: World, tmp_path: Path) -> None:
    from custody.delivery.certify import CERTIFICATIONS

    mine = tmp_path / "our-902.html.j2"
    text = (CERTIFICATIONS / "en" / "fre-902-14.html.j2").read_text(encoding="utf-8")
    mine.write_text(text.replace("I declare under penalty of perjury",
                                 "OUR FIRM'S WORDING. I declare under penalty of perjury"),
                    encoding="utf-8")  # fmt: skip
    page = tmp_path / "ours.html"
    ok(world.counsel, "certify", world.bundle_zip, "--template", mine, "--out", page,
       "--trusted-key", world.alice_pem)  # fmt: skip
    html = page.read_text(encoding="utf-8")
    assert "OUR FIRM'S WORDING. I declare under penalty of perjury" in html  # template text
    assert "Schedule A" in html and "default-src 'none'" in html
