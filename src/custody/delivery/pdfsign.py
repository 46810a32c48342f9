"""PAdES signatures on custody's PDF reports: sign (B-LT, B-LTA), extend, check.

Owns: the preparer's PDF-signing identity (a per-preparer ECDSA P-256 CA bound to the
preparer's Ed25519 custody key, or an organisation's certificate and key), its
encryption at rest (PKCS#12), signing a PDF as a PAdES baseline signature with an
RFC 3161 signature timestamp, validation material in the Document Security Store (DSS)
and optionally a document timestamp, renewing that document timestamp, and checking a
signed PDF offline into a structured result. May import: ``custody.errors``,
``custody.clock``, ``custody.canonical``, ``cryptography``, ``pyhanko`` /
``pyhanko_certvalidator`` / ``asn1crypto`` (pyHanko's own dependency) and ``aiohttp``
(pyHanko's HTTP client). It prints nothing and reads no environment variable.

Why this certificate arrangement (evidence in docs/pdf-signatures.md): poppler's
``pdfsig`` 22.12 with NSS 3.87 (Debian 12) reports an Ed25519 CMS signature as "Document
isn't signed or corrupted data", and ``certutil`` refuses to import an Ed25519
certificate (SEC_ERROR_ADDING_CERT), so NSS can neither check an Ed25519 signature nor
chain through an Ed25519 CA; Acrobat does not list EdDSA among its PDF signature
algorithms either. pyHanko validates both. So the document is signed with ECDSA P-256,
and the custody key vouches for the P-256 CA certificate instead: a non-critical
extension (``BINDING_OID``) carries a canonical-JSON statement naming the CA's public
key, signed with the Ed25519 custody key. Readers that do not know the extension
ignore it; ``check_signed_pdf`` verifies it against a custody key the caller supplies.

Each signature uses a fresh P-256 end-entity key certified by the preparer's CA and
discarded after signing, so the only long-term secret is the CA key (sealed in an
encrypted PKCS#12). NSS insists on an end-entity certificate below a trusted CA (a
trusted self-signed end-entity certificate gives "issuer is unknown"), and poppler
22.12 only says "Certificate is Trusted" when the signing certificate has an extended
key usage including emailProtection, a subjectAltName and a CRL distribution point:
it ignores CERT_PKIXVerifyCert's return value and reads a stale
SEC_ERROR_EXTENSION_NOT_FOUND otherwise (poppler/SignatureHandler.cc; fixed upstream
by checking the return value). Hence those three extensions, and a CRL issued by the
preparer's CA at signing time and embedded in the DSS, so that ETSI past-signature
validation finds revocation information for the one-time certificate. The end-entity
certificate lives as long as the CA: readers built on poppler (pdfsig, Okular) check
the certificate at the current time, not at the timestamp's, and the key is gone.

Followed: ETSI EN 319 142-1 (PAdES baseline B-T/B-LT/B-LTA), ETSI EN 319 102-1
(validation, via pyHanko's AdES engine), RFC 3161, RFC 5280, RFC 8032; pyHanko 0.38
docs/lib-guide/validation/ades-validation.rst and pyhanko/sign/signers/pdf_signer.py
(github.com/MatthiasValvekens/pyHanko, 7db4e6fe97552416944c2be98cdeb918c98d4891).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import os
import stat
import stringprep
import tempfile
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import aiohttp
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers.pdf_signer import (
    DSSContentSettings,
    PdfTimeStamper,
    TimestampDSSContentSettings,
)
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation import validate_pdf_timestamp
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.policy_decl import (
    LocalKnowledge,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    NonRevokedStatusAssertion,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import SimpleCertificateStore, SimpleTrustManager

from custody.clock import Clock, format_time, utc_now
from custody.errors import (
    CustodyError,
    InputError,
    PassphraseError,
    SigningKeyError,
    StorageError,
    TimestampError,
    UsageError,
)
from custody.ledger.canonical import encode

__all__ = [
    "BINDING_FORMAT",
    "BINDING_OID",
    "LEVELS",
    "BindingCheck",
    "CustodyBinding",
    "Level",
    "PdfSignatureCheck",
    "PreparerIdentity",
    "Problem",
    "SignedPdfInfo",
    "SignerCheck",
    "TimestampCheck",
    "check_custody_binding",
    "check_signed_pdf",
    "check_signed_pdf_bytes",
    "create_preparer_ca",
    "extend_archive_timestamp",
    "load_organisation_identity",
    "load_pem_certificates",
    "open_preparer",
    "parse_custody_binding",
    "seal_preparer",
    "sign_pdf",
]

Level = Literal["B-LT", "B-LTA"]
LEVELS: tuple[str, ...] = get_args(Level)
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
IdentityKind = Literal["custody-ca", "organisation-ca", "organisation-signer"]

# A UUID-derived OID (ITU-T X.667 arc 2.25): custody has no enterprise number of its own.
BINDING_OID = ObjectIdentifier("2.25.212292137969737461070004164074913252566")
BINDING_FORMAT = "custody-pdf-ca-binding/1"
# Ledger records are canonical JSON and start with "{": this prefix keeps a binding
# signature from ever being a valid signature over a record, and the reverse.
_BINDING_CONTEXT = b"custody pdf-signing CA binding v1\x00"
_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning, RFC 9336
FIELD_NAME = "CustodySignature"
MAX_PDF_BYTES = 512 * 1024 * 1024
MAX_TSA_RESPONSE = 1024 * 1024
MAX_PEM_BYTES = 4 * 1024 * 1024
# PBKDF2-HMAC-SHA256 rounds for the sealed PKCS#12: OWASP's 2023 figure (600,000) makes
# opening a preparer file cost ~0.3 s here, paid once per signing command.
PKCS12_KDF_ROUNDS = 600_000
_CLOCK_SKEW = dt.timedelta(minutes=10)

# pyHanko logs validation failures with tracebacks; with no handler configured Python's
# last-resort handler would print them to stderr. Our results carry the outcome instead.
for _logger in ("pyhanko", "pyhanko_certvalidator"):
    logging.getLogger(_logger).addHandler(logging.NullHandler())


# ----------------------------------------------------------------------- small helpers


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _asn1(cert: x509.Certificate) -> Any:
    return asn1_x509.Certificate.load(_der(cert))


def _rfc3339(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # asn1crypto and pyHanko give aware datetimes; be sure
        moment = moment.replace(tzinfo=dt.UTC)
    return format_time(moment)


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def load_pem_certificates(
    pem: bytes | str | Sequence[bytes | str], what: str
) -> list[x509.Certificate]:
    """Certificates from one PEM bundle or several; ``UsageError`` naming ``what`` if none."""
    blobs = [pem] if isinstance(pem, bytes | str) else list(pem)
    certs: list[x509.Certificate] = []
    for blob in blobs:
        raw = blob.encode("ascii", "replace") if isinstance(blob, str) else bytes(blob)
        if len(raw) > MAX_PEM_BYTES:
            raise UsageError(f"{what}: PEM data over {MAX_PEM_BYTES} bytes")
        if not raw.strip():
            continue
        try:
            certs.extend(x509.load_pem_x509_certificates(raw))
        except ValueError:
            raise UsageError(f"{what}: not PEM certificates") from None
    if not certs:
        raise UsageError(f"{what}: no certificate given")
    return certs


def _der_octets(data: bytes) -> bytes:
    n = len(data)
    if n < 0x80:
        head = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return head + data


def _der_read(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    """The content of the DER element with ``tag`` at ``pos``; strict minimal lengths."""
    if pos + 2 > len(data) or data[pos] != tag:
        raise ValueError("unexpected DER tag")
    first = data[pos + 1]
    if first < 0x80:
        length, body = first, pos + 2
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + 2 + n > len(data) or data[pos + 2] == 0:
            raise ValueError("bad DER length")
        length, body = int.from_bytes(data[pos + 2 : pos + 2 + n], "big"), pos + 2 + n
        if length < 0x80:
            raise ValueError("non-minimal DER length")
    if body + length > len(data):
        raise ValueError("DER element overruns its container")
    return data[body : body + length], body + length


# ------------------------------------------------------------- binding to custody keys


@dataclass(frozen=True)
class CustodyBinding:
    """The custody-key statement found in a CA certificate. Unverified until checked.

    ``statement`` is the exact signed canonical JSON; ``fields`` its parsed members.
    """

    statement: bytes
    custody_public_key: bytes = field(repr=False)
    signature: bytes = field(repr=False)
    fields: dict[str, str] = field(hash=False, compare=False)

    @property
    def custody_key_fingerprint(self) -> str:
        return _sha256(self.custody_public_key)


@dataclass(frozen=True)
class BindingCheck:
    """Whether a certificate is vouched for by a custody key.

    ``status``: ``bound`` (signature good, names this certificate and the expected key),
    ``claimed`` (a well-formed binding whose key nobody gave us to compare against: it
    proves only self-consistency), ``absent``, ``other-key`` (bound to a different
    custody key) or ``invalid`` (malformed, wrong certificate or bad signature).
    """

    status: Literal["bound", "claimed", "absent", "other-key", "invalid"]
    custody_key_fingerprint: str | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "custody_key_fingerprint": self.custody_key_fingerprint,
            "detail": self.detail,
        }


def _binding_extension(
    spki: bytes,
    name: str,
    custody_public_key: bytes,
    custody_sign: Callable[[bytes], bytes],
    now: dt.datetime,
) -> x509.UnrecognizedExtension:
    statement = encode(
        {
            "format": BINDING_FORMAT,
            "ca_spki_sha256": _sha256(spki),
            "custody_key": _sha256(custody_public_key),
            "name": name,
            "issued": format_time(now),
        }
    )
    signature = custody_sign(_BINDING_CONTEXT + statement)
    try:  # a wrong (key, sign) pair must not produce a certificate that looks bound
        Ed25519PublicKey.from_public_bytes(custody_public_key).verify(
            signature, _BINDING_CONTEXT + statement
        )
    except (InvalidSignature, ValueError):
        raise SigningKeyError(
            "the custody key did not produce a valid signature for its own public key"
        ) from None
    body = b"".join(
        b"\x04" + _der_octets(part) for part in (statement, custody_public_key, signature)
    )
    return x509.UnrecognizedExtension(BINDING_OID, b"\x30" + _der_octets(body))


def parse_custody_binding(cert: x509.Certificate) -> CustodyBinding | None:
    """The binding extension of ``cert``, parsed but not verified; None when absent.

    Raises ``ValueError`` when the extension is present but malformed.
    """
    try:
        ext = cert.extensions.get_extension_for_oid(BINDING_OID)
    except x509.ExtensionNotFound:
        return None
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise ValueError("binding extension of an unexpected type")
    raw = value.value
    body, end = _der_read(raw, 0, 0x30)
    if end != len(raw):
        raise ValueError("trailing bytes after the binding")
    statement, pos = _der_read(body, 0, 0x04)
    public, pos = _der_read(body, pos, 0x04)
    signature, pos = _der_read(body, pos, 0x04)
    if pos != len(body) or len(public) != 32 or len(signature) != 64:
        raise ValueError("binding has the wrong shape")
    try:
        parsed = json.loads(statement.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("binding statement is not JSON") from None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise ValueError("binding statement is not an object of strings")
    if encode(parsed) != statement:
        raise ValueError("binding statement is not canonical JSON")
    if parsed.get("format") != BINDING_FORMAT:
        raise ValueError(f"binding format {parsed.get('format')!r} is not {BINDING_FORMAT}")
    return CustodyBinding(statement, public, signature, dict(parsed))


def check_custody_binding(
    cert: x509.Certificate, custody_public_key: bytes | None = None
) -> BindingCheck:
    """Check the binding in ``cert``; with ``custody_public_key`` (raw 32 bytes, from the
    verifier's own records) the answer can be ``bound``, without it at most ``claimed``.
    """
    try:
        binding = parse_custody_binding(cert)
    except ValueError as exc:
        return BindingCheck("invalid", None, f"malformed custody binding: {exc}")
    if binding is None:
        return BindingCheck("absent", None, "the certificate carries no custody binding")
    claimed = binding.custody_key_fingerprint
    if binding.fields.get("custody_key") != claimed:
        return BindingCheck("invalid", claimed, "statement names another key than it carries")
    if binding.fields.get("ca_spki_sha256") != _sha256(_spki(cert)):
        return BindingCheck("invalid", claimed, "statement names another certificate key")
    try:
        Ed25519PublicKey.from_public_bytes(binding.custody_public_key).verify(
            binding.signature, _BINDING_CONTEXT + binding.statement
        )
    except (InvalidSignature, ValueError):
        return BindingCheck("invalid", claimed, "custody signature over the statement is bad")
    if custody_public_key is None:
        return BindingCheck("claimed", claimed, "signed by the key it names; key not compared")
    if _sha256(custody_public_key) != claimed:
        return BindingCheck(
            "other-key", claimed, f"bound to custody key {claimed[:16]}…, not the one expected"
        )
    return BindingCheck("bound", claimed, "signed by the expected custody key")


# ------------------------------------------------------------------ signing identities


@dataclass(frozen=True)
class PreparerIdentity:
    """Who signs: a CA that certifies one-time signing keys, or a signing certificate.

    ``certificate`` is the CA certificate (``custody-ca``, ``organisation-ca``) or the
    signing certificate (``organisation-signer``); ``chain`` holds its issuers up to the
    root, if any. ``signer_name`` is the common name put in one-time certificates.
    The private key is never shown by ``repr``.
    """

    kind: IdentityKind
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    signer_name: str
    crl_uri: str | None
    _key: PrivateKey = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate: what a verifier pins or records."""
        return _sha256(_der(self.certificate))

    @property
    def anchor(self) -> x509.Certificate:
        """The certificate a verifier should trust (the last of the chain)."""
        return self.chain[-1] if self.chain else self.certificate

    def anchor_pem(self) -> bytes:
        return self.anchor.public_bytes(serialization.Encoding.PEM)

    def binding(self, custody_public_key: bytes | None = None) -> BindingCheck:
        return check_custody_binding(self.certificate, custody_public_key)


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )


