"""ProofMode bundles built as ProofMode builds them, checked by custody with real GnuPG.

The bundles follow guardianproject/proofmode-android (b2906d95d601ec5cfda36099bdc2f2f89f47d8a4):
``MediaWatcher.kt`` ``writeProof``/``buildProof``/``writeMapToCSV`` for the proof files,
``ProofModeV1Constants.java`` for the field names, ``PgpUtils.java`` for the key (RSA 4096,
user id ``noone@proofmode.witness.org``, SHA-1 self-signature) and
``DetachedSignatureProcessor.java`` for the signatures (armoured, binary document, SHA-256),
``ShareProofActivity.kt`` ``zipProof`` for the zip. Keys and signatures are made with PGPy,
so GnuPG verifies what another implementation produced (as it does for ProofMode's Bouncy
Castle). ``.ots`` files are built with the OpenTimestamps reference library in the shape
``ots stamp`` gives them (nonce, SHA-256, calendar commitment, pending attestation).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentimestamps.core.notary import BitcoinBlockHeaderAttestation, PendingAttestation
from opentimestamps.core.op import OpAppend, OpPrepend, OpSHA256
from opentimestamps.core.serialize import StreamSerializationContext
from opentimestamps.core.timestamp import DetachedTimestampFile, Timestamp

from custody.acquisition.sources.proofmode import (
    CheckState,
    MediaProof,
    Problem,
    ProofModeBundle,
    read_proofmode,
)
from custody.errors import InputError, ToolMissingError, UsageError

with warnings.catch_warnings():
    # PGPy 0.6 imports imghdr and old cipher names: test-only, and only to make signatures.
    warnings.simplefilter("ignore")
    import pgpy
    from pgpy.constants import HashAlgorithm, KeyFlags, PubKeyAlgorithm, SymmetricKeyAlgorithm
    from pgpy.packet.fields import RSAPriv

# PGPy rebuilds (and re-validates) the RSA private key for every signature: ~0.7 s each at
# 4096 bits. Building it once per key keeps the suite quick; the signatures are the same.
_private_keys: dict[int, tuple[object, object]] = {}
_rebuild = RSAPriv.__privkey__


def _cached_privkey(self: object) -> object:
    entry = _private_keys.get(id(self))
    if entry is None or entry[0] is not self:
        entry = (self, _rebuild(self))
        _private_keys[id(self)] = entry
    return entry[1]


RSAPriv.__privkey__ = _cached_privkey


SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "field-dump"
PHOTO = SAMPLES / "field-dump-01" / "DCIM" / "Camera" / "PXL_20231006_225351.jpg"
OTHER_PHOTO = SAMPLES / "field-dump-01" / "DCIM" / "Camera" / "20160912_100531.jpg"
CALENDAR = "https://alice.btc.calendar.opentimestamps.org"

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="GnuPG (gpg) not installed")


# --- keys and signatures, as ProofMode makes them ----------------------------------------------


def _make_key(bits: int, self_sig_hash: HashAlgorithm) -> pgpy.PGPKey:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        key = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, bits)
        uid = pgpy.PGPUID.new("noone@proofmode.witness.org")
        key.add_uid(
            uid,
            usage={KeyFlags.Sign, KeyFlags.Certify},
            hashes=[
                HashAlgorithm.SHA256,
                HashAlgorithm.SHA1,
                HashAlgorithm.SHA384,
                HashAlgorithm.SHA512,
                HashAlgorithm.SHA224,
            ],
            ciphers=[
                SymmetricKeyAlgorithm.AES256,
                SymmetricKeyAlgorithm.AES192,
                SymmetricKeyAlgorithm.AES128,
            ],
            hash=self_sig_hash,
        )
        # ProofMode's encryption subkey is RSA 4096 too; 2048 keeps the suite quick and
        # plays no part in verifying signatures.
        sub = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, 2048)
        key.add_subkey(
            sub,
            usage={KeyFlags.EncryptCommunications, KeyFlags.EncryptStorage},
            hash=self_sig_hash,
        )
    return key


@pytest.fixture(scope="session")
def device_key() -> pgpy.PGPKey:
    """The phone's key, as PgpUtils.generateKeyRingGenerator makes it (SHA-1 self-sig)."""
    return _make_key(4096, HashAlgorithm.SHA1)


