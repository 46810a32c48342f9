"""Sources that prove something of themselves, through the real CLI: ProofMode bundles
(signatures checked with real GnuPG, hashes, OpenTimestamps) and C2PA manifests (the SDK's
own signing, valid and tampered), recorded at intake and re-checked by ``verify``.

Bundles are built as ProofMode builds them (``test_proofmode``: PGPy keys and signatures,
the OpenTimestamps library for ``.ots``); C2PA files are signed by the SDK with a test
certificate chain (``test_c2pa``). What custody recorded is compared with what the
independent tools say: ``gpg --verify`` in a private keyring, ``sha256sum``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import every_line_valid, latest_items, ledger_lines

from conftest import Result, validate
from test_c2pa import PHOTO as C2PA_PHOTO
from test_c2pa import Chain, make_chain, sign_file
from test_proofmode import _make_key, fingerprint, make_bundle, sign

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="GnuPG (gpg) not installed")


@pytest.fixture(scope="module")
def key() -> Any:
    """A phone key as ProofMode makes it (SHA-1 self-signature); 2048 bits keeps it quick."""
    from pgpy.constants import HashAlgorithm

    return _make_key(2048, HashAlgorithm.SHA1)


@pytest.fixture(scope="module")
def chain() -> Chain:
    return make_chain("Custody Sources")


def entry(root: Path, suffix: str, kind: str) -> tuple[Any, dict[str, Any]]:
    (item,) = [i for p, i in latest_items(root).items() if p.decode().endswith(suffix)]
    found = [p for p in item.body.get("provenance", []) if p["kind"] == kind]
    assert found, f"{suffix}: no {kind} entry in {item.body.get('provenance')}"
    return item, found[0]


def checks(provenance: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["state"] for c in provenance["checks"]}


def gpg_verifies(tmp: Path, pubkey: bytes, signature: Path, data: Path) -> bool:
    """GnuPG itself, in a throw-away keyring: what an expert runs (HowToVerifyProofData)."""
    home = tmp / f"gnupg-{len(list(tmp.iterdir()))}"
    home.mkdir(mode=0o700)
    env = {"PATH": "/usr/bin:/bin", "GNUPGHOME": str(home), "LC_ALL": "C"}
    (home / "key.asc").write_bytes(pubkey)
    subprocess.run(
        ["gpg", "--batch", "--import", str(home / "key.asc")],
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    done = subprocess.run(
        ["gpg", "--batch", "--verify", str(signature), str(data)],
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    return done.returncode == 0


# --- ProofMode -----------------------------------------------------------------------------------


def test_proofmode_good_bad_signature_and_hash_mismatch(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path, key: Any
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    good = make_bundle(key).write_zip(outside / "good.zip")
    bad = make_bundle(key)
    bad.replace(".asc", sign(key, b"a different photograph"))
    bad_zip = bad.write_zip(outside / "bad-signature.zip")
    changed = make_bundle(key, with_ots=False)
    data = bytearray(changed.files[changed.media_name])
    data[-200] ^= 0x01  # the photo changed after ProofMode hashed and signed it
    changed.files[changed.media_name] = bytes(data)
    changed_folder = changed.write_folder(outside / "changed")

    result = cli(
        "ingest",
        good,
        "--as",
        "proofmode",
        "--into",
        "pm",
        "--root",
        evidence,
        "--proofmode-key",
        fingerprint(key),
        "--json",
    )
    assert result.code == 0, result.err
    validate(result.json(), "cli-ingest.schema.json")
    media, proof = entry(evidence, "pm/good/PXL_20231006_225351.jpg", "proofmode")
    assert checks(proof) == {
        "media_signature": "passed",
        "proof_json_signature": "passed",
        "proof_csv_signature": "passed",
        "proof_json": "passed",
        "proof_csv": "passed",
        "recorded_hash": "passed",
        "signing_key_confirmed": "passed",
        "ots_digest": "passed",
        "ots_attestation": "not_checkable",
    }
    assert proof["bundle_path"] == "pm/good" and proof["proof_hash"] == media.sha256
    assert proof["key"]["fingerprints"] == [fingerprint(key)]
    assert ["Hardware", "Pixel 7"] in proof["proofs"][0]["fields"]
    assert proof["ots"]["attestations"][0]["kind"] == "pending"
    assert "GnuPG" in proof["checked_with"]
    # GnuPG, run by hand on the copies in the root, agrees with what was recorded.
    folder = evidence / "pm" / "good"
    assert gpg_verifies(
        tmp_path,
        (folder / "pubkey.asc").read_bytes(),
        folder / f"{media.sha256}.asc",
        folder / "PXL_20231006_225351.jpg",
    )
    _, key_part = entry(evidence, "pm/good/pubkey.asc", "proofmode")
    assert key_part["role"] == "key" and key_part["for_media"] == ["PXL_20231006_225351.jpg"]

    refused = cli("ingest", bad_zip, "--as", "proofmode", "--into", "pm", "--root", evidence)
    assert refused.code == 1, "a failed check of the source's proof is a finding"
    assert "CHECK FAILED" in refused.err and "media_signature" in refused.err
    bad_media, bad_proof = entry(evidence, "pm/bad-signature/PXL_20231006_225351.jpg", "proofmode")
    assert checks(bad_proof)["media_signature"] == "failed"
    assert checks(bad_proof)["signing_key_confirmed"] == "not_checkable"  # no --proofmode-key
    folder = evidence / "pm" / "bad-signature"
    assert not gpg_verifies(
        tmp_path,
        (folder / "pubkey.asc").read_bytes(),
        folder / f"{bad_media.sha256}.asc",
        folder / "PXL_20231006_225351.jpg",
    )

    mismatch = cli(
        "ingest", changed_folder, "--as", "proofmode", "--into", "pm", "--root", evidence
    )
    assert mismatch.code == 1
    _, changed_proof = entry(evidence, "pm/changed/PXL_20231006_225351.jpg", "proofmode")
    assert checks(changed_proof)["recorded_hash"] == "failed"
    assert checks(changed_proof)["media_signature"] == "failed"
    assert checks(changed_proof)["proof_json_signature"] == "passed"

    verified = cli("verify", evidence, "--json")
    # The sources' failed proofs are warnings: custody's own chain is intact.
    assert verified.code == 0, verified.out
    document = verified.json()
    validate(document, "cli-verify.schema.json")
    failed = {(f["item"], f["code"]) for f in document["findings"] if f["severity"] == "warning"}
    assert ("pm/bad-signature/PXL_20231006_225351.jpg", "SOURCE_CHECK_FAILED") in failed
    assert ("pm/changed/PXL_20231006_225351.jpg", "SOURCE_CHECK_FAILED") in failed
    assert not any(item.startswith("pm/good/") for item, _ in failed)
    (row,) = [r for r in document["provenance"] if r["path"] == "pm/good/PXL_20231006_225351.jpg"]
    now = {c["check"]: c["now"] for c in row["entries"][0]["rechecks"]}
    assert now["media_signature"] == "passed" and now["ots_attestation"] == "not_checkable"
    plain = cli("verify", evidence)
    assert "ots_attestation not checkable" in plain.out and "ots verify" in plain.out

    assert every_line_valid(evidence) >= {
        "proofmode:media", "proofmode:proof-file", "proofmode:key", "proofmode:other",
        "proofmode:archive",
    }  # fmt: skip
    page = tmp_path / "report.html"
    report = cli("report", evidence, "--out", page)
    assert report.code == 0, report.err
    html = page.read_text()
    assert "From the ProofMode bundle" in html and "Check media_signature" in html
    assert "Hardware (recorded by the phone)" in html


def test_a_key_added_later_changes_the_recheck_and_verify_says_so(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path, key: Any
) -> None:
    """Taken in without pubkey.asc, every signature failed (no key); the key, obtained from
    the person and catalogued into the bundle's folder, makes them verify on re-check."""
    made = make_bundle(key, with_ots=False)
    pubkey = made.files.pop("pubkey.asc")
    folder = made.write_folder(tmp_path / "outside-bundle")
    assert cli("ingest", folder, "--as", "proofmode", "--root", evidence).code == 1
    _, proof = entry(evidence, "outside-bundle/PXL_20231006_225351.jpg", "proofmode")
    assert checks(proof)["media_signature"] == "failed"
    (evidence / "outside-bundle" / "pubkey.asc").write_bytes(pubkey)
    assert cli("catalogue", evidence / "outside-bundle", "--root", evidence).code == 0
    document = cli("verify", evidence, "--json").json()
    changed = [f for f in document["findings"] if f["code"] == "SOURCE_CHECK_CHANGED"]
    assert {f["expected"] for f in changed} == {"failed"}
    assert {f["found"] for f in changed} == {"passed"}
    assert any("media_signature" in f["message"] for f in changed)
    # Without GnuPG on the verifier's machine, nothing is re-checked and nothing is claimed.
    env = {**os.environ, "PATH": "/nonexistent"}
    from conftest import run_custody

    child = run_custody("verify", evidence, "--json", env=env)
    rows = [
        c
        for r in __import__("json").loads(child.stdout)["provenance"]
        for e in r["entries"]
        if e["kind"] == "proofmode"
        for c in e["rechecks"]
    ]
    assert rows and {c["now"] for c in rows} == {"not_rechecked"}


