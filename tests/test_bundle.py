"""Evidence bundles: `custody export`, `custody verify BUNDLE`, `custody import`.

One catalogued, event-annotated and really timestamped copy of the media (a loopback
RFC 3161 TSA from tests/tsa.py) is made per module; part of it is exported once, as a
folder and as a zip, with the real CLI. Each fact about the bundle is then checked with
the tools a court's expert would use, never with custody's own code: bagit-python's
``bagit.py --validate``, ``sha256sum -c``, ``openssl ts -verify`` on every token,
``openssl pkeyutl -verify -rawin`` on every record, and the RFC 9162 inclusion check
written here with hashlib. Selective disclosure is checked by searching every byte of
the bundle for anything of the items left out.

Hostile bundles are made from copies of the good one, the way an attacker would: when a
tag file is altered, the tag manifests are recomputed too, so what is caught is the
alteration itself and not a stale checksum. Each must give a named finding and the
documented exit code, and neither ``verify`` nor ``import`` may write anything: the
bundle, the lawyer's evidence root and the folders around them are compared byte for
byte before and after.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.helpers import files_under, schema
from tests.tsa import OPENSSL, openssl_ok, running_tsa

from conftest import PASSPHRASE, Result, copy_media, media_source, run_custody, snapshot, validate
from custody.acquisition.catalogue import Descriptive, catalogue
from custody.clock import format_time, utc_now
from custody.handling.events import event
from custody.keys.keyring import Keyring
from custody.ledger import canonical
from custody.root import init_root

CLI = Callable[..., Result]
BAGIT = Path(sys.executable).with_name("bagit.py")
FINDINGS, UNUSABLE = 1, 3

# Items exported (present in the full corpus and in the shipped samples alike).
GPS_PHOTO = "media/field-dump-01/DCIM/Camera/20160912_100531.jpg"  # samsung, 51.025 N 7.592 E
ARABIC_PHOTO = "media/field-dump-01/WhatsApp/Media/WhatsApp Images/تضامن 01.jpg"
ARABIC_PDF = "media/field-dump-01/WhatsApp/Media/WhatsApp Documents/تقرير أولي.pdf"
VIDEO = "media/field-dump-01/DCIM/Camera/VID_20201023_202729.mp4"
HEIC = "media/field-dump-02/DCIM/100APPLE/IMG_0002.HEIC"
EXPORTED = (GPS_PHOTO, ARABIC_PHOTO, ARABIC_PDF, VIDEO, HEIC)
# Not exported: named together with GPS_PHOTO by one event, which must stay home.
OTHER_PHOTO = "media/field-dump-01/DCIM/Camera/PXL_20231006_225351.jpg"
SILENCE = "media/recordings/silence-20s.wav"  # 3.8 MB that deflates ~1000 times
NOTE_TEXT = "صورة من الوقفة التضامنية"  # an Arabic note on ARABIC_PHOTO
TRANSFER_TO = "Bob Advocate (chambers)"


# --- the case: a catalogued, annotated, timestamped evidence root -------------------------


@dataclass(frozen=True)
class Case:
    root: Path
    home: Path  # CUSTODY_HOME of the documenter (alice)
    pem: Path  # alice's public key, as she would send it to the lawyer by another channel
    tsa_root: Path  # the loopback TSA's root certificate: the trust anchor
    tsa_chain: Path  # its intermediate CA certificate
    seqs: dict[str, int]  # catalogued path -> item record number
    withheld_event: int  # the event naming an exported and a non-exported item
    transfer_event: int
    note_event: int


def _ledger(root: Path) -> list[dict[str, Any]]:
    data = (root / ".custody" / "ledger.jsonl").read_bytes()
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def configure_tsa(root: Path, url: str) -> None:
    """Point the root at the loopback TSA only (never the public defaults)."""
    path = root / ".custody" / "config.toml"
    document = tomllib.loads(path.read_text())
    document["timestamps"] = {"tsa": [url], "min_success": 1, "timeout": 10.0}
    path.write_text(tomli_w.dumps(document))


def make_case(base: Path) -> Case:
    """Catalogue a copy of the media, record events, and timestamp it with a real TSA."""
    home = base / "alice-home"
    key = Keyring(home / "keys").generate("alice", "documenter", PASSPHRASE, format_time(utc_now()))
    signer = key.unlock(PASSPHRASE)
    pem = base / "alice.pem"
    pem.write_bytes(key.public.pem())
    root = init_root(base / "evidence")
    copy_media(media_source(), root.path / "media")
    (root.path / SILENCE).parent.mkdir(parents=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo",
         "-t", "20", "-c:a", "pcm_s16le", root.path / SILENCE],
        check=True, timeout=60,
    )  # fmt: skip
    report = catalogue(
        root,
        [root.path / "media"],
        signer,
        descriptive=Descriptive(collector="Amina Haddad", source="Field phone, Aleppo team"),
    )
    assert not report.skipped
    seqs = {
        r["signed"]["body"]["path"]: r["signed"]["seq"]
        for r in _ledger(root.path)
        if r["signed"]["type"] == "item"
    }
    for path in (*EXPORTED, OTHER_PHOTO, SILENCE):
        assert path in seqs, f"{path} not in the media copy"
    transfer = event(
        root, signer, "transfer", [seqs[GPS_PHOTO]], to=TRANSFER_TO, reason="hand over for trial"
    )
    note = event(root, signer, "note", [seqs[ARABIC_PHOTO]], text=NOTE_TEXT)
    both = event(
        root, signer, "access", [seqs[GPS_PHOTO], seqs[OTHER_PHOTO]], reason="compared side by side"
    )
    with running_tsa(base, "ok", include_chain=True) as tsa:
        configure_tsa(root.path, tsa.url)
        stamped = run_custody(
            "timestamp",
            "--root",
            root.path,
            env={"CUSTODY_HOME": str(home), "CUSTODY_PASSPHRASE": PASSPHRASE},
        )
        assert stamped.returncode == 0, stamped.stderr
        return Case(
            root.path,
            home,
            pem,
            tsa.root_pem,
            tsa.chain_pem,
            seqs,
            both.seq,
            transfer.seq,
            note.seq,
        )


def export(case: Case, out: Path, *paths: str, make_zip: bool = True) -> dict[str, Any]:
    """`custody export ITEMS --out OUT [--zip] --json` in a real subprocess."""
    args = [str(case.seqs[p]) for p in paths]
    result = run_custody(
        "export", *args, "--out", out, *(["--zip"] if make_zip else []), "--root", case.root,
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    validate(document, "cli-export.schema.json")
    return document


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return make_case(tmp_path_factory.mktemp("bundle-case"))


@dataclass(frozen=True)
class Bundle:
    folder: Path
    zip: Path
    exported: dict[str, Any]  # the export's JSON


@pytest.fixture(scope="module")
def bundle(case: Case, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    out = tmp_path_factory.mktemp("bundle-out") / "case-2024-017"
    document = export(case, out, *EXPORTED)
    assert document["zip"] == str(out.with_suffix(".zip"))
    return Bundle(out, Path(document["zip"]), document)


@dataclass(frozen=True)
class Lawyer:
    root: Path
    keys: Path  # keyring folder holding the key "counsel" (role lawyer)
    fingerprint: str


@pytest.fixture(scope="module")
def lawyer_template(tmp_path_factory: pytest.TempPathFactory) -> Lawyer:
    base = tmp_path_factory.mktemp("lawyer")
    key = Keyring(base / "home" / "keys").generate(
        "counsel", "lawyer", PASSPHRASE, format_time(utc_now())
    )
    root = init_root(base / "chambers")
    return Lawyer(root.path, base / "home" / "keys", key.public.fingerprint)


@pytest.fixture
def lawyer(lawyer_template: Lawyer, env: Path, tmp_path: Path) -> Lawyer:
    """The lawyer's own evidence root and keyring (this test's CUSTODY_HOME), empty."""
    shutil.copytree(lawyer_template.keys, env / "keys")
    root = tmp_path / "chambers"
    shutil.copytree(lawyer_template.root, root)
    return Lawyer(root, env / "keys", lawyer_template.fingerprint)


# --- reading the bundle from the outside ------------------------------------------------


def records(folder: Path) -> list[bytes]:
    data = (folder / "custody" / "records.jsonl").read_bytes()
    assert data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def index(folder: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / "custody" / "index.json").read_text())
    return document


def checkpoint_line(folder: Path) -> bytes:
    wanted = index(folder)["checkpoint"]["record"]
    for line in records(folder):
        signed = json.loads(line)["signed"]
        if signed["seq"] == wanted:
            assert signed["type"] == "checkpoint"
            return line
    raise AssertionError("the checkpoint named by index.json is not in records.jsonl")


def signed_part(line: bytes) -> bytes:
    """What an Ed25519 signature covers: the bytes after ',"signed":' up to the final '}'."""
    marker = b',"signed":'
    assert line.startswith(b'{"sig":"') and line.endswith(b"}")
    return line[line.index(marker) + len(marker) : -1]


def rebag(folder: Path) -> None:
    """Recompute the tag manifests, as an attacker who altered a tag file would."""
    for algorithm in ("sha256", "sha512"):
        lines = []
        for rel in sorted(n.decode() for n in files_under(folder)):
            if rel.startswith(("data/", "tagmanifest-")):
                continue
            digest = hashlib.new(algorithm, (folder / rel).read_bytes()).hexdigest()
            lines.append(f"{digest}  {rel}\n")
        (folder / f"tagmanifest-{algorithm}.txt").write_text("".join(lines))


def zip_folder(folder: Path, target: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Zip a bag under one top folder, plus raw extra entries named exactly as given."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files_under(folder)):
            rel = name.decode()
            archive.write(folder / rel, f"{folder.name}/{rel}")
        for entry, data in (extra or {}).items():
            archive.writestr(entry, data)
    return target


def tree_state(*places: Path) -> dict[str, Any]:
    """Every file (bytes, mtime) and every folder and link under the places given."""
    state: dict[str, Any] = {}
    for place in places:
        state[str(place)] = snapshot(place) if place.is_dir() else None
        for folder, dirs, files in os.walk(place):
            for name in dirs + files:
                full = os.path.join(folder, name)
                if os.path.islink(full):
                    state[full] = os.readlink(full)
                elif os.path.isdir(full):
                    state[full] = "dir"
    return state


def rfc9162_root(leaf_index: int, tree_size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2, written from the RFC with hashlib only."""
    fn, sn, r = leaf_index, tree_size - 1, leaf
    for p in path:
        assert sn != 0, "audit path too long"
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    assert sn == 0, "audit path too short"
    return r


