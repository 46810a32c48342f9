"""RFC 3161 trusted timestamps over ledger checkpoints.

The message imprint of every token is the SHA-256 of a checkpoint record's exact
bytes (docs/format.md); this module only ever sees that 32-byte digest.

Three steps, kept apart so that each can be tested and reused on its own:

* requests are made and sent by ``custody.timestamps.tsa_client``;
* :func:`check_response` examines stored or fresh response bytes and returns a
  :class:`TokenCheck` listing every check, passed or failed, with a reason. It never
  raises for bad input: garbage, forgeries and rejections are results, not errors.

:func:`openssl_verify_command` builds the ``openssl ts -verify`` command line an
independent examiner runs over the same stored bytes (docs/timestamps-expert.md).

Verification uses ``rfc3161-client`` (which runs OpenSSL's PKCS7_verify over the
token, with the chain checked at the token's genTime) as the final gate, and in
addition custody's own itemised checks, written with ``cryptography``, so that a
failure can be named precisely and "untrusted" (a sound signature whose chain does
not reach the supplied roots) is told apart from "invalid" (forged, altered, garbage).
"""

from __future__ import annotations

import datetime as _dt
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID
from rfc3161_client import (
    TimeStampTokenInfo,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from custody.timestamps.der import (
    DerError,
    Tlv,
    children,
    der_int,
    der_oid,
    der_sorted_certificates,
    expect,
    signed_data,
    single,
)

__all__ = [
    "CHECK_CERT_ID",
    "CHECK_CHAIN",
    "CHECK_EKU",
    "CHECK_IMPRINT",
    "CHECK_LIBRARY",
    "CHECK_NONCE",
    "CHECK_PARSE",
    "CHECK_SIGNATURE",
    "CHECK_STATUS",
    "CHECK_VALIDITY",
    "TIMESTAMP_INVALID",
    "TIMESTAMP_MISMATCH",
    "TIMESTAMP_UNTRUSTED",
    "Check",
    "TokenCheck",
    "TrustMode",
    "check_response",
    "openssl_verify_command",
]


TIMESTAMP_INVALID: Final = "TIMESTAMP_INVALID"


TIMESTAMP_UNTRUSTED: Final = "TIMESTAMP_UNTRUSTED"


TIMESTAMP_MISMATCH: Final = "TIMESTAMP_MISMATCH"


# Names of the checks, in the order check_response runs them.
CHECK_PARSE: Final = "parse"  # a DER TimeStampResp that rfc3161-client can read


CHECK_STATUS: Final = "status"  # PKIStatus granted (or grantedWithMods)


CHECK_IMPRINT: Final = "imprint"  # SHA-256 message imprint equals the expected digest


CHECK_NONCE: Final = "nonce"  # nonce equals the request's (only when one is given)


CHECK_EKU: Final = "eku"  # signer certificate: critical EKU id-kp-timeStamping only


CHECK_CERT_ID: Final = "cert_id"  # ESS signingCertificate(V2) names the signer certificate


CHECK_SIGNATURE: Final = "signature"  # CMS signature over the TSTInfo verifies


CHECK_CHAIN: Final = "chain"  # signer certificate chains to a trust anchor


CHECK_VALIDITY: Final = "validity"  # every certificate on the path valid at genTime


CHECK_LIBRARY: Final = "rfc3161_client"  # rfc3161-client's own Verifier accepts it


_MISMATCH_CHECKS: Final = frozenset({CHECK_IMPRINT})


_UNTRUSTED_CHECKS: Final = frozenset({CHECK_CHAIN})


TrustMode = Literal["roots", "embedded"]


Outcome = Literal["passed", "failed", "skipped"]


# Object identifiers (dotted strings).
_OID_SHA1: Final = "1.3.14.3.2.26"


_OID_SHA224: Final = "2.16.840.1.101.3.4.2.4"


_OID_SHA256: Final = "2.16.840.1.101.3.4.2.1"


_OID_SHA384: Final = "2.16.840.1.101.3.4.2.2"


_OID_SHA512: Final = "2.16.840.1.101.3.4.2.3"




_OID_CT_TSTINFO: Final = "1.2.840.113549.1.9.16.1.4"


_OID_ATTR_CONTENT_TYPE: Final = "1.2.840.113549.1.9.3"


_OID_ATTR_MESSAGE_DIGEST: Final = "1.2.840.113549.1.9.4"


_OID_ATTR_SIGNING_CERT: Final = "1.2.840.113549.1.9.16.2.12"


_OID_ATTR_SIGNING_CERT_V2: Final = "1.2.840.113549.1.9.16.2.47"


_OID_RSA: Final = "1.2.840.113549.1.1.1"


_OID_RSA_PSS: Final = "1.2.840.113549.1.1.10"


_OID_MGF1: Final = "1.2.840.113549.1.1.8"


_OID_EC_PUBLIC_KEY: Final = "1.2.840.10045.2.1"


_OID_ED25519: Final = "1.3.101.112"


_OID_ED448: Final = "1.3.101.113"


_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    _OID_SHA1: hashes.SHA1,
    _OID_SHA224: hashes.SHA224,
    _OID_SHA256: hashes.SHA256,
    _OID_SHA384: hashes.SHA384,
    _OID_SHA512: hashes.SHA512,
}


