"""A real RFC 3161 timestamp authority on loopback, for tests.

Certificates are made with ``cryptography`` at test time (a root CA, an intermediate
CA and a TSA certificate with ``extendedKeyUsage = critical,timeStamping``); tokens are
signed by the OpenSSL CLI (``openssl ts -reply`` with an ``openssl.cnf`` ``[tsa]``
section), served by a threaded ``http.server`` on 127.0.0.1. Nothing here is
committed as binary: every key, certificate and token lives in a temporary directory.

Usage::

    from tests.tsa import running_tsa

    with running_tsa(tmp_path, mode="ok", include_chain=True) as tsa:
        raw = request_token(tsa.url, request)
        ...  # trust tsa.root_pem, give tsa.chain_pem as -untrusted

Modes (see MODES): a well-behaved TSA ("ok") and one mode per misbehaviour. The
token-producing misbehaviours all make *real* signatures:

* ``wrong_imprint`` / ``wrong_nonce`` - the query is altered before ``openssl ts
  -reply`` sees it, so OpenSSL honestly stamps another digest / echoes another nonce;
* ``reject`` - the request goes to a section that only accepts SHA-512 imprints, so
  OpenSSL answers PKIStatus rejection with failInfo badAlg;
* ``noncritical_eku`` - OpenSSL refuses to sign with a TSA certificate whose EKU is
  not critical, so the TSTInfo comes from ``openssl ts -reply`` with a twin
  certificate (same key, same name, critical EKU) and is then signed afresh with
  ``openssl cms -sign -cades -econtent_type id-smime-ct-TSTInfo`` using the
  non-critical certificate and its key;
* ``untrusted_root`` - the chain leads to a rogue root that has the same name as the
  root the TSA tells verifiers to trust (``root_pem``) but another key;
* ``expired`` - the TSA certificate's notAfter lies ten days in the past; ``openssl ts
  -reply`` signs with it anyway, so genTime falls outside its validity;
* ``garbage`` (random bytes, right content type), ``http_500``, ``hang`` (accepts the
  connection, never answers), ``wrong_content_type``, ``oversized`` (more than 1 MiB,
  no Content-Length), ``oversized_declared`` (a Content-Length over 1 MiB),
  ``redirect`` (HTTP 302 to itself).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "MODES",
    "OPENSSL",
    "PKI",
    "TSA",
    "der_children",
    "make_pki",
    "openssl_ok",
    "permute_certificates",
    "running_tsa",
    "start_tsa",
    "token_regions",
    "write_openssl_cnf",
]

OPENSSL = shutil.which("openssl") or "openssl"
MODES = (
    "ok",
    "wrong_imprint",
    "wrong_nonce",
    "reject",
    "noncritical_eku",
    "untrusted_root",
    "expired",
    "garbage",
    "http_500",
    "hang",
    "wrong_content_type",
    "oversized",
    "oversized_declared",
    "redirect",
)
POLICY = "1.3.6.1.4.1.55555.3161.1"
_OID_TSTINFO = "1.2.840.113549.1.9.16.1.4"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


# ------------------------------------------------------------------ DER utilities


def der_children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, tlv_start, content_start, tlv_end) of each DER element in data[start:end]."""
    out = []
    pos = start
    while pos < end:
        tag, first = data[pos], data[pos + 1]
        if first < 0x80:
            length, body = first, pos + 2
        else:
            n = first & 0x7F
            length, body = int.from_bytes(data[pos + 2 : pos + 2 + n], "big"), pos + 2 + n
        if body + length > end:
            raise ValueError("DER element overruns its container")
        out.append((tag, pos, body, body + length))
        pos = body + length
    return out


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        head = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + head + content


def _signed_data(raw: bytes) -> list[tuple[int, int, int, int]]:
    ((_, _, body, end),) = der_children(raw, 0, len(raw))
    _status, content_info = der_children(raw, body, end)
    _oid, explicit = der_children(raw, content_info[2], content_info[3])
    (sd,) = der_children(raw, explicit[2], explicit[3])
    return der_children(raw, sd[2], sd[3])


def token_regions(raw: bytes) -> dict[str, list[tuple[int, int]]]:
    """Byte ranges of a granted TimeStampResp: what is signed and what is not.

    ``tstinfo`` (eContent octets), ``signed_attrs`` (the whole [0] field), ``signature``
    (its octets) and ``certificates`` (each embedded certificate's encoding).
    """
    fields = _signed_data(raw)
    encap = der_children(raw, fields[2][2], fields[2][3])
    (octets,) = der_children(raw, encap[1][2], encap[1][3])
    certs = [f for f in fields[3:-1] if f[0] == 0xA0]
    cert_ranges = (
        [(c[1], c[3]) for c in der_children(raw, certs[0][2], certs[0][3])] if certs else []
    )
    (signer,) = der_children(raw, fields[-1][2], fields[-1][3])
    si = der_children(raw, signer[2], signer[3])
    attrs = next(f for f in si if f[0] == 0xA0)
    sig = [f for f in si if f[0] == 0x04][-1]
    return {
        "tstinfo": [(octets[2], octets[3])],
        "signed_attrs": [(attrs[1], attrs[3])],
        "signature": [(sig[2], sig[3])],
        "certificates": cert_ranges,
    }