# --- the export ---------------------------------------------------------------------------


def test_export_writes_a_bag_of_exactly_the_items(case: Case, bundle: Bundle) -> None:
    folder = bundle.folder
    assert bundle.exported["items"] == sorted(case.seqs[p] for p in EXPORTED)
    assert bundle.exported["timestamps"] >= 1 and bundle.exported["warnings"] == []
    names = {n.decode() for n in files_under(folder)}
    for required in (
        "bagit.txt",
        "bag-info.txt",
        "manifest-sha256.txt",
        "manifest-sha512.txt",
        "tagmanifest-sha256.txt",
        "tagmanifest-sha512.txt",
        "HOW-TO-VERIFY.txt",
        "custody/index.json",
        "custody/records.jsonl",
    ):
        assert required in names
    payload = {n for n in names if n.startswith("data/")}
    assert payload == {"data/" + p for p in EXPORTED}
    for path in EXPORTED:  # byte for byte the originals
        assert (folder / "data" / path).read_bytes() == (case.root / path).read_bytes()
    assert any(n.startswith("custody/timestamps/") and n.endswith(".tsr") for n in names)
    assert any(n.startswith("custody/keys/") and n.endswith(".pem") for n in names)
    for seq in bundle.exported["items"]:
        assert f"custody/proofs/record-{seq}.json" in names
    info = (folder / "bag-info.txt").read_text()
    oxum = sum((case.root / p).stat().st_size for p in EXPORTED)
    assert f"Payload-Oxum: {oxum}.{len(EXPORTED)}" in info
    how_to = (folder / "HOW-TO-VERIFY.txt").read_text()
    for tool in ("bagit.py --validate", "sha256sum -c", "openssl pkeyutl", "openssl ts -verify"):
        assert tool in how_to
    # The zip holds the same files, under one top folder.
    with zipfile.ZipFile(bundle.zip) as archive:
        listed = {i.filename for i in archive.infolist() if not i.is_dir()}
        assert listed == {f"{folder.name}/{n}" for n in names}
        for name in names:
            assert archive.read(f"{folder.name}/{name}") == (folder / name).read_bytes()