def _check_display_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise UsageError(
            "the preparer's name must be 1-64 printable characters (it goes into certificates)"
        )
    # RFC 4518 (via RFC 3454 section 6): validators compare names after string
    # preparation, which refuses a value mixing right-to-left and left-to-right letters,
    # or right-to-left text that does not begin and end with a right-to-left letter
    # (asn1crypto, under pyHanko, raises on such a certificate).
    rtl = [stringprep.in_table_d1(ch) for ch in name]
    if any(rtl) and (any(stringprep.in_table_d2(ch) for ch in name) or not (rtl[0] and rtl[-1])):
        raise UsageError(
            "the preparer's name mixes Arabic (or other right-to-left) and Latin letters, "
            "or does not begin and end with a letter: certificates need one script, "
            "e.g. 'أمل حداد' or 'Amal Haddad'"
        )
    return name


def create_preparer_ca(
    name: str,
    *,
    custody_public_key: bytes,
    custody_sign: Callable[[bytes], bytes],
    clock: Clock = utc_now,
    years: int = 25,
) -> PreparerIdentity:
    """A new per-preparer P-256 CA whose certificate the custody key vouches for.

    ``custody_public_key`` is the raw 32-byte Ed25519 key and ``custody_sign`` its
    signing function (for custody's ``SigningKey``: ``key.public.raw`` and ``key.sign``).
    Long validity on purpose: poppler-based readers check certificates at the current
    time, so a report must stay "trusted" there for as long as it may be read.
    """
    name = _check_display_name(name)
    if len(custody_public_key) != 32:
        raise SigningKeyError("a custody public key is 32 bytes (raw Ed25519)")
    if not 1 <= years <= 50:
        raise UsageError("a preparer CA is valid for 1 to 50 years")
    now = clock().astimezone(dt.UTC).replace(microsecond=0)
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The name alone in CN (a suffix would mix scripts for an Arabic name); the role in OU.
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "custody PDF signing CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "custody preparer"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            _binding_extension(spki, name, custody_public_key, custody_sign, now),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return PreparerIdentity(
        kind="custody-ca",
        certificate=cert,
        chain=(),
        signer_name=name,
        crl_uri=f"urn:custody:crl:{_sha256(spki)}",
        _key=key,
    )