def permute_certificates(raw: bytes, order: list[int]) -> bytes:
    """The same response with its embedded certificates emitted in another order."""
    fields = _signed_data(raw)
    (cert_field,) = [f for f in fields if f[0] == 0xA0]
    certs = [raw[c[1] : c[3]] for c in der_children(raw, cert_field[2], cert_field[3])]
    assert sorted(order) == list(range(len(certs)))
    body = b"".join(certs[i] for i in order)
    return raw[: cert_field[2]] + body + raw[cert_field[3] :]


def _rewrite_query(query: bytes, *, imprint: bool = False, nonce: bool = False) -> bytes:
    """Flip the imprint's first byte or the nonce's last bit, lengths unchanged."""
    out = bytearray(query)
    ((_, _, body, end),) = der_children(query, 0, len(query))
    kids = der_children(query, body, end)
    if imprint:
        _alg, octets = der_children(query, kids[1][2], kids[1][3])
        out[octets[2]] ^= 0xFF
    if nonce:
        integer = next(k for k in kids[2:] if k[0] == 0x02)
        out[integer[3] - 1] ^= 0x01
    return bytes(out)


# ------------------------------------------------------------------ certificates


@dataclass
class PKI:
    """Files of one test PKI. ``root_pem`` is what verifiers are told to trust."""

    directory: Path
    root_pem: Path
    chain_pem: Path  # the intermediate: what `openssl ts -verify -untrusted` needs
    full_chain_pem: Path  # intermediate + issuing root, for the TSA's `certs =`
    tsa_cert_pem: Path
    tsa_key_pem: Path
    signing_root_pem: Path  # the root that really issued the chain
    twin_cert_pem: Path | None = None  # critical-EKU twin (noncritical_eku mode only)


def _key(key_type: str) -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: x509.Name,
    issuer: x509.Name,
    key: PrivateKey,
    issuer_key: PrivateKey,
    *,
    ca: bool,
    serial: int,
    eku_critical: bool = True,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
    )
    if ca:
        usage = dict.fromkeys(
            [
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "crl_sign",
                "encipher_only",
                "decipher_only",
                "digital_signature",
            ],
            False,
        )
        usage["crl_sign"] = True
        b = b.add_extension(x509.KeyUsage(key_cert_sign=True, **usage), critical=True)
    else:
        b = b.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=eku_critical
        )
    return b.sign(issuer_key, hashes.SHA256())


