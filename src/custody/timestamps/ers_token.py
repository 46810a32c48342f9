"""RFC 3161 timestamp tokens as RFC 4998 evidence records use them.

Owns: the hash algorithms an evidence record may name (:data:`ALGORITHMS`); building a
``TimeStampReq`` over a digest of any of them; posting it to a timestamp authority
(:class:`HttpTsa`); reading the answer and taking out the ``TimeStampToken`` (a CMS
``ContentInfo``) in DER; and checking a token on its own terms (:func:`check_token`):
its signature, the ESS binding of its signer certificate, the critical ``timeStamping``
EKU, a certification path to the caller's trust roots with every certificate valid at the
token's ``genTime``. Revocation and "still valid later" questions belong to
``ers_material`` and ``ers``.

This module is self-contained on purpose (custody's older ``timestamps`` module accepts
SHA-256 imprints only, while evidence records migrate to other algorithms). It may import
``custody.errors``, ``asn1crypto`` (CMS/TSP structures), ``cryptography`` (certificates,
signatures) and the standard library; nothing else of custody.

Followed: RFC 3161 §2.4 (request/response), RFC 5652 §5.3-§5.6 (SignerInfo, signed
attributes, signature over their DER as a SET OF), RFC 2634 §5.4 / RFC 5035 (ESS
signingCertificate(V2)), RFC 5280 §6 (path: signatures, names, validity).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import http.client
import ipaddress
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from asn1crypto import cms as a_cms
from asn1crypto import tsp as a_tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID

from custody.errors import TimestampError, UsageError

__all__ = [
    "ALGORITHMS",
    "MAX_RESPONSE_BYTES",
    "HashAlgorithm",
    "HttpTsa",
    "TokenCheck",
    "TokenFacts",
    "Transport",
    "algorithm",
    "algorithm_by_oid",
    "build_request",
    "check_token",
    "der_sort_token_sets",
    "http_get",
    "token_from_response",
]

MAX_RESPONSE_BYTES: Final = 1024 * 1024
_MAX_PATH: Final = 8


@dataclass(frozen=True, slots=True)
class HashAlgorithm:
    """A hash algorithm by its custody name, dotted OID and output size in bytes."""

    name: str
    oid: str
    size: int
    hashlib_name: str

    def digest(self, data: bytes) -> bytes:
        return hashlib.new(self.hashlib_name, data).digest()

    def new(self) -> Any:  # hashlib objects have no public common type
        return hashlib.new(self.hashlib_name)

    @property
    def der(self) -> bytes:
        """AlgorithmIdentifier with parameters absent (RFC 5754 §2: SHOULD be omitted)."""
        return der_tlv(0x30, der_oid(self.oid))


ALGORITHMS: Final[dict[str, HashAlgorithm]] = {
    a.name: a
    for a in (
        HashAlgorithm("sha1", "1.3.14.3.2.26", 20, "sha1"),
        HashAlgorithm("sha256", "2.16.840.1.101.3.4.2.1", 32, "sha256"),
        HashAlgorithm("sha384", "2.16.840.1.101.3.4.2.2", 48, "sha384"),
        HashAlgorithm("sha512", "2.16.840.1.101.3.4.2.3", 64, "sha512"),
        HashAlgorithm("sha3-256", "2.16.840.1.101.3.4.2.8", 32, "sha3_256"),
        HashAlgorithm("sha3-384", "2.16.840.1.101.3.4.2.9", 48, "sha3_384"),
        HashAlgorithm("sha3-512", "2.16.840.1.101.3.4.2.10", 64, "sha3_512"),
    )
}
_BY_OID: Final = {a.oid: a for a in ALGORITHMS.values()}


def algorithm(name: str) -> HashAlgorithm:
    """The algorithm called ``name`` (``sha256``, ``sha512``, ``sha3-256``, ...)."""
    try:
        return ALGORITHMS[name.lower()]
    except KeyError:
        known = ", ".join(n for n in ALGORITHMS if n != "sha1")
        raise UsageError(f"unknown hash algorithm {name!r}; one of {known}") from None


def algorithm_by_oid(oid: str) -> HashAlgorithm | None:
    return _BY_OID.get(oid)


# ------------------------------------------------------------------------- DER
# Writing: a handful of TLVs is all an evidence record needs, and writing them directly
# is ~20x faster than building asn1crypto objects (it matters at 100,000 records).


def der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def der_tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + der_length(len(content)) + content


def der_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for value in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [value & 0x7F]
        value >>= 7
        while value:
            chunk.append(0x80 | (value & 0x7F))
            value >>= 7
        body += bytes(reversed(chunk))
    return der_tlv(0x06, bytes(body))


def der_uint(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return der_tlv(0x02, raw)


# Reading: a strict walker used to check that what is hashed is DER (definite, minimal
# lengths), and to put SET OF certificates/CRLs of a SignedData into DER order.


class DerError(ValueError):
    """The bytes are not the DER expected at this point."""


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    start: int
    body: int
    end: int


def read_tlv(data: bytes, pos: int, limit: int) -> Tlv:
    if pos + 2 > limit:
        raise DerError("truncated element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not used here")
    first = data[pos + 1]
    if first < 0x80:
        length, body = first, pos + 2
    elif first == 0x80:
        raise DerError("indefinite length (BER, not DER)")
    else:
        n = first & 0x7F
        if n > 4 or pos + 2 + n > limit:
            raise DerError("bad length")
        length = int.from_bytes(data[pos + 2 : pos + 2 + n], "big")
        if length < 0x80 or data[pos + 2] == 0:
            raise DerError("length not in minimal form (BER, not DER)")
        body = pos + 2 + n
    if body + length > limit:
        raise DerError("element overruns its container")
    return Tlv(tag, pos, body, body + length)


def children(data: bytes, parent: Tlv) -> list[Tlv]:
    out = []
    pos = parent.body
    while pos < parent.end:
        tlv = read_tlv(data, pos, parent.end)
        out.append(tlv)
        pos = tlv.end
    return out


def single(data: bytes) -> Tlv:
    tlv = read_tlv(data, 0, len(data))
    if tlv.end != len(data):
        raise DerError("trailing bytes after the element")
    return tlv


def check_der(data: bytes) -> None:
    """Raise DerError unless every constructed element uses definite minimal lengths."""
    stack = [single(data)]
    while stack:
        tlv = stack.pop()
        if tlv.tag & 0x20:
            stack.extend(children(data, tlv))
        if tlv.tag == 0x31:  # a universal SET OF: DER wants its elements sorted
            elems = [data[c.start : c.end] for c in children(data, tlv)]
            if elems != sorted(elems):
                raise DerError("SET OF elements not in DER order")


def der_sort_token_sets(token: bytes) -> bytes:
    """The token with SignedData ``certificates`` [0] and ``crls`` [1] in DER order.

    Those two fields lie outside the signature (RFC 5652 §5.4: the signature covers the
    signed attributes, which cover the eContent through messageDigest), and many TSAs,
    OpenSSL's among them, send the signer certificate first. RFC 4998 hashes timestamps
    in DER (§5.2), and Bouncy Castle hashes its DER re-encoding, so an evidence record
    must carry the DER form or two verifiers compute two different hashes.
    """
    ci = single(token)
    _oid, explicit = children(token, ci)[:2]
    (sd,) = children(token, explicit)
    out = bytearray(token)
    for field in children(token, sd):
        if field.tag not in (0xA0, 0xA1):
            continue
        elems = [token[c.start : c.end] for c in children(token, field)]
        out[field.body : field.end] = b"".join(sorted(elems))
    return bytes(out)


# --------------------------------------------------------------------- requests


def build_request(digest: bytes, alg: HashAlgorithm) -> tuple[bytes, int]:
    """(DER TimeStampReq, nonce): version 1, the imprint as given, a fresh 64-bit nonce,
    certReq true so that the token carries the TSA certificate (RFC 3161 §2.4.1)."""
    if len(digest) != alg.size:
        raise ValueError(f"a {alg.name} digest has {alg.size} bytes, not {len(digest)}")
    nonce = secrets.randbits(64) | (1 << 63)
    imprint = der_tlv(0x30, alg.der + der_tlv(0x04, digest))
    body = der_uint(1) + imprint + der_uint(nonce) + b"\x01\x01\xff"
    return der_tlv(0x30, body), nonce


Transport = Callable[[bytes], bytes]
"""Sends a DER TimeStampReq to a TSA and returns the DER TimeStampResp, or raises
TimestampError. :class:`HttpTsa` is the one custody uses."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _http(
    url: str,
    *,
    data: bytes | None,
    headers: dict[str, str],
    timeout: float,
    max_bytes: int,
    accept_types: frozenset[str] | None,
) -> bytes:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TimestampError(f"{url!r} is not an http(s) URL")
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if _is_loopback(parts.hostname):
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(
        url, data=data, method="POST" if data is not None else "GET", headers=headers
    )
    deadline = time.monotonic() + timeout
    try:
        with opener.open(request, timeout=timeout) as response:
            ctype = response.headers.get_content_type()
            if accept_types is not None and ctype not in accept_types:
                raise TimestampError(f"{url} answered with content type {ctype!r}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise TimestampError(f"{url} sent more than {max_bytes} bytes; answer refused")
            body = bytearray()
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError
                chunk = response.read1(65536)
                if not chunk:
                    return bytes(body)
                body += chunk
                if len(body) > max_bytes:
                    raise TimestampError(f"{url} sent more than {max_bytes} bytes; answer refused")
    except TimestampError:
        raise
    except urllib.error.HTTPError as err:
        raise TimestampError(f"{url} answered HTTP {err.code} {err.reason}".rstrip()) from None
    except urllib.error.URLError as err:
        raise TimestampError(_unreachable(url, err.reason, timeout)) from None
    except OSError as err:
        raise TimestampError(_unreachable(url, err, timeout)) from None
    except (http.client.HTTPException, ValueError) as err:
        detail = (str(err).splitlines() or [type(err).__name__])[0]
        raise TimestampError(f"{url} sent a malformed HTTP answer: {detail[:120]}") from None


def _unreachable(url: str, reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"{url} did not answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return f"cannot reach {url}: connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return f"cannot reach {url}: {reason.strerror}"
    return f"cannot reach {url}: {reason}".replace("\n", " ")


def http_get(url: str, *, timeout: float, max_bytes: int, accept: str = "*/*") -> bytes:
    """GET ``url`` (no redirects, bounded time and size); TimestampError on failure."""
    return _http(
        url,
        data=None,
        headers={"Accept": accept},
        timeout=timeout,
        max_bytes=max_bytes,
        accept_types=None,
    )


def http_post(url: str, body: bytes, *, content_type: str, timeout: float, max_bytes: int) -> bytes:
    return _http(
        url,
        data=body,
        headers={"Content-Type": content_type},
        timeout=timeout,
        max_bytes=max_bytes,
        accept_types=None,
    )


@dataclass(frozen=True, slots=True)
class HttpTsa:
    """A TSA reached over HTTP(S) (RFC 3161 §3.4): POST, no redirects, bounded answer."""

    url: str
    timeout: float = 20.0

    def __call__(self, request: bytes) -> bytes:
        return _http(
            self.url,
            data=request,
            headers={
                "Content-Type": "application/timestamp-query",
                "Accept": "application/timestamp-reply",
            },
            timeout=self.timeout,
            max_bytes=MAX_RESPONSE_BYTES,
            accept_types=frozenset(
                {"application/timestamp-reply", "application/timestamp-response"}
            ),
        )


def token_from_response(
    response: bytes, *, digest: bytes, alg: HashAlgorithm, nonce: int, source: str
) -> bytes:
    """The DER TimeStampToken in a fresh TimeStampResp, after checking that it answers
    our request: status granted, our imprint and algorithm, our nonce. The certificate
    SETs are put into DER order (see :func:`der_sort_token_sets`); nothing signed changes.
    Raises TimestampError (one line, naming ``source``) otherwise."""
    try:
        resp = a_tsp.TimeStampResp.load(response, strict=True)
        status = resp["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            text = resp["status"]["status_string"].native or []
            raise TimestampError(f"{source} refused the request: {status} {' '.join(text)}")
        token = resp["time_stamp_token"].dump()
        tst = _tst_info(a_cms.ContentInfo.load(token))
        imprint = tst["message_imprint"]
        got_alg = imprint["hash_algorithm"]["algorithm"].dotted
        got = imprint["hashed_message"].native
        got_nonce = tst["nonce"].native
    except TimestampError:
        raise
    except (ValueError, TypeError, KeyError) as err:
        raise TimestampError(f"{source} sent an unreadable timestamp response ({err})") from None
    if got_alg != alg.oid or got != digest:
        raise TimestampError(f"{source} stamped another digest than the one requested")
    if got_nonce != nonce:
        raise TimestampError(f"{source} answered with another nonce than ours (replay?)")
    try:
        fixed = der_sort_token_sets(token)
        check_der(fixed)
    except DerError as err:
        raise TimestampError(f"{source} sent a token that is not DER ({err})") from None
    return fixed


# ------------------------------------------------------------------- checking


@dataclass(frozen=True)
class TokenFacts:
    """What a token says, read without trusting it."""

    gen_time: _dt.datetime
    imprint_algorithm: str  # dotted OID
    imprint: bytes
    serial_number: int
    nonce: int | None
    policy: str
    tsa_name: str | None
    signer: bytes | None  # DER of the signer certificate, when found
    certificates: tuple[bytes, ...]  # DER, as embedded
    path: tuple[bytes, ...] = ()  # DER, signer first, trust anchor last (when one was found)


@dataclass(frozen=True)
class TokenCheck:
    """The verdict on one token: ``problems`` lists (code, detail), empty when sound."""

    facts: TokenFacts | None
    problems: tuple[tuple[str, str], ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def path_certificates(self) -> list[x509.Certificate]:
        if self.facts is None:
            return []
        return [x509.load_der_x509_certificate(c) for c in self.facts.path]


TOKEN_UNREADABLE: Final = "TOKEN_UNREADABLE"
TOKEN_INVALID: Final = "TOKEN_INVALID"  # signature, attributes, ESS binding, EKU
TOKEN_UNTRUSTED: Final = "TOKEN_UNTRUSTED"  # no path to the caller's roots
TOKEN_NOT_VALID_AT_GENTIME: Final = "TOKEN_NOT_VALID_AT_GENTIME"


def _tst_info(ci: Any) -> Any:
    if ci["content_type"].native != "signed_data":
        raise ValueError("the timestamp is not a CMS SignedData")
    encap = ci["content"]["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        raise ValueError("the SignedData does not hold a TSTInfo")
    return encap["content"].parsed


def read_token(token: bytes) -> tuple[Any, Any]:
    """(ContentInfo, TSTInfo) of a DER TimeStampToken; ValueError if unreadable."""
    ci = a_cms.ContentInfo.load(token, strict=True)
    tst = _tst_info(ci)
    _ = tst.native  # force a full parse now, so that garbage fails here
    return ci, tst


def _utc(moment: _dt.datetime) -> _dt.datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=_dt.UTC)).astimezone(_dt.UTC)


def _load_certs(ders: Sequence[bytes]) -> list[x509.Certificate]:
    out = []
    for der in ders:
        try:
            out.append(x509.load_der_x509_certificate(der))
        except ValueError:
            continue
    return out


def _find_signer(sid: Any, pool: Sequence[x509.Certificate]) -> x509.Certificate | None:
    if sid.name == "issuer_and_serial_number":
        serial = sid.chosen["serial_number"].native
        issuer = sid.chosen["issuer"].dump()
        for cert in pool:
            if cert.serial_number == serial and cert.issuer.public_bytes() == issuer:
                return cert
        return None
    ski = sid.chosen.native
    for cert in pool:
        try:
            ext = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            continue
        if ext.value.digest == ski:
            return cert
    return None


def _hash_for(name: str) -> hashes.HashAlgorithm:
    table: dict[str, type[hashes.HashAlgorithm]] = {
        "sha1": hashes.SHA1,
        "sha224": hashes.SHA224,
        "sha256": hashes.SHA256,
        "sha384": hashes.SHA384,
        "sha512": hashes.SHA512,
        "sha3_256": hashes.SHA3_256,
        "sha3_384": hashes.SHA3_384,
        "sha3_512": hashes.SHA3_512,
    }
    if name not in table:
        raise ValueError(f"unsupported digest {name}")
    return table[name]()


def _verify_signature(signer: Any, cert: x509.Certificate, signed: bytes) -> None:
    """Raise InvalidSignature/ValueError unless ``signed`` verifies under ``cert``."""
    sig_alg = signer["signature_algorithm"]
    signature = signer["signature"].native
    key = cert.public_key()
    name = sig_alg.signature_algo
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        key.verify(signature, signed)
        return
    try:
        hash_name = sig_alg.hash_algo
    except ValueError:  # rsassa_pkcs1v15 / ecdsa without a hash in the OID
        hash_name = signer["digest_algorithm"]["algorithm"].native
    digest = _hash_for(hash_name)
    if isinstance(key, rsa.RSAPublicKey):
        if name == "rsassa_pss":
            params = sig_alg["parameters"]
            pss_hash = _hash_for(params["hash_algorithm"]["algorithm"].native)
            mgf_hash = _hash_for(params["mask_gen_algorithm"]["parameters"]["algorithm"].native)
            key.verify(
                signature,
                signed,
                padding.PSS(padding.MGF1(mgf_hash), params["salt_length"].native),
                pss_hash,
            )
        else:
            key.verify(signature, signed, padding.PKCS1v15(), digest)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, signed, ec.ECDSA(digest))
    else:
        raise ValueError(f"unsupported signer key type {type(key).__name__}")


def _check_signer(ci: Any, signer: Any, cert: x509.Certificate) -> tuple[str, str] | None:
    """The signed attributes, ESS binding, EKU and signature; the first problem found."""
    sd = ci["content"]
    econtent = sd["encap_content_info"]["content"].contents
    attrs = signer["signed_attrs"]
    if not attrs:
        return TOKEN_INVALID, "the SignerInfo has no signed attributes (RFC 3161 §2.4.2)"
    by_type: dict[str, Any] = {}
    for attr in attrs:
        by_type[attr["type"].native] = attr["values"]
    if [v.native for v in by_type.get("content_type", [])] != ["tst_info"]:
        return TOKEN_INVALID, "the content-type attribute is not id-ct-TSTInfo"
    digest_name = signer["digest_algorithm"]["algorithm"].native
    try:  # asn1crypto's names (sha256, sha3_256, ...) are hashlib's
        econtent_digest = hashlib.new(digest_name)
    except (ValueError, TypeError):
        return TOKEN_INVALID, f"unsupported message digest algorithm {digest_name}"
    econtent_digest.update(econtent)
    if [v.native for v in by_type.get("message_digest", [])] != [econtent_digest.digest()]:
        return TOKEN_INVALID, "the messageDigest attribute does not match the TSTInfo (altered)"
    der = cert.public_bytes(Encoding.DER)
    ess = by_type.get("signing_certificate_v2") or by_type.get("signing_certificate")
    if not ess:
        return TOKEN_INVALID, "no ESS signingCertificate(V2) attribute names the signer"
    first = ess[0]["certs"][0]
    # ESSCertIDv2 names its hash (default SHA-256, RFC 5035); ESSCertID is always SHA-1.
    ess_hash = first["hash_algorithm"]["algorithm"].native if "hash_algorithm" in first else "sha1"
    try:
        expected = hashlib.new(ess_hash, der).digest()
    except (ValueError, TypeError):
        return TOKEN_INVALID, f"unsupported ESS certificate hash {ess_hash}"
    if first["cert_hash"].native != expected:
        return TOKEN_INVALID, "the ESS signingCertificate names another certificate"
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return TOKEN_INVALID, "the signer certificate has no extended key usage"
    if not eku.critical or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        return TOKEN_INVALID, "the signer certificate lacks the sole, critical timeStamping EKU"
    signed = b"\x31" + attrs.dump()[1:]  # RFC 5652 §5.4: signed as an explicit SET OF
    try:
        _verify_signature(signer, cert, signed)
    except InvalidSignature:
        return TOKEN_INVALID, "the signature does not verify (forged or altered)"
    except (ValueError, TypeError, UnsupportedAlgorithm, KeyError) as err:
        return TOKEN_INVALID, f"the signature cannot be checked: {err}"
    return None


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _can_issue(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not bc.ca:
        return False
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ku.key_cert_sign


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def build_path(
    leaf: x509.Certificate, pool: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]
) -> list[x509.Certificate] | None:
    """A path leaf -> ... -> anchor whose every link is a verified signature, or None."""
    anchor_ders = {a.public_bytes(Encoding.DER) for a in anchors}
    candidates = [*anchors, *pool]

    def extend(path: list[x509.Certificate]) -> list[x509.Certificate] | None:
        tip = path[-1]
        if tip.public_bytes(Encoding.DER) in anchor_ders:
            return path
        if len(path) > _MAX_PATH:
            return None
        for issuer in candidates:
            if issuer in path or issuer.subject != tip.issuer or not _can_issue(issuer):
                continue
            if _issued_by(tip, issuer):
                found = extend([*path, issuer])
                if found:
                    return found
        return None

    return extend([leaf])


def valid_at(cert: x509.Certificate, when: _dt.datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def _tsa_name(tst: Any) -> str | None:
    tsa = tst["tsa"]
    if tsa.native is None:
        return None
    if tsa.name == "directory_name":
        return str(tsa.chosen.human_friendly)
    return str(tsa.native)


def check_token(
    token: bytes,
    *,
    roots: Sequence[x509.Certificate],
    extra_certificates: Sequence[bytes] = (),
) -> TokenCheck:
    """Check a DER TimeStampToken on its own terms, as of its own ``genTime``.

    ``roots`` are the trust anchors (only a path ending in one counts: TOKEN_UNTRUSTED
    otherwise); ``extra_certificates`` help build paths (validation material kept with
    the record). Never raises for any value of ``token``.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return _check_token(token, roots, extra_certificates)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as err:  # defence in depth: a verdict, never a crash
        return TokenCheck(None, ((TOKEN_UNREADABLE, f"unexpected error: {err!r}"[:300]),))


def _check_token(
    token: bytes, roots: Sequence[x509.Certificate], extra: Sequence[bytes]
) -> TokenCheck:
    try:
        ci, tst = read_token(token)
        sd = ci["content"]
        signers = list(sd["signer_infos"])
        embedded = [c.chosen.dump() for c in sd["certificates"] or [] if c.name == "certificate"]
        imprint = tst["message_imprint"]
        facts = TokenFacts(
            gen_time=_utc(tst["gen_time"].native),
            imprint_algorithm=imprint["hash_algorithm"]["algorithm"].dotted,
            imprint=imprint["hashed_message"].native,
            serial_number=tst["serial_number"].native,
            nonce=tst["nonce"].native,
            policy=tst["policy"].dotted,
            tsa_name=_tsa_name(tst),
            signer=None,
            certificates=tuple(embedded),
        )
    except (ValueError, TypeError, KeyError) as err:
        return TokenCheck(None, ((TOKEN_UNREADABLE, f"not a timestamp token ({err})"[:300]),))
    if len(signers) != 1:
        return TokenCheck(facts, ((TOKEN_INVALID, f"{len(signers)} SignerInfos, not one"),))
    pool = _load_certs([*embedded, *extra])
    signer_cert = _find_signer(signers[0]["sid"], pool)
    if signer_cert is None:
        return TokenCheck(facts, ((TOKEN_INVALID, "the signer certificate is not available"),))
    facts = _replace(facts, signer=signer_cert.public_bytes(Encoding.DER))
    problem = _check_signer(ci, signers[0], signer_cert)
    if problem:
        return TokenCheck(facts, (problem,))
    anchors = [r for r in roots if _is_self_signed(r)] or list(roots)
    if not anchors:
        return TokenCheck(facts, ((TOKEN_UNTRUSTED, "no trust roots were given"),))
    path = build_path(signer_cert, pool, anchors)
    if path is None:
        return TokenCheck(
            facts, ((TOKEN_UNTRUSTED, "no certification path to the given trust roots"),)
        )
    facts = _replace(facts, path=tuple(c.public_bytes(Encoding.DER) for c in path))
    stale = [c for c in path if not valid_at(c, facts.gen_time)]
    if stale:
        windows = "; ".join(
            f"{c.subject.rfc4514_string()} valid {c.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}"
            f" to {c.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
            for c in stale
        )
        when = f"{facts.gen_time:%Y-%m-%dT%H:%M:%SZ}"
        return TokenCheck(facts, ((TOKEN_NOT_VALID_AT_GENTIME, f"at genTime {when}: {windows}"),))
    return TokenCheck(facts, ())


def _replace(facts: TokenFacts, **changes: Any) -> TokenFacts:
    return dataclasses.replace(facts, **changes)
