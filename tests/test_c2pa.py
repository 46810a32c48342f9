"""C2PA manifests made with the SDK's own signer over real JPEGs, then read back by custody.

The test chain is a root CA and an ES256 (P-256) end-entity certificate with the
extensions C2PA's certificate profile asks for: version 3, CA:false (critical),
keyUsage digitalSignature (critical), an extendedKeyUsage (emailProtection), subject and
authority key identifiers; the root is CA:true with keyCertSign.
"""

from __future__ import annotations

import datetime
import hashlib
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from custody.acquisition.sources.c2pa import (
    ValidationState,
    extract_manifest_store,
    read_c2pa,
)
from custody.errors import InputError, UsageError

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "field-dump"
PHOTO = SAMPLES / "field-dump-01" / "DCIM" / "Camera" / "PXL_20231006_225351.jpg"
PARENT = SAMPLES / "field-dump-01" / "DCIM" / "Camera" / "20160912_100531.jpg"
DIGITAL_CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


@dataclass(frozen=True)
class Chain:
    root_pem: bytes
    leaf_pem: bytes
    key_pem: bytes
    leaf: x509.Certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Custody Test"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
        ]
    )


def _key_usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_chain(label: str) -> Chain:
    now = datetime.datetime.now(datetime.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} Root CA"))
        .issuer_name(_name(f"{label} Root CA"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(sign=False, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} Signer"))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(sign=True, ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return Chain(
        root_pem=root.public_bytes(pem),
        leaf_pem=leaf.public_bytes(pem),
        key_pem=key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        leaf=leaf,
    )


@pytest.fixture(scope="module")
def chain() -> Chain:
    return make_chain("Custody Test")


@pytest.fixture(scope="module")
def other_chain() -> Chain:
    return make_chain("Somebody Else")


def manifest(title: str) -> dict[str, Any]:
    return {
        "claim_generator_info": [{"name": "custody-test", "version": "1.0"}],
        "title": title,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": DIGITAL_CAPTURE,
                            "when": "2023-10-06T22:53:51Z",
                            "softwareAgent": {"name": "ProofMode", "version": "2.9.1"},
                        }
                    ]
                },
            }
        ],
    }