def seal_preparer(identity: PreparerIdentity, passphrase: str) -> bytes:
    """The identity as PKCS#12 (AES-256-CBC, PBKDF2-HMAC-SHA256, HMAC-SHA256 MAC).

    PKCS#12 rather than custody's own key-file format so that ``openssl pkcs12`` (and
    Acrobat, for manual signing) can open it too.
    """
    if not passphrase:
        raise SigningKeyError("an empty passphrase would leave the PDF-signing key unprotected")
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PKCS12_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(passphrase.encode("utf-8"))
    )
    label = f"{identity.kind}:{identity.signer_name}".encode()
    return pkcs12.serialize_key_and_certificates(
        label, identity._key, identity.certificate, list(identity.chain) or None, encryption
    )


def _identity_from_parts(
    key: Any,
    cert: x509.Certificate,
    others: Sequence[x509.Certificate],
    signer_name: str | None,
    crl_uri: str | None,
    source: str,
) -> PreparerIdentity:
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SigningKeyError(
            f"{source}: the key is not RSA or ECDSA; PDF readers other than pyHanko verify "
            "only those (Ed25519 is refused by pdfsig/NSS and Acrobat)"
        )
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise SigningKeyError(f"{source}: an RSA key needs at least 2048 bits")
    if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(
        key.curve, ec.SECP256R1 | ec.SECP384R1 | ec.SECP521R1
    ):
        raise SigningKeyError(f"{source}: only NIST P-256, P-384 and P-521 keys are supported")
    if _spki(cert) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise SigningKeyError(f"{source}: the key does not belong to the certificate")
    chain = _order_chain(cert, others)
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = False
    binding = check_custody_binding(cert)
    kind: IdentityKind
    if ca and binding.status == "claimed":
        kind = "custody-ca"
    elif ca:
        kind = "organisation-ca"
    else:
        kind = "organisation-signer"
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    default_name = str(cn[0].value) if cn else "preparer"
    if kind == "custody-ca":
        default_name = str((parse_custody_binding(cert) or _NO_BINDING).fields.get("name", ""))
        crl_uri = crl_uri or f"urn:custody:crl:{_sha256(_spki(cert))}"
    elif kind == "organisation-ca":
        crl_uri = crl_uri or f"urn:custody:crl:{_sha256(_spki(cert))}"
    name = _check_display_name(signer_name or default_name)
    return PreparerIdentity(kind, cert, chain, name, crl_uri, key)


_NO_BINDING = CustodyBinding(b"", b"", b"", {})


def _order_chain(
    leaf: x509.Certificate, others: Sequence[x509.Certificate]
) -> tuple[x509.Certificate, ...]:
    """Issuers of ``leaf`` in order, up to a self-issued one; the rest are dropped."""
    pool = list(others)
    chain: list[x509.Certificate] = []
    current = leaf
    while current.issuer != current.subject:
        nxt = next((c for c in pool if c.subject == current.issuer), None)
        if nxt is None:
            break
        chain.append(nxt)
        pool.remove(nxt)
        current = nxt
    return tuple(chain)


def open_preparer(
    data: bytes, passphrase: str, *, signer_name: str | None = None
) -> PreparerIdentity:
    """Open a sealed identity (``seal_preparer``) or an organisation's PKCS#12 file."""
    try:
        loaded = pkcs12.load_pkcs12(data, passphrase.encode("utf-8"))
    except ValueError:
        raise PassphraseError(
            "could not open the PDF-signing identity: wrong passphrase or not a PKCS#12 file"
        ) from None
    if loaded.key is None or loaded.cert is None:
        raise SigningKeyError("the PKCS#12 file holds no key with its certificate")
    others = [c.certificate for c in loaded.additional_certs]
    return _identity_from_parts(
        loaded.key, loaded.cert.certificate, others, signer_name, None, "PKCS#12 file"
    )


