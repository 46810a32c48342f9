"""The CMS SignedData inside a timestamp token, examined with ``cryptography``: its signer,
the signer's certificate (ESS signingCertificate), the signature over the TSTInfo, the
certificate's EKU, and the certificate path to a trust anchor at genTime.

Each function answers one question with (passed, reason), so ``rfc3161.check_response``
can name exactly what failed.

May import: ``custody.timestamps.der``, ``custody.timestamps.algorithms``, ``cryptography``,
the standard library.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from custody.i18n import _
from custody.timestamps.algorithms import ALGORITHMS
from custody.timestamps.der import (
    DerError,
    Tlv,
    children,
    der_int,
    der_oid,
    expect,
    signed_data,
    single,
)

# Object identifiers (dotted strings).
_OID_SHA1: Final = "1.3.14.3.2.26"


_OID_SHA224: Final = "2.16.840.1.101.3.4.2.4"


OID_SHA256: Final = "2.16.840.1.101.3.4.2.1"


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


HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    a.oid: a.crypto for a in ALGORITHMS.values()
}  # every algorithm of custody.timestamps.algorithms, SHA-3 included


HASH_NAMES: Final = {a.oid: a.name for a in ALGORITHMS.values()}


# signatureAlgorithm OID -> hash OID (None: take the SignerInfo's digestAlgorithm).
_RSA_PKCS1: Final[dict[str, str | None]] = {
    _OID_RSA: None,
    "1.2.840.113549.1.1.11": OID_SHA256,
    "1.2.840.113549.1.1.12": _OID_SHA384,
    "1.2.840.113549.1.1.13": _OID_SHA512,
    "1.2.840.113549.1.1.14": _OID_SHA224,
}


_ECDSA: Final[dict[str, str | None]] = {
    _OID_EC_PUBLIC_KEY: None,
    "1.2.840.10045.4.3.1": _OID_SHA224,
    "1.2.840.10045.4.3.2": OID_SHA256,
    "1.2.840.10045.4.3.3": _OID_SHA384,
    "1.2.840.10045.4.3.4": _OID_SHA512,
}


MAX_CHAIN_DEPTH: Final = 8


DER_ENCODING: Final = Encoding.DER


# -------------------------------------------------------------------- checking


@dataclass
class Signer:
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
class Token:
    econtent_type: str
    econtent: bytes
    certificates: list[bytes]
    signers: list[Signer]


def parse_token(raw: bytes) -> Token:
    fields, _status = signed_data(raw)
    if len(fields) < 4:
        raise DerError(_("SignedData is too short"))
    encap = children(raw, expect(fields[2], 0x30, "EncapsulatedContentInfo"))
    if len(encap) != 2:
        raise DerError(_("the token carries no content"))
    econtent_type = der_oid(raw, encap[0])
    inner = children(raw, expect(encap[1], 0xA0, "eContent"))
    if len(inner) != 1:
        raise DerError(_("bad eContent"))
    econtent = raw[inner[0].body : inner[0].end]
    expect(inner[0], 0x04, "eContent")
    certificates: list[bytes] = []
    for f in fields[3:-1]:
        if f.tag == 0xA0:
            certificates = [raw[c.start : c.end] for c in children(raw, f) if c.tag == 0x30]
    signer_set = expect(fields[-1], 0x31, "SignerInfos")
    return Token(
        econtent_type,
        econtent,
        certificates,
        [parse_signer(raw, s) for s in children(raw, signer_set)],
    )


def parse_signer(raw: bytes, tlv: Tlv) -> Signer:
    f = children(raw, expect(tlv, 0x30, "SignerInfo"))
    if len(f) < 6:
        raise DerError(_("SignerInfo is too short"))
    issuer = serial = ski = None
    if f[1].tag == 0x30:
        ias = children(raw, f[1])
        if len(ias) != 2:
            raise DerError(_("bad issuerAndSerialNumber"))
        issuer, serial = raw[ias[0].start : ias[0].end], der_int(raw, ias[1])
    elif f[1].tag == 0x80:
        ski = raw[f[1].body : f[1].end]
    else:
        raise DerError(_("unknown SignerIdentifier"))
    digest_oid = der_oid(raw, children(raw, expect(f[2], 0x30, "digestAlgorithm"))[0])
    if f[3].tag != 0xA0:
        raise DerError(_("SignerInfo has no signed attributes"))
    attrs: dict[str, list[bytes]] = {}
    for attr in children(raw, f[3]):
        kids = children(raw, expect(attr, 0x30, "Attribute"))
        if len(kids) != 2:
            raise DerError(_("bad Attribute"))
        values = children(raw, expect(kids[1], 0x31, "AttributeValues"))
        attrs.setdefault(der_oid(raw, kids[0]), []).extend(raw[v.start : v.end] for v in values)
    alg = children(raw, expect(f[4], 0x30, "signatureAlgorithm"))
    params = raw[alg[1].start : alg[1].end] if len(alg) > 1 else None
    expect(f[5], 0x04, "signature")
    return Signer(
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


def tbs_issuer(cert: x509.Certificate) -> bytes:
    tbs = cert.tbs_certificate_bytes
    kids = children(tbs, single(tbs))
    index = 3 if kids[0].tag == 0xA0 else 2  # skip [0] version when present
    return tbs[kids[index].start : kids[index].end]


def find_signer_cert(
    signer: Signer, candidates: Sequence[x509.Certificate]
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
                same_issuer = tbs_issuer(cert) == signer.issuer
            except (DerError, IndexError):
                same_issuer = False
            if same_issuer:
                return cert
    return None


def digest_with(oid: str, data: bytes) -> bytes:
    h = hashes.Hash(HASHES[oid]())
    h.update(data)
    return h.finalize()


def check_cert_id(signer: Signer, cert: x509.Certificate) -> tuple[bool, str]:
    """RFC 3161 §2.4.2 / RFC 5035: the signed ESS attribute must name this certificate."""
    der = cert.public_bytes(DER_ENCODING)
    for oid, version in ((_OID_ATTR_SIGNING_CERT_V2, 2), (_OID_ATTR_SIGNING_CERT, 1)):
        values = signer.attrs.get(oid)
        if not values:
            continue
        if len(values) != 1:
            if version == 2:
                return False, _("signingCertificateV2 has several values")
            return False, _("signingCertificate has several values")
        value = values[0]
        ids = children(value, children(value, single(value))[0])
        if not ids:
            return False, _("the signingCertificate attribute lists no certificate")
        first = children(value, ids[0])
        hash_oid = OID_SHA256 if version == 2 else _OID_SHA1
        if version == 2 and first[0].tag == 0x30:
            hash_oid = der_oid(value, children(value, first[0])[0])
            first = first[1:]
        if hash_oid not in HASHES:
            return False, _(
                "the signingCertificate hash algorithm {algorithm} is not supported"
            ).format(algorithm=hash_oid)
        cert_hash = value[first[0].body : first[0].end]
        expect(first[0], 0x04, "certHash")
        if cert_hash != digest_with(hash_oid, der):
            return False, _("the signed signingCertificate attribute names another certificate")
        if len(first) > 1:
            serial_tlv = children(value, first[1])[-1]
            if der_int(value, serial_tlv) != cert.serial_number:
                return False, _("the signingCertificate serial number names another certificate")
        name = "signingCertificateV2" if version == 2 else "signingCertificate"
        return True, _("{attribute} ({algorithm}) names the signer certificate").format(
            attribute=name, algorithm=HASH_NAMES[hash_oid]
        )
    return False, _("no signed signingCertificate attribute (RFC 3161 §2.4.2 requires one)")


def verify_signature(token: Token, signer: Signer, cert: x509.Certificate) -> tuple[bool, str]:
    if token.econtent_type != _OID_CT_TSTINFO:
        return False, _("content type {oid} is not id-ct-TSTInfo").format(oid=token.econtent_type)
    if signer.digest_oid not in HASHES or signer.digest_oid == _OID_SHA1:
        return False, _("digest algorithm {oid} is not accepted").format(oid=signer.digest_oid)
    ctype = signer.attrs.get(_OID_ATTR_CONTENT_TYPE, [])
    if len(ctype) != 1 or der_oid(ctype[0], single(ctype[0])) != _OID_CT_TSTINFO:
        return False, _("the signed contentType attribute is not id-ct-TSTInfo")
    digests = signer.attrs.get(_OID_ATTR_MESSAGE_DIGEST, [])
    if len(digests) != 1:
        return False, _("the signed attributes carry no single messageDigest")
    md = single(digests[0])
    expect(md, 0x04, "messageDigest")
    if digests[0][md.body : md.end] != digest_with(signer.digest_oid, token.econtent):
        return False, _("the TSTInfo does not match the signed messageDigest (content altered)")
    # RFC 5652 §5.4: the signature covers the DER of the attributes as a SET OF.
    signed = b"\x31" + signer.signed_attrs[1:]
    key = cert.public_key()
    try:
        if signer.sig_oid in _RSA_PKCS1 and isinstance(key, rsa.RSAPublicKey):
            hash_oid = _RSA_PKCS1[signer.sig_oid] or signer.digest_oid
            key.verify(signer.signature, signed, padding.PKCS1v15(), HASHES[hash_oid]())
        elif signer.sig_oid == _OID_RSA_PSS and isinstance(key, rsa.RSAPublicKey):
            pss, hash_alg = pss_params(signer.sig_params)
            key.verify(signer.signature, signed, pss, hash_alg)
        elif signer.sig_oid in _ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            hash_oid = _ECDSA[signer.sig_oid] or signer.digest_oid
            key.verify(signer.signature, signed, ec.ECDSA(HASHES[hash_oid]()))
        elif (signer.sig_oid == _OID_ED25519 and isinstance(key, ed25519.Ed25519PublicKey)) or (
            signer.sig_oid == _OID_ED448 and isinstance(key, ed448.Ed448PublicKey)
        ):
            key.verify(signer.signature, signed)
        else:
            return False, _(
                "signature algorithm {oid} does not fit the signer's {key} or is not supported"
            ).format(oid=signer.sig_oid, key=type(key).__name__.lstrip("_"))
    except InvalidSignature:
        return False, _("the signature does not verify with the signer certificate's key")
    except (ValueError, UnsupportedAlgorithm, KeyError) as err:
        return False, _("the signature cannot be verified: {why}").format(why=err)
    return True, _("the CMS signature over the TSTInfo verifies")


def pss_params(params: bytes | None) -> tuple[padding.PSS, hashes.HashAlgorithm]:
    hash_oid, mgf_oid, salt = _OID_SHA1, _OID_SHA1, 20  # RFC 4055 defaults
    if params is not None:
        for item in children(params, single(params)):
            inner = children(params, item)
            if item.tag == 0xA0:
                hash_oid = der_oid(params, children(params, inner[0])[0])
            elif item.tag == 0xA1:
                mgf = children(params, inner[0])
                if der_oid(params, mgf[0]) != _OID_MGF1:
                    raise ValueError(
                        _("RSASSA-PSS with a mask generation function other than MGF1")
                    )
                mgf_oid = der_oid(params, children(params, mgf[1])[0])
            elif item.tag == 0xA2:
                salt = der_int(params, inner[0])
    if hash_oid == _OID_SHA1 or hash_oid not in HASHES or mgf_oid not in HASHES:
        raise ValueError(_("RSASSA-PSS hash {oid} is not accepted").format(oid=hash_oid))
    return padding.PSS(padding.MGF1(HASHES[mgf_oid]()), salt), HASHES[hash_oid]()


def check_eku(cert: x509.Certificate) -> tuple[bool, str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return False, _("the signer certificate has no extendedKeyUsage extension")
    except ValueError as err:
        return False, _("the signer certificate's extensions cannot be read: {why}").format(why=err)
    if ExtendedKeyUsageOID.TIME_STAMPING not in ext.value:
        return False, _("the signer certificate's extendedKeyUsage lacks id-kp-timeStamping")
    if not ext.critical:
        return False, _("the signer certificate's extendedKeyUsage is not critical (RFC 3161 §2.3)")
    if len(list(ext.value)) != 1:
        return False, _("the signer certificate's extendedKeyUsage must be id-kp-timeStamping only")
    return True, _("extendedKeyUsage is critical and id-kp-timeStamping only")


def cert_name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or _("(empty subject)")


def valid_at(cert: x509.Certificate, when: _dt.datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def is_self_signed(cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def can_issue(cert: x509.Certificate) -> bool:
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


def build_path(
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    when: _dt.datetime,
) -> tuple[list[x509.Certificate] | None, str]:
    """A path leaf -> ... -> anchor where every link's signature verifies.

    Time is not judged here (see the validity check) except to prefer, among several
    candidate issuers, those valid at ``when``.
    """
    anchor_ders = {a.public_bytes(DER_ENCODING) for a in anchors}
    problems: list[str] = []

    def extend(path: list[x509.Certificate]) -> list[x509.Certificate] | None:
        cert = path[-1]
        if cert.public_bytes(DER_ENCODING) in anchor_ders:
            return path
        if len(path) > MAX_CHAIN_DEPTH:
            problems.append(_("the chain is too long"))
            return None
        seen = {c.public_bytes(DER_ENCODING) for c in path}
        candidates = [c for c in [*anchors, *pool] if c.subject == cert.issuer]
        candidates = [c for c in candidates if c.public_bytes(DER_ENCODING) not in seen]
        candidates.sort(key=lambda c: not valid_at(c, when))
        if not candidates:
            problems.append(
                _("no certificate named {name} is at hand").format(
                    name=repr(cert.issuer.rfc4514_string())
                )
            )
        for issuer in candidates:
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                problems.append(
                    _("{certificate} is not signed by the certificate {issuer} at hand").format(
                        certificate=repr(cert_name(cert)), issuer=repr(cert_name(issuer))
                    )
                )
                continue
            is_anchor = issuer.public_bytes(DER_ENCODING) in anchor_ders
            if not is_anchor and not can_issue(issuer):
                problems.append(
                    _("{certificate} is not a CA certificate").format(
                        certificate=repr(cert_name(issuer))
                    )
                )
                continue
            found = extend([*path, issuer])
            if found is not None:
                return found
        return None

    path = extend([leaf])
    if path is not None:
        chain = " -> ".join(repr(cert_name(c)) for c in path)
        return path, _("{chain} (trust anchor)").format(chain=chain)
    detail = "; ".join(dict.fromkeys(problems)) or _("no issuer found")
    return None, _("no chain from {certificate} to a trust anchor: {problems}").format(
        certificate=repr(cert_name(leaf)), problems=detail
    )


def unique_certs(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    seen: dict[bytes, x509.Certificate] = {}
    for c in certs:
        seen.setdefault(c.public_bytes(DER_ENCODING), c)
    return list(seen.values())