_HASH_NAMES: Final = {
    _OID_SHA1: "sha1",
    _OID_SHA224: "sha224",
    _OID_SHA256: "sha256",
    _OID_SHA384: "sha384",
    _OID_SHA512: "sha512",
}


# signatureAlgorithm OID -> hash OID (None: take the SignerInfo's digestAlgorithm).
_RSA_PKCS1: Final[dict[str, str | None]] = {
    _OID_RSA: None,
    "1.2.840.113549.1.1.11": _OID_SHA256,
    "1.2.840.113549.1.1.12": _OID_SHA384,
    "1.2.840.113549.1.1.13": _OID_SHA512,
    "1.2.840.113549.1.1.14": _OID_SHA224,
}


_ECDSA: Final[dict[str, str | None]] = {
    _OID_EC_PUBLIC_KEY: None,
    "1.2.840.10045.4.3.1": _OID_SHA224,
    "1.2.840.10045.4.3.2": _OID_SHA256,
    "1.2.840.10045.4.3.3": _OID_SHA384,
    "1.2.840.10045.4.3.4": _OID_SHA512,
}


_FAILURE_INFO: Final = {
    0: "badAlg",
    2: "badRequest",
    5: "badDataFormat",
    14: "timeNotAvailable",
    15: "unacceptedPolicy",
    16: "unacceptedExtension",
    17: "addInfoNotAvailable",
    25: "systemFailure",
}


_STATUS_NAMES: Final = {
    0: "granted",
    1: "grantedWithMods",
    2: "rejection",
    3: "waiting",
    4: "revocationWarning",
    5: "revocationNotification",
}


_MAX_CHAIN_DEPTH: Final = 8


_DER_ENCODING: Final = Encoding.DER


# ---------------------------------------------------------------- result types


@dataclass(frozen=True, slots=True)
class Check:
    """One check over a timestamp response."""

    name: str
    outcome: Outcome
    reason: str

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"


@dataclass(frozen=True)
class TokenCheck:
    """Everything :func:`check_response` found out about one response.

    ``checks`` lists every check in order. ``finding`` is None when the token is good,
    otherwise TIMESTAMP_INVALID (unreadable, rejected, forged, altered, wrong nonce,
    unusable signer certificate, expired at genTime), TIMESTAMP_MISMATCH (a sound token
    over another digest) or TIMESTAMP_UNTRUSTED (a sound token whose chain does not
    reach the trust anchors). INVALID outranks MISMATCH, which outranks UNTRUSTED.
    """

    checks: tuple[Check, ...]
    trust: TrustMode
    status: int | None = None
    status_text: str | None = None
    gen_time: _dt.datetime | None = None
    serial_number: int | None = None
    policy_oid: str | None = None
    tsa_name: str | None = None
    nonce: int | None = None
    hash_algorithm: str | None = None  # dotted OID of the message imprint's algorithm
    message_imprint: bytes | None = None
    signer_certificate: bytes | None = None  # DER
    certificates: tuple[bytes, ...] = ()  # DER, as embedded in the token, in wire order
    chain: tuple[bytes, ...] = ()  # DER, signer first, trust anchor last (when found)
    # True when the certificate SET arrived out of DER order and was re-sorted before
    # rfc3161-client read it (the stored bytes are never changed).
    reordered_certificates: bool = False

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.failed)

    @property
    def finding(self) -> str | None:
        names = {c.name for c in self.failed}
        if not names:
            return None
        if names - _MISMATCH_CHECKS - _UNTRUSTED_CHECKS:
            return TIMESTAMP_INVALID
        if names & _MISMATCH_CHECKS:
            return TIMESTAMP_MISMATCH
        return TIMESTAMP_UNTRUSTED

    @property
    def reason(self) -> str:
        """One line: the first failed check's reason, or a short success note."""
        for c in self.checks:
            if c.failed:
                return f"{c.name}: {c.reason}"
        when = self.gen_time.isoformat() if self.gen_time else "?"
        return f"valid timestamp of {when} by {self.tsa_name or 'unnamed TSA'}"

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)