@pytest.fixture(scope="session")
def stranger_key() -> pgpy.PGPKey:
    return _make_key(2048, HashAlgorithm.SHA256)


def sign(key: pgpy.PGPKey, data: bytes) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signature = key.sign(data, hash=HashAlgorithm.SHA256)
    return str(signature).encode("ascii")


def fingerprint(key: pgpy.PGPKey) -> str:
    return str(key.fingerprint).replace(" ", "").upper()


# --- proof files -------------------------------------------------------------------------------


def proof_map(device_path: str, sha256: str) -> dict[str, str]:
    """buildProof's map with location on and device ids off (ProofMode's defaults + GPS)."""
    return {
        "File Path": device_path,
        "File Hash SHA256": sha256,
        "File Created": "2023-10-06T22:53:51.000Z",
        "File Modified": "2023-10-06T22:53:51.000Z",
        "Proof Generated": "2023-10-06T22:53:53.412Z",
        "Language": "العربية",
        "Locale": "سوريا",
        "Hardware": "Pixel 7",
        "Manufacturer": "Google",
        "ScreenSize": "6.3",
        "Location.Latitude": "36.2021",
        "Location.Longitude": "37.1343",
        "Location.Provider": "fused",
        "Location.Accuracy": "4.8",
        "Location.Altitude": "410.0",
        "Location.Bearing": "0.0",
        "Location.Speed": "0.0",
        "Location.Time": "1696632831000",
        "CellInfo": "none",
        "SafetyCheck": "false",
        "SafetyCheckBasicIntegrity": "",
        "SafetyCheckCtsMatch": "",
        "SafetyCheckTimestamp": "",
        "Notes": "ProofMode v2.9.1 autogenerated=false",
    }


def proof_json(fields: dict[str, str]) -> bytes:
    # Android's org.json writes compact JSON and escapes "/" as "\/"; saveText appends a
    # line separator (PrintStream.println).
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")
    return (text + "\n").encode("utf-8")


def proof_csv(fields: dict[str, str]) -> bytes:
    header = "".join(f"{k}," for k in fields) + "\n"
    values = "".join(f"{v.replace(',', ' ')}," for v in fields.values())
    return (header + values + "\n").encode("utf-8")


def ots_pending(digest: bytes) -> bytes:
    """The shape of a fresh `ots stamp` proof: nonce, SHA-256, calendar commitment, pending."""
    stamp = Timestamp(digest)
    nonced = stamp.ops.add(OpAppend(os.urandom(16))).ops.add(OpSHA256())
    tip = nonced.ops.add(OpPrepend(b"\x65\x4f\x1e\x2a")).ops.add(OpAppend(os.urandom(8)))
    tip.attestations.add(PendingAttestation(CALENDAR))
    return _serialise(stamp)


def ots_complete(digest: bytes, height: int) -> tuple[bytes, bytes]:
    """A proof ending in a Bitcoin block header attestation; returns it and the leaf message."""
    stamp = Timestamp(digest)
    nonce, sibling = os.urandom(16), os.urandom(32)
    node = stamp.ops.add(OpAppend(nonce)).ops.add(OpSHA256())
    node = node.ops.add(OpPrepend(sibling)).ops.add(OpSHA256()).ops.add(OpSHA256())
    node.attestations.add(BitcoinBlockHeaderAttestation(height))
    # The leaf message computed independently of the library, with hashlib.
    leaf = hashlib.sha256(digest + nonce).digest()
    leaf = hashlib.sha256(hashlib.sha256(sibling + leaf).digest()).digest()
    return _serialise(stamp), leaf


def _serialise(stamp: Timestamp) -> bytes:
    out = io.BytesIO()
    DetachedTimestampFile(OpSHA256(), stamp).serialize(StreamSerializationContext(out))
    return out.getvalue()


@dataclass
class Bundle:
    """The files of one ProofMode share, by name; written as a folder or a zip."""

    files: dict[str, bytes]
    media_name: str
    media_hash: str

    def write_zip(self, path: Path) -> Path:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in self.files.items():
                archive.writestr(name, data)
        return path

    def write_folder(self, path: Path) -> Path:
        path.mkdir()
        for name, data in self.files.items():
            (path / name).write_bytes(data)
        return path

    def replace(self, suffix: str, data: bytes) -> None:
        self.files[self.media_hash + suffix] = data