def load_organisation_identity(
    cert_pem: bytes,
    key_pem: bytes,
    passphrase: str | None,
    *,
    signer_name: str | None = None,
    crl_uri: str | None = None,
) -> PreparerIdentity:
    """An organisation's certificate (first in ``cert_pem``, its chain after) and key.

    A CA certificate becomes an ``organisation-ca`` that certifies one-time keys, like a
    preparer CA (``crl_uri`` names where the organisation publishes its CRLs; the CRL
    custody embeds is issued at signing time in any case); an end-entity certificate
    signs directly (``organisation-signer``), and its revocation information is fetched
    from the URLs it declares when signing.
    """
    certs = load_pem_certificates(cert_pem, "organisation certificate")
    try:
        key = serialization.load_pem_private_key(
            key_pem, passphrase.encode("utf-8") if passphrase else None
        )
    except TypeError:
        raise PassphraseError("the organisation key is encrypted: a passphrase is needed") from None
    except ValueError:
        raise PassphraseError(
            "could not open the organisation key: wrong passphrase or not a PEM private key"
        ) from None
    return _identity_from_parts(key, certs[0], certs[1:], signer_name, crl_uri, "organisation key")


def _issue_one_time(
    identity: PreparerIdentity, now: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, x509.CertificateRevocationList]:
    """A fresh signing key, its certificate and a current CRL, all from ``identity``'s CA."""
    ca, ca_key = identity.certificate, identity._key
    algorithm = (
        hashes.SHA384()
        if isinstance(ca_key, ec.EllipticCurvePrivateKey)
        and isinstance(ca_key.curve, ec.SECP384R1 | ec.SECP521R1)
        else hashes.SHA256()
    )
    key = ec.generate_private_key(ec.SECP256R1())
    organisation = ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    org = str(organisation[0].value) if organisation else "custody preparer"
    alt_names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(f"urn:custody:pdf-signer:{identity.fingerprint}")
    ]
    assert identity.crl_uri is not None
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(identity.signer_name, org))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(ca.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, _DOCUMENT_SIGNING]),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(identity.crl_uri)], None, None, None
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, algorithm)
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=7))
        # Microseconds since the epoch: increasing without a counter to keep on disk.
        .add_extension(x509.CRLNumber(int(now.timestamp() * 1_000_000)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, algorithm)
    )
    return key, cert, crl


# --------------------------------------------------------------- timestamp authorities


class _BoundedTimeStamper(HTTPTimeStamper):
    """pyHanko's HTTP client with limits: no redirects, at most 1 MiB, exact content type.

    The nonce check, PKIStatus handling and token validation stay pyHanko's. The token is
    handed on as a fresh copy loaded from its DER bytes: the object pyHanko checked has its
    inner structures parsed, and asn1crypto (1.5.1) then re-encodes that tree on every
    ``dump`` while the signature is packaged - measured here at 25 to 90 s for one
    signature instead of 2 s, for about half of the loopback TSA's tokens.
    """

    async def async_timestamp(self, message_digest: Any, md_algorithm: Any) -> Any:
        from asn1crypto import cms

        token = await super().async_timestamp(message_digest, md_algorithm)
        return cms.ContentInfo.load(token.dump())

    async def async_request_tsa_response(self, req: Any) -> Any:
        from asn1crypto import tsp

        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(
                    self.url,
                    data=req.dump(),
                    headers=self.request_headers(),
                    allow_redirects=False,
                ) as response,
            ):
                if response.status != 200:
                    raise TimestampRequestError(f"HTTP status {response.status}")
                ctype = response.headers.get("Content-Type", "")
                if ctype.split(";")[0].strip().lower() != "application/timestamp-reply":
                    raise TimestampRequestError(f"content type {ctype!r}, not a timestamp reply")
                body = b""
                while chunk := await response.content.read(65536):  # may return less
                    body += chunk
                    if len(body) > MAX_TSA_RESPONSE:
                        raise TimestampRequestError(f"answer larger than {MAX_TSA_RESPONSE} bytes")
        except TimestampRequestError:
            raise  # ours, with its reason (it is an OSError too)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TimestampRequestError(f"could not reach it ({type(exc).__name__})") from exc
        try:
            return tsp.TimeStampResp.load(body, strict=True)
        except ValueError as exc:
            raise TimestampRequestError("the answer is not a TimeStampResp") from exc


def _check_tsa_urls(tsa_urls: Sequence[str]) -> list[str]:
    urls = list(tsa_urls)
    if not urls:
        raise UsageError("no timestamp authority given: a PAdES B-LT signature needs one")
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"timestamp authority {url!r} is not an http(s) URL")
    return urls


def _revinfo_policy() -> CertRevTrustPolicy:
    # Revocation is checked for every certificate that says where its status is
    # published; certificates that declare nothing (roots, many test and private TSAs)
    # are accepted without. The ETSI past-signature validation pyHanko runs for dates
    # after a certificate expired is stricter: it wants revocation data for all of them.
    return CertRevTrustPolicy(
        RevocationCheckingPolicy(
            ee_certificate_rule=RevocationCheckingRule.CHECK_IF_DECLARED,
            intermediate_ca_cert_rule=RevocationCheckingRule.CHECK_IF_DECLARED,
        )
    )


# ------------------------------------------------------------------------------ signing


@dataclass(frozen=True)
class SignedPdfInfo:
    """What ``sign_pdf`` wrote; ``to_json`` is what a ledger record can carry."""

    path: Path
    sha256: str
    size: int
    level: Level
    signer_subject: str
    signer_certificate_sha256: str
    anchor_certificate_sha256: str
    custody_key_fingerprint: str | None
    signature_timestamp: str
    tsa_url: str
    tsa_subject: str
    document_timestamp: str | None
    dss_certificates: int
    dss_crls: int
    dss_ocsps: int
    tsa_failures: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "level": self.level,
            "signer_subject": self.signer_subject,
            "signer_certificate_sha256": self.signer_certificate_sha256,
            "anchor_certificate_sha256": self.anchor_certificate_sha256,
            "custody_key_fingerprint": self.custody_key_fingerprint,
            "signature_timestamp": self.signature_timestamp,
            "tsa_url": self.tsa_url,
            "tsa_subject": self.tsa_subject,
            "document_timestamp": self.document_timestamp,
            "dss": {
                "certificates": self.dss_certificates,
                "crls": self.dss_crls,
                "ocsps": self.dss_ocsps,
            },
            "tsa_failures": list(self.tsa_failures),
        }


