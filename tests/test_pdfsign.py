"""PAdES signing of PDF reports (custody.delivery.pdfsign) against real readers.

A real report PDF (Chromium printing Arabic and English), real RFC 3161 timestamps from
the loopback TSA (tests/tsa.py, ``openssl ts -reply``), and every signed file checked by
three independent implementations: pyHanko's AdES validator (through
``check_signed_pdf``), poppler's ``pdfsig`` with an NSS database made by ``certutil``,
and ``openssl ts -verify`` on the timestamp tokens ``pdfsig -dump`` extracts.
"""

from __future__ import annotations

import datetime as dt
import http.server
import io
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from custody.delivery import pdfsign
from custody.delivery.pdfsign import (
    PdfSignatureCheck,
    PreparerIdentity,
    check_signed_pdf,
    create_preparer_ca,
    extend_archive_timestamp,
    load_organisation_identity,
    open_preparer,
    seal_preparer,
    sign_pdf,
)
from custody.delivery.pdfsign import checking as pdfsign_checking
from custody.delivery.pdfsign import common as pdfsign_common
from custody.errors import InputError, PassphraseError, SigningKeyError, TimestampError, UsageError

try:
    from tests.tsa import PKI, TSA, running_tsa, write_openssl_cnf
except ModuleNotFoundError:  # a site-packages package named "tests" (pywb ships one) shadows ours
    from tsa import PKI, TSA, running_tsa, write_openssl_cnf  # type: ignore[no-redef]

CHROMIUM = shutil.which("chromium")
TOOLS = {name: shutil.which(name) for name in ("pdfsig", "certutil", "openssl", "pdftotext")}
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or None in TOOLS.values(),
    reason="needs chromium, poppler-utils, libnss3-tools and openssl (scripts/setup.sh)",
)
PASSPHRASE = "correct horse battery staple"
REPORT_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Chain-of-custody report</title>
<style>body { font-family: 'Noto Naskh Arabic', 'DejaVu Sans', sans-serif; }</style></head>
<body>
<h1>Chain-of-custody report</h1>
<p>Item 1: video-2026-11-27.mp4, SHA-256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c</p>
<p dir="rtl" lang="ar">تقرير سلسلة الحيازة: الملف الأول تم التحقق منه</p>
</body></html>
"""


def _env(home: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": str(home)}


def _run(argv: list[str], home: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env=_env(home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kw,  # type: ignore[arg-type]
    )


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pades")


@pytest.fixture(scope="module")
def report_pdf(work: Path) -> bytes:
    """A report as custody makes them: HTML printed by headless Chromium."""
    folder = Path(tempfile.mkdtemp(prefix="chromium-", dir=work))
    page = folder / "report.html"
    page.write_text(REPORT_HTML, encoding="utf-8")
    out = folder / "report.pdf"
    assert CHROMIUM is not None
    proc = _run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={folder / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ],
        folder,
    )
    assert out.is_file(), proc.stderr[-500:]
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    return data


@pytest.fixture(scope="module")
def custody_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.fixture(scope="module")
def preparer(custody_key: Ed25519PrivateKey) -> PreparerIdentity:
    """Made, sealed and reopened, as the CLI will: only the sealed form touches disk."""
    made = create_preparer_ca(
        "أمل حداد",
        custody_public_key=_raw(custody_key),
        custody_sign=custody_key.sign,
    )
    return open_preparer(seal_preparer(made, PASSPHRASE), PASSPHRASE)


@pytest.fixture(scope="module")
def tsa(work: Path) -> Iterator[TSA]:
    with running_tsa(work) as server:
        yield server


@dataclass
class Signed:
    path: Path
    level: str
    roots: list[bytes]


@pytest.fixture(scope="module", params=["B-LT", "B-LTA"])
def signed(
    request: pytest.FixtureRequest,
    work: Path,
    report_pdf: bytes,
    preparer: PreparerIdentity,
    tsa: TSA,
) -> Signed:
    level = request.param
    out = work / f"report-{level}.pdf"
    info = sign_pdf(
        report_pdf,
        preparer=preparer,
        tsa_urls=[tsa.url],
        tsa_roots_pem=tsa.root_pem.read_bytes(),
        level=level,
        out_path=out,
    )
    assert info.path == out and info.level == level and out.stat().st_size == info.size
    return Signed(out, level, [preparer.anchor_pem(), tsa.root_pem.read_bytes()])


def _nssdb(folder: Path, *trusted_pem: bytes) -> Path:
    """A fresh NSS database trusting exactly ``trusted_pem`` (certutil would loop
    prompting for a password on a database that already exists)."""
    folder.mkdir(parents=True)
    made = _run(["certutil", "-N", "-d", f"sql:{folder}", "--empty-password"], folder)
    assert made.returncode == 0, made.stderr
    for number, pem in enumerate(trusted_pem):
        cert = folder / f"anchor-{number}.pem"
        cert.write_bytes(pem)
        added = _run(
            [
                "certutil",
                "-A",
                "-d",
                f"sql:{folder}",
                "-n",
                f"anchor-{number}",
                "-t",
                "CT,C,C",
                "-i",
                str(cert),
            ],
            folder,
        )
        assert added.returncode == 0, added.stderr
    return folder


def pdfsig(pdf: Path, nssdb: Path, *extra: str) -> tuple[list[dict[str, str]], str]:
    """pdfsig's report as one dict per signature (its "  - Key: value" lines)."""
    proc = _run(["pdfsig", "-nssdir", f"sql:{nssdb}", *extra, str(pdf)], nssdb)
    out = proc.stdout + proc.stderr
    sigs: list[dict[str, str]] = []
    for line in proc.stdout.splitlines():
        if re.match(r"^Signature #\d+:$", line):
            sigs.append({})
        elif line.startswith("  - ") and sigs:
            key, _, value = line[4:].partition(": ")
            sigs[-1][key] = value if value else key
    return sigs, out