def _name(cn: str, *, leaf: bool = False) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "custody test suite"),
    ]
    if leaf:  # a longer leaf makes OpenSSL's signer-first certificate SET non-DER
        attrs.append(
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Time-Stamping Unit (loopback)")
        )
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _write_cert(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def _write_key(path: Path, key: PrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def make_pki(
    directory: Path,
    *,
    name: str = "Test TSA",
    key_type: str = "ec",
    eku_critical: bool = True,
    expired: bool = False,
    rogue: bool = False,
) -> PKI:
    """Root CA -> intermediate CA -> TSA certificate, written as PEM into ``directory``.

    ``rogue``: the chain is issued by a second root with the root's very name; the
    published ``root_pem`` is the honest one. ``expired``: the TSA certificate expired
    ten days ago. ``eku_critical=False``: the TSA certificate's EKU is not critical,
    and a critical-EKU twin (same key and name) is written too.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=30)
    root_name, int_name = _name(f"{name} Root CA"), _name(f"{name} Intermediate CA")
    root_key = _key(key_type)
    root = _cert(
        root_name, root_name, root_key, root_key, ca=True, serial=1, not_before=start, not_after=end
    )
    signing_root, signing_root_key = root, root_key
    if rogue:
        signing_root_key = _key(key_type)
        signing_root = _cert(
            root_name,
            root_name,
            signing_root_key,
            signing_root_key,
            ca=True,
            serial=1,
            not_before=start,
            not_after=end,
        )
    int_key = _key(key_type)
    inter = _cert(
        int_name,
        root_name,
        int_key,
        signing_root_key,
        ca=True,
        serial=2,
        not_before=start,
        not_after=end,
    )
    tsa_key = _key(key_type)
    leaf_start, leaf_end = start, end
    if expired:
        leaf_start, leaf_end = now - dt.timedelta(days=20), now - dt.timedelta(days=10)
    tsa_name = _name(name, leaf=True)
    tsa = _cert(
        tsa_name,
        int_name,
        tsa_key,
        int_key,
        ca=False,
        serial=3,
        eku_critical=eku_critical,
        not_before=leaf_start,
        not_after=leaf_end,
    )
    pki = PKI(
        directory=directory,
        root_pem=_write_cert(directory / "root.pem", root),
        chain_pem=_write_cert(directory / "chain.pem", inter),
        full_chain_pem=_write_cert(directory / "full-chain.pem", inter, signing_root),
        tsa_cert_pem=_write_cert(directory / "tsa.pem", tsa),
        tsa_key_pem=_write_key(directory / "tsa.key", tsa_key),
        signing_root_pem=_write_cert(directory / "signing-root.pem", signing_root),
    )
    if not eku_critical:
        twin = _cert(
            tsa_name,
            int_name,
            tsa_key,
            int_key,
            ca=False,
            serial=4,
            not_before=leaf_start,
            not_after=leaf_end,
        )
        pki.twin_cert_pem = _write_cert(directory / "twin.pem", twin)
    return pki


def _tsa_section(
    section: str, pki: PKI, signer: Path, *, digests: str, certs: bool, ess_alg: str
) -> str:
    lines = [
        f"[{section}]",
        f"serial = {pki.directory / 'serial'}",
        "crypto_device = builtin",
        f"signer_cert = {signer}",
        f"signer_key = {pki.tsa_key_pem}",
        "signer_digest = sha256",
        f"default_policy = {POLICY}",
        f"other_policies = {POLICY}.2",
        f"digests = {digests}",
        "accuracy = secs:1, millisecs:500",
        "clock_precision_digits = 0",
        "ordering = no",
        "tsa_name = yes",
        "ess_cert_id_chain = no",
        f"ess_cert_id_alg = {ess_alg}",
    ]
    if certs:
        lines.insert(4, f"certs = {pki.full_chain_pem}")
    return "\n".join(lines) + "\n"


def write_openssl_cnf(pki: PKI, *, include_chain: bool, ess_alg: str = "sha256") -> Path:
    """openssl.cnf with a [tsa] section: tsa_main, tsa_reject and (if any) tsa_twin."""
    (pki.directory / "serial").write_text("01\n")
    parts = ["[tsa]\ndefault_tsa = tsa_main\n"]
    parts.append(
        _tsa_section(
            "tsa_main",
            pki,
            pki.tsa_cert_pem,
            digests="sha256, sha384, sha512",
            certs=include_chain,
            ess_alg=ess_alg,
        )
    )
    parts.append(
        _tsa_section(
            "tsa_reject",
            pki,
            pki.tsa_cert_pem,
            digests="sha512",
            certs=include_chain,
            ess_alg=ess_alg,
        )
    )
    if pki.twin_cert_pem is not None:
        parts.append(
            _tsa_section(
                "tsa_twin", pki, pki.twin_cert_pem, digests="sha256", certs=False, ess_alg=ess_alg
            )
        )
    cnf = pki.directory / "openssl.cnf"
    cnf.write_text("\n".join(parts))
    return cnf


# ---------------------------------------------------------------------- the TSA


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.decode(errors='replace')}")


@dataclass
class TSA:
    """A running loopback TSA. ``url`` takes POSTed TimeStampReqs."""

    url: str
    mode: str
    pki: PKI
    config: Path
    include_chain: bool
    queries: list[bytes] = field(default_factory=list)
    query_headers: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def root_pem(self) -> Path:
        return self.pki.root_pem

    @property
    def chain_pem(self) -> Path:
        return self.pki.chain_pem

    @property
    def tsa_cert_pem(self) -> Path:
        return self.pki.tsa_cert_pem

    def root_certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.pki.root_pem.read_bytes())

    def chain_certificates(self) -> list[x509.Certificate]:
        return x509.load_pem_x509_certificates(self.pki.chain_pem.read_bytes())

    # -- token production -------------------------------------------------------

    def reply(self, query: bytes) -> bytes:
        """A DER TimeStampResp for ``query`` according to the mode."""
        with self._lock, tempfile.TemporaryDirectory(dir=self.pki.directory) as tmp:
            work = Path(tmp)
            if self.mode == "wrong_imprint":
                query = _rewrite_query(query, imprint=True)
            elif self.mode == "wrong_nonce":
                query = _rewrite_query(query, nonce=True)
            (work / "q.tsq").write_bytes(query)
            section = {"reject": "tsa_reject", "noncritical_eku": "tsa_twin"}.get(
                self.mode, "tsa_main"
            )
            out = work / "r.tsr"
            argv = [
                OPENSSL,
                "ts",
                "-reply",
                "-config",
                str(self.config),
                "-section",
                section,
                "-queryfile",
                str(work / "q.tsq"),
                "-out",
                str(out),
            ]
            if self.mode == "noncritical_eku":
                argv.append("-token_out")
            _run(argv)
            if self.mode != "noncritical_eku":
                return out.read_bytes()
            return self._resign_with_noncritical_cert(work, out)

    def _resign_with_noncritical_cert(self, work: Path, token: Path) -> bytes:
        # The TSTInfo is OpenSSL's own (signed by the critical-EKU twin); extract it
        # and sign it again, as a fresh CMS SignedData, with the non-critical cert.
        tstinfo = work / "tstinfo.der"
        _run(
            [
                OPENSSL,
                "cms",
                "-verify",
                "-noverify",
                "-inform",
                "DER",
                "-in",
                str(token),
                "-out",
                str(tstinfo),
            ]
        )
        signed = work / "token.der"
        argv = [
            OPENSSL,
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-cades",
            "-nosmimecap",
            "-econtent_type",
            _OID_TSTINFO,
            "-md",
            "sha256",
            "-signer",
            str(self.pki.tsa_cert_pem),
            "-inkey",
            str(self.pki.tsa_key_pem),
            "-in",
            str(tstinfo),
            "-outform",
            "DER",
            "-out",
            str(signed),
        ]
        if self.include_chain:
            argv += ["-certfile", str(self.pki.full_chain_pem)]
        _run(argv)
        granted = _der(0x30, _der(0x02, b"\x00"))
        return _der(0x30, granted + signed.read_bytes())

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> TSA:
        tsa = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, code: int, ctype: str, body: bytes, *, length: bool = True) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                if length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                query = self.rfile.read(min(size, 65536))
                tsa.queries.append(query)
                tsa.query_headers.append(dict(self.headers.items()))
                mode = tsa.mode
                if mode == "hang":
                    tsa._stopping.wait(120)
                    self.close_connection = True
                    return
                if mode == "http_500":
                    self.send_error(500, "TSA on fire")
                    return
                if mode == "garbage":
                    self._send(200, "application/timestamp-reply", os.urandom(512))
                    return
                if mode in ("oversized", "oversized_declared"):
                    self._send(
                        200,
                        "application/timestamp-reply",
                        b"\0" * (1024 * 1024 + 4096),
                        length=mode == "oversized_declared",
                    )
                    return
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", tsa.url)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    body = tsa.reply(query)
                except Exception as err:  # the test will see HTTP 500 and tsa.errors
                    tsa.errors.append(str(err))
                    self.send_error(500, "openssl failed")
                    return
                ctype = (
                    "text/html" if mode == "wrong_content_type" else ("application/timestamp-reply")
                )
                self._send(200, ctype, body)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}/tsa"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="test-tsa",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def start_tsa(
    directory: Path,
    mode: str = "ok",
    include_chain: bool = True,
    *,
    name: str = "Test TSA",
    key_type: str = "ec",
    ess_alg: str = "sha256",
) -> TSA:
    """Make a PKI and configuration in ``directory`` and start serving. Call .stop()."""
    if mode not in MODES:
        raise ValueError(f"unknown TSA mode {mode!r}; one of {', '.join(MODES)}")
    pki = make_pki(
        directory,
        name=name,
        key_type=key_type,
        eku_critical=mode != "noncritical_eku",
        expired=mode == "expired",
        rogue=mode == "untrusted_root",
    )
    config = write_openssl_cnf(pki, include_chain=include_chain, ess_alg=ess_alg)
    return TSA(url="", mode=mode, pki=pki, config=config, include_chain=include_chain).start()


@contextlib.contextmanager
def running_tsa(
    tmp_path: Path,
    mode: str = "ok",
    include_chain: bool = True,
    *,
    name: str = "Test TSA",
    key_type: str = "ec",
    ess_alg: str = "sha256",
) -> Iterator[TSA]:
    """A TSA serving on 127.0.0.1 for the duration of the ``with`` block.

    Files go to a fresh subdirectory of ``tmp_path``, so several TSAs can share one.
    """
    directory = Path(tempfile.mkdtemp(prefix=f"tsa-{mode}-", dir=tmp_path))
    tsa = start_tsa(directory, mode, include_chain, name=name, key_type=key_type, ess_alg=ess_alg)
    try:
        yield tsa
    finally:
        tsa.stop()


def openssl_ok(argv: list[str]) -> tuple[bool, str]:
    """Run an ``openssl ts -verify`` argv; (True, output) when it prints 'Verification: OK'."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    output = (proc.stdout + proc.stderr).strip()
    return proc.returncode == 0 and "Verification: OK" in proc.stdout, output