def _read_pdf(pdf: bytes, label: str) -> Any:
    if len(pdf) > MAX_PDF_BYTES:
        raise InputError(f"{label}: larger than {MAX_PDF_BYTES // (1024 * 1024)} MiB")
    if not pdf.startswith(b"%PDF-"):
        raise InputError(f"{label}: not a PDF (no %PDF- header)")
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=True)
        if reader.encrypted:
            raise InputError(f"{label}: the PDF is encrypted; custody signs only plain PDFs")
        _ = reader.root  # forces the catalogue to parse
    except CustodyError:
        raise
    except Exception as exc:  # pyHanko raises many types on hostile input
        raise InputError(f"{label}: not a readable PDF ({type(exc).__name__}: {exc})") from None
    return reader


def sign_pdf(
    pdf_in: bytes,
    *,
    preparer: PreparerIdentity,
    tsa_urls: Sequence[str],
    tsa_roots_pem: bytes | str | Sequence[bytes | str],
    level: Level,
    out_path: Path,
    clock: Clock = utc_now,
    reason: str = "custody chain-of-custody report",
    timeout: float = 10.0,
) -> SignedPdfInfo:
    """Sign ``pdf_in`` (PAdES B-LT or B-LTA) and write it to ``out_path`` (must not exist).

    Each URL in ``tsa_urls`` is tried in turn until one yields a signature that checks
    out against ``tsa_roots_pem`` and the preparer's anchor; the file is written only
    then. B-LTA needs a second answer (the document timestamp) from the same authority.
    Raises ``UsageError`` for bad arguments, ``InputError`` for a PDF that cannot be
    signed, ``TimestampError`` when no authority produced a usable timestamp, and
    ``StorageError`` when the file cannot be written.
    """
    if level not in LEVELS:
        raise UsageError(f"unknown PAdES level {level!r}: one of {', '.join(LEVELS)}")
    urls = _check_tsa_urls(tsa_urls)
    tsa_roots = load_pem_certificates(tsa_roots_pem, "timestamp authority roots")
    out_path = Path(out_path)
    _check_target(out_path)
    reader = _read_pdf(pdf_in, "PDF to sign")
    if reader.embedded_signatures:
        raise InputError("the PDF already carries a signature; custody signs unsigned reports")
    roots = [preparer.anchor, *tsa_roots]
    failures: list[str] = []
    for url in urls:
        now = clock().astimezone(dt.UTC)
        try:
            signed = _sign_once(pdf_in, preparer, url, roots, level, now, reason, timeout)
        except TimestampRequestError as exc:
            failures.append(f"{url}: {exc}")
            continue
        except Exception as exc:  # pyHanko's validation of the TSA's answer, and the like
            failures.append(f"{url}: {type(exc).__name__}: {exc}"[:300])
            continue
        check = check_signed_pdf_bytes(signed, roots, label="signed PDF")
        if not check.ok or (level == "B-LTA") != bool(check.document_timestamps):
            failures.append(f"{url}: " + "; ".join(p.message for p in check.problems)[:300])
            continue
        _write_new_file(out_path, signed)
        assert check.signer is not None and check.signature_timestamp is not None
        return SignedPdfInfo(
            path=out_path,
            sha256=_sha256(signed),
            size=len(signed),
            level=level,
            signer_subject=check.signer.subject,
            signer_certificate_sha256=check.signer.certificate_sha256,
            anchor_certificate_sha256=_sha256(_der(preparer.anchor)),
            custody_key_fingerprint=preparer.binding().custody_key_fingerprint,
            signature_timestamp=check.signature_timestamp.time or "",
            tsa_url=url,
            tsa_subject=check.signature_timestamp.tsa_subject or "",
            document_timestamp=(
                check.document_timestamps[-1].time if check.document_timestamps else None
            ),
            dss_certificates=check.dss_certificates,
            dss_crls=check.dss_crls,
            dss_ocsps=check.dss_ocsps,
            tsa_failures=tuple(failures),
        )
    raise TimestampError(
        "no timestamp authority produced a usable signature timestamp: " + " | ".join(failures)
    )


def _sign_once(
    pdf: bytes,
    preparer: PreparerIdentity,
    url: str,
    roots: list[x509.Certificate],
    level: Level,
    now: dt.datetime,
    reason: str,
    timeout: float,
) -> bytes:
    crls: list[Any] = []
    if preparer.kind == "organisation-signer":
        key: PrivateKey = preparer._key
        cert = preparer.certificate
        chain = list(preparer.chain)
    else:
        key, cert, crl = _issue_one_time(preparer, now)
        chain = [preparer.certificate, *preparer.chain]
        crls.append(asn1_crl.CertificateList.load(crl.public_bytes(serialization.Encoding.DER)))
    signing_key = asn1_keys.PrivateKeyInfo.load(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signer = signers.SimpleSigner(
        signing_cert=_asn1(cert),
        signing_key=signing_key,
        cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [_asn1(c) for c in chain]
        ),
    )
    # Fetching is allowed here (signing is online anyway: the TSA must answer) so that
    # revocation data an organisation's or a TSA's certificates declare is embedded.
    context = ValidationContext(
        trust_roots=[_asn1(c) for c in roots],
        other_certs=[_asn1(c) for c in chain],
        crls=crls,
        allow_fetching=True,
        revinfo_policy=_revinfo_policy(),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        subfilter=SigSeedSubFilter.PADES,
        reason=reason,
        name=preparer.signer_name,
        embed_validation_info=True,
        use_pades_lta=level == "B-LTA",
        validation_context=context,
        # No VRI (deprecated in PAdES baseline): then the document timestamp's own DSS
        # update can come before it, and the timestamp covers the whole file, which is
        # what lets pdfsig's "Total document signed" on it mean "nothing was added".
        dss_settings=DSSContentSettings(
            include_vri=False,
            next_ts_settings=TimestampDSSContentSettings(include_vri=False, update_before_ts=True),
        ),
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=True)
    pdf_signer = signers.PdfSigner(
        meta, signer, timestamper=_BoundedTimeStamper(url, timeout=timeout)
    )
    out = pdf_signer.sign_pdf(writer)
    return bytes(out.getvalue())