# ------------------------------------------------------------------------ good files


def test_signed_report_checks_out_with_pyhanko(
    signed: Signed, custody_key: Ed25519PrivateKey, work: Path
) -> None:
    check = check_signed_pdf(signed.path, signed.roots, custody_public_key=_raw(custody_key))
    assert check.ok, check.problems
    assert check.intact and check.level == signed.level
    assert check.signer is not None and check.signer.trusted
    assert "CN=أمل حداد" in check.signer.subject
    assert check.signer.custody_binding.status == "bound"
    ts = check.signature_timestamp
    assert ts is not None and ts.intact and ts.trusted and ts.tsa_subject is not None
    assert "CN=Test TSA" in ts.tsa_subject and check.signing_time == ts.time
    assert check.dss_certificates >= 3 and check.dss_crls >= 1  # chains + the preparer CA's CRL
    assert check.modification_level == "LTA_UPDATES"
    if signed.level == "B-LTA":
        assert len(check.document_timestamps) == 1 and check.whole_file_covered
        assert check.ltv_indication == "AdESPassed.OK"
    else:
        assert not check.document_timestamps and not check.whole_file_covered  # DSS after it
    text = _run(["pdftotext", "-enc", "UTF-8", str(signed.path), "-"], work).stdout
    assert "Chain-of-custody report" in text and "الحيازة" in text


def test_pdfsig_validates_signature_and_trusts_preparer(signed: Signed, work: Path) -> None:
    db = _nssdb(Path(tempfile.mkdtemp(dir=work)) / "nss", *signed.roots)
    sigs, out = pdfsig(signed.path, db)
    first = sigs[0]
    assert first["Signature Type"] == "ETSI.CAdES.detached", out
    assert first["Signature Validation"] == "Signature is Valid.", out
    assert first["Certificate Validation"] == "Certificate is Trusted.", out
    assert first["Signer Certificate Common Name"] == "أمل حداد"
    assert first["Signing Hash Algorithm"] == "SHA-256"
    if signed.level == "B-LTA":
        # pdfsig 22.12 cannot validate ETSI.RFC3161 document timestamps ("unknown"
        # type), but shows one is there, by whom, and that it covers the whole file.
        assert len(sigs) == 2 and sigs[1]["Signer Certificate Common Name"] == "Test TSA", out
        assert "Total document signed" in sigs[1], out
    else:
        assert len(sigs) == 1, out