def test_bagit_python_validates_the_bag(bundle: Bundle) -> None:
    result = subprocess.run(
        [sys.executable, BAGIT, "--validate", bundle.folder],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stderr


def test_sha256sum_checks_the_payload_manifest(bundle: Bundle) -> None:
    for tool, manifest in (
        ("sha256sum", "manifest-sha256.txt"),
        ("sha512sum", "manifest-sha512.txt"),
    ):
        result = subprocess.run(
            [tool, "-c", manifest], cwd=bundle.folder, capture_output=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.decode().splitlines()
        assert len(lines) == len(EXPORTED) and all(line.endswith(": OK") for line in lines)


def test_openssl_ts_verifies_every_token(case: Case, bundle: Bundle) -> None:
    folder = bundle.folder
    digest = hashlib.sha256(checkpoint_line(folder)).hexdigest()
    tokens = index(folder)["timestamps"]
    assert tokens
    for token in tokens:
        assert token["imprint"] == digest
        argv = [OPENSSL, "ts", "-verify", "-digest", digest, "-in", str(folder / token["file"]),
                "-CAfile", str(case.tsa_root), "-untrusted", str(case.tsa_chain)]  # fmt: skip
        ok, output = openssl_ok(argv)
        assert ok, output
        # And a digest of anything else is refused by the same command.
        argv[4] = hashlib.sha256(b"another checkpoint").hexdigest()
        ok, _ = openssl_ok(argv)
        assert not ok


def test_openssl_pkeyutl_verifies_every_record(bundle: Bundle, tmp_path: Path) -> None:
    folder = bundle.folder
    for pem in (folder / "custody" / "keys").glob("*.pem"):
        der = subprocess.run(
            [OPENSSL, "pkey", "-pubin", "-in", pem, "-outform", "DER"],
            capture_output=True, check=True, timeout=30,
        ).stdout  # fmt: skip
        assert hashlib.sha256(der[-32:]).hexdigest() == pem.stem  # the fingerprint
    lines = records(folder)
    assert len(lines) == bundle.exported["records"]
    for number, line in enumerate(lines):
        document = json.loads(line)
        message, signature = tmp_path / f"msg-{number}.bin", tmp_path / f"sig-{number}.bin"
        message.write_bytes(signed_part(line))
        signature.write_bytes(base64.b64decode(document["sig"]))
        pem = folder / "custody" / "keys" / f"{document['signed']['signer']}.pem"
        result = subprocess.run(
            [OPENSSL, "pkeyutl", "-verify", "-pubin", "-inkey", pem, "-rawin",
             "-in", message, "-sigfile", signature],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode == 0 and "Signature Verified Successfully" in result.stdout, line
        message.write_bytes(signed_part(line).replace(b'"seq":', b'"seq": ', 1))
        tampered = subprocess.run(
            [OPENSSL, "pkeyutl", "-verify", "-pubin", "-inkey", pem, "-rawin",
             "-in", message, "-sigfile", signature],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert tampered.returncode != 0


def test_inclusion_proofs_check_by_hand_against_the_signed_checkpoint(bundle: Bundle) -> None:
    folder = bundle.folder
    checkpoint = json.loads(checkpoint_line(folder))["signed"]["body"]
    proofs = sorted((folder / "custody" / "proofs").glob("record-*.json"))
    proven = set()
    by_line = {line.decode(): line for line in records(folder)}
    for proof_file in proofs:
        proof = json.loads(proof_file.read_text())
        line = proof["record_line"].encode()
        assert proof["record_line"] in by_line  # the very bytes of records.jsonl
        leaf = hashlib.sha256(b"\x00" + line).digest()
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        root = rfc9162_root(proof["leaf_index"], checkpoint["tree_size"], leaf, path)
        assert root.hex() == checkpoint["root"], proof_file.name
        proven.add(json.loads(line)["signed"]["seq"])
        if path:  # one flipped bit in the audit path gives another root
            path[0] = bytes([path[0][0] ^ 1]) + path[0][1:]
            wrong = rfc9162_root(proof["leaf_index"], checkpoint["tree_size"], leaf, path)
            assert wrong.hex() != checkpoint["root"]
    # Every record except the checkpoint and the timestamps over it is proven.
    for line in records(folder):
        signed = json.loads(line)["signed"]
        if signed["type"] not in ("checkpoint", "timestamp"):
            assert signed["seq"] in proven


def test_custody_verifies_the_folder_and_the_zip(case: Case, bundle: Bundle, cli: CLI) -> None:
    for target in (bundle.folder, bundle.zip):
        # The lawyer has not confirmed alice yet: intact, signer not confirmed.
        unconfirmed = cli("verify", target, "--tsa-root", case.tsa_root, "--json")
        assert unconfirmed.code == 10 and unconfirmed.json()["intact"], unconfirmed.out
        trusted = cli("verify", target, "--tsa-root", case.tsa_root, "--trusted-key", case.pem,
                      "--json")  # fmt: skip
        assert trusted.code == 0, trusted.out
        document = trusted.json()
        validate(document, "cli-verify.schema.json")
        assert document["verified"] is True and document["findings"] == []
        assert document["files_checked"] == len(EXPORTED)
        assert {c["name"] for c in document["checks"]} >= {
            "bag structure", "records", "inclusion proofs", "signatures and keys", "files",
            "timestamps"
        }  # fmt: skip
        assert document["timestamps"] and document["timestamps"][0]["trust"] == "roots"
        # Without the TSA's root the token still checks, with a warning saying so.
        plain = cli("verify", target, "--trusted-key", case.pem, "--json")
        assert plain.code == 0
        assert [f["code"] for f in plain.json()["findings"]] == ["TIMESTAMP_UNTRUSTED"]
        text = cli("verify", target, "--trusted-key", case.pem)
        assert text.code == 0 and "VERIFIED" in text.out


def test_an_event_naming_other_content_is_an_invalid_reference_in_the_bundle(
    case: Case, tmp_path: Path, cli: CLI
) -> None:
    """A validly signed event that names the GPS photo with another photo's digest: the
    bundle carries it, and verifying the bundle names it, as verifying the root does."""
    root = tmp_path / "evidence"
    shutil.copytree(case.root, root, symlinks=True)
    ledger = root / ".custody" / "ledger.jsonl"
    records = _ledger(root)
    other = next(r for r in records if r["signed"]["seq"] == case.seqs[OTHER_PHOTO])
    wrong = {"path": GPS_PHOTO, "seq": case.seqs[GPS_PHOTO],
             "sha256": other["signed"]["body"]["digests"]["sha256"]}  # fmt: skip
    signer = Keyring(case.home / "keys").get("alice").unlock(PASSPHRASE)
    signed = {"body": {"action": "access", "items": [wrong], "reason": "viewed"},
              "prev": hashlib.sha256(ledger.read_bytes().split(b"\n")[-2]).hexdigest(),
              "seq": len(records), "signer": signer.fingerprint,
              "time": format_time(utc_now()), "type": "event", "v": 1}  # fmt: skip
    signature = base64.b64encode(signer.sign(canonical.encode(signed))).decode()
    with open(ledger, "ab") as handle:
        handle.write(canonical.encode({"sig": signature, "signed": signed}) + b"\n")
    env = {"CUSTODY_HOME": str(case.home), "CUSTODY_PASSPHRASE": PASSPHRASE}
    with running_tsa(tmp_path, "ok", include_chain=True) as tsa:
        configure_tsa(root, tsa.url)
        stamped = run_custody("timestamp", "--root", root, env=env)
        assert stamped.returncode == 0, stamped.stderr
    ledger_check = cli("verify", root, "--ledger-only", "--json").json()
    assert {f["code"] for f in ledger_check["findings"] if f["severity"] == "error"} == {
        "REFERENCE_INVALID"
    }
    out = tmp_path / "bundle"
    exported = run_custody("export", str(case.seqs[GPS_PHOTO]), "--out", out, "--root", root,
                           "--json", env=env)  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    verified = cli("verify", out, "--tsa-root", tsa.root_pem, "--json")
    assert verified.code == FINDINGS, verified.out
    errors = [f for f in verified.json()["findings"] if f["severity"] == "error"]
    assert [(f["code"], f["item"]) for f in errors] == [
        ("REFERENCE_INVALID", f"record {len(records)}")
    ]
    assert errors[0]["found"] == hashlib.sha256((out / "data" / GPS_PHOTO).read_bytes()).hexdigest()


def assert_discloses_nothing(folder: Path, zipped: Path, secrets: list[bytes]) -> None:
    """Search every byte of the bundle folder, and every entry name and content of its zip."""
    haystacks = [(n.decode(), (folder / n.decode()).read_bytes()) for n in files_under(folder)]
    with zipfile.ZipFile(zipped) as archive:
        haystacks += [
            (i.filename, i.filename.encode() + archive.read(i)) for i in archive.infolist()
        ]
    for name, data in haystacks:
        if "/custody/spec/" in f"/{name}":
            continue  # the published format specification, the same in every bundle
        for secret in secrets:
            assert secret not in data, f"{name} reveals {secret[:80]!r}"


def test_selective_disclosure_reveals_nothing_of_other_items(case: Case, bundle: Bundle) -> None:
    ledger = (case.root / ".custody" / "ledger.jsonl").read_bytes().split(b"\n")[:-1]
    exported = {case.seqs[p] for p in EXPORTED}
    exported_digests = set()
    for seq in exported:
        exported_digests.update(json.loads(ledger[seq])["signed"]["body"]["digests"].values())
    secrets: list[bytes] = []
    for seq, line in enumerate(ledger):
        signed = json.loads(line)["signed"]
        if signed["type"] == "item" and seq not in exported:
            body = signed["body"]
            secrets.append(line)
            secrets.append(body["path"].encode())
            secrets.append(body["path"].removeprefix("media/").encode())
            # A duplicate of exported content shares its digest; that reveals nothing new.
            secrets.extend(
                d.encode() for d in body["digests"].values() if d not in exported_digests
            )
    secrets.append(ledger[case.withheld_event])
    assert_discloses_nothing(bundle.folder, bundle.zip, secrets)
    withheld = index(bundle.folder)["withheld_events"]
    assert [w["record"] for w in withheld] == [case.withheld_event]
    # The events naming only exported items did travel.
    seqs = {json.loads(line)["signed"]["seq"] for line in records(bundle.folder)}
    assert {case.transfer_event, case.note_event} <= seqs
    assert seqs & {case.seqs[OTHER_PHOTO], case.withheld_event} == set()


def test_records_left_out_are_reported_even_when_the_withheld_notice_is_removed(
    case: Case, bundle: Bundle, tmp_path: Path
) -> None:
    """Issue 15, point 16: index.json's withheld list is unsigned, so a middleman can remove
    it. The report also says which of the ledger's records below the signed checkpoint the
    bundle does not carry, derived from the checkpoint and the records, which no one can
    change unnoticed: with the notice removed, the withheld event is still named."""
    from custody.delivery.report.build import build_report
    from custody.delivery.report.html import number_ranges, render_html
    from custody.trust.policy import policy_for

    stripped = tmp_path / "stripped"
    shutil.copytree(bundle.folder, stripped)
    document = index(stripped)
    assert [w["record"] for w in document.pop("withheld_events")] == [case.withheld_event]
    (stripped / "custody" / "index.json").write_bytes(canonical.encode(document) + b"\n")
    for tags in stripped.glob("tagmanifest-*.txt"):  # the middleman fixes the tag manifests
        algorithm = tags.name.removeprefix("tagmanifest-").removesuffix(".txt")
        lines = []
        for line in tags.read_text().splitlines():
            rel = line.split("  ", 1)[1]
            digest = hashlib.new(algorithm, (stripped / rel).read_bytes()).hexdigest()
            lines.append(f"{digest}  {rel}")
        tags.write_text("\n".join(lines) + "\n")
    carried = {json.loads(line)["signed"]["seq"] for line in records(stripped)}
    for folder in (bundle.folder, stripped):
        report = build_report(folder, policy=policy_for())
        assert report.withheld_events == ([] if folder == stripped else report.withheld_events)
        assert case.withheld_event in report.records_not_carried
        assert set(report.records_not_carried) == set(range(report.ledger_size)) - carried
        page = render_html(report)
        runs = number_ranges(report.records_not_carried)
        assert f"records {runs} are not in it" in page and case.withheld_event > 0
        assert "follows from the signed checkpoint itself" in page


def test_a_bundle_of_a_derived_copy_alone_reveals_nothing_of_its_original(
    cli: CLI, tmp_path: Path
) -> None:
    """Issue 15, point 15: 'event derive' wrote "derived from record N (PATH)" into the
    working copy's signed note, so a bundle of the redacted copy alone named the original.
    A reference carries the record number and the digest only (docs/events.md)."""
    root = tmp_path / "root"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    original = "interviews/شهادة خالد العلي - witness 7.txt"
    (root / "interviews").mkdir()
    (root / original).write_text("the unredacted testimony, with the witness's name\n")
    (root / "work").mkdir()
    assert cli("catalogue", root / "interviews", "--root", root).code == 0
    (root / "work" / "redacted.txt").write_text("the testimony, name removed\n")
    derived = cli("event", "derive", original, "--output", root / "work" / "redacted.txt",
                  "--action", "redaction", "--root", root, "--json")  # fmt: skip
    assert derived.code == 0, derived.err
    copy_seq = derived.json()["record"]["signed"]["body"]["output"]["seq"]
    assert cli("sign", "--root", root).code == 0
    out = tmp_path / "redacted-only"
    exported = cli("export", str(copy_seq), "--out", out, "--zip", "--root", root)
    assert exported.code == 0, exported.err
    ledger = (root / ".custody" / "ledger.jsonl").read_bytes().split(b"\n")[:-1]
    original_line = next(line for line in ledger if original.encode() in line)
    name = original.rsplit("/", 1)[1]
    secrets = [original.encode(), name.encode(), name.split(" - ")[0].encode(),
               json.dumps(original)[1:-1].encode(), original_line]  # fmt: skip
    assert_discloses_nothing(out, out.with_suffix(".zip"), secrets)
    withheld = [w["record"] for w in index(out)["withheld_events"]]
    assert withheld == [derived.json()["seq"]]  # the derive event names the original: home


def test_a_highly_compressible_original_is_not_taken_for_a_zip_bomb(
    case: Case, tmp_path: Path, cli: CLI
) -> None:
    """A 20 s silent WAV deflates ~1000 times; custody's own --zip must still verify."""
    document = export(case, tmp_path / "silence", SILENCE)
    result = cli("verify", document["zip"], "--trusted-key", case.pem, "--json")
    assert result.code == 0, result.err
    assert result.json()["verified"] is True


def test_a_bag_re_zipped_without_its_top_folder_verifies(
    case: Case, bundle: Bundle, tmp_path: Path, cli: CLI
) -> None:
    target = tmp_path / "rezipped.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(files_under(bundle.folder)):
            archive.write(bundle.folder / name.decode(), name.decode())
    assert cli("verify", target, "--trusted-key", case.pem).code == 0


# --- hostile bundles ------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    path: Path
    exit_code: int
    code: str | None  # the finding expected (None: the input is refused outright)
    words: str  # in the finding's message (or the one-line error)


def _payload_file(folder: Path, path: str = GPS_PHOTO) -> Path:
    return folder / "data" / path


def _flip_hex(text: str) -> str:
    return ("1" if text[0] != "1" else "2") + text[1:]


def _fresh_signed(body: dict[str, Any], *, seq: int, kind: str, prev: str | None,
                  time: str, key: Ed25519PrivateKey) -> bytes:  # fmt: skip
    """A canonical, validly signed record line made with a key custody never saw."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signed = {"body": body, "prev": prev, "seq": seq, "signer": hashlib.sha256(raw).hexdigest(),
              "time": time, "type": kind, "v": 1}  # fmt: skip
    message = canonical.encode(signed)
    signature = base64.b64encode(key.sign(message)).decode()
    return canonical.encode({"sig": signature, "signed": signed})


def _build_hostile(kind: str, bundle: Bundle, case: Case, base: Path) -> Hostile:
    folder = base / "case-2024-017"
    if kind not in ("garbage", "zip_bomb"):
        shutil.copytree(bundle.folder, folder, symlinks=True)
    gps_seq = case.seqs[GPS_PHOTO]
    if kind == "missing_payload":
        _payload_file(folder).unlink()
        return Hostile(folder, FINDINGS, "FILE_MISSING", "not in the bundle")
    if kind == "extra_payload":
        (folder / "data" / "media" / "planted.jpg").write_bytes(b"\xff\xd8 planted later")
        return Hostile(folder, FINDINGS, "FILE_UNEXPECTED", "in no manifest")
    if kind == "manifest_escape":
        outside = base / "outside.txt"
        outside.write_text("a file beside the bundle\n")
        digest = hashlib.sha256(outside.read_bytes()).hexdigest()
        with open(folder / "manifest-sha256.txt", "a") as handle:
            handle.write(f"{digest}  data/../../outside.txt\n{digest}  /etc/hostname\n")
        rebag(folder)
        return Hostile(folder, FINDINGS, "BUNDLE_UNSAFE", "leaves the bundle")
    if kind == "zip_dotdot":
        target = zip_folder(bundle.folder, base / "dotdot.zip",
                            {"case-2024-017/../../evil.txt": b"escaped"})  # fmt: skip
        return Hostile(target, FINDINGS, "BUNDLE_UNSAFE", "leaves the bundle")
    if kind == "zip_absolute":
        target = zip_folder(bundle.folder, base / "absolute.zip",
                            {str(base / "evil-absolute.txt"): b"escaped"})  # fmt: skip
        return Hostile(target, FINDINGS, "BUNDLE_UNSAFE", "leaves the bundle")
    if kind == "symlink":
        secret = base / "secret.txt"
        secret.write_text("the lawyer's own notes\n")
        link = folder / "data" / "media" / "looks-innocent.jpg"
        link.symlink_to(secret)
        with open(folder / "manifest-sha256.txt", "a") as handle:
            handle.write(f"{hashlib.sha256(secret.read_bytes()).hexdigest()}  "
                         "data/media/looks-innocent.jpg\n")  # fmt: skip
        rebag(folder)
        return Hostile(folder, FINDINGS, "BUNDLE_UNSAFE", "symbolic link")
    if kind == "altered_proof":
        proof_file = folder / "custody" / "proofs" / f"record-{gps_seq}.json"
        proof = json.loads(proof_file.read_text())
        assert proof["audit_path"]
        proof["audit_path"][0] = _flip_hex(proof["audit_path"][0])
        proof_file.write_bytes(canonical.encode(proof) + b"\n")
        rebag(folder)
        return Hostile(folder, FINDINGS, "PROOF_INVALID", "")
    if kind == "altered_token":
        token = next((folder / "custody" / "timestamps").glob("*.tsr"))
        data = bytearray(token.read_bytes())
        data[len(data) // 2] ^= 0x01
        token.write_bytes(bytes(data))
        rebag(folder)
        return Hostile(folder, FINDINGS, "TIMESTAMP_INVALID", "")
    if kind in ("altered_record", "resigned_record"):
        lines = records(folder)
        number = next(i for i, line in enumerate(lines)
                      if json.loads(line)["signed"]["seq"] == gps_seq)  # fmt: skip
        original = json.loads(lines[number])
        signed = original["signed"]
        commitments = signed["body"]["commitments"]
        commitments["collector"] = hashlib.sha256(b"Someone Else").hexdigest()
        if kind == "altered_record":
            lines[number] = canonical.encode(original)
            expected = "BAD_SIGNATURE"
        else:
            forger = Ed25519PrivateKey.generate()
            raw = forger.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            fingerprint = hashlib.sha256(raw).hexdigest()
            key_body = {
                "algorithm": "ed25519",
                "fingerprint": fingerprint,
                "name": "alice",
                "public_key": base64.b64encode(raw).decode(),
                "role": "documenter",
            }
            last = max(json.loads(line)["signed"]["seq"] for line in lines)
            key_line = _fresh_signed(key_body, seq=last + 1, kind="key", prev=None,
                                     time=signed["time"], key=forger)  # fmt: skip
            lines.append(key_line)
            lines[number] = _fresh_signed(
                signed["body"],
                seq=gps_seq,
                kind="item",
                prev=signed["prev"],
                time=signed["time"],
                key=forger,
            )
            pem = forger.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            (folder / "custody" / "keys" / f"{fingerprint}.pem").write_bytes(pem)
            expected = "PROOF_INVALID"
        (folder / "custody" / "records.jsonl").write_bytes(b"".join(x + b"\n" for x in lines))
        rebag(folder)
        return Hostile(folder, FINDINGS, expected, "")
    if kind == "index_redirect":
        # index.json is a convenience map, covered only by the (recomputable) tag
        # manifests: point an item at an unverified tag file planted beside it.
        planted = folder / "custody" / "notes.bin"
        planted.write_bytes(b"bytes no record describes")
        document = index(folder)
        entry = next(e for e in document["items"] if e["record"] == gps_seq)
        entry["data_path"] = "custody/notes.bin"
        entry["digests"] = {"sha256": hashlib.sha256(planted.read_bytes()).hexdigest()}
        (folder / "custody" / "index.json").write_text(json.dumps(document, indent=2))
        rebag(folder)
        return Hostile(
            folder, FINDINGS, "BUNDLE_MALFORMED", "disagrees with the signed item record"
        )
    if kind == "tag_manifests_deleted":
        # Issue 15, point 17: deleting both tag manifests used to raise no finding.
        for algorithm in ("sha256", "sha512"):
            (folder / f"tagmanifest-{algorithm}.txt").unlink()
        return Hostile(folder, FINDINGS, "BUNDLE_MALFORMED", "tag manifest")
    if kind == "tag_manifest_line_deleted":
        for algorithm in ("sha256", "sha512"):
            manifest = folder / f"tagmanifest-{algorithm}.txt"
            lines = manifest.read_text().splitlines(keepends=True)
            manifest.write_text("".join(x for x in lines if "custody/index.json" not in x))
        return Hostile(folder, FINDINGS, "BUNDLE_MALFORMED", "does not list")
    if kind in ("withheld_names_a_carried_record", "withheld_beyond_the_checkpoint",
                "withheld_reason_rewritten"):  # fmt: skip
        # Issue 15, point 16: index.json's withheld_events is not signed; what the records
        # allow is checked (a middleman adding a notice, or rewording it, is a finding).
        document = index(folder)
        if kind == "withheld_names_a_carried_record":
            document["withheld_events"].append(
                {"record": case.transfer_event, "reason": "also names items outside this bundle"}
            )
            words = "which the bundle carries"
        elif kind == "withheld_beyond_the_checkpoint":
            size = document["checkpoint"]["tree_size"]
            document["withheld_events"].append(
                {"record": size + 5, "reason": "also names items outside this bundle"}
            )
            words = "cannot be an event about the exported items"
        else:
            document["withheld_events"][0]["reason"] = "the police took the originals"
            words = "withheld_events entry"
        (folder / "custody" / "index.json").write_text(json.dumps(document, indent=2))
        rebag(folder)
        return Hostile(folder, FINDINGS, "BUNDLE_MALFORMED", words)
    if kind == "zip_bomb":
        return Hostile(_zip_bomb(bundle, base), UNUSABLE, None, "zip bomb")
    if kind == "garbage":
        target = base / "case-2024-017.zip"
        target.write_bytes(os.urandom(64 * 1024))
        return Hostile(target, UNUSABLE, None, "not a readable zip file")
    raise AssertionError(kind)


BOMB_GIB = 2


def _zip_bomb(bundle: Bundle, base: Path) -> Path:
    """The good bundle plus a 2 GiB payload entry of zeros, deflated to ~2 MiB."""
    target = zip_folder(bundle.folder, base / "bomb.zip")
    chunk = bytes(1 << 26)
    with (
        zipfile.ZipFile(target, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z,
        z.open("case-2024-017/data/media/zeros.bin", "w", force_zip64=True) as entry,
    ):
        for _ in range(BOMB_GIB * 16):
            entry.write(chunk)
    assert target.stat().st_size < 16 << 20
    return target


HOSTILE = [
    "missing_payload",
    "extra_payload",
    "manifest_escape",
    "zip_dotdot",
    "zip_absolute",
    "symlink",
    "altered_proof",
    "altered_token",
    "altered_record",
    "resigned_record",
    "index_redirect",
    "tag_manifests_deleted",
    "tag_manifest_line_deleted",
    "withheld_names_a_carried_record",
    "withheld_beyond_the_checkpoint",
    "withheld_reason_rewritten",
    "zip_bomb",
    "garbage",
]


@pytest.fixture(scope="module")
def hostile_bundles(
    bundle: Bundle, case: Case, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[Path, Hostile]]]:
    """Each hostile bundle, made once, in a folder of its own."""
    made = {}
    for kind in HOSTILE:
        base = tmp_path_factory.mktemp(f"hostile-{kind}")
        made[kind] = (base, _build_hostile(kind, bundle, case, base))
    yield made


def _evidence_of_escape(base: Path) -> list[Path]:
    """Files the hostile zips name outside the bundle, wherever they could have landed."""
    here = [Path.cwd() / "evil.txt", Path.cwd().parent / "evil.txt", base / "evil-absolute.txt"]
    return [p for p in base.parent.rglob("evil*") if p.is_file()] + [p for p in here if p.exists()]


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_bundle_gets_a_clear_finding_and_nothing_is_written(
    kind: str, hostile_bundles: dict[str, tuple[Path, Hostile]], cli: CLI
) -> None:
    base, hostile = hostile_bundles[kind]
    before = tree_state(base)
    result = cli("verify", hostile.path, "--json")
    assert result.code == hostile.exit_code, (result.out, result.err)
    if hostile.code is None:
        assert result.out == ""
        line = result.err.strip()
        assert line.startswith("custody: error: ") and "\n" not in line
        assert hostile.words in line
    else:
        document = result.json()
        validate(document, "cli-verify.schema.json")
        assert document["verified"] is False
        matching = [f for f in document["findings"] if f["code"] == hostile.code]
        assert matching, document["findings"]
        assert all(f["severity"] == "error" for f in matching)
        assert any(hostile.words in f["message"] for f in matching), matching
        failed = [c["name"] for c in document["checks"] if not c["passed"]]
        assert failed
    assert tree_state(base) == before
    assert not _evidence_of_escape(base)


@pytest.mark.parametrize("kind", HOSTILE)
def test_import_of_a_hostile_bundle_writes_nothing(
    kind: str, hostile_bundles: dict[str, tuple[Path, Hostile]], lawyer: Lawyer, cli: CLI
) -> None:
    base, hostile = hostile_bundles[kind]
    before = tree_state(lawyer.root, base)
    result = cli("import", hostile.path, "--root", lawyer.root, "--json")
    assert result.code == hostile.exit_code, (result.out, result.err)
    if hostile.code is not None:
        document = result.json()
        validate(document, "cli-import.schema.json")
        assert document["imported"] == 0 and document["event"] is None
        assert hostile.code in {f["code"] for f in document["verification"]["findings"]}
    text = cli("import", hostile.path, "--root", lawyer.root)
    assert text.code == hostile.exit_code
    if hostile.code is not None:
        assert "nothing was written" in text.err
    assert tree_state(lawyer.root, base) == before
    assert not _evidence_of_escape(base)


# --- import -----------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["zip", "folder"])
def test_import_records_a_receive_event_signed_by_the_lawyer(
    form: str, case: Case, bundle: Bundle, lawyer: Lawyer, cli: CLI
) -> None:
    source = bundle.zip if form == "zip" else bundle.folder
    refused = cli("import", source, "--root", lawyer.root, "--tsa-root", case.tsa_root, "--json")
    assert refused.code == 10 and refused.json()["event"] is None  # alice not confirmed yet
    result = cli("import", source, "--root", lawyer.root, "--tsa-root", case.tsa_root,
                 "--trusted-key", case.pem, "--json")  # fmt: skip
    assert result.code == 0, result.err
    document = result.json()
    validate(document, "cli-import.schema.json")
    assert document["imported"] == len(EXPORTED)
    assert document["verification"]["verified"] is True
    folder = Path(document["folder"])
    assert folder == lawyer.root / "received" / bundle.folder.name
    for path in EXPORTED:  # the originals, byte for byte
        assert (folder / path).read_bytes() == (case.root / path).read_bytes()
    ledger = _ledger(lawyer.root)
    receive = ledger[document["event"]]["signed"]
    assert receive["type"] == "event" and receive["body"]["action"] == "receive"
    assert receive["signer"] == lawyer.fingerprint
    assert str(source) in receive["body"]["source"]
    items = [r["signed"] for r in ledger if r["signed"]["type"] == "item"]
    assert {i["body"]["digests"]["sha256"] for i in items} == {
        hashlib.sha256((case.root / p).read_bytes()).hexdigest() for p in EXPORTED
    }
    assert {ref["seq"] for ref in receive["body"]["items"]} == {i["seq"] for i in items}
    assert all(i["signer"] == lawyer.fingerprint for i in items)
    verified = cli("verify", "--root", lawyer.root, "--json")
    assert verified.code == 0, verified.out
    validate(verified.json(), "cli-verify.schema.json")
    assert verified.json()["files_checked"] == len(EXPORTED)


def test_import_schema_embeds_the_verify_schema_unchanged() -> None:
    assert schema("cli-import.schema.json")["$defs"]["verification"] == schema(
        "cli-verify.schema.json"
    )


def test_a_file_name_that_is_not_utf8_travels_and_comes_back_exact(
    cli: CLI, tmp_path: Path, lawyer: Lawyer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BagIt manifests are UTF-8: the bag holds the display name, import restores the bytes."""
    documenter_home = tmp_path / "documenter-home"
    monkeypatch.setenv("CUSTODY_HOME", str(documenter_home))
    root = tmp_path / "small"
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", "alice").code == 0
    name = b"scan-\xff\xfe-01.jpg"
    (root / "in").mkdir()
    with open(os.fsencode(root / "in") + b"/" + name, "wb") as handle:
        handle.write(b"\xff\xd8\xff\xe0 a photo whose name is not UTF-8")
    assert cli("catalogue", root / "in", "--root", root).code == 0
    assert cli("sign", "--root", root).code == 0
    exported = cli("export", "--all", "--out", tmp_path / "odd", "--zip", "--root", root, "--json")
    assert exported.code == 0, exported.err
    folder = tmp_path / "odd"
    bagit = subprocess.run([sys.executable, BAGIT, "--validate", folder],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bagit.returncode == 0, bagit.stderr
    for target in (folder, tmp_path / "odd.zip"):
        result = cli("verify", target, "--json")
        assert result.code == 0, result.out
    assert cli("keys", "export", "alice", "--out", tmp_path / "alice.pem").code == 0
    monkeypatch.setenv("CUSTODY_HOME", str(lawyer.keys.parent))
    imported = cli("import", tmp_path / "odd.zip", "--root", lawyer.root,
                   "--trusted-key", tmp_path / "alice.pem", "--json")  # fmt: skip
    assert imported.code == 0, imported.out + imported.err
    restored = os.fsencode(lawyer.root / "received" / "odd" / "in") + b"/" + name
    with open(restored, "rb") as handle:
        assert handle.read() == b"\xff\xd8\xff\xe0 a photo whose name is not UTF-8"
    assert cli("verify", "--root", lawyer.root).code == 0


def test_the_expert_steps_in_docs_bundle_md_work(
    case: Case, bundle: Bundle, tmp_path: Path
) -> None:
    """Run every shell block of docs/bundle.md's step-by-step section in a copy of the bag."""
    doc = (Path(__file__).parents[1] / "docs" / "bundle.md").read_text(encoding="utf-8")
    section = doc.split("## Checking a bundle without custody", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) >= 6
    folder = tmp_path / bundle.folder.name
    shutil.copytree(bundle.folder, folder)
    token = next((folder / "custody" / "timestamps").glob("*.tsr")).name
    outputs = []
    for block in blocks:
        script = (
            # bagit is installed here: no venv in the home folder, the installed script
            block.replace("python3 -m venv ~/bagit-venv", "true")
            .replace("~/bagit-venv/bin/pip install bagit", "true")
            .replace("~/bagit-venv/bin/bagit.py", str(BAGIT))
            .replace("python3 ", f"{sys.executable} ")
            .replace("T.tsr", token)
            .replace("tsa-root.pem", str(case.tsa_root))
        )
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=folder, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, (block, result.stdout, result.stderr)
        outputs.append(result.stdout + result.stderr)
    text = "\n".join(outputs)
    assert ". is valid" in text
    assert text.count("Signature Verified Successfully") == len(records(folder))
    proofs = len(list((folder / "custody" / "proofs").glob("record-*.json")))
    assert len(re.findall(r"record-\d+\.json [0-9a-f]{64} OK", text)) == proofs
    assert "FAILED" not in text and "Verification: OK" in text