def extend_archive_timestamp(
    pdf_in: bytes,
    *,
    tsa_urls: Sequence[str],
    trust_roots_pem: bytes | str | Sequence[bytes | str],
    out_path: Path,
    timeout: float = 10.0,
) -> SignedPdfInfo:
    """Add validation data for the newest timestamp and a new document timestamp.

    Run this before the newest document timestamp's TSA certificate expires (or its
    algorithms weaken): ETSI long-term validation rests on the newest timestamp being
    valid when the check is made. Raises ``TimestampError`` if no authority answered
    usably, ``InputError`` if the input is not a custody-signed PDF that checks out now.
    """
    urls = _check_tsa_urls(tsa_urls)
    roots = load_pem_certificates(trust_roots_pem, "trust roots")
    out_path = Path(out_path)
    _check_target(out_path)
    before = check_signed_pdf_bytes(pdf_in, roots, label="PDF to extend")
    if not before.ok:
        raise InputError(
            "the PDF does not check out now, so a new timestamp would vouch for nothing: "
            + "; ".join(p.message for p in before.problems)
        )
    failures: list[str] = []
    for url in urls:
        try:
            reader = PdfFileReader(io.BytesIO(pdf_in), strict=True)
            context = ValidationContext(
                trust_roots=[_asn1(c) for c in roots],
                allow_fetching=True,
                revinfo_policy=_revinfo_policy(),
            )
            out = PdfTimeStamper(
                _BoundedTimeStamper(url, timeout=timeout)
            ).update_archival_timestamp_chain(reader, context, in_place=False)
            extended = bytes(out.getvalue())
        except Exception as exc:
            failures.append(f"{url}: {type(exc).__name__}: {exc}"[:300])
            continue
        after = check_signed_pdf_bytes(extended, roots, label="extended PDF")
        if not after.ok or len(after.document_timestamps) != len(before.document_timestamps) + 1:
            failures.append(f"{url}: " + "; ".join(p.message for p in after.problems)[:300])
            continue
        _write_new_file(out_path, extended)
        assert after.signer is not None and after.signature_timestamp is not None
        newest = after.document_timestamps[-1]
        return SignedPdfInfo(
            path=out_path,
            sha256=_sha256(extended),
            size=len(extended),
            level="B-LTA",
            signer_subject=after.signer.subject,
            signer_certificate_sha256=after.signer.certificate_sha256,
            anchor_certificate_sha256=after.signer.anchor_sha256 or "",
            custody_key_fingerprint=after.signer.custody_binding.custody_key_fingerprint,
            signature_timestamp=after.signature_timestamp.time or "",
            tsa_url=url,
            tsa_subject=newest.tsa_subject or "",
            document_timestamp=newest.time,
            dss_certificates=after.dss_certificates,
            dss_crls=after.dss_crls,
            dss_ocsps=after.dss_ocsps,
            tsa_failures=tuple(failures),
        )
    raise TimestampError(
        "no timestamp authority produced a usable document timestamp: " + " | ".join(failures)
    )


# ------------------------------------------------------------------------------ checking


@dataclass(frozen=True)
class Problem:
    """One named reason the PDF's signature is not accepted as it stands."""

    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class TimestampCheck:
    """An RFC 3161 timestamp (signature timestamp or document timestamp)."""

    time: str | None
    tsa_subject: str | None
    intact: bool
    trusted: bool
    covers_whole_file: bool | None = None  # document timestamps only

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "tsa_subject": self.tsa_subject,
            "intact": self.intact,
            "trusted": self.trusted,
            "covers_whole_file": self.covers_whole_file,
        }


@dataclass(frozen=True)
class SignerCheck:
    """The signing certificate and what vouches for it."""

    subject: str
    issuer: str
    certificate_sha256: str
    trusted: bool
    chain: tuple[str, ...]  # subjects, signer first, as validated
    anchor_sha256: str | None
    custody_binding: BindingCheck

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "certificate_sha256": self.certificate_sha256,
            "trusted": self.trusted,
            "chain": list(self.chain),
            "anchor_sha256": self.anchor_sha256,
            "custody_binding": self.custody_binding.to_json(),
        }


@dataclass(frozen=True)
class PdfSignatureCheck:
    """Everything ``check_signed_pdf`` found. ``ok`` only when ``problems`` is empty.

    ``intact``: the signature's digest and cryptography hold for the bytes it covers.
    ``signing_time`` comes from the signature timestamp (trusted only if that is);
    ``claimed_signing_time`` is the signer's own clock (``/M``) and proves nothing.
    ``ltv_indication`` is pyHanko's ETSI EN 319 102-1 verdict with the material in the
    file and the verifier's roots only, nothing fetched, at ``validated_at``.
    """

    source: str
    sha256: str
    size: int
    validated_at: str
    intact: bool
    signer: SignerCheck | None
    signing_time: str | None
    claimed_signing_time: str | None
    signature_timestamp: TimestampCheck | None
    document_timestamps: tuple[TimestampCheck, ...]
    level: str | None
    signature_coverage: str | None
    modification_level: str | None
    whole_file_covered: bool
    dss_certificates: int
    dss_crls: int
    dss_ocsps: int
    ltv_indication: str | None
    problems: tuple[Problem, ...]
    assumptions: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems and self.intact and self.signer is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "size": self.size,
            "validated_at": self.validated_at,
            "ok": self.ok,
            "intact": self.intact,
            "signer": self.signer.to_json() if self.signer else None,
            "signing_time": self.signing_time,
            "claimed_signing_time": self.claimed_signing_time,
            "signature_timestamp": (
                self.signature_timestamp.to_json() if self.signature_timestamp else None
            ),
            "document_timestamps": [t.to_json() for t in self.document_timestamps],
            "level": self.level,
            "signature_coverage": self.signature_coverage,
            "modification_level": self.modification_level,
            "whole_file_covered": self.whole_file_covered,
            "dss": {
                "certificates": self.dss_certificates,
                "crls": self.dss_crls,
                "ocsps": self.dss_ocsps,
            },
            "ltv_indication": self.ltv_indication,
            "problems": [p.to_json() for p in self.problems],
            "assumptions": list(self.assumptions),
        }


def check_signed_pdf(
    path: Path,
    trust_roots_pem: bytes | str | Sequence[bytes | str],
    *,
    custody_public_key: bytes | None = None,
    at: dt.datetime | None = None,
) -> PdfSignatureCheck:
    """Check the custody signature in the PDF at ``path``, offline.

    ``trust_roots_pem``: the certificates the verifier trusts, for the signer and for
    the timestamp authorities (from the verifier's own records, never from the PDF).
    ``custody_public_key``: the preparer's raw Ed25519 key, to confirm the custody
    binding. ``at``: validation time (default now; a later time asks what a validator
    would say then with what the file carries). Raises ``InputError`` when the file
    cannot be read as a PDF at all; everything else is a ``Problem`` in the result.
    """
    path = Path(path)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: not a regular file")
        if st.st_size > MAX_PDF_BYTES:
            raise InputError(f"{path}: larger than {MAX_PDF_BYTES // (1024 * 1024)} MiB")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    roots = load_pem_certificates(trust_roots_pem, "trust roots")
    return check_signed_pdf_bytes(
        data, roots, label=str(path), custody_public_key=custody_public_key, at=at
    )


def _dss_counts(reader: Any) -> tuple[int, int, int]:
    try:
        dss = reader.root.get("/DSS")
        if dss is None:
            return 0, 0, 0
        dss = dss.get_object()
        return tuple(  # type: ignore[return-value]
            len(dss[key].get_object()) if key in dss else 0 for key in ("/Certs", "/CRLs", "/OCSPs")
        )
    except Exception:  # a malformed DSS counts as none; validation will say more
        return 0, 0, 0