def test_pdfsig_without_the_preparer_anchor_does_not_trust(signed: Signed, work: Path) -> None:
    db = _nssdb(Path(tempfile.mkdtemp(dir=work)) / "nss", signed.roots[1])  # TSA root only
    sigs, out = pdfsig(signed.path, db)
    assert sigs[0]["Signature Validation"] == "Signature is Valid.", out
    assert sigs[0]["Certificate Validation"] == "Certificate issuer isn't Trusted.", out


def _ranges(pdf: bytes, sig: dict[str, str]) -> bytes:
    spans = re.findall(r"\[(\d+) - (\d+)\]", sig["Signed Ranges"])
    return b"".join(pdf[int(a) : int(b)] for a, b in spans)


def test_timestamps_verify_with_openssl(signed: Signed, tsa: TSA, work: Path) -> None:
    """openssl checks both RFC 3161 tokens over the exact bytes they cover."""
    folder = Path(tempfile.mkdtemp(dir=work))
    db = _nssdb(folder / "nss", *signed.roots)
    sigs, _ = pdfsig(signed.path.resolve(), db)
    dumped = _run(
        ["pdfsig", "-nssdir", f"sql:{db}", "-dump", str(signed.path.resolve())], folder, cwd=folder
    )
    assert dumped.returncode == 0, dumped.stderr
    base = signed.path.name
    signature = cms.ContentInfo.load((folder / f"{base}.sig0").read_bytes())
    signer_info = signature["content"]["signer_infos"][0]
    (folder / "sigvalue.bin").write_bytes(signer_info["signature"].native)
    tokens = [
        attr["values"][0]
        for attr in signer_info["unsigned_attrs"]
        if attr["type"].dotted == "1.2.840.113549.1.9.16.2.14"
    ]
    assert len(tokens) == 1, "one signature timestamp in the unsigned attributes"
    (folder / "sigts.der").write_bytes(tokens[0].dump())
    verify = [
        "openssl",
        "ts",
        "-verify",
        "-token_in",
        "-CAfile",
        str(tsa.root_pem),
        "-untrusted",
        str(tsa.chain_pem),
    ]
    proc = _run([*verify, "-in", "sigts.der", "-data", "sigvalue.bin"], folder, cwd=folder)
    assert "Verification: OK" in proc.stdout, proc.stdout + proc.stderr
    if signed.level == "B-LTA":
        (folder / "covered.bin").write_bytes(_ranges(signed.path.read_bytes(), sigs[1]))
        proc = _run([*verify, "-in", f"{base}.sig1", "-data", "covered.bin"], folder, cwd=folder)
        assert "Verification: OK" in proc.stdout, proc.stdout + proc.stderr
        # and the same token over one changed byte fails: the check can fail
        covered = bytearray((folder / "covered.bin").read_bytes())
        covered[100] ^= 0x01
        (folder / "covered.bin").write_bytes(bytes(covered))
        proc = _run([*verify, "-in", f"{base}.sig1", "-data", "covered.bin"], folder, cwd=folder)
        assert "Verification: OK" not in proc.stdout


# -------------------------------------------------------------------------- tampering


def test_one_byte_changed_inside_the_signed_range_is_rejected(signed: Signed, work: Path) -> None:
    data = bytearray(signed.path.read_bytes())
    at = data.index(b"/Producer (") + len(b"/Producer (")  # Chromium's Info dictionary
    assert at < data.index(b"/ByteRange")  # inside the first signed range
    data[at] ^= 0x01
    tampered = work / f"byte-{signed.level}.pdf"
    tampered.write_bytes(bytes(data))
    check = check_signed_pdf(tampered, signed.roots)
    assert not check.ok and not check.intact
    assert "SIGNATURE_BROKEN" in {p.code for p in check.problems}
    db = _nssdb(Path(tempfile.mkdtemp(dir=work)) / "nss", *signed.roots)
    sigs, out = pdfsig(tampered, db)
    assert sigs[0]["Signature Validation"] == "Digest Mismatch.", out