def sign_file(
    chain: Chain, source: Path, dest: Path, mime: str = "image/jpeg", *, parent: Path | None = None
) -> bytes:
    """Sign ``source`` into ``dest`` with the SDK's own signer; returns the manifest store."""
    info = c2pa.C2paSignerInfo(b"es256", chain.leaf_pem + chain.root_pem, chain.key_pem, None)
    signer = c2pa.Signer.from_info(info)
    context = c2pa.Context.from_dict(
        {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    )
    builder = c2pa.Builder(manifest(dest.name), context=context)
    try:
        if parent is not None:
            with open(parent, "rb") as ingredient:
                builder.add_ingredient(
                    {"title": parent.name, "relationship": "parentOf"}, "image/jpeg", ingredient
                )
        with open(source, "rb") as src, open(dest, "w+b") as out:
            store: bytes = builder.sign(signer, mime, src, out)
    finally:
        builder.close()
        signer.close()
    return store


@pytest.fixture(scope="module")
def signed(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    dest = tmp_path_factory.mktemp("c2pa") / "signed.jpg"
    return dest, sign_file(chain, PHOTO, dest)


def test_valid_without_anchors_trusted_with_them(signed: tuple[Path, bytes], chain: Chain) -> None:
    path, _ = signed
    untrusted = read_c2pa(path)
    assert untrusted is not None
    assert untrusted.validation_state is ValidationState.VALID
    assert not untrusted.trust_anchors_supplied
    assert untrusted.failure_codes == ("signingCredential.untrusted",)
    assert untrusted.is_intact
    trusted = read_c2pa(path, chain.root_pem)
    assert trusted is not None
    assert trusted.validation_state is ValidationState.TRUSTED
    assert trusted.failure_codes == ()
    assert "signingCredential.trusted" in {s.code for s in trusted.statuses}
    assert "assertion.dataHash.match" in {s.code for s in trusted.statuses}


def test_untrusted_signer_is_valid_not_trusted(
    signed: tuple[Path, bytes], other_chain: Chain
) -> None:
    report = read_c2pa(signed[0], other_chain.root_pem)
    assert report is not None
    assert report.validation_state is ValidationState.VALID
    assert report.trust_anchors_supplied
    assert "signingCredential.untrusted" in report.failure_codes


def test_signer_claims_and_manifest_hash(signed: tuple[Path, bytes], chain: Chain) -> None:
    path, store = signed
    report = read_c2pa(path, chain.root_pem)
    assert report is not None
    assert report.signer is not None and report.signer.certificate is not None
    cert = report.signer.certificate
    assert cert.subject == chain.leaf.subject.rfc4514_string()
    assert "CN=Custody Test Signer" in cert.subject
    assert cert.issuer == chain.leaf.issuer.rfc4514_string()
    assert cert.sha256_fingerprint == chain.leaf.fingerprint(hashes.SHA256()).hex()
    assert cert.serial_number == format(chain.leaf.serial_number, "x")
    assert report.signer.chain_length == 2
    assert report.signer.common_name == "Custody Test Signer"
    assert report.claim_generator == "custody-test/1.0"
    assert report.title == "signed.jpg"
    (action,) = report.actions
    assert action.action == "c2pa.created"
    assert action.digital_source_type == DIGITAL_CAPTURE
    assert action.when == "2023-10-06T22:53:51Z"
    assert action.software_agent == "ProofMode"
    assert report.manifest_count == 1 and report.active_manifest
    # The store custody extracts is, byte for byte, the one the SDK embedded.
    assert report.manifest_store_size == len(store)
    assert report.manifest_store_sha256 == hashlib.sha256(store).hexdigest()
    assert "APP11" in report.manifest_store_note
    assert report.reader_json.startswith("{")
    assert "c2pa-rs" in report.sdk_version


def test_ingredients_are_recorded(chain: Chain, tmp_path: Path) -> None:
    dest = tmp_path / "edited.jpg"
    sign_file(chain, PHOTO, dest, parent=PARENT)
    report = read_c2pa(dest, chain.root_pem)
    assert report is not None and report.validation_state is ValidationState.TRUSTED
    (ingredient,) = report.ingredients
    assert ingredient.title == PARENT.name
    assert ingredient.relationship == "parentOf"
    assert ingredient.format == "image/jpeg"


def test_one_byte_of_image_data_changed_is_invalid(
    signed: tuple[Path, bytes], chain: Chain, tmp_path: Path
) -> None:
    data = bytearray(signed[0].read_bytes())
    data[-5000] ^= 0x01  # inside the entropy-coded scan, far from the manifest
    tampered = tmp_path / "tampered.jpg"
    tampered.write_bytes(bytes(data))
    report = read_c2pa(tampered, chain.root_pem)
    assert report is not None
    assert report.validation_state is ValidationState.INVALID
    assert "assertion.dataHash.mismatch" in report.failure_codes
    assert not report.is_intact


@pytest.mark.parametrize("where", ["assertions", "claim", "header"])
def test_manifest_bytes_changed_is_invalid(
    signed: tuple[Path, bytes], chain: Chain, tmp_path: Path, where: str
) -> None:
    path, store = signed
    data = bytearray(path.read_bytes())
    start = bytes(data).find(store[:64])
    assert start > 0
    offsets = {
        "assertions": len(store) // 2,  # inside the thumbnail / actions assertions
        "claim": bytes(store).find(b"c2pa.claim") + 200,
        "header": 20,  # inside the store's own JUMBF description box
    }
    data[start + offsets[where]] ^= 0x01
    tampered = tmp_path / f"manifest-{where}.jpg"
    tampered.write_bytes(bytes(data))
    report = read_c2pa(tampered, chain.root_pem)
    assert report is not None, "a damaged manifest must never read as 'no manifest'"
    assert report.validation_state is ValidationState.INVALID
    assert report.failure_codes
    assert report.manifest_store_sha256 != hashlib.sha256(store).hexdigest()


def test_files_without_a_manifest_return_none_quickly(tmp_path: Path) -> None:
    broken = SAMPLES / "misc" / "broken"
    voice = SAMPLES / "field-dump-01" / "WhatsApp" / "Media" / "WhatsApp Voice Notes" / "202403"
    for path in [
        PHOTO,
        PARENT,
        broken / "empty.jpg",
        voice / "PTT-20240312-WA0005.opus",
        SAMPLES / "field-dump-01" / "DCIM" / "Camera" / "VID_20201023_202729.mp4",
    ]:
        started = time.perf_counter()
        assert read_c2pa(path) is None, path
        assert time.perf_counter() - started < 0.5, path
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8\xff\xeb\x00\x04JP" + b"\x00" * 100)
    assert read_c2pa(garbage) is None


def test_bad_arguments_are_clear_errors(signed: tuple[Path, bytes], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot be read"):
        read_c2pa(tmp_path / "absent.jpg")
    with pytest.raises(InputError, match="not a regular file"):
        read_c2pa(tmp_path)
    with pytest.raises(UsageError, match="trust anchors"):
        read_c2pa(signed[0], b"not a certificate")


def _png(width: int = 4, height: int = 4) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_png_manifest_store_from_cabx(chain: Chain, tmp_path: Path) -> None:
    source = tmp_path / "plain.png"
    source.write_bytes(_png())
    dest = tmp_path / "signed.png"
    store = sign_file(chain, source, dest, "image/png")
    report = read_c2pa(dest, chain.root_pem)
    assert report is not None and report.validation_state is ValidationState.TRUSTED
    assert report.manifest_store_sha256 == hashlib.sha256(store).hexdigest()
    assert "caBX" in report.manifest_store_note
    with open(source, "rb") as handle:
        assert extract_manifest_store(handle)[0] is None