def _validation_spec(roots: Sequence[x509.Certificate], unrevoked: Sequence[Any] = ()) -> Any:
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=[_asn1(c) for c in roots]),
        revinfo_policy=_revinfo_policy(),
    )
    return PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
            local_knowledge=LocalKnowledge(nonrevoked_assertions=list(unrevoked)),
        )
    )


def _cert_of(asn1_cert: Any) -> x509.Certificate:
    return x509.load_der_x509_certificate(asn1_cert.dump())


def _chain_subjects(status: Any) -> tuple[tuple[str, ...], str | None]:
    path = getattr(status, "validation_path", None)
    if path is None:
        return (), None
    certs = [c for c in path.iter_certs(include_root=True)]
    subjects = tuple(_subject(_cert_of(c)) for c in reversed(certs))
    return subjects, _sha256(certs[0].dump()) if certs else None


def check_signed_pdf_bytes(
    data: bytes,
    roots: Sequence[x509.Certificate],
    *,
    label: str = "PDF",
    custody_public_key: bytes | None = None,
    at: dt.datetime | None = None,
) -> PdfSignatureCheck:
    """``check_signed_pdf`` on bytes in memory, with roots already parsed."""
    moment = (at or utc_now()).astimezone(dt.UTC)
    reader = _read_pdf(data, label)
    problems: list[Problem] = []
    n_certs, n_crls, n_ocsps = _dss_counts(reader)
    try:
        regular = list(reader.embedded_regular_signatures)
        stamps = list(reader.embedded_timestamp_signatures)
    except Exception as exc:
        raise InputError(f"{label}: its signature fields cannot be read ({exc})") from None
    base: dict[str, Any] = {
        "source": label,
        "sha256": _sha256(data),
        "size": len(data),
        "validated_at": format_time(moment),
        "dss_certificates": n_certs,
        "dss_crls": n_crls,
        "dss_ocsps": n_ocsps,
    }
    if len(regular) != 1:
        code, what = (
            ("NO_SIGNATURE", "the PDF carries no signature")
            if not regular
            else ("MULTIPLE_SIGNATURES", f"the PDF carries {len(regular)} signatures, not one")
        )
        return _unusable(base, (Problem(code, what),))
    sig = regular[0]
    if str(sig.sig_object.get("/SubFilter")) != "/ETSI.CAdES.detached":
        problems.append(
            Problem("NOT_PADES", f"signature sub-filter {sig.sig_object.get('/SubFilter')}")
        )
    timing = ValidationTimingInfo(
        validation_time=moment, best_signature_time=moment, point_in_time_validation=False
    )
    # Offline, nothing can tell whether the newest timestamp's TSA certificates were
    # revoked after their embedded CRLs/OCSP responses went stale: take them as not
    # revoked at ``moment`` (as pyHanko's simulate_future_ades_lta_validation does) and
    # say so. Everything older is proven by the timestamp chain and embedded data.
    unrevoked, assumptions = _newest_timestamp_assumption(stamps, moment)
    base["assumptions"] = assumptions
    try:
        spec = _validation_spec(roots, unrevoked)
        result = asyncio.run(ades_lta_validation(sig, spec, timing_info=timing))
        status = result.api_status
        if status is None:
            raise ValueError("pyHanko returned no status")
    except Exception as exc:  # pyHanko on a structurally broken signature
        problems.append(
            Problem("SIGNATURE_UNREADABLE", f"the signature cannot be evaluated: {exc}")
        )
        return _unusable(base, tuple(problems))
    intact = bool(status.intact and status.valid)
    if not intact:
        problems.append(
            Problem("SIGNATURE_BROKEN", "the signed bytes or the signature value were altered")
        )
    signer_cert = _cert_of(status.signing_cert)
    chain, anchor = _chain_subjects(status)
    binding = _binding_in_chain(status, signer_cert, custody_public_key)
    signer = SignerCheck(
        subject=_subject(signer_cert),
        issuer=signer_cert.issuer.rfc4514_string(),
        certificate_sha256=_sha256(_der(signer_cert)),
        trusted=bool(status.trusted),
        chain=chain,
        anchor_sha256=anchor,
        custody_binding=binding,
    )
    if intact and not status.trusted:
        problems.append(
            Problem(
                "SIGNER_UNTRUSTED",
                f"the signer's certificate is not trusted: {status.trust_problem_indic}",
            )
        )
    if custody_public_key is not None and binding.status != "bound":
        problems.append(
            Problem("CUSTODY_BINDING", f"custody binding {binding.status}: {binding.detail}")
        )
    subindic = result.ades_subindic
    indication = f"{type(subindic).__name__}.{getattr(subindic, 'name', subindic)}"
    doc_ts = tuple(
        _document_timestamp(ts, reader, roots, moment, newest=i == len(stamps) - 1)
        for i, ts in enumerate(stamps)
    )
    # With document timestamps, ETSI's long-term process decides: once it passes, the
    # signature timestamp and older document timestamps need only be intact (their TSA
    # certificates may have expired since; the newer timestamps prove they came first).
    # Without any (B-LT), everything must check out at ``moment``; pyHanko's LTA engine
    # then answers NO_POE regardless, so its verdict is recorded but not required.
    ltv_passed = bool(doc_ts) and type(subindic).__name__.endswith("Passed")
    if intact and doc_ts and not ltv_passed:
        problems.append(
            Problem("LTV_NOT_VALIDATED", f"offline long-term validation gave {indication}")
        )
    sig_ts_status = status.timestamp_validity
    if sig_ts_status is None and result.signature_timestamp_status is not None:
        sig_ts_status = result.signature_timestamp_status.api_status
    sig_ts = _timestamp_check(sig_ts_status)
    if sig_ts is None:
        problems.append(
            Problem("NO_SIGNATURE_TIMESTAMP", "the signature carries no timestamp that verifies")
        )
    elif not sig_ts.intact:
        problems.append(Problem("SIGNATURE_TIMESTAMP_BROKEN", "the signature timestamp is altered"))
    elif not sig_ts.trusted and not ltv_passed:
        problems.append(
            Problem("SIGNATURE_TIMESTAMP_UNTRUSTED", "the signature timestamp's TSA is not trusted")
        )
    for number, ts in enumerate(doc_ts, 1):
        newest = number == len(doc_ts)
        if not ts.intact or (newest and not ts.trusted):
            problems.append(
                Problem(
                    "DOCUMENT_TIMESTAMP_INVALID",
                    f"document timestamp {number} is "
                    + ("altered" if not ts.intact else "not trusted at the validation time"),
                )
            )
    coverage = status.coverage
    level_name = status.modification_level
    covered_by_last = (
        doc_ts[-1].covers_whole_file if doc_ts else (coverage == SignatureCoverageLevel.ENTIRE_FILE)
    )
    whole = bool(covered_by_last) and coverage in (
        SignatureCoverageLevel.ENTIRE_FILE,
        SignatureCoverageLevel.ENTIRE_REVISION,
    )
    if level_name is not None and level_name > ModificationLevel.LTA_UPDATES:
        problems.append(
            Problem(
                "MODIFIED_AFTER_SIGNING",
                f"the PDF was changed after signing ({level_name.name.lower().replace('_', ' ')})",
            )
        )
    if not whole and (level_name is None or level_name < ModificationLevel.LTA_UPDATES):
        # Later revisions that only add validation data (B-LT's DSS) are fine; bytes
        # that are no revision at all are not the file that was signed.
        problems.append(
            Problem("NOT_WHOLE_FILE", "bytes after the last signature or timestamp are unsigned")
        )
    level = _level(sig_ts, n_certs, doc_ts)
    try:  # /M is the signer's own clock, and hostile input may make it unparsable
        claimed = sig.self_reported_timestamp
    except Exception:
        claimed = None
    return PdfSignatureCheck(
        **base,
        intact=intact,
        signer=signer,
        signing_time=sig_ts.time if sig_ts else None,
        claimed_signing_time=_rfc3339(claimed),
        signature_timestamp=sig_ts,
        document_timestamps=doc_ts,
        level=level,
        signature_coverage=coverage.name if coverage is not None else None,
        modification_level=level_name.name if level_name is not None else None,
        whole_file_covered=whole,
        ltv_indication=indication,
        problems=tuple(problems),
    )