def test_incremental_update_changing_a_page_is_reported(signed: Signed, work: Path) -> None:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(signed.path.read_bytes()))
    rectangle = generic.StreamObject(stream_data=b"q 0 0 1 rg 40 40 300 80 re f Q")
    writer.add_stream_to_page(0, writer.add_object(rectangle))
    out = io.BytesIO()
    writer.write(out)
    altered = work / f"page-{signed.level}.pdf"
    altered.write_bytes(out.getvalue())

    check = check_signed_pdf(altered, signed.roots)
    assert not check.ok and check.intact  # the signed bytes are untouched...
    codes = {p.code for p in check.problems}
    assert "MODIFIED_AFTER_SIGNING" in codes, check.problems  # ...but a page changed after
    assert not check.whole_file_covered

    db = _nssdb(Path(tempfile.mkdtemp(dir=work)) / "nss", *signed.roots)
    sigs, out_text = pdfsig(altered, db)
    assert sigs[0]["Signature Validation"] == "Signature is Valid.", out_text
    assert all("Total document signed" not in s for s in sigs), out_text
    assert all("Not total document signed" in s for s in sigs), out_text


# ----------------------------------------------------------------- long-term validation


class _CrlServer:
    """Serves CRLs over HTTP on 127.0.0.1, as a CA's distribution point would: each
    request gets a CRL issued at that moment (as CAs that issue often, or OCSP, do)."""

    def __init__(self) -> None:
        self.files: dict[str, Callable[[], bytes]] = {}
        files = self.files

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                make = files.get(self.path)
                if make is None:
                    self.send_error(404)
                    return
                body = make()
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _tsa_with_crls(directory: Path, name: str, leaf_days: int, crls: _CrlServer) -> TSA:
    """A TSA whose chain declares CRL distribution points, served by ``crls``: what
    ETSI past validation needs once the TSA certificate has expired."""
    directory.mkdir(parents=True)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    names = [
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} {part}")])
        for part in ("Root", "Intermediate", "Unit")
    ]
    slug = name.lower().replace(" ", "-")

    def cert(i: int, days: int, crl_path: str | None) -> x509.Certificate:
        issuer = max(i - 1, 0)
        b = (
            x509.CertificateBuilder()
            .subject_name(names[i])
            .issuer_name(names[issuer])
            .public_key(keys[i].public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=i < 2, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(keys[i].public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(keys[issuer].public_key()),
                False,
            )
        )
        if i == 2:
            b = b.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            ).add_extension(
                x509.KeyUsage(True, True, False, False, False, False, False, False, False), True
            )
        else:
            b = b.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
            )
        if crl_path:
            uri = x509.UniformResourceIdentifier(crls.base + crl_path)
            b = b.add_extension(
                x509.CRLDistributionPoints([x509.DistributionPoint([uri], None, None, None)]),
                False,
            )
        return b.sign(keys[issuer], hashes.SHA256())

    root = cert(0, 365 * 25, None)
    inter = cert(1, 365 * 15, f"/{slug}/root.crl")
    unit = cert(2, leaf_days, f"/{slug}/intermediate.crl")

    def crl_of(i: int) -> Callable[[], bytes]:
        def make() -> bytes:
            issued = dt.datetime.now(dt.UTC).replace(microsecond=0)
            return (
                x509.CertificateRevocationListBuilder()
                .issuer_name(names[i])
                .last_update(issued)
                .next_update(issued + dt.timedelta(days=7))
                .add_extension(x509.CRLNumber(int(issued.timestamp())), False)
                .sign(keys[i], hashes.SHA256())
                .public_bytes(serialization.Encoding.DER)
            )

        return make

    crls.files[f"/{slug}/root.crl"] = crl_of(0)
    crls.files[f"/{slug}/intermediate.crl"] = crl_of(1)

    def pem(path: Path, *certs: x509.Certificate) -> Path:
        path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
        return path

    key_path = directory / "tsa.key"
    key_path.write_bytes(
        keys[2].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pki = PKI(
        directory=directory,
        root_pem=pem(directory / "root.pem", root),
        chain_pem=pem(directory / "chain.pem", inter),
        full_chain_pem=pem(directory / "full-chain.pem", inter, root),
        tsa_cert_pem=pem(directory / "tsa.pem", unit),
        tsa_key_pem=key_path,
        signing_root_pem=directory / "root.pem",
    )
    config = write_openssl_cnf(pki, include_chain=True)
    return TSA(url="", mode="ok", pki=pki, config=config, include_chain=True).start()


def test_long_term_validation_offline_after_the_tsa_certificate_expired(
    work: Path, report_pdf: bytes, preparer: PreparerIdentity, custody_key: Ed25519PrivateKey
) -> None:
    """Sign with a TSA whose certificate lives three days and whose chain publishes
    CRLs; then, with nothing reachable, ask about a date a year on."""
    import asyncio

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.ades import simulate_future_ades_lta_validation

    crls = _CrlServer()
    short = _tsa_with_crls(work / "tsa-short", "Short TSA", 3, crls)
    archive = _tsa_with_crls(work / "tsa-archive", "Archive TSA", 365 * 10, crls)
    try:
        roots = [preparer.anchor_pem(), short.root_pem.read_bytes(), archive.root_pem.read_bytes()]
        first = work / "ltv-first.pdf"
        sign_pdf(
            report_pdf,
            preparer=preparer,
            tsa_urls=[short.url],
            tsa_roots_pem=short.root_pem.read_bytes(),
            level="B-LTA",
            out_path=first,
        )
        renewed = work / "ltv-renewed.pdf"
        info = extend_archive_timestamp(
            first.read_bytes(), tsa_urls=[archive.url], trust_roots_pem=roots, out_path=renewed
        )
        assert info.tsa_subject == "CN=Archive TSA Unit" and info.document_timestamp
    finally:
        short.stop()
        archive.stop()
        crls.stop()  # from here on nothing can be fetched: every check is offline

    now_check = check_signed_pdf(first, roots, custody_public_key=_raw(custody_key))
    assert now_check.ok, now_check.problems
    assert now_check.dss_crls >= 3  # preparer CA's CRL + the TSA chain's, fetched
    renewed_now = check_signed_pdf(renewed, roots, custody_public_key=_raw(custody_key))
    assert renewed_now.ok and len(renewed_now.document_timestamps) == 2, renewed_now.problems

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    stale = check_signed_pdf(first, roots, at=later)
    assert not stale.ok  # its only document timestamp's TSA certificate has expired
    assert {"LTV_NOT_VALIDATED", "DOCUMENT_TIMESTAMP_INVALID"} & {p.code for p in stale.problems}

    # pyHanko's ETSI engine, embedded data only (no fetching), a year on: the file
    # carries what a validator needs, given that the timestamp chain is kept up.
    reader = PdfFileReader(io.BytesIO(first.read_bytes()))
    spec = pdfsign_checking._validation_spec(
        [c for pem in roots for c in pdfsign.load_pem_certificates(pem, "roots")]
    )
    result = asyncio.run(
        simulate_future_ades_lta_validation(
            reader.embedded_regular_signatures[0], spec, future_validation_time=later
        )
    )
    assert type(result.ades_subindic).__name__ == "AdESPassed", result.ades_subindic
    assert result.api_status.intact and result.api_status.trusted


# ------------------------------------------------------------- authorities misbehaving


def test_tsa_failover_then_refusals(
    work: Path, report_pdf: bytes, preparer: PreparerIdentity, tsa: TSA
) -> None:
    dead = "http://127.0.0.1:9/tsa"  # discard port: nothing listens
    out = work / "failover.pdf"
    info = sign_pdf(
        report_pdf,
        preparer=preparer,
        tsa_urls=[dead, tsa.url],
        tsa_roots_pem=tsa.root_pem.read_bytes(),
        level="B-LTA",
        out_path=out,
    )
    assert info.tsa_url == tsa.url and len(info.tsa_failures) == 1
    assert info.tsa_failures[0].startswith(dead)

    for mode in ("untrusted_root", "wrong_imprint", "oversized", "garbage"):
        with running_tsa(work, mode) as bad:
            target = work / f"refused-{mode}.pdf"
            with pytest.raises(TimestampError) as err:
                sign_pdf(
                    report_pdf,
                    preparer=preparer,
                    tsa_urls=[bad.url],
                    tsa_roots_pem=bad.root_pem.read_bytes(),
                    level="B-LT",
                    out_path=target,
                    timeout=5,
                )
            assert bad.url in str(err.value)
            assert not target.exists()
            if mode == "oversized":
                assert "larger than 1048576 bytes" in str(err.value)


# ----------------------------------------------------------------- identities, at rest


def test_preparer_identity_at_rest_and_binding(
    work: Path, preparer: PreparerIdentity, custody_key: Ed25519PrivateKey
) -> None:
    sealed = seal_preparer(preparer, PASSPHRASE)
    scalar = preparer._key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
    assert scalar not in sealed and "private" not in repr(preparer).lower()
    with pytest.raises(PassphraseError):
        open_preparer(sealed, "wrong passphrase")
    # openssl opens it with the passphrase (independent PKCS#12 reader)
    (work / "preparer.p12").write_bytes(sealed)
    proc = _run(
        ["openssl", "pkcs12", "-in", "preparer.p12", "-nokeys", "-passin", f"pass:{PASSPHRASE}"],
        work,
        cwd=work,
    )
    assert proc.returncode == 0 and "custody PDF signing CA" in proc.stdout, proc.stderr
    with pytest.raises(UsageError, match="mixes Arabic"):
        create_preparer_ca(
            "Amal Haddad / أمل حداد",
            custody_public_key=_raw(custody_key),
            custody_sign=custody_key.sign,
        )

    assert preparer.binding(_raw(custody_key)).status == "bound"
    assert preparer.binding().status == "claimed"
    other = Ed25519PrivateKey.generate()
    assert preparer.binding(_raw(other)).status == "other-key"

    # openssl checks the custody key's Ed25519 signature over the binding statement
    binding = pdfsign.parse_custody_binding(preparer.certificate)
    assert binding is not None and binding.fields["name"] == "أمل حداد"
    (work / "statement.bin").write_bytes(pdfsign_common._BINDING_CONTEXT + binding.statement)
    (work / "binding.sig").write_bytes(binding.signature)
    (work / "custody.pub.pem").write_bytes(
        custody_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    verify = [
        "openssl",
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        "custody.pub.pem",
        "-rawin",
        "-in",
        "statement.bin",
        "-sigfile",
        "binding.sig",
    ]
    assert "Signature Verified Successfully" in _run(verify, work, cwd=work).stdout
    (work / "statement.bin").write_bytes(pdfsign_common._BINDING_CONTEXT + binding.statement + b" ")
    assert "Signature Verified Successfully" not in _run(verify, work, cwd=work).stdout


def test_a_forged_binding_is_invalid(custody_key: Ed25519PrivateKey) -> None:
    """A CA certificate claiming a custody key whose holder signed some other CA."""
    real = create_preparer_ca(
        "Real", custody_public_key=_raw(custody_key), custody_sign=custody_key.sign
    )
    ext = real.certificate.extensions.get_extension_for_oid(pdfsign.BINDING_OID)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Impostor CA")])
    now = dt.datetime.now(dt.UTC)
    forged = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ext.value, critical=False)  # copied binding: names the real CA's key
        .sign(key, hashes.SHA256())
    )
    found = pdfsign.check_custody_binding(forged, _raw(custody_key))
    assert found.status == "invalid" and "another certificate key" in found.detail