# -------------------------------------------------------------------- checking


@dataclass
class _Signer:
    """The parts of the (single) SignerInfo that custody verifies itself."""

    issuer: bytes | None  # DER Name from issuerAndSerialNumber
    serial: int | None
    ski: bytes | None  # subjectKeyIdentifier form of the sid
    digest_oid: str
    signed_attrs: bytes  # the whole [0] IMPLICIT field, tag included
    attrs: dict[str, list[bytes]]  # attribute type -> encoded values
    sig_oid: str
    sig_params: bytes | None
    signature: bytes


@dataclass
class _Token:
    econtent_type: str
    econtent: bytes
    certificates: list[bytes]
    signers: list[_Signer]


def _parse_token(raw: bytes) -> _Token:
    fields, _status = signed_data(raw)
    if len(fields) < 4:
        raise DerError("SignedData is too short")
    encap = children(raw, expect(fields[2], 0x30, "EncapsulatedContentInfo"))
    if len(encap) != 2:
        raise DerError("the token carries no content")
    econtent_type = der_oid(raw, encap[0])
    inner = children(raw, expect(encap[1], 0xA0, "eContent"))
    if len(inner) != 1:
        raise DerError("bad eContent")
    econtent = raw[inner[0].body : inner[0].end]
    expect(inner[0], 0x04, "eContent")
    certificates: list[bytes] = []
    for f in fields[3:-1]:
        if f.tag == 0xA0:
            certificates = [raw[c.start : c.end] for c in children(raw, f) if c.tag == 0x30]
    signer_set = expect(fields[-1], 0x31, "SignerInfos")
    return _Token(
        econtent_type,
        econtent,
        certificates,
        [_parse_signer(raw, s) for s in children(raw, signer_set)],
    )


def _parse_signer(raw: bytes, tlv: Tlv) -> _Signer:
    f = children(raw, expect(tlv, 0x30, "SignerInfo"))
    if len(f) < 6:
        raise DerError("SignerInfo is too short")
    issuer = serial = ski = None
    if f[1].tag == 0x30:
        ias = children(raw, f[1])
        if len(ias) != 2:
            raise DerError("bad issuerAndSerialNumber")
        issuer, serial = raw[ias[0].start : ias[0].end], der_int(raw, ias[1])
    elif f[1].tag == 0x80:
        ski = raw[f[1].body : f[1].end]
    else:
        raise DerError("unknown SignerIdentifier")
    digest_oid = der_oid(raw, children(raw, expect(f[2], 0x30, "digestAlgorithm"))[0])
    if f[3].tag != 0xA0:
        raise DerError("SignerInfo has no signed attributes")
    attrs: dict[str, list[bytes]] = {}
    for attr in children(raw, f[3]):
        kids = children(raw, expect(attr, 0x30, "Attribute"))
        if len(kids) != 2:
            raise DerError("bad Attribute")
        values = children(raw, expect(kids[1], 0x31, "AttributeValues"))
        attrs.setdefault(der_oid(raw, kids[0]), []).extend(raw[v.start : v.end] for v in values)
    alg = children(raw, expect(f[4], 0x30, "signatureAlgorithm"))
    params = raw[alg[1].start : alg[1].end] if len(alg) > 1 else None
    expect(f[5], 0x04, "signature")
    return _Signer(
        issuer=issuer,
        serial=serial,
        ski=ski,
        digest_oid=digest_oid,
        signed_attrs=raw[f[3].start : f[3].end],
        attrs=attrs,
        sig_oid=der_oid(raw, alg[0]),
        sig_params=params,
        signature=raw[f[5].body : f[5].end],
    )


def _tbs_issuer(cert: x509.Certificate) -> bytes:
    tbs = cert.tbs_certificate_bytes
    kids = children(tbs, single(tbs))
    index = 3 if kids[0].tag == 0xA0 else 2  # skip [0] version when present
    return tbs[kids[index].start : kids[index].end]