def _unusable(base: dict[str, Any], problems: tuple[Problem, ...]) -> PdfSignatureCheck:
    return PdfSignatureCheck(
        **base,
        intact=False,
        signer=None,
        signing_time=None,
        claimed_signing_time=None,
        signature_timestamp=None,
        document_timestamps=(),
        level=None,
        signature_coverage=None,
        modification_level=None,
        whole_file_covered=False,
        ltv_indication=None,
        problems=problems,
    )


def _level(sig_ts: TimestampCheck | None, dss_certs: int, doc_ts: Sequence[TimestampCheck]) -> str:
    if sig_ts is None:
        return "B-B"
    if not dss_certs:
        return "B-T"
    return "B-LTA" if doc_ts else "B-LT"


def _binding_in_chain(status: Any, signer: x509.Certificate, key: bytes | None) -> BindingCheck:
    # The binding sits in the CA certificate; look through the validated path first, and
    # fall back to the certificates the signature carries when the path did not build.
    candidates: list[x509.Certificate] = [signer]
    path = getattr(status, "validation_path", None)
    if path is not None:
        candidates += [_cert_of(c) for c in path.iter_certs(include_root=True)]
    best = BindingCheck("absent", None, "no certificate in the chain carries a custody binding")
    for cert in candidates:
        found = check_custody_binding(cert, key)
        if found.status != "absent":
            return found
    return best


def _timestamp_check(ts_status: Any) -> TimestampCheck | None:
    if ts_status is None:
        return None
    tsa = _subject(_cert_of(ts_status.signing_cert)) if ts_status.signing_cert else None
    return TimestampCheck(
        time=_rfc3339(ts_status.timestamp),
        tsa_subject=tsa,
        intact=bool(ts_status.intact and ts_status.valid),
        trusted=bool(ts_status.trusted),
    )


def _newest_timestamp_assumption(
    stamps: Sequence[Any], moment: dt.datetime
) -> tuple[list[NonRevokedStatusAssertion], tuple[str, ...]]:
    if not stamps:
        return [], ()
    assertions = []
    try:
        for choice in stamps[-1].signed_data["certificates"]:
            cert = choice.chosen
            if isinstance(cert, asn1_x509.Certificate) and not cert.self_issued:
                assertions.append(NonRevokedStatusAssertion(cert.sha256, moment))
    except Exception:  # an unreadable token: its validation will fail on its own
        return [], ()
    note = (
        "the newest document timestamp's TSA certificates are taken as not revoked at "
        f"{format_time(moment)}: an offline check cannot learn of a later revocation"
    )
    return assertions, (note,)


def _document_timestamp(
    ts: Any,
    reader: Any,
    roots: Sequence[x509.Certificate],
    moment: dt.datetime,
    *,
    newest: bool,
) -> TimestampCheck:
    # Older timestamps are checked at ``moment`` as they are; the newest one under the
    # assumption stated in the result (no revocation checks for its chain).
    policy = (
        CertRevTrustPolicy(
            RevocationCheckingPolicy(
                ee_certificate_rule=RevocationCheckingRule.NO_CHECK,
                intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK,
            )
        )
        if newest
        else _revinfo_policy()
    )
    try:
        dss = DocumentSecurityStore.read_dss(reader)
        context = dss.as_validation_context(
            {
                "trust_roots": [_asn1(c) for c in roots],
                "allow_fetching": False,
                "moment": moment,
                "revinfo_policy": policy,
            }
        )
    except Exception:
        context = ValidationContext(
            trust_roots=[_asn1(c) for c in roots],
            allow_fetching=False,
            moment=moment,
            revinfo_policy=policy,
        )
    try:
        status = validate_pdf_timestamp(ts, validation_context=context, skip_diff=True)
        whole = ts.evaluate_signature_coverage() == SignatureCoverageLevel.ENTIRE_FILE
    except Exception:
        return TimestampCheck(None, None, False, False, False)
    checked = _timestamp_check(status)
    assert checked is not None
    return TimestampCheck(
        checked.time, checked.tsa_subject, checked.intact, checked.trusted, bool(whole)
    )


# ------------------------------------------------------------------------------ writing


def _check_target(out_path: Path) -> None:
    if out_path.is_symlink() or out_path.exists():
        raise UsageError(f"{out_path} already exists; custody does not overwrite signed files")
    parent = out_path.parent
    if not parent.is_dir():
        raise UsageError(f"{parent} is not a folder")


def _write_new_file(out_path: Path, data: bytes) -> None:
    """Write ``data`` to ``out_path`` atomically, never replacing or following anything."""
    _check_target(out_path)
    parent = out_path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=".custody-pdf-", suffix=".tmp", dir=parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        # link() fails if out_path appeared meanwhile (even as a symlink): no clobbering.
        os.link(tmp, out_path, follow_symlinks=False)
        with contextlib.suppress(OSError):
            dir_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except FileExistsError:
        raise StorageError(f"{out_path} appeared while signing; nothing was overwritten") from None
    except OSError as exc:
        raise StorageError(f"cannot write {out_path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