def _org_pki(folder: Path) -> tuple[bytes, bytes, bytes, bytes]:
    """An organisation CA (cert, encrypted key) and an end-entity it issued."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Documentation Centre"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Documentation Centre Signing CA"),
        ]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(ca_key, hashes.SHA384())
    )
    encrypted = serialization.BestAvailableEncryption(PASSPHRASE.encode())
    return (
        ca.public_bytes(serialization.Encoding.PEM),
        ca_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encrypted
        ),
        b"",
        b"",
    )


def test_organisation_ca_signs_one_time_keys(work: Path, report_pdf: bytes, tsa: TSA) -> None:
    ca_pem, key_pem, _, _ = _org_pki(work)
    with pytest.raises(PassphraseError):
        load_organisation_identity(ca_pem, key_pem, "not it", signer_name="Yusuf")
    org = load_organisation_identity(ca_pem, key_pem, PASSPHRASE, signer_name="Yusuf")
    assert org.kind == "organisation-ca" and org.binding().status == "absent"
    out = work / "org.pdf"
    sign_pdf(
        report_pdf,
        preparer=org,
        tsa_urls=[tsa.url],
        tsa_roots_pem=tsa.root_pem.read_bytes(),
        level="B-LTA",
        out_path=out,
    )
    roots = [ca_pem, tsa.root_pem.read_bytes()]
    check = check_signed_pdf(out, roots)
    assert check.ok, check.problems
    assert check.signer is not None and check.signer.custody_binding.status == "absent"
    assert "CN=Documentation Centre Signing CA" in check.signer.issuer
    sigs, text = pdfsig(out, _nssdb(Path(tempfile.mkdtemp(dir=work)) / "nss", *roots))
    assert sigs[0]["Certificate Validation"] == "Certificate is Trusted.", text
    # given a custody key, a report with no binding is a problem, not a silent pass
    strict = check_signed_pdf(out, roots, custody_public_key=b"\x01" * 32)
    assert "CUSTODY_BINDING" in {p.code for p in strict.problems}


def test_ed25519_cannot_sign_pdfs_for_pdfsig(work: Path, report_pdf: bytes) -> None:
    """Pins the evidence behind the P-256 choice: pdfsig (NSS) rejects an Ed25519 PDF
    signature that pyHanko accepts. If this starts failing, Ed25519 may be usable."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    key = Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ed25519 signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, None)
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(SigningKeyError):
        load_organisation_identity(
            pem,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            None,
        )
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
        cert_registry=SimpleCertificateStore(),
    )
    meta = signers.PdfSignatureMetadata(field_name="Sig", subfilter=SigSeedSubFilter.PADES)
    out = signers.PdfSigner(meta, signer).sign_pdf(IncrementalPdfFileWriter(io.BytesIO(report_pdf)))
    path = work / "ed25519.pdf"
    path.write_bytes(out.getvalue())
    check = check_signed_pdf(path, [pem])
    assert check.intact and check.signer is not None and check.signer.trusted  # pyHanko: fine
    folder = Path(tempfile.mkdtemp(dir=work))
    db = _nssdb(folder / "nss")
    (folder / "ed.pem").write_bytes(pem)
    added = _run(
        [
            "certutil",
            "-A",
            "-d",
            f"sql:{db}",
            "-n",
            "ed",
            "-t",
            "CT,C,C",
            "-i",
            str(folder / "ed.pem"),
        ],
        folder,
    )
    assert added.returncode != 0 and "SEC_ERROR_ADDING_CERT" in added.stderr
    sigs, text = pdfsig(path, db)
    assert sigs[0]["Signature Validation"] == "Document isn't signed or corrupted data.", text


