"""Validation material for timestamp tokens: certificates, CRLs, OCSP answers.

Owns: collecting, for a timestamp token, the TSA's certificate chain and the revocation
information its certificates point at (CRL distribution points, AIA OCSP and caIssuers,
over HTTP with bounded time and size, through ``tsa_client``); recording what could not
be had (offline, refused, unreadable); and answering "was this certificate revoked at
time T?" from that material, with signatures of CRLs and OCSP answers checked against the
issuer. Storing it, through the ledger's store and listed in records, is
``custody.timestamps.keeping``'s.

RFC 4998 §5.3 needs this: each archive timestamp must have been renewed while the one
before it was still valid, i.e. before its certificate expired *or was revoked*; a
verifier decades later must be able to show that from what was kept, offline.

May import: ``custody.errors``, ``custody.clock``, ``custody.timestamps.tsa_client``,
``custody.timestamps.cms``, ``custody.timestamps.rfc3161``, ``custody.timestamps.der``,
``cryptography``, ``asn1crypto`` and the standard library.

Followed: RFC 5280 §4.2.1.13 (cRLDistributionPoints), §4.2.2.1 (authorityInfoAccess),
§5 (CRLs, invalidityDate); RFC 6960 §4.1-§4.2 (OCSP request/response, delegated responder
with id-kp-OCSPSigning).
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from asn1crypto import keys as a_keys
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from custody.clock import Clock, format_time, utc_now
from custody.errors import InputError, TimestampError
from custody.i18n import _
from custody.timestamps.cms import is_self_signed, parse_token
from custody.timestamps.der import DerError
from custody.timestamps.rfc3161 import token_of, wrap_token

__all__ = [
    "Missing",
    "RevocationStatus",
    "ValidationMaterial",
    "collect_validation_material",
    "issuer_path",
    "revocation_status",
    "token_certificates",
]

MANIFEST: Final = "manifest.json"
_FORMAT: Final = "custody-ers-validation-material"
_MAX_FILE: Final = 16 * 1024 * 1024
_MAX_FILES: Final = 10_000


@dataclass(frozen=True)
class Missing:
    """Something a verifier will want and that was not obtained, and why.

    ``reason`` goes into the record that holds the token (``validation_missing``): it is
    English whatever the language of the run, like everything a record keeps."""

    kind: Literal["crl", "ocsp", "issuer"]
    subject: str  # RFC 4514 subject of the certificate concerned
    url: str | None
    reason: str


@dataclass(frozen=True)
class ValidationMaterial:
    """DER certificates, CRLs and OCSP responses kept with an evidence record."""

    certificates: tuple[bytes, ...] = ()
    crls: tuple[bytes, ...] = ()
    ocsp_responses: tuple[bytes, ...] = ()
    missing: tuple[Missing, ...] = ()
    collected_at: _dt.datetime | None = None

    def merged(self, *others: ValidationMaterial) -> ValidationMaterial:
        """Union of the material (duplicates dropped, order kept)."""
        every = (self, *others)

        def union(items: Iterable[bytes]) -> tuple[bytes, ...]:
            return tuple(dict.fromkeys(items))

        return ValidationMaterial(
            certificates=union(c for m in every for c in m.certificates),
            crls=union(c for m in every for c in m.crls),
            ocsp_responses=union(o for m in every for o in m.ocsp_responses),
            missing=tuple(dict.fromkeys(x for m in every for x in m.missing)),
            collected_at=max((m.collected_at for m in every if m.collected_at), default=None),
        )

    def certificate_objects(self) -> list[x509.Certificate]:
        out = []
        for der in self.certificates:
            try:
                out.append(x509.load_der_x509_certificate(der))
            except ValueError:
                continue
        return out


# ------------------------------------------------------------------ collecting


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _http_urls(names: Iterable[x509.GeneralName]) -> list[str]:
    return [
        n.value
        for n in names
        if isinstance(n, x509.UniformResourceIdentifier)
        and n.value.lower().startswith(("http://", "https://"))
    ]


def _crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        dps = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [u for dp in dps for u in _http_urls(dp.full_name or [])]


def _aia_urls(cert: x509.Certificate, method: x509.ObjectIdentifier) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return _http_urls(d.access_location for d in aia if d.access_method == method)


def _load_any_cert(data: bytes) -> list[x509.Certificate]:
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        pass
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        return []


@functools.lru_cache(maxsize=256)  # verification asks about the same CRLs many times
def _load_crl(data: bytes) -> x509.CertificateRevocationList | None:
    for loader in (x509.load_der_x509_crl, x509.load_pem_x509_crl):
        try:
            return loader(data)
        except ValueError:
            continue
    return None


def _is_self_signed(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer and is_self_signed(cert)


def _issuer_of(cert: x509.Certificate, pool: Sequence[x509.Certificate]) -> x509.Certificate | None:
    for cand in pool:
        if cand.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(cand)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        return cand
    return None


def issuer_path(leaf: x509.Certificate, pool: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """``leaf`` and its issuers as far as ``pool`` reaches (each link a verified
    signature), ending at a self-signed certificate when one is found. No trust is
    decided here: this is the path whose revocation status material must show."""
    path = [leaf]
    while len(path) <= 8 and not _is_self_signed(path[-1]):
        issuer = _issuer_of(path[-1], [c for c in pool if c not in path])
        if issuer is None:
            break
        path.append(issuer)
    return path


def collect_validation_material(
    token_der: bytes,
    fetch: bool = True,
    *,
    timeout: float = 10.0,
    max_bytes: int = 4 * 1024 * 1024,
    extra_certificates: Sequence[bytes] = (),
    clock: Clock = utc_now,
    unreachable: set[str] | None = None,
) -> ValidationMaterial:
    """The TSA certificate chain in ``token_der`` and, with ``fetch``, the CRLs and OCSP
    answers its certificates name (and issuer certificates a token left out).

    Each URL gets one request of at most ``timeout`` seconds and ``max_bytes`` bytes;
    only http(s) is followed, never a redirect. Whatever could not be had is listed in
    ``missing`` with the reason (``offline: not fetched`` when ``fetch`` is false), so
    that the gap is on record rather than silent. ``unreachable`` (shared between calls
    of one run) collects hosts that could not be reached, and they are not tried again:
    offline, a run costs one timeout per host, not one per URL. Raises InputError when
    ``token_der`` is not a timestamp token (a TimeStampToken, or a TimeStampResp holding
    one).
    """
    # Imported here: reading a token's material (export, verify) needs no HTTP client.
    from custody.timestamps.tsa_client import (
        CRL_POINT,
        ISSUER_LOCATION,
        OCSP_RESPONDER,
        english_message,
        http_get,
        http_post,
    )

    what = {"crl": CRL_POINT, "ocsp": OCSP_RESPONDER, "issuer": ISSUER_LOCATION}
    dead = unreachable if unreachable is not None else set()
    certs = token_certificates(token_der)
    pool = [c for der in [*certs, *extra_certificates] for c in _load_any_cert(der)]
    fetched_certs: list[bytes] = []
    crls: list[bytes] = []
    answers: list[bytes] = []
    missing: list[Missing] = []

    def skipped(url: str, kind: Literal["crl", "ocsp", "issuer"], subject: str) -> bool:
        if not fetch:
            missing.append(Missing(kind, subject, url, "offline: not fetched"))
            return True
        host = _host(url)
        if host in dead:
            missing.append(Missing(kind, subject, url, f"{host} could not be reached this run"))
            return True
        return False

    def failed(
        url: str, kind: Literal["crl", "ocsp", "issuer"], subject: str, err: Exception
    ) -> None:
        if getattr(err, "unreachable", False):
            dead.add(_host(url))
        missing.append(Missing(kind, subject, url, english_message(err)))

    def get(url: str, kind: Literal["crl", "ocsp", "issuer"], subject: str) -> bytes | None:
        if skipped(url, kind, subject):
            return None
        try:
            return http_get(url, timeout=timeout, max_bytes=max_bytes, what=what[kind])
        except TimestampError as err:
            failed(url, kind, subject, err)
            return None

    queue = list(pool)
    seen: set[bytes] = set()
    while queue:
        cert = queue.pop(0)
        der = cert.public_bytes(serialization.Encoding.DER)
        if der in seen or _is_self_signed(cert):
            continue
        seen.add(der)
        subject = _subject(cert)
        issuer = _issuer_of(cert, pool)
        if issuer is None:
            urls = _aia_urls(cert, AuthorityInformationAccessOID.CA_ISSUERS)
            for url in urls:
                body = get(url, "issuer", subject)
                found = [c for c in _load_any_cert(body or b"") if c.subject == cert.issuer]
                if body is not None and not found:
                    missing.append(Missing("issuer", subject, url, "not an issuer certificate"))
                for c in found:
                    pool.append(c)
                    queue.append(c)
                    fetched_certs.append(c.public_bytes(serialization.Encoding.DER))
                if found:
                    break
            issuer = _issuer_of(cert, pool)
            if issuer is None and not urls:
                missing.append(Missing("issuer", subject, None, "issuer certificate not at hand"))
        crl_urls = _crl_urls(cert)
        ocsp_urls = _aia_urls(cert, AuthorityInformationAccessOID.OCSP)
        if not crl_urls and not ocsp_urls:
            missing.append(
                Missing("crl", subject, None, "the certificate names no CRL or OCSP location")
            )
        for url in crl_urls:
            body = get(url, "crl", subject)
            if body is None:
                continue
            crl = _load_crl(body)
            if crl is None:
                missing.append(Missing("crl", subject, url, "the answer is not a CRL"))
            else:
                crls.append(crl.public_bytes(serialization.Encoding.DER))
        for url in ocsp_urls:
            if issuer is None:
                missing.append(Missing("ocsp", subject, url, "no issuer certificate to ask about"))
                continue
            if skipped(url, "ocsp", subject):
                continue
            request = (
                ocsp.OCSPRequestBuilder()
                .add_certificate(cert, issuer, hashes.SHA1())  # SHA-1 CertID: every responder
                .build()
                .public_bytes(serialization.Encoding.DER)
            )
            try:
                body = http_post(
                    url,
                    request,
                    content_type="application/ocsp-request",
                    timeout=timeout,
                    max_bytes=max_bytes,
                    what=what["ocsp"],
                )
                answer = ocsp.load_der_ocsp_response(body)
            except TimestampError as err:
                failed(url, "ocsp", subject, err)
                continue
            except ValueError:
                missing.append(Missing("ocsp", subject, url, "the answer is not an OCSP response"))
                continue
            if answer.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
                why = f"the responder answered {answer.response_status.name}"
                missing.append(Missing("ocsp", subject, url, why))
                continue
            answers.append(body)
    return ValidationMaterial(
        certificates=tuple(dict.fromkeys([*certs, *fetched_certs])),
        crls=tuple(dict.fromkeys(crls)),
        ocsp_responses=tuple(dict.fromkeys(answers)),
        missing=tuple(missing),
        collected_at=clock(),
    )


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc.lower()


def token_certificates(data: bytes) -> list[bytes]:
    """The DER certificates a TimeStampToken (or a TimeStampResp holding one) carries;
    InputError when ``data`` is neither."""
    for candidate in (data, None):
        try:
            token = data if candidate is not None else token_of(data)
            return parse_token(wrap_token(token)).certificates
        except (DerError, ValueError, IndexError):
            continue
    raise InputError(_("not a timestamp token or timestamp response"))


# ------------------------------------------------------------------ revocation


@dataclass(frozen=True)
class RevocationStatus:
    """A certificate's revocation status as of ``at``.

    ``good``: material issued at or after ``at`` shows it unrevoked then (``revoked_at``
    may still name a later revocation); ``revoked``: revoked at ``revoked_at`` <= ``at``;
    ``unknown``: nothing kept answers for that time. ``source`` says which material, for
    people (in the language of the run; never kept in a record).
    """

    state: Literal["good", "revoked", "unknown"]
    revoked_at: _dt.datetime | None
    source: str


def _crl_revocation_time(entry: x509.RevokedCertificate) -> _dt.datetime:
    when = entry.revocation_date_utc
    try:
        inv = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
        when = min(when, inv.invalidity_date_utc)  # RFC 5280 §5.3.2: known compromise time
    except x509.ExtensionNotFound:
        pass
    return when


def _verify_with(key: object, signature: bytes, data: bytes, algo: hashes.HashAlgorithm) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algo)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algo))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _ocsp_signer_ok(answer: ocsp.OCSPResponse, issuer: x509.Certificate) -> bool:
    algo = answer.signature_hash_algorithm
    if algo is None:
        return False
    if _verify_with(issuer.public_key(), answer.signature, answer.tbs_response_bytes, algo):
        return True
    for responder in answer.certificates:  # delegated responder (RFC 6960 §4.2.2.2)
        try:
            eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            continue
        try:
            responder.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        if _verify_with(responder.public_key(), answer.signature, answer.tbs_response_bytes, algo):
            return True
    return False


@functools.lru_cache(maxsize=1024)
def _crl_signed_by(crl_der: bytes, issuer_der: bytes) -> bool:
    crl = _load_crl(crl_der)
    if crl is None:
        return False
    try:
        key = x509.load_der_x509_certificate(issuer_der).public_key()
        return crl.is_signature_valid(key)  # type: ignore[arg-type]
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return False


def revocation_status(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    material: ValidationMaterial,
    at: _dt.datetime,
) -> RevocationStatus:
    """Was ``cert`` revoked at ``at``, according to CRLs/OCSP answers signed by its issuer?"""
    good: RevocationStatus | None = None
    later: _dt.datetime | None = None
    for der in material.crls:
        crl = _load_crl(der)
        if crl is None or crl.issuer != cert.issuer:
            continue
        if not _crl_signed_by(der, issuer.public_bytes(serialization.Encoding.DER)):
            continue
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        issued = crl.last_update_utc
        if entry is not None:
            when = _crl_revocation_time(entry)
            if when <= at:
                return RevocationStatus("revoked", when, _crl_source(issued))
            later = when if later is None else min(later, when)
        if issued >= at and good is None:
            good = RevocationStatus("good", None, _crl_source(issued))
    for der in material.ocsp_responses:
        try:
            answer = ocsp.load_der_ocsp_response(der)
        except ValueError:
            continue
        if answer.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            continue
        if not _ocsp_signer_ok(answer, issuer):
            continue
        for single in answer.responses:
            if single.serial_number != cert.serial_number:
                continue
            if single.issuer_key_hash != _spki_key_hash(issuer, single.hash_algorithm):
                continue
            produced = answer.produced_at_utc
            source = _("OCSP of {time}").format(time=format_time(produced))
            status = single.certificate_status
            revoked = single.revocation_time_utc
            if status == ocsp.OCSPCertStatus.REVOKED and revoked is not None:
                if revoked <= at:
                    return RevocationStatus("revoked", revoked, source)
                later = revoked if later is None else min(later, revoked)
            elif status != ocsp.OCSPCertStatus.GOOD:
                continue  # UNKNOWN: the responder does not know the certificate
            # answered at or after `at`, and not revoked by then: unrevoked at `at`
            if produced >= at and good is None:
                good = RevocationStatus("good", None, source)
    if good is not None:
        return RevocationStatus("good", later, good.source)
    return RevocationStatus("unknown", later, _("no CRL or OCSP answer kept covers that time"))


def _crl_source(issued: _dt.datetime) -> str:
    return _("CRL of {time}").format(time=format_time(issued))


def _spki_key_hash(issuer: x509.Certificate, algo: hashes.HashAlgorithm) -> bytes:
    # RFC 6960 §4.1.1: issuerKeyHash is the hash of the subjectPublicKey BIT STRING value
    # (not of the whole SubjectPublicKeyInfo).
    spki = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bits = a_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:]
    return hashlib.new(algo.name, bits).digest()