def make_bundle(key: pgpy.PGPKey, media: Path = PHOTO, *, with_ots: bool = True) -> Bundle:
    data = media.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    fields = proof_map(f"/storage/emulated/0/DCIM/Camera/{media.name}", digest)
    pj, pc = proof_json(fields), proof_csv(fields)
    files = {
        media.name: data,
        f"{digest}.proof.csv": pc,
        f"{digest}.proof.json": pj,
        f"{digest}.proof.csv.asc": sign(key, pc),
        f"{digest}.proof.json.asc": sign(key, pj),
        f"{digest}.asc": sign(key, data),
        "pubkey.asc": str(key.pubkey).encode("ascii"),
        "HowToVerifyProofData.txt": b"How to verify: gpg --verify, sha256sum, ots verify.\n",
    }
    if with_ots:
        files[f"{digest}.ots"] = ots_pending(bytes.fromhex(digest))
    return Bundle(files, media.name, digest)


def only(bundle: ProofModeBundle) -> MediaProof:
    assert len(bundle.media) == 1, bundle.media
    return bundle.media[0]


def state(result: MediaProof, name: str) -> tuple[CheckState, Problem | None]:
    check = result.check(name)
    assert check is not None, f"no check {name}: {[c.name for c in result.checks]}"
    return check.state, check.problem


# --- the good bundle ----------------------------------------------------------------------------