# -------------------------------------------------------------------- hostile inputs


def test_hostile_inputs_get_one_line_errors(
    work: Path, report_pdf: bytes, preparer: PreparerIdentity, tsa: TSA, signed: Signed
) -> None:
    def attempt(pdf: bytes, out: Path, **kw: object) -> None:
        args: dict[str, object] = {
            "preparer": preparer,
            "tsa_urls": [tsa.url],
            "tsa_roots_pem": tsa.root_pem.read_bytes(),
            "level": "B-LT",
            "out_path": out,
        }
        args.update(kw)
        sign_pdf(pdf, **args)  # type: ignore[arg-type]

    folder = Path(tempfile.mkdtemp(dir=work))
    with pytest.raises(InputError, match="not a PDF"):
        attempt(b"GIF89a" + report_pdf, folder / "a.pdf")
    with pytest.raises(InputError, match="not a readable PDF"):
        attempt(report_pdf[: len(report_pdf) // 2], folder / "b.pdf")
    with pytest.raises(InputError, match="already carries a signature"):
        attempt(signed.path.read_bytes(), folder / "c.pdf")
    with pytest.raises(UsageError, match="unknown PAdES level"):
        attempt(report_pdf, folder / "d.pdf", level="B-B")
    with pytest.raises(UsageError, match="not an http"):
        attempt(report_pdf, folder / "e.pdf", tsa_urls=["file:///etc/passwd"])
    with pytest.raises(UsageError, match="no certificate"):
        attempt(report_pdf, folder / "f.pdf", tsa_roots_pem=b"")
    existing = folder / "exists.pdf"
    existing.write_bytes(b"keep me")
    with pytest.raises(UsageError, match="already exists"):
        attempt(report_pdf, existing)
    assert existing.read_bytes() == b"keep me"
    victim = folder / "victim.txt"
    victim.write_bytes(b"untouched")
    link = folder / "link.pdf"
    link.symlink_to(victim)
    with pytest.raises(UsageError, match="already exists"):
        attempt(report_pdf, link)
    assert victim.read_bytes() == b"untouched"
    assert not [p for p in folder.iterdir() if p.name.startswith(".custody-pdf-")]

    garbage = folder / "garbage.pdf"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(InputError):
        check_signed_pdf(garbage, signed.roots)
    with pytest.raises(InputError, match="not a regular file"):
        check_signed_pdf(folder, signed.roots)
    plain = folder / "plain.pdf"
    plain.write_bytes(report_pdf)
    unsigned: PdfSignatureCheck = check_signed_pdf(plain, signed.roots)
    assert not unsigned.ok and [p.code for p in unsigned.problems] == ["NO_SIGNATURE"]
    with pytest.raises(UsageError):
        check_signed_pdf(signed.path, b"not a certificate")


def test_no_flipped_byte_in_signed_ranges_passes(signed: Signed, work: Path) -> None:
    """Any single changed byte that the last signature or timestamp covers makes the
    check fail (or the file unreadable): never a "verified" for a changed file."""
    import random

    from pyhanko.pdf_utils.reader import PdfFileReader

    data = signed.path.read_bytes()
    reader = PdfFileReader(io.BytesIO(data))
    last = reader.embedded_signatures[-1]
    start1, len1, start2, len2 = (int(x) for x in last.sig_object["/ByteRange"])
    covered = [*range(start1, start1 + len1), *range(start2, start2 + len2)]
    # B-LTA: the document timestamp covers every byte; B-LT: the DSS after the
    # signature is unsigned by design (validation data, checked on its own merits).
    assert (start2 + len2 == len(data)) == (signed.level == "B-LTA")
    rng = random.Random(3161)
    for position in rng.sample(covered, 20):
        altered = bytearray(data)
        altered[position] ^= 1 << rng.randrange(8)
        path = work / f"flip-{signed.level}.pdf"
        path.write_bytes(bytes(altered))
        try:
            check = check_signed_pdf(path, signed.roots)
        except InputError:
            continue
        assert not check.ok, f"byte {position} changed and the check still passed"