def _find_signer_cert(
    signer: _Signer, candidates: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    for cert in candidates:
        if signer.ski is not None:
            try:
                ext = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ext.value.digest == signer.ski:
                return cert
        elif cert.serial_number == signer.serial:
            try:
                same_issuer = _tbs_issuer(cert) == signer.issuer
            except (DerError, IndexError):
                same_issuer = False
            if same_issuer:
                return cert
    return None


def _hash(oid: str, data: bytes) -> bytes:
    h = hashes.Hash(_HASHES[oid]())
    h.update(data)
    return h.finalize()


def _check_cert_id(signer: _Signer, cert: x509.Certificate) -> tuple[bool, str]:
    """RFC 3161 §2.4.2 / RFC 5035: the signed ESS attribute must name this certificate."""
    der = cert.public_bytes(_DER_ENCODING)
    for oid, version in ((_OID_ATTR_SIGNING_CERT_V2, 2), (_OID_ATTR_SIGNING_CERT, 1)):
        values = signer.attrs.get(oid)
        if not values:
            continue
        if len(values) != 1:
            return False, f"signingCertificate{'V2' if version == 2 else ''} has several values"
        value = values[0]
        ids = children(value, children(value, single(value))[0])
        if not ids:
            return False, "the signingCertificate attribute lists no certificate"
        first = children(value, ids[0])
        hash_oid = _OID_SHA256 if version == 2 else _OID_SHA1
        if version == 2 and first[0].tag == 0x30:
            hash_oid = der_oid(value, children(value, first[0])[0])
            first = first[1:]
        if hash_oid not in _HASHES:
            return False, f"the signingCertificate hash algorithm {hash_oid} is not supported"
        cert_hash = value[first[0].body : first[0].end]
        expect(first[0], 0x04, "certHash")
        if cert_hash != _hash(hash_oid, der):
            return False, "the signed signingCertificate attribute names another certificate"
        if len(first) > 1:
            serial_tlv = children(value, first[1])[-1]
            if der_int(value, serial_tlv) != cert.serial_number:
                return False, "the signingCertificate serial number names another certificate"
        name = "signingCertificateV2" if version == 2 else "signingCertificate"
        return True, f"{name} ({_HASH_NAMES[hash_oid]}) names the signer certificate"
    return False, "no signed signingCertificate attribute (RFC 3161 §2.4.2 requires one)"


def _verify_signature(token: _Token, signer: _Signer, cert: x509.Certificate) -> tuple[bool, str]:
    if token.econtent_type != _OID_CT_TSTINFO:
        return False, f"content type {token.econtent_type} is not id-ct-TSTInfo"
    if signer.digest_oid not in _HASHES or signer.digest_oid == _OID_SHA1:
        return False, f"digest algorithm {signer.digest_oid} is not accepted"
    ctype = signer.attrs.get(_OID_ATTR_CONTENT_TYPE, [])
    if len(ctype) != 1 or der_oid(ctype[0], single(ctype[0])) != _OID_CT_TSTINFO:
        return False, "the signed contentType attribute is not id-ct-TSTInfo"
    digests = signer.attrs.get(_OID_ATTR_MESSAGE_DIGEST, [])
    if len(digests) != 1:
        return False, "the signed attributes carry no single messageDigest"
    md = single(digests[0])
    expect(md, 0x04, "messageDigest")
    if digests[0][md.body : md.end] != _hash(signer.digest_oid, token.econtent):
        return False, "the TSTInfo does not match the signed messageDigest (content altered)"
    # RFC 5652 §5.4: the signature covers the DER of the attributes as a SET OF.
    signed = b"\x31" + signer.signed_attrs[1:]
    key = cert.public_key()
    try:
        if signer.sig_oid in _RSA_PKCS1 and isinstance(key, rsa.RSAPublicKey):
            hash_oid = _RSA_PKCS1[signer.sig_oid] or signer.digest_oid
            key.verify(signer.signature, signed, padding.PKCS1v15(), _HASHES[hash_oid]())
        elif signer.sig_oid == _OID_RSA_PSS and isinstance(key, rsa.RSAPublicKey):
            pss, hash_alg = _pss_params(signer.sig_params)
            key.verify(signer.signature, signed, pss, hash_alg)
        elif signer.sig_oid in _ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            hash_oid = _ECDSA[signer.sig_oid] or signer.digest_oid
            key.verify(signer.signature, signed, ec.ECDSA(_HASHES[hash_oid]()))
        elif (signer.sig_oid == _OID_ED25519 and isinstance(key, ed25519.Ed25519PublicKey)) or (
            signer.sig_oid == _OID_ED448 and isinstance(key, ed448.Ed448PublicKey)
        ):
            key.verify(signer.signature, signed)
        else:
            return False, (
                f"signature algorithm {signer.sig_oid} does not fit the signer's "
                f"{type(key).__name__.lstrip('_')} or is not supported"
            )
    except InvalidSignature:
        return False, "the signature does not verify with the signer certificate's key"
    except (ValueError, UnsupportedAlgorithm, KeyError) as err:
        return False, f"the signature cannot be verified: {err}"
    return True, "the CMS signature over the TSTInfo verifies"


def _pss_params(params: bytes | None) -> tuple[padding.PSS, hashes.HashAlgorithm]:
    hash_oid, mgf_oid, salt = _OID_SHA1, _OID_SHA1, 20  # RFC 4055 defaults
    if params is not None:
        for item in children(params, single(params)):
            inner = children(params, item)
            if item.tag == 0xA0:
                hash_oid = der_oid(params, children(params, inner[0])[0])
            elif item.tag == 0xA1:
                mgf = children(params, inner[0])
                if der_oid(params, mgf[0]) != _OID_MGF1:
                    raise ValueError("RSASSA-PSS with a mask generation function other than MGF1")
                mgf_oid = der_oid(params, children(params, mgf[1])[0])
            elif item.tag == 0xA2:
                salt = der_int(params, inner[0])
    if hash_oid == _OID_SHA1 or hash_oid not in _HASHES or mgf_oid not in _HASHES:
        raise ValueError(f"RSASSA-PSS hash {hash_oid} is not accepted")
    return padding.PSS(padding.MGF1(_HASHES[mgf_oid]()), salt), _HASHES[hash_oid]()


def _check_eku(cert: x509.Certificate) -> tuple[bool, str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return False, "the signer certificate has no extendedKeyUsage extension"
    except ValueError as err:
        return False, f"the signer certificate's extensions cannot be read: {err}"
    if ExtendedKeyUsageOID.TIME_STAMPING not in ext.value:
        return False, "the signer certificate's extendedKeyUsage lacks id-kp-timeStamping"
    if not ext.critical:
        return False, "the signer certificate's extendedKeyUsage is not critical (RFC 3161 §2.3)"
    if len(list(ext.value)) != 1:
        return False, "the signer certificate's extendedKeyUsage must be id-kp-timeStamping only"
    return True, "extendedKeyUsage is critical and id-kp-timeStamping only"


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _valid_at(cert: x509.Certificate, when: _dt.datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def _is_self_signed(cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _can_issue(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    if not bc.ca:
        return False
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    except ValueError:
        return False
    return ku.key_cert_sign


def _build_path(
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    when: _dt.datetime,
) -> tuple[list[x509.Certificate] | None, str]:
    """A path leaf -> ... -> anchor where every link's signature verifies.

    Time is not judged here (see the validity check) except to prefer, among several
    candidate issuers, those valid at ``when``.
    """
    anchor_ders = {a.public_bytes(_DER_ENCODING) for a in anchors}
    problems: list[str] = []

    def extend(path: list[x509.Certificate]) -> list[x509.Certificate] | None:
        cert = path[-1]
        if cert.public_bytes(_DER_ENCODING) in anchor_ders:
            return path
        if len(path) > _MAX_CHAIN_DEPTH:
            problems.append("the chain is too long")
            return None
        seen = {c.public_bytes(_DER_ENCODING) for c in path}
        candidates = [c for c in [*anchors, *pool] if c.subject == cert.issuer]
        candidates = [c for c in candidates if c.public_bytes(_DER_ENCODING) not in seen]
        candidates.sort(key=lambda c: not _valid_at(c, when))
        if not candidates:
            problems.append(f"no certificate named {cert.issuer.rfc4514_string()!r} is at hand")
        for issuer in candidates:
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                problems.append(
                    f"{_name(cert)!r} is not signed by the certificate {_name(issuer)!r} at hand"
                )
                continue
            is_anchor = issuer.public_bytes(_DER_ENCODING) in anchor_ders
            if not is_anchor and not _can_issue(issuer):
                problems.append(f"{_name(issuer)!r} is not a CA certificate")
                continue
            found = extend([*path, issuer])
            if found is not None:
                return found
        return None

    path = extend([leaf])
    if path is not None:
        return path, " -> ".join(repr(_name(c)) for c in path) + " (trust anchor)"
    detail = "; ".join(dict.fromkeys(problems)) or "no issuer found"
    return None, f"no chain from {_name(leaf)!r} to a trust anchor: {detail}"


def _status_text(raw: bytes, status: int, strings: Sequence[str]) -> str:
    text = _STATUS_NAMES.get(status, f"status {status}")
    if strings:
        text += ": " + " ".join(strings)
    try:  # PKIFailureInfo is not exposed by rfc3161-client; read the BIT STRING
        status_info = children(raw, single(raw))[0]
        for kid in children(raw, status_info):
            if kid.tag == 0x03 and kid.end - kid.body >= 2:
                unused, bits = raw[kid.body], raw[kid.body + 1 : kid.end]
                flags = [
                    _FAILURE_INFO.get(i, f"bit{i}")
                    for i in range(len(bits) * 8 - unused)
                    if bits[i // 8] & (0x80 >> (i % 8))
                ]
                if flags:
                    text += f" (failInfo {', '.join(flags)})"
    except (DerError, IndexError):
        pass
    return " ".join(text.split())


def check_response(
    raw: bytes,
    *,
    digest: bytes,
    nonce: int | None,
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    trust: TrustMode = "roots",
) -> TokenCheck:
    """Check a DER TimeStampResp against the expected digest and trust anchors.

    ``trust="roots"`` (the default) anchors the signer's chain in ``roots``, with
    ``intermediates`` as extra (configured) chain certificates. ``trust="embedded"``
    is the weaker self-contained mode: the anchors are the self-signed certificates
    the TSA itself put in the token, and ``roots`` is ignored; such a token proves
    only that whoever holds that root's key stamped the digest at genTime.

    Never raises for any value of ``raw``; raises ValueError only for a ``digest``
    that is not 32 bytes or an unknown ``trust`` mode (programming errors).
    """
    if len(digest) != 32:
        raise ValueError("digest must be the 32-byte SHA-256 of the checkpoint record")
    if trust not in ("roots", "embedded"):
        raise ValueError(f"unknown trust mode {trust!r}")
    try:
        with warnings.catch_warnings():
            # Malformed embedded certificates (e.g. a negative serial) are judged by
            # the checks; cryptography's deprecation warnings about them are noise.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return _check(bytes(raw), digest, nonce, roots, intermediates, trust)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as err:  # pyo3 panics derive from BaseException only
        # Defence in depth: every check below handles its own failures; whatever
        # escapes is still a verdict on the input, never a crash of the caller.
        return TokenCheck(
            checks=(Check(CHECK_PARSE, "failed", f"unexpected error while checking: {err!r}"),),
            trust=trust,
        )


def _check(
    raw: bytes,
    digest: bytes,
    nonce: int | None,
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    trust: TrustMode,
) -> TokenCheck:
    checks: list[Check] = []
    result = TokenCheck(checks=(), trust=trust)

    def add(name: str, ok: bool, reason: str) -> None:
        checks.append(Check(name, "passed" if ok else "failed", reason))

    def done(skip_reason: str = "") -> TokenCheck:
        ran = {c.name for c in checks}
        checks.extend(Check(n, "skipped", skip_reason) for n in _ALL_CHECKS if n not in ran)
        order = {name: i for i, name in enumerate(_ALL_CHECKS)}
        return replace(result, checks=tuple(sorted(checks, key=lambda c: order[c.name])))

    # 1. parse --------------------------------------------------------------------
    # rfc3161-client (rust-asn1) insists on strict DER, including SET OF elements in
    # sorted order. RFC 5652 makes SignedData.certificates a SET OF, but OpenSSL's TSA
    # (with `certs =`) and many production TSAs emit the signer first and the chain
    # after it, which rust-asn1 rejects with InvalidSetOrdering. That field is outside
    # the signature: a CMS signature covers the eContent (through the messageDigest
    # attribute) and the DER of the signed attributes, nothing else (RFC 5652 §5.4), and
    # OpenSSL itself (`openssl ts -verify`) accepts any order. So when - and only when -
    # the parse fails for that reason, we permute the complete certificate encodings
    # inside that one field into DER order (same multiset, same lengths, every other
    # byte untouched) and let rfc3161-client parse and verify the result. A forgery
    # stays a forgery: the signed bytes, signature and certificates are identical, and
    # the verifier sees exactly the certificates the TSA sent. The stored token is the
    # original byte string; openssl verifies it as is.
    reordered = False
    try:
        try:
            resp = decode_timestamp_response(raw)
        except ValueError as err:
            fixed = der_sorted_certificates(raw) if "InvalidSetOrdering" in str(err) else None
            if fixed is None:
                raise
            resp = decode_timestamp_response(fixed)
            reordered = True
        status = int(resp.status)
        status_text = _status_text(raw, status, list(resp.status_string))
    except ValueError as err:
        add(CHECK_PARSE, False, f"not a TimeStampResp ({_first_line(err)})")
        return done("not checked: the response could not be read")
    result = replace(
        result, status=status, status_text=status_text, reordered_certificates=reordered
    )

    # 2. status -------------------------------------------------------------------
    if status not in (0, 1):
        add(CHECK_PARSE, True, "a DER TimeStampResp")
        add(CHECK_STATUS, False, f"the TSA refused: {status_text}")
        return done("not checked: the TSA granted no token")
    try:
        tst = resp.tst_info
        hash_oid = tst.message_imprint.hash_algorithm.dotted_string
        imprint = bytes(tst.message_imprint.message)
        gen_time = tst.gen_time
        gen_time = (gen_time if gen_time.tzinfo else gen_time.replace(tzinfo=_dt.UTC)).astimezone(
            _dt.UTC
        )
        token_nonce = None if tst.nonce is None else int(tst.nonce)
        result = replace(
            result,
            gen_time=gen_time,
            serial_number=int(tst.serial_number),
            policy_oid=tst.policy.dotted_string if tst.policy is not None else None,
            tsa_name=_tsa_name(tst),
            nonce=token_nonce,
            hash_algorithm=hash_oid,
            message_imprint=imprint,
        )
        token = _parse_token(raw)
    except (ValueError, IndexError, TypeError, AttributeError) as err:
        add(CHECK_PARSE, False, f"the timestamp token cannot be read ({_first_line(err)})")
        return done("not checked: the token could not be read")
    result = replace(result, certificates=tuple(token.certificates))
    embedded: list[x509.Certificate] = []
    unreadable = 0
    for der in token.certificates:
        try:
            embedded.append(x509.load_der_x509_certificate(der))
        except ValueError:
            unreadable += 1
    note = " (certificate set re-sorted into DER order to read it)" if reordered else ""
    add(CHECK_PARSE, True, f"a DER TimeStampResp with a TSTInfo{note}")
    add(CHECK_STATUS, True, status_text)

    # 3. imprint and nonce --------------------------------------------------------
    if hash_oid != _OID_SHA256:
        name = _HASH_NAMES.get(hash_oid, hash_oid)
        add(CHECK_IMPRINT, False, f"the imprint algorithm is {name}, not sha256")
    elif imprint != digest:
        add(CHECK_IMPRINT, False, f"the token stamps {imprint.hex()}, not {digest.hex()}")
    else:
        add(CHECK_IMPRINT, True, f"sha256 imprint {digest.hex()}")
    if nonce is None:
        checks.append(Check(CHECK_NONCE, "skipped", "no request nonce to compare"))
    elif token_nonce is None:
        add(CHECK_NONCE, False, "the token carries no nonce although one was requested")
    elif token_nonce != nonce:
        add(CHECK_NONCE, False, f"nonce {token_nonce:#x} is not the request's {nonce:#x}")
    else:
        add(CHECK_NONCE, True, f"nonce {nonce:#x} matches the request")

    # 4. signer certificate, ESS binding, signature -------------------------------
    if len(token.signers) != 1:
        add(CHECK_SIGNATURE, False, f"expected one SignerInfo, found {len(token.signers)}")
        return done("not checked: no single signer")
    signer = token.signers[0]
    extra = [c for c in intermediates if not _is_self_signed(c)]
    signer_cert = _find_signer_cert(signer, [*embedded, *extra])
    if signer_cert is None:
        why = f" ({unreadable} embedded certificate(s) unreadable)" if unreadable else ""
        add(CHECK_SIGNATURE, False, f"the signer certificate is not in the token{why}")
        return done("not checked: no signer certificate")
    result = replace(result, signer_certificate=signer_cert.public_bytes(_DER_ENCODING))
    add(CHECK_EKU, *_check_eku(signer_cert))
    try:
        add(CHECK_CERT_ID, *_check_cert_id(signer, signer_cert))
    except (DerError, IndexError, ValueError) as err:
        add(CHECK_CERT_ID, False, f"the signingCertificate attribute cannot be read: {err}")
    try:
        add(CHECK_SIGNATURE, *_verify_signature(token, signer, signer_cert))
    except (DerError, IndexError) as err:
        add(CHECK_SIGNATURE, False, f"the signed attributes cannot be read: {err}")

    # 5. chain to a trust anchor, and time validity -------------------------------
    if trust == "roots":
        anchors = _unique(roots)
        no_anchor = "no trusted roots were supplied"
    else:
        anchors = _unique([c for c in embedded if _is_self_signed(c)])
        no_anchor = "the token carries no self-signed root certificate (self-contained mode)"
    path: list[x509.Certificate] | None = None
    if not anchors:
        add(CHECK_CHAIN, False, no_anchor)
    else:
        path, why = _build_path(signer_cert, [*embedded, *extra], anchors, gen_time)
        add(CHECK_CHAIN, path is not None, why)
    if path is not None:
        result = replace(result, chain=tuple(c.public_bytes(_DER_ENCODING) for c in path))
    at = f"{gen_time:%Y-%m-%dT%H:%M:%SZ}"
    stale = [c for c in (path or [signer_cert]) if not _valid_at(c, gen_time)]
    if stale:
        windows = "; ".join(
            f"{_name(c)!r} is valid from {c.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} "
            f"to {c.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
            for c in stale
        )
        add(CHECK_VALIDITY, False, f"not valid at genTime {at}: {windows}")
    else:
        scope = "every certificate on the chain is" if path else "the signer certificate is"
        add(CHECK_VALIDITY, True, f"{scope} valid at genTime {at}")

    # 6. rfc3161-client's own verification, the final gate --------------------------
    if any(c.failed for c in checks):
        return done("not run: an earlier check failed")
    if status != 0:
        return done("not run: rfc3161-client accepts only status granted")
    builder = VerifierBuilder(
        roots=anchors,
        # rfc3161-client puts these into its *trusted* store: only configured
        # certificates may go there, never ones that came inside the token.
        intermediates=_unique(extra) if trust == "roots" else [],
        tsa_certificate=None if signer_cert in embedded else signer_cert,
    )
    if nonce is not None:
        builder = builder.nonce(nonce)
    try:
        builder.build().verify(resp, digest)
    except (VerificationError, ValueError) as err:
        add(CHECK_LIBRARY, False, f"rfc3161-client rejects the token: {_first_line(err)}")
    else:
        add(CHECK_LIBRARY, True, "rfc3161-client verifies signature, chain and imprint")
    return done()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:300]


_ALL_CHECKS: Final = (
    CHECK_PARSE,
    CHECK_STATUS,
    CHECK_IMPRINT,
    CHECK_NONCE,
    CHECK_EKU,
    CHECK_CERT_ID,
    CHECK_SIGNATURE,
    CHECK_CHAIN,
    CHECK_VALIDITY,
    CHECK_LIBRARY,
)


def _unique(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    seen: dict[bytes, x509.Certificate] = {}
    for c in certs:
        seen.setdefault(c.public_bytes(_DER_ENCODING), c)
    return list(seen.values())


def _tsa_name(tst: TimeStampTokenInfo) -> str | None:
    try:
        name = tst.name
    except ValueError:  # rfc3161-client raises when the optional field is absent
        return None
    value = getattr(name, "value", name)
    if isinstance(value, x509.Name):
        return value.rfc4514_string()
    return str(value)


# --------------------------------------------------------------- examiner's view


def openssl_verify_command(
    *,
    token: str | Path,
    digest: bytes | str,
    ca_file: str | Path,
    untrusted: str | Path | None = None,
    at_time: _dt.datetime | None = None,
    openssl: str = "openssl",
) -> list[str]:
    """The ``openssl ts -verify`` argv that checks a stored token independently.

    ``ca_file`` holds the trusted root(s); ``untrusted`` optional intermediates the
    token does not carry. Give ``at_time`` (the token's genTime) so that OpenSSL judges
    the chain when the stamp was made rather than today: without ``-attime`` a token
    outlives its TSA certificate's expiry only in custody, not in OpenSSL.
    """
    hex_digest = digest.hex() if isinstance(digest, bytes) else digest.lower()
    if len(hex_digest) != 64 or any(ch not in "0123456789abcdef" for ch in hex_digest):
        raise ValueError("digest must be a SHA-256 digest (32 bytes or 64 hex digits)")
    argv = [openssl, "ts", "-verify", "-digest", hex_digest, "-in", str(token)]
    argv += ["-CAfile", str(ca_file)]
    if untrusted is not None:
        argv += ["-untrusted", str(untrusted)]
    if at_time is not None:
        moment = at_time if at_time.tzinfo else at_time.replace(tzinfo=_dt.UTC)
        argv += ["-attime", str(int(moment.timestamp()))]
    return argv
