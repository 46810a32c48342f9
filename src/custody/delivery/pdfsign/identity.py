"""The preparer's PDF-signing identity: a P-256 CA bound to the preparer's Ed25519 custody key by a
signed certificate extension (or an organisation's own certificate and key), sealed at rest
in PKCS#12, and the one-time end-entity certificates it issues for each signature.

May import: ``custody.errors``, ``custody.clock``, ``custody.ledger.canonical``,
``custody.keys.keyring`` (passphrases as UTF-8, refused without echo),
``custody.delivery.pdfsign.common``, ``cryptography``, the standard library.
"""

from __future__ import annotations

import datetime as dt
import json
import stringprep
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from custody.clock import Clock, format_time, utc_now
from custody.delivery.pdfsign.common import (
    _BINDING_CONTEXT,
    _CLOCK_SKEW,
    _DOCUMENT_SIGNING,
    BINDING_FORMAT,
    BINDING_OID,
    PKCS12_KDF_ROUNDS,
    IdentityKind,
    PrivateKey,
    _der,
    _der_octets,
    _der_read,
    _sha256,
    _spki,
    load_pem_certificates,
)
from custody.errors import (
    PassphraseError,
    SigningKeyError,
    UsageError,
)
from custody.i18n import _
from custody.keys.keyring import passphrase_bytes
from custody.ledger.canonical import encode

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
            _("the custody key did not produce a valid signature for its own public key")
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
        raise ValueError(_("binding extension of an unexpected type"))
    raw = value.value
    body, end = _der_read(raw, 0, 0x30)
    if end != len(raw):
        raise ValueError(_("trailing bytes after the binding"))
    statement, pos = _der_read(body, 0, 0x04)
    public, pos = _der_read(body, pos, 0x04)
    signature, pos = _der_read(body, pos, 0x04)
    if pos != len(body) or len(public) != 32 or len(signature) != 64:
        raise ValueError(_("binding has the wrong shape"))
    try:
        parsed = json.loads(statement.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(_("binding statement is not JSON")) from None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise ValueError(_("binding statement is not an object of strings"))
    if encode(parsed) != statement:
        raise ValueError(_("binding statement is not canonical JSON"))
    if parsed.get("format") != BINDING_FORMAT:
        raise ValueError(
            _("binding format {found!r} is not {expected}").format(
                found=parsed.get("format"), expected=BINDING_FORMAT
            )
        )
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
        return BindingCheck("invalid", None, _("malformed custody binding: {why}").format(why=exc))
    if binding is None:
        return BindingCheck("absent", None, _("the certificate carries no custody binding"))
    claimed = binding.custody_key_fingerprint
    if binding.fields.get("custody_key") != claimed:
        return BindingCheck("invalid", claimed, _("statement names another key than it carries"))
    if binding.fields.get("ca_spki_sha256") != _sha256(_spki(cert)):
        return BindingCheck("invalid", claimed, _("statement names another certificate key"))
    try:
        Ed25519PublicKey.from_public_bytes(binding.custody_public_key).verify(
            binding.signature, _BINDING_CONTEXT + binding.statement
        )
    except (InvalidSignature, ValueError):
        return BindingCheck("invalid", claimed, _("custody signature over the statement is bad"))
    if custody_public_key is None:
        return BindingCheck("claimed", claimed, _("signed by the key it names; key not compared"))
    if _sha256(custody_public_key) != claimed:
        return BindingCheck(
            "other-key",
            claimed,
            _("bound to custody key {fingerprint}…, not the one expected").format(
                fingerprint=claimed[:16]
            ),
        )
    return BindingCheck("bound", claimed, _("signed by the expected custody key"))


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
            _("the preparer's name must be 1-64 printable characters (it goes into certificates)")
        )
    # RFC 4518 (via RFC 3454 section 6): validators compare names after string
    # preparation, which refuses a value mixing right-to-left and left-to-right letters,
    # or right-to-left text that does not begin and end with a right-to-left letter
    # (asn1crypto, under pyHanko, raises on such a certificate).
    rtl = [stringprep.in_table_d1(ch) for ch in name]
    if any(rtl) and (any(stringprep.in_table_d2(ch) for ch in name) or not (rtl[0] and rtl[-1])):
        raise UsageError(
            _(
                "the preparer's name mixes Arabic (or other right-to-left) and Latin letters, "
                "or does not begin and end with a letter: certificates need one script, "
                "e.g. 'أمل حداد' or 'Amal Haddad'"
            )
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
        raise SigningKeyError(_("a custody public key is 32 bytes (raw Ed25519)"))
    if not 1 <= years <= 50:
        raise UsageError(_("a preparer CA is valid for 1 to 50 years"))
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
        raise SigningKeyError(_("an empty passphrase would leave the PDF-signing key unprotected"))
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PKCS12_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(passphrase_bytes(passphrase))
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
            _(
                "{source}: the key is not RSA or ECDSA; PDF readers other than pyHanko verify "
                "only those (Ed25519 is refused by pdfsig/NSS and Acrobat)"
            ).format(source=source)
        )
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise SigningKeyError(
            _("{source}: an RSA key needs at least 2048 bits").format(source=source)
        )
    if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(
        key.curve, ec.SECP256R1 | ec.SECP384R1 | ec.SECP521R1
    ):
        raise SigningKeyError(
            _("{source}: only NIST P-256, P-384 and P-521 keys are supported").format(source=source)
        )
    if _spki(cert) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise SigningKeyError(
            _("{source}: the key does not belong to the certificate").format(source=source)
        )
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
        loaded = pkcs12.load_pkcs12(data, passphrase_bytes(passphrase))
    except ValueError:
        raise PassphraseError(
            _("could not open the PDF-signing identity: wrong passphrase or not a PKCS#12 file")
        ) from None
    if loaded.key is None or loaded.cert is None:
        raise SigningKeyError(_("the PKCS#12 file holds no key with its certificate"))
    others = [c.certificate for c in loaded.additional_certs]
    return _identity_from_parts(
        loaded.key, loaded.cert.certificate, others, signer_name, None, _("PKCS#12 file")
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
    certs = load_pem_certificates(cert_pem, _("organisation certificate"))
    try:
        key = serialization.load_pem_private_key(
            key_pem, passphrase_bytes(passphrase) if passphrase else None
        )
    except TypeError:
        raise PassphraseError(
            _("the organisation key is encrypted: a passphrase is needed")
        ) from None
    except ValueError:
        raise PassphraseError(
            _("could not open the organisation key: wrong passphrase or not a PEM private key")
        ) from None
    return _identity_from_parts(
        key, certs[0], certs[1:], signer_name, crl_uri, _("organisation key")
    )


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
