"""Loopback timestamp authorities whose clocks and certificates the test controls.

For RFC 4998 tests a TSA must be able to stamp *years* apart and its certificate must
expire or be revoked on a date the test chooses. Each :class:`ClockedTSA` is a real RFC
3161 TSA: ``openssl ts -reply`` signs every token, run under ``faketime`` (Debian
``faketime``, libfaketime) so that its ``genTime`` is ``tsa.clock``; certificates are
made with ``cryptography`` with the validity given; CRLs (signed by the issuing CA, with
``thisUpdate`` chosen by the test) and an OCSP responder are served on the same loopback
HTTP server, at the URLs the certificates name (CRL distribution points, AIA OCSP and
caIssuers). Nothing is committed as a binary; everything lives under ``tmp_path``.

Usage::

    with clocked_tsa(tmp_path, "TSA One", not_before=T0, not_after=T0 + year) as one:
        one.clock = T0 + dt.timedelta(days=1)
        transport = HttpTsa(one.url)
        ...
        one.revoke(at=T0 + dt.timedelta(days=100))
        crl_der = one.crl(this_update=T0 + dt.timedelta(days=150))
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

OPENSSL = shutil.which("openssl") or "openssl"
FAKETIME = shutil.which("faketime") or "faketime"
POLICY = "1.3.6.1.4.1.55555.4998.1"
DAY = dt.timedelta(days=1)
YEAR = dt.timedelta(days=365)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "custody long-term tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@dataclass
class ClockedTSA:
    """A running TSA; ``clock`` is the genTime of the next token it signs."""

    directory: Path
    name: str
    clock: dt.datetime
    root: x509.Certificate
    intermediate: x509.Certificate
    certificate: x509.Certificate
    url: str = ""
    base: str = ""
    revoked: dict[int, dt.datetime] = field(default_factory=dict)
    requests: int = 0
    _int_key: ec.EllipticCurvePrivateKey | None = None
    _root_key: ec.EllipticCurvePrivateKey | None = None
    _server: http.server.ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _crl_this_update: dt.datetime | None = None

    @property
    def root_pem(self) -> Path:
        return self.directory / "root.pem"

    def revoke(self, at: dt.datetime, cert: x509.Certificate | None = None) -> None:
        """Revoke the TSA certificate (or ``cert``, issued by the same CA) as of ``at``."""
        self.revoked[(cert or self.certificate).serial_number] = at

    def crl(self, this_update: dt.datetime, *, root: bool = False) -> bytes:
        """A DER CRL of the issuing CA (``root``: of the root CA) as of ``this_update``
        (entries revoked by then)."""
        key = self._root_key if root else self._int_key
        assert key is not None
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name((self.root if root else self.intermediate).subject)
            .last_update(this_update)
            .next_update(this_update + 30 * DAY)
        )
        for serial, when in self.revoked.items():
            if when <= this_update:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(serial)
                    .revocation_date(when)
                    .build()
                )
        crl = builder.sign(key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)

    def publish_crl(self, this_update: dt.datetime) -> None:
        """From now on the CRL URL serves the CRL as of ``this_update``."""
        self._crl_this_update = this_update

    def reply(self, query: bytes) -> bytes:
        with self._lock, tempfile.TemporaryDirectory(dir=self.directory) as tmp:
            work = Path(tmp)
            (work / "q.tsq").write_bytes(query)
            stamp = self.clock.astimezone(dt.UTC).strftime("@%Y-%m-%d %H:%M:%S")
            argv = [
                FAKETIME,
                "-f",
                stamp,
                OPENSSL,
                "ts",
                "-reply",
                "-config",
                str(self.directory / "openssl.cnf"),
                "-queryfile",
                str(work / "q.tsq"),
                "-out",
                str(work / "r.tsr"),
            ]
            env = {"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "HOME": str(work)}
            proc = subprocess.run(argv, capture_output=True, timeout=60, check=False, env=env)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr.decode(errors="replace"))
            self.requests += 1
            return (work / "r.tsr").read_bytes()

    def _ocsp(self, body: bytes) -> bytes:
        assert self._int_key is not None
        request = ocsp.load_der_ocsp_request(body)
        revoked_at = self.revoked.get(request.serial_number)
        cert = self.certificate if request.serial_number == self.certificate.serial_number else None
        if cert is None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED
            ).public_bytes(serialization.Encoding.DER)
        status = ocsp.OCSPCertStatus.REVOKED if revoked_at else ocsp.OCSPCertStatus.GOOD
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert,
            issuer=self.intermediate,
            algorithm=hashes.SHA1(),
            cert_status=status,
            this_update=self.clock,
            next_update=self.clock + 7 * DAY,
            revocation_time=revoked_at,
            revocation_reason=None,
        )
        response = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.intermediate).sign(
            self._int_key, hashes.SHA256()
        )
        return response.public_bytes(serialization.Encoding.DER)

    def start(self) -> ClockedTSA:
        tsa = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                when = tsa._crl_this_update
                if self.path in ("/crl", "/rootcrl") and when is not None:
                    crl = tsa.crl(when, root=self.path == "/rootcrl")
                    self._send(200, "application/pkix-crl", crl)
                elif self.path == "/ca.cer":
                    der = tsa.intermediate.public_bytes(serialization.Encoding.DER)
                    self._send(200, "application/pkix-cert", der)
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(size, 65536))
                try:
                    if self.path == "/tsa":
                        self._send(200, "application/timestamp-reply", tsa.reply(body))
                    elif self.path == "/ocsp":
                        self._send(200, "application/ocsp-response", tsa._ocsp(body))
                    else:
                        self.send_error(404)
                except Exception as err:  # the test sees HTTP 500
                    self.send_error(500, str(err)[:100])

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.base = f"http://127.0.0.1:{server.server_address[1]}"
        self.url = f"{self.base}/tsa"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def _build(
    directory: Path,
    name: str,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    base: str,
    with_urls: bool,
) -> tuple[
    x509.Certificate,
    x509.Certificate,
    x509.Certificate,
    ec.EllipticCurvePrivateKey,
    ec.EllipticCurvePrivateKey,
]:
    root_key = ec.generate_private_key(ec.SECP256R1())
    int_key = ec.generate_private_key(ec.SECP256R1())
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    ca_start, ca_end = not_before - YEAR, not_before + 40 * YEAR

    def ca(
        subject: x509.Name,
        issuer: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        serial: int,
    ) -> x509.Certificate:
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(ca_start)
            .not_valid_after(ca_end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if with_urls and serial != 1:  # the intermediate names the root's CRL
            point = x509.DistributionPoint(
                [x509.UniformResourceIdentifier(f"{base}/rootcrl")], None, None, None
            )
            b = b.add_extension(x509.CRLDistributionPoints([point]), critical=False)
        return b.sign(signer, hashes.SHA256())

    root = ca(_name(f"{name} Root"), _name(f"{name} Root"), root_key, root_key, 1)
    inter = ca(_name(f"{name} CA"), root.subject, int_key, root_key, 2)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(inter.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(int_key.public_key()), False
        )
    )
    if with_urls:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(f"{base}/crl")], None, None, None
                    )
                ]
            ),
            critical=False,
        ).add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(f"{base}/ocsp"),
                    ),
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(f"{base}/ca.cer"),
                    ),
                ]
            ),
            critical=False,
        )
    cert = builder.sign(int_key, hashes.SHA256())
    (directory / "root.pem").write_bytes(_pem(root))
    (directory / "chain.pem").write_bytes(_pem(inter, root))
    (directory / "tsa.pem").write_bytes(_pem(cert))
    (directory / "tsa.key").write_bytes(
        tsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (directory / "tsa.key").chmod(0o600)
    return root, inter, cert, int_key, root_key


def _config(directory: Path, *, include_chain: bool) -> None:
    (directory / "serial").write_text("01\n")
    lines = [
        "[tsa]",
        "default_tsa = tsa_main",
        "[tsa_main]",
        f"serial = {directory / 'serial'}",
        "crypto_device = builtin",
        f"signer_cert = {directory / 'tsa.pem'}",
        f"signer_key = {directory / 'tsa.key'}",
        "signer_digest = sha256",
        f"default_policy = {POLICY}",
        "digests = sha256, sha384, sha512, sha3-256, sha3-512",
        "accuracy = secs:1",
        "ordering = no",
        "tsa_name = yes",
        "ess_cert_id_chain = no",
        "ess_cert_id_alg = sha256",
    ]
    if include_chain:
        lines.insert(5, f"certs = {directory / 'chain.pem'}")
    (directory / "openssl.cnf").write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def clocked_tsa(
    tmp_path: Path,
    name: str,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    include_chain: bool = True,
    with_urls: bool = True,
) -> Iterator[ClockedTSA]:
    """A TSA named ``name`` whose certificate is valid from ``not_before`` to ``not_after``.

    ``include_chain``: tokens carry the intermediate and root (else only the signer).
    ``with_urls``: the TSA certificate names its CRL, OCSP and caIssuers URLs.
    """
    directory = Path(tempfile.mkdtemp(prefix="tsa-lt-", dir=tmp_path))
    tsa = ClockedTSA(directory, name, not_before, *([None] * 3))  # type: ignore[arg-type]
    tsa.start()
    try:
        root, inter, cert, int_key, root_key = _build(
            directory,
            name,
            not_before=not_before,
            not_after=not_after,
            base=tsa.base,
            with_urls=with_urls,
        )
        tsa.root, tsa.intermediate, tsa.certificate = root, inter, cert
        tsa._int_key, tsa._root_key = int_key, root_key
        _config(directory, include_chain=include_chain)
        yield tsa
    finally:
        tsa.stop()