def test_proof_shared_without_media_is_listed_missing(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path, key: Any
) -> None:
    made = make_bundle(key, with_ots=False)
    del made.files[made.media_name]
    result = cli(
        "ingest",
        made.write_zip(tmp_path / "proof-only.zip"),
        "--as",
        "proofmode",
        "--root",
        evidence,
        "--json",
    )
    assert result.code == 0, result.err
    (missing,) = result.json()["source"]["missing"]
    assert missing["where"] == f"proof set {made.media_hash}" and missing["status"] == "missing"


# --- C2PA ----------------------------------------------------------------------------------------


def test_c2pa_valid_tampered_and_trusted_through_catalogue_and_verify(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path, chain: Chain
) -> None:
    media = evidence / "media"
    media.mkdir()
    store = sign_file(chain, C2PA_PHOTO, media / "signed.jpg")
    data = bytearray((media / "signed.jpg").read_bytes())
    data[-5000] ^= 0x01  # inside the image data, far from the manifest
    (media / "tampered.jpg").write_bytes(bytes(data))
    shutil.copyfile(C2PA_PHOTO, media / "plain.jpg")
    result = cli("catalogue", media, "--root", evidence, "--json")
    assert result.code == 1, "an invalid manifest needs a person to look"
    document = result.json()
    validate(document, "cli-catalogue.schema.json")
    states = {i["path"]: i["c2pa"] for i in document["items"]}
    assert states == {
        "media/signed.jpg": "valid",
        "media/tampered.jpg": "invalid",
        "media/plain.jpg": None,
    }
    _, valid = entry(evidence, "media/signed.jpg", "c2pa")
    import hashlib

    assert valid["manifest_store_sha256"] == hashlib.sha256(store).hexdigest()
    assert valid["signer"]["certificate"]["subject"] == chain.leaf.subject.rfc4514_string()
    assert valid["claim_generator"] == "custody-test/1.0"
    assert [a["action"] for a in valid["actions"]] == ["c2pa.created"]
    assert valid["trust_anchors_supplied"] is False
    _, invalid = entry(evidence, "media/tampered.jpg", "c2pa")
    assert "assertion.dataHash.mismatch" in {s["code"] for s in invalid["statuses"]}

    shown = cli("show", "media/tampered.jpg", "--root", evidence)
    assert "C2PA validation state" in shown.out and "INVALID" in shown.out
    verified = cli("verify", evidence, "--json").json()
    warned = {f["item"]: f for f in verified["findings"] if f["code"] == "SOURCE_CHECK_FAILED"}
    assert set(warned) == {"media/tampered.jpg"}
    assert "as at intake" in warned["media/tampered.jpg"]["message"]
    page = tmp_path / "report.html"
    assert cli("report", evidence, "--out", page).code == 0
    html = page.read_text()
    assert "C2PA validation state" in html and "INVALID: the file or its manifest" in html
    assert "Claim generator (claimed)" in html and "custody-test/1.0" in html

    # With the user's trust list, the same manifest is recorded trusted.
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(chain.root_pem)
    trusted_dir = evidence / "trusted"
    trusted_dir.mkdir()
    shutil.copyfile(media / "signed.jpg", trusted_dir / "signed.jpg")
    again = cli("catalogue", trusted_dir, "--root", evidence, "--c2pa-trust", anchors, "--json")
    assert again.code == 0, again.err
    _, trusted = entry(evidence, "trusted/signed.jpg", "c2pa")
    assert trusted["validation_state"] == "trusted"
    assert trusted["trust_anchors_sha256"] == hashlib.sha256(chain.root_pem).hexdigest()
    assert every_line_valid(evidence) == {"c2pa:manifest"}
    (tmp_path / "junk.pem").write_text("not a certificate")
    lines = ledger_lines(evidence)
    refused = cli(
        "catalogue", trusted_dir, "--root", evidence, "--c2pa-trust", tmp_path / "junk.pem"
    )
    assert refused.code == 2 and "--c2pa-trust" in refused.err
    assert ledger_lines(evidence) == lines


def test_c2pa_manifest_inside_a_whatsapp_export_gives_two_sources(
    evidence: Path, cli: Callable[..., Result], tmp_path: Path, chain: Chain
) -> None:
    import chat_fixtures as fx

    built = fx.android_export(tmp_path)
    sign_file(chain, C2PA_PHOTO, built.path / "IMG-20231231-WA0003.jpg")
    result = cli("ingest", built.path, "--as", "whatsapp", "--root", evidence)
    assert result.code == 0, result.err
    item, claim = entry(evidence, "IMG-20231231-WA0003.jpg", "whatsapp")
    assert claim["sender"] == "Abu Khalil"
    assert {p["kind"] for p in item.body["provenance"]} == {"whatsapp", "c2pa"}
    history = cli("history", item.body["path"], "--root", evidence, "--json").json()
    (ingested,) = [e for e in history["entries"] if e["kind"] == "ingested"]
    assert "according to the WhatsApp export" in ingested["summary"]
    assert "C2PA manifest valid" in ingested["summary"]