def test_good_zip_bundle_checks_everything_it_can(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    made = make_bundle(device_key)
    bundle = read_proofmode(made.write_zip(tmp_path / "proofmode.zip"))
    assert bundle.kind == "zip"
    assert bundle.issues == ()
    result = only(bundle)
    assert result.media_file == PHOTO.name
    assert result.media_sha256 == hashlib.sha256(PHOTO.read_bytes()).hexdigest()
    assert result.layout == "hash-named"
    for name in (
        "media_signature",
        "proof_json_signature",
        "proof_csv_signature",
        "proof_json",
        "proof_csv",
        "recorded_hash",
        "ots_digest",
    ):
        assert state(result, name) == (CheckState.PASSED, None), result.check(name)
    assert state(result, "signing_key_confirmed") == (
        CheckState.NOT_CHECKABLE,
        Problem.PROOF_KEY_UNCONFIRMED,
    )
    assert state(result, "ots_attestation") == (CheckState.NOT_CHECKABLE, Problem.OTS_PENDING)
    assert not result.failed
    # Every signature by the bundle's own key, SHA-256, RSA; the key is recorded as a claim.
    assert {s.primary_fingerprint for s in result.signatures} == {fingerprint(device_key)}
    assert {s.hash_algorithm for s in result.signatures} == {"SHA-256"}
    assert {s.pubkey_algorithm for s in result.signatures} == {"RSA"}
    assert all(s.signature_created and s.signature_created.endswith("Z") for s in result.signatures)
    assert [k.fingerprints for k in bundle.keys] == [(fingerprint(device_key),)]
    assert bundle.keys[0].user_ids == ("noone@proofmode.witness.org",)
    assert "out of band" in bundle.keys[0].note
    # Sensor/device/location fields are kept as claims, marked as coming from signed files.
    json_record = next(r for r in result.proofs if r.kind == "json")
    csv_record = next(r for r in result.proofs if r.kind == "csv")
    assert json_record.get("Location.Latitude") == "36.2021"
    assert json_record.get("File Path") == f"/storage/emulated/0/DCIM/Camera/{PHOTO.name}"
    assert json_record.get("Language") == "العربية"
    assert csv_record.get("Hardware") == "Pixel 7"
    assert json_record.signature_verified and csv_record.signature_verified
    # The .ots is kept by digest and parsed: one pending calendar.
    assert result.ots is not None and result.ots.error is None
    assert result.ots.sha256 == hashlib.sha256(made.files[f"{made.media_hash}.ots"]).hexdigest()
    assert result.ots.pending_calendars == (CALENDAR,)
    assert not result.ots.complete
    assert result.c2pa is None  # this photo carries no manifest
    assert bundle.other_files == ("HowToVerifyProofData.txt",)
    assert bundle.gpg_version.startswith("2.")


def test_folder_and_zip_give_the_same_verdicts(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    made = make_bundle(device_key)
    as_zip = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
    as_folder = only(read_proofmode(made.write_folder(tmp_path / "b")))
    assert [(c.name, c.state, c.problem) for c in as_zip.checks] == [
        (c.name, c.state, c.problem) for c in as_folder.checks
    ]


def test_fingerprint_confirmed_out_of_band(
    device_key: pgpy.PGPKey, stranger_key: pgpy.PGPKey, tmp_path: Path
) -> None:
    path = make_bundle(device_key).write_zip(tmp_path / "b.zip")
    spaced = " ".join(fingerprint(device_key)[i : i + 4] for i in range(0, 40, 4))
    good = only(read_proofmode(path, expected_fingerprints=[spaced.lower()]))
    assert state(good, "signing_key_confirmed") == (CheckState.PASSED, None)
    other = only(read_proofmode(path, expected_fingerprints=[fingerprint(stranger_key)]))
    assert state(other, "signing_key_confirmed") == (CheckState.FAILED, Problem.PROOF_KEY_MISMATCH)
    with pytest.raises(UsageError):
        read_proofmode(path, expected_fingerprints=["DEADBEEF"])


def test_complete_bitcoin_attestation_is_reported_not_verified(
    device_key: pgpy.PGPKey, tmp_path: Path
) -> None:
    made = make_bundle(device_key, with_ots=False)
    ots, leaf = ots_complete(bytes.fromhex(made.media_hash), 358391)
    made.replace(".ots", ots)
    result = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
    assert state(result, "ots_digest") == (CheckState.PASSED, None)
    assert state(result, "ots_attestation") == (
        CheckState.NOT_CHECKABLE,
        Problem.OTS_NOT_VERIFIED_OFFLINE,
    )
    assert result.ots is not None and result.ots.complete
    (attestation,) = result.ots.attestations
    assert attestation.kind == "bitcoin" and attestation.block_height == 358391
    assert attestation.commitment == leaf.hex()
    assert attestation.merkle_root == leaf[::-1].hex()
    check = result.check("ots_attestation")
    assert check is not None and "ots verify" in check.reason and "358391" in check.reason


# --- the defective bundles ----------------------------------------------------------------------


def test_bad_media_signature(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    made = make_bundle(device_key)
    made.replace(".asc", sign(device_key, OTHER_PHOTO.read_bytes()))
    result = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
    assert state(result, "media_signature") == (CheckState.FAILED, Problem.PROOF_SIGNATURE_BAD)
    assert state(result, "proof_json_signature") == (CheckState.PASSED, None)
    assert state(result, "recorded_hash") == (CheckState.PASSED, None)
    assert Problem.PROOF_SIGNATURE_BAD in result.problems


def test_proof_json_edited_after_signing(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    made = make_bundle(device_key)
    name = f"{made.media_hash}.proof.json"
    made.files[name] = made.files[name].replace(b"36.2021", b"35.2021")
    result = only(read_proofmode(made.write_folder(tmp_path / "b")))
    assert state(result, "proof_json_signature") == (CheckState.FAILED, Problem.PROOF_SIGNATURE_BAD)
    assert state(result, "proof_csv_signature") == (CheckState.PASSED, None)
    edited = next(r for r in result.proofs if r.kind == "json")
    assert edited.get("Location.Latitude") == "35.2021"
    assert not edited.signature_verified  # the claim is kept, marked as unsigned


def test_media_changed_after_proof_is_a_hash_mismatch(
    device_key: pgpy.PGPKey, tmp_path: Path
) -> None:
    made = make_bundle(device_key)
    data = bytearray(made.files[made.media_name])
    data[len(data) // 2] ^= 0x01
    made.files[made.media_name] = bytes(data)
    result = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
    # Found through the File Path ProofMode recorded, since its hash no longer names a set.
    assert result.media_file == PHOTO.name
    assert result.proof_hash == made.media_hash
    assert result.media_sha256 == hashlib.sha256(data).hexdigest()
    assert state(result, "recorded_hash") == (CheckState.FAILED, Problem.PROOF_HASH_MISMATCH)
    assert state(result, "media_signature") == (CheckState.FAILED, Problem.PROOF_SIGNATURE_BAD)
    assert state(result, "ots_digest") == (CheckState.FAILED, Problem.OTS_DIGEST_MISMATCH)
    assert state(result, "proof_json_signature") == (CheckState.PASSED, None)


def test_missing_proof_file(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    made = make_bundle(device_key)
    del made.files[f"{made.media_hash}.proof.json"]
    result = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
    assert state(result, "proof_json") == (CheckState.FAILED, Problem.PROOF_MISSING)
    assert state(result, "proof_json_signature") == (CheckState.FAILED, Problem.PROOF_MISSING)
    assert state(result, "proof_csv") == (CheckState.PASSED, None)
    assert state(result, "media_signature") == (CheckState.PASSED, None)


def test_media_without_any_proof(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    made = make_bundle(device_key)
    made.files[OTHER_PHOTO.name] = OTHER_PHOTO.read_bytes()
    bundle = read_proofmode(made.write_zip(tmp_path / "b.zip"))
    lone = next(m for m in bundle.media if m.media_file == OTHER_PHOTO.name)
    assert lone.problems == (Problem.PROOF_MISSING,)
    assert lone.checks[0].state is CheckState.FAILED


def test_missing_signature_and_missing_key(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    made = make_bundle(device_key)
    del made.files[f"{made.media_hash}.asc"]
    result = only(read_proofmode(made.write_zip(tmp_path / "a.zip")))
    assert state(result, "media_signature") == (CheckState.FAILED, Problem.PROOF_SIGNATURE_MISSING)
    del made.files["pubkey.asc"]
    result = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
    assert state(result, "proof_json_signature") == (CheckState.FAILED, Problem.PROOF_KEY_MISSING)
    assert result.check("signing_key_confirmed") is None


def test_signature_by_another_key(
    device_key: pgpy.PGPKey, stranger_key: pgpy.PGPKey, tmp_path: Path
) -> None:
    made = make_bundle(device_key)
    made.replace(".asc", sign(stranger_key, made.files[made.media_name]))
    result = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
    assert state(result, "media_signature") == (
        CheckState.FAILED,
        Problem.PROOF_SIGNATURE_WRONG_KEY,
    )


def test_proof_set_shared_without_media(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    made = make_bundle(device_key)
    del made.files[made.media_name]
    result = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
    assert result.media_file is None and result.proof_hash == made.media_hash
    assert state(result, "media_present") == (CheckState.NOT_CHECKABLE, Problem.PROOF_MEDIA_MISSING)
    assert state(result, "media_signature")[0] is CheckState.NOT_CHECKABLE
    assert state(result, "proof_json_signature") == (CheckState.PASSED, None)
    assert state(result, "recorded_hash")[0] is CheckState.NOT_CHECKABLE
    assert state(result, "ots_digest") == (CheckState.PASSED, None)


def test_classic_media_named_layout(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    data = PHOTO.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    csv = proof_csv(proof_map(f"/sdcard/DCIM/Camera/{PHOTO.name}", digest))
    folder = tmp_path / "classic"
    folder.mkdir()
    (folder / PHOTO.name).write_bytes(data)
    (folder / f"{PHOTO.name}.asc").write_bytes(sign(device_key, data))
    (folder / f"{PHOTO.name}.proof.csv").write_bytes(csv)
    (folder / f"{PHOTO.name}.proof.csv.asc").write_bytes(sign(device_key, csv))
    (folder / "pubkey.asc").write_bytes(str(device_key.pubkey).encode())
    result = only(read_proofmode(folder))
    assert result.layout == "media-named"
    assert state(result, "media_signature") == (CheckState.PASSED, None)
    assert state(result, "proof_csv_signature") == (CheckState.PASSED, None)
    assert state(result, "recorded_hash") == (CheckState.PASSED, None)
    assert state(result, "proof_json") == (CheckState.FAILED, Problem.PROOF_MISSING)


# --- hostile input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    ["../escaped.jpg", "/abs/escaped.jpg", "dir\\..\\..\\escaped.jpg", "link", "duplicate"],
)
def test_a_hostile_zip_is_refused_whole_and_nothing_is_written(
    device_key: pgpy.PGPKey, tmp_path: Path, hostile: str
) -> None:
    """One safe zip reader (safezip.SafeZip) for every source: ProofMode never writes such
    an entry, so a bundle holding one is refused, naming it, rather than read in part."""
    made = make_bundle(device_key)
    path = made.write_zip(tmp_path / "b.zip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(path, "a") as archive:
            if hostile == "link":
                link = zipfile.ZipInfo("link.jpg")
                link.external_attr = 0o120777 << 16
                archive.writestr(link, "/etc/passwd")
            elif hostile == "duplicate":
                archive.writestr(made.media_name, b"a second entry of the same name")
            else:
                archive.writestr(hostile, b"outside")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(InputError, match="refused"):
        read_proofmode(path, work_dir=work)
    assert not list(tmp_path.rglob("escaped.jpg"))
    assert list(work.iterdir()) == []  # the scratch folder is gone


def test_garbage_signature_is_malformed_not_bad(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    made = make_bundle(device_key)
    made.replace(".asc", b"-----BEGIN PGP SIGNATURE-----\n\nnot base64 at all\n")
    made.replace(".proof.csv.asc", os.urandom(300))
    made.replace(".proof.json.asc", str(device_key.pubkey).encode())  # a key, not a signature
    result = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
    for name in ("media_signature", "proof_csv_signature", "proof_json_signature"):
        assert state(result, name) == (CheckState.FAILED, Problem.PROOF_SIGNATURE_MALFORMED)
        check = result.check(name)
        assert check is not None


def test_two_signatures_in_one_file_are_refused(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    made = make_bundle(device_key)
    data = made.files[made.media_name]
    made.replace(".asc", sign(device_key, data) + sign(device_key, data))
    result = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
    assert state(result, "media_signature") == (
        CheckState.FAILED,
        Problem.PROOF_SIGNATURE_MALFORMED,
    )


def test_signed_message_in_place_of_detached_signature(
    device_key: pgpy.PGPKey, tmp_path: Path
) -> None:
    made = make_bundle(device_key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        message = pgpy.PGPMessage.new(b"something else entirely", file=True)
        message |= device_key.sign(message, hash=HashAlgorithm.SHA256)
    made.replace(".asc", str(message).encode())
    result = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
    assert state(result, "media_signature")[0] is CheckState.FAILED
    assert state(result, "media_signature")[1] in (
        Problem.PROOF_SIGNATURE_MALFORMED,
        Problem.PROOF_SIGNATURE_BAD,
    )


def test_truncated_and_garbage_ots(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    made = make_bundle(device_key)
    good = made.files[f"{made.media_hash}.ots"]
    for damaged in (good[: len(good) // 2], good[:20], b"", os.urandom(64), good + b"\x00"):
        made.replace(".ots", damaged)
        result = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
        assert state(result, "ots_digest") == (CheckState.FAILED, Problem.OTS_MALFORMED)
        assert result.ots is not None and result.ots.error
        assert result.check("ots_attestation") is None
        (tmp_path / "b.zip").unlink()


@pytest.mark.parametrize(
    "content",
    [
        b"[1, 2, 3]\n",
        b'"a string"\n',
        b"null\n",
        b"{not json\n",
        b'{"File Hash SHA256":"a","File Hash SHA256":"b"}\n',
        b"\xff\xfe\n",
        b"[" * 100_000,
    ],
)
def test_proof_json_not_an_object(device_key: pgpy.PGPKey, tmp_path: Path, content: bytes) -> None:
    made = make_bundle(device_key)
    made.replace(".proof.json", content)
    made.replace(".proof.json.asc", sign(device_key, content))
    result = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
    assert state(result, "proof_json") == (CheckState.FAILED, Problem.PROOF_MALFORMED)
    assert state(result, "proof_json_signature") == (CheckState.PASSED, None)
    assert state(result, "recorded_hash") == (CheckState.PASSED, None)  # from the name and CSV


def test_garbage_public_key(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    made = make_bundle(device_key)
    made.files["pubkey.asc"] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\ngarbage\n"
    bundle = read_proofmode(made.write_zip(tmp_path / "b.zip"))
    result = only(bundle)
    assert state(result, "media_signature") == (CheckState.FAILED, Problem.PROOF_KEY_UNUSABLE)
    assert bundle.keys[0].error


def test_unreadable_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a readable ZIP"):
        read_proofmode(_write(tmp_path / "x.zip", b"PK\x03\x04 truncated"))
    with pytest.raises(InputError, match="cannot be read"):
        read_proofmode(tmp_path / "absent.zip")
    with pytest.raises(ToolMissingError, match="gpg"):
        read_proofmode(tmp_path, gpg_binary="no-such-gpg-here")


def test_zip_bomb_is_refused(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.jpg", b"\x00" * (8 * 1024 * 1024))
    assert path.stat().st_size < 64 * 1024
    with pytest.raises(InputError, match="more than 1048576"):
        read_proofmode(path, max_bytes=1024 * 1024)


def test_folder_symlinks_are_not_followed(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    folder = make_bundle(device_key).write_folder(tmp_path / "b")
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"not part of the bundle")
    (folder / "link.jpg").symlink_to(secret)
    bundle = read_proofmode(folder)
    assert [(i.problem, i.entry) for i in bundle.issues] == [
        (Problem.BUNDLE_SYMLINK_SKIPPED, "link.jpg")
    ]
    assert all(m.media_file != "link.jpg" for m in bundle.media)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- the gpg child process ----------------------------------------------------------------------


def test_gpg_gets_a_minimal_environment_and_leaves_nothing_running(
    device_key: pgpy.PGPKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrapper records the environment the real gpg is started with, then runs it."""
    real = shutil.which("gpg")
    assert real
    log = tmp_path / "env.log"
    wrapper = tmp_path / "bin" / "gpg"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f'#!/bin/sh\n/usr/bin/env >> "{log}"\necho ---- >> "{log}"\nexec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("CUSTODY_PASSPHRASE", "never-to-be-seen")
    monkeypatch.setenv("PGPASSWORD", "never-to-be-seen")
    path = make_bundle(device_key).write_zip(tmp_path / "b.zip")
    result = only(read_proofmode(path, gpg_binary=str(wrapper)))
    assert state(result, "media_signature") == (CheckState.PASSED, None)
    runs = [block for block in log.read_text().split("----\n") if block.strip()]
    assert len(runs) >= 4  # version probe, key import, three verifications ...
    for block in runs:
        names = {line.split("=", 1)[0] for line in block.splitlines() if "=" in line}
        assert names <= {"PATH", "LANG", "LC_ALL", "HOME", "GNUPGHOME", "PWD", "SHLVL", "_"}
        assert "never-to-be-seen" not in block
    agents = subprocess.run(["pgrep", "-af", "gpg-agent"], capture_output=True, text=True)
    assert "custody-proofmode-" not in agents.stdout


# --- an independent OpenPGP implementation agrees -----------------------------------------------


@pytest.mark.skipif(shutil.which("sqv") is None, reason="Sequoia sqv not installed")
def test_sequoia_sqv_agrees_with_custody(stranger_key: pgpy.PGPKey, tmp_path: Path) -> None:
    """sqv (Sequoia, Rust) and custody (GnuPG) give the same verdict on the same files.

    sqv refuses keys self-signed with SHA-1 (as ProofMode's are) by policy, so this uses
    the SHA-256-bound key; custody's verdicts on ProofMode's own keys are GnuPG's.
    """
    made = make_bundle(stranger_key, with_ots=False)
    tampered = dict(made.files)
    name = f"{made.media_hash}.proof.csv"
    tampered[name] = tampered[name].replace(b"Pixel 7", b"Pixel 8")
    for label, files in (("good", made.files), ("tampered", tampered)):
        folder = Bundle(files, made.media_name, made.media_hash).write_folder(tmp_path / label)
        result = only(read_proofmode(folder))
        keyring = tmp_path / f"{label}.pgp"
        subprocess.run(
            ["gpg", "--dearmor", "--output", str(keyring), str(folder / "pubkey.asc")],
            check=True,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        for check_name, sig_name, data_name in (
            ("media_signature", f"{made.media_hash}.asc", made.media_name),
            ("proof_csv_signature", f"{made.media_hash}.proof.csv.asc", name),
            (
                "proof_json_signature",
                f"{made.media_hash}.proof.json.asc",
                f"{made.media_hash}.proof.json",
            ),
        ):
            sqv = subprocess.run(
                ["sqv", "--keyring", str(keyring), str(folder / sig_name), str(folder / data_name)],
                capture_output=True,
                env={"PATH": "/usr/bin:/bin"},
            )
            ours = state(result, check_name)[0]
            assert (sqv.returncode == 0) == (ours is CheckState.PASSED), (label, check_name)
        expected = CheckState.FAILED if label == "tampered" else CheckState.PASSED
        assert state(result, "proof_csv_signature")[0] is expected


def test_every_check_has_a_reason(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    made = make_bundle(device_key)
    made.replace(".asc", b"garbage")
    made.files[OTHER_PHOTO.name] = OTHER_PHOTO.read_bytes()
    bundle = read_proofmode(made.write_zip(tmp_path / "b.zip"))
    for media in bundle.media:
        for check in media.checks:
            assert check.reason.strip()
            if check.state is CheckState.PASSED:
                assert check.problem is None
            if check.state is CheckState.FAILED:
                assert check.problem is not None


# --- C2PA inside a ProofMode bundle ----------------------------------------------------------


def test_media_with_c2pa_manifest(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    """ProofMode signs the media with C2PA first, then writes its proof over the result."""
    from tests.test_c2pa import make_chain, sign_file

    chain = make_chain("ProofMode Device")
    media = tmp_path / PHOTO.name
    sign_file(chain, PHOTO, media)
    made = make_bundle(device_key, media)
    path = made.write_zip(tmp_path / "b.zip")

    untrusted = only(read_proofmode(path))
    assert state(untrusted, "c2pa_integrity") == (CheckState.PASSED, None)
    assert state(untrusted, "c2pa_signer_trusted") == (
        CheckState.NOT_CHECKABLE,
        Problem.C2PA_TRUST_NOT_CHECKED,
    )
    assert untrusted.c2pa is not None and untrusted.c2pa.manifest_store_sha256

    trusted = only(read_proofmode(path, trust_anchors_pem=chain.root_pem))
    assert state(trusted, "c2pa_signer_trusted") == (CheckState.PASSED, None)
    stranger = make_chain("Somebody Else")
    other = only(read_proofmode(path, trust_anchors_pem=stranger.root_pem))
    assert state(other, "c2pa_signer_trusted") == (CheckState.FAILED, Problem.C2PA_UNTRUSTED)

    data = bytearray(made.files[made.media_name])
    data[-5000] ^= 0x01
    made.files[made.media_name] = bytes(data)
    tampered = only(read_proofmode(made.write_zip(tmp_path / "t.zip")))
    assert state(tampered, "c2pa_integrity") == (CheckState.FAILED, Problem.C2PA_INVALID)
    assert state(tampered, "recorded_hash") == (CheckState.FAILED, Problem.PROOF_HASH_MISMATCH)


def test_media_stored_under_its_hash(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    """ProofMode's IPFS storage names the media ``H.<ext>`` beside its proof files."""
    made = make_bundle(device_key)
    made.files[f"{made.media_hash}.jpg"] = made.files.pop(made.media_name)
    result = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
    assert result.media_file == f"{made.media_hash}.jpg"
    assert not result.failed
    assert state(result, "media_signature") == (CheckState.PASSED, None)


def test_sha1_data_signature_passes_with_a_warning(device_key: pgpy.PGPKey, tmp_path: Path) -> None:
    made = make_bundle(device_key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weak = device_key.sign(made.files[made.media_name], hash=HashAlgorithm.SHA1)
    made.replace(".asc", str(weak).encode())
    result = only(read_proofmode(made.write_zip(tmp_path / "b.zip")))
    check = result.check("media_signature")
    assert check is not None and check.state is CheckState.PASSED
    assert "SHA-1 is weak" in check.reason
    media_sig = next(s for s in result.signatures if s.signed_file == made.media_name)
    assert media_sig.hash_algorithm == "SHA-1"
