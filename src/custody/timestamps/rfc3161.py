"""RFC 3161 trusted timestamps over ledger checkpoints.

The message imprint of every token is the SHA-256 of a checkpoint record's exact
bytes (docs/format.md); this module only ever sees that 32-byte digest.

Three steps, kept apart so that each can be tested and reused on its own:

* :func:`build_request` makes a ``TimeStampReq`` (SHA-256 imprint, fresh random
  nonce, ``certReq`` true);
* :func:`request_token` POSTs it to a timestamp authority (TSA) and returns the raw
  DER ``TimeStampResp`` exactly as received; those bytes are what custody stores;
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
import http.client
import ipaddress
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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

from custody.errors import TimestampError

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
    "CONTENT_TYPE_QUERY",
    "CONTENT_TYPE_REPLY",
    "MAX_RESPONSE_BYTES",
    "TIMESTAMP_INVALID",
    "TIMESTAMP_MISMATCH",
    "TIMESTAMP_UNTRUSTED",
    "Check",
    "TimestampRequest",
    "TokenCheck",
    "TrustMode",
    "build_request",
    "check_response",
    "openssl_verify_command",
    "request_token",
]

CONTENT_TYPE_QUERY: Final = "application/timestamp-query"
CONTENT_TYPE_REPLY: Final = "application/timestamp-reply"
# RFC 3161 §3.4 names application/timestamp-reply; a few deployed TSAs answer with the
# draft name application/timestamp-response. Both carry the same DER TimeStampResp.
_REPLY_TYPES: Final = frozenset({CONTENT_TYPE_REPLY, "application/timestamp-response"})
MAX_RESPONSE_BYTES: Final = 1024 * 1024  # real tokens with a full chain are < 20 KiB

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
_OID_SIGNED_DATA: Final = "1.2.840.113549.1.7.2"
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


# --------------------------------------------------------------------------- DER
# A minimal reader for the few CMS/TSP structures custody must look into itself:
# definite lengths only, low tag numbers only, bounds checked everywhere. It is used
# (a) to put the certificate SET back into DER order and (b) to reach the signed
# attributes and signature bytes that rfc3161-client does not expose.


class _DerError(ValueError):
    """The bytes are not the DER structure expected at this point."""


@dataclass(frozen=True, slots=True)
class _Tlv:
    tag: int
    start: int  # offset of the tag octet
    body: int  # offset of the first content octet
    end: int  # offset just past the content


def _read_tlv(data: bytes, pos: int, limit: int) -> _Tlv:
    if pos + 2 > limit:
        raise _DerError("truncated DER header")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise _DerError("high tag numbers are not used in these structures")
    first = data[pos + 1]
    if first < 0x80:
        length, body = first, pos + 2
    elif first == 0x80:
        raise _DerError("indefinite length is not DER")
    else:
        count = first & 0x7F
        if count > 4 or pos + 2 + count > limit:
            raise _DerError("bad DER length")
        length = int.from_bytes(data[pos + 2 : pos + 2 + count], "big")
        body = pos + 2 + count
    if body + length > limit:
        raise _DerError("DER value runs past its container")
    return _Tlv(tag, pos, body, body + length)


def _single(data: bytes) -> _Tlv:
    tlv = _read_tlv(data, 0, len(data))
    if tlv.end != len(data):
        raise _DerError("trailing bytes after the DER value")
    return tlv


def _children(data: bytes, parent: _Tlv) -> list[_Tlv]:
    kids: list[_Tlv] = []
    pos = parent.body
    while pos < parent.end:
        kid = _read_tlv(data, pos, parent.end)
        kids.append(kid)
        pos = kid.end
    return kids


def _expect(tlv: _Tlv, tag: int, what: str) -> _Tlv:
    if tlv.tag != tag:
        raise _DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{tlv.tag:02x}")
    return tlv


def _oid(data: bytes, tlv: _Tlv) -> str:
    content = data[tlv.body : tlv.end]
    _expect(tlv, 0x06, "OBJECT IDENTIFIER")
    if not content:
        raise _DerError("empty OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for octet in content:
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    if content[-1] & 0x80:
        raise _DerError("truncated OBJECT IDENTIFIER")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def _int(data: bytes, tlv: _Tlv) -> int:
    _expect(tlv, 0x02, "INTEGER")
    return int.from_bytes(data[tlv.body : tlv.end], "big", signed=True)


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def _der_uint(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _signed_data(raw: bytes) -> tuple[list[_Tlv], _Tlv]:
    """Return the SignedData's fields and the TimeStampResp's PKIStatusInfo."""
    top = _expect(_single(raw), 0x30, "TimeStampResp")
    resp = _children(raw, top)
    if len(resp) != 2:
        raise _DerError("TimeStampResp has no timeStampToken")
    content_info = _children(raw, _expect(resp[1], 0x30, "ContentInfo"))
    if len(content_info) != 2 or _oid(raw, content_info[0]) != _OID_SIGNED_DATA:
        raise _DerError("timeStampToken is not CMS SignedData")
    explicit = _children(raw, _expect(content_info[1], 0xA0, "ContentInfo.content"))
    if len(explicit) != 1:
        raise _DerError("bad ContentInfo.content")
    return _children(raw, _expect(explicit[0], 0x30, "SignedData")), resp[0]


def _der_sorted_certificates(raw: bytes) -> bytes | None:
    """The same response with SignedData.certificates re-emitted in DER SET OF order.

    Only whole certificate encodings are permuted inside the ``[0]`` field, so every
    length stays the same and nothing outside that field changes. Returns None when
    the structure is not recognised or the order is already DER.
    """
    try:
        fields, _status = _signed_data(raw)
        cert_field = next((f for f in fields if f.tag == 0xA0), None)
        if cert_field is None:
            return None
        elements = [raw[c.start : c.end] for c in _children(raw, cert_field)]
    except _DerError:
        return None
    # X.690 §11.6: ascending order of the encodings compared as octet strings. Two
    # distinct complete TLVs can never be prefixes of one another, so plain byte
    # ordering is the DER order.
    ordered = sorted(elements)
    if ordered == elements:
        return None
    fixed = raw[: cert_field.body] + b"".join(ordered) + raw[cert_field.end :]
    return fixed if len(fixed) == len(raw) else None


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


@dataclass(frozen=True)
class TimestampRequest:
    """A DER ``TimeStampReq`` over a SHA-256 digest, with the nonce kept for checking."""

    digest: bytes
    nonce: int
    der: bytes = field(repr=False)
    cert_req: bool = True

    def as_bytes(self) -> bytes:
        return self.der


# ----------------------------------------------------------------- requesting


def build_request(digest: bytes) -> TimestampRequest:
    """A ``TimeStampReq`` (RFC 3161 §2.4.1) for a 32-byte SHA-256 digest.

    The imprint is the digest itself (rfc3161-client's TimestampRequestBuilder hashes
    the data it is given, which would stamp SHA-256 of the digest instead), with a fresh
    random 64-bit nonce and ``certReq`` true so the TSA includes its certificate.
    """
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise ValueError("a SHA-256 digest of exactly 32 bytes is required")
    nonce = secrets.randbits(64) | (1 << 63)  # always a full 64 bits
    algorithm = _der(0x30, _der(0x06, bytes.fromhex("608648016503040201")) + b"\x05\x00")
    imprint = _der(0x30, algorithm + _der(0x04, digest))
    body = _der_uint(1) + imprint + _der_uint(nonce) + b"\x01\x01\xff"
    return TimestampRequest(digest=digest, nonce=nonce, cert_req=True, der=_der(0x30, body))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a bodiless GET; a TSA URL that
    # redirects is a configuration problem, reported as the HTTP status it is.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def request_token(url: str, request: TimestampRequest, *, timeout: float = 20.0) -> bytes:
    """POST ``request`` to the TSA at ``url`` and return the raw DER response.

    ``timeout`` bounds connecting and every blocking read, so a server that accepts
    the connection and stays silent costs ``timeout`` seconds; in addition the body is
    abandoned once ``timeout`` has elapsed since the start (checked between reads), so
    a server trickling bytes cannot hold the caller much longer. Raises TimestampError
    (one line) on anything but an HTTP 200 ``application/timestamp-reply`` of at most
    MAX_RESPONSE_BYTES. The bytes are not checked here: see :func:`check_response`.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TimestampError(f"timestamp authority URL {url!r} is not an http(s) URL")
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if _is_loopback(parts.hostname):
        handlers.append(urllib.request.ProxyHandler({}))  # never proxy loopback
    opener = urllib.request.build_opener(*handlers)
    http_request = urllib.request.Request(
        url,
        data=request.as_bytes(),
        method="POST",
        headers={"Content-Type": CONTENT_TYPE_QUERY, "Accept": CONTENT_TYPE_REPLY},
    )
    deadline = time.monotonic() + timeout
    try:
        with opener.open(http_request, timeout=timeout) as response:
            ctype = response.headers.get_content_type()
            if ctype not in _REPLY_TYPES:
                raise TimestampError(
                    f"timestamp authority {url} answered with content type {ctype!r}, "
                    f"not {CONTENT_TYPE_REPLY}"
                )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                raise TimestampError(_too_big(url))
            body = bytearray()
            while True:
                # Each read blocks for at most `timeout` (the socket timeout); the
                # deadline stops a server that trickles bytes from stretching it.
                if time.monotonic() > deadline:
                    raise TimeoutError
                chunk = response.read1(65536)
                if not chunk:
                    break
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise TimestampError(_too_big(url))
            return bytes(body)
    except TimestampError:
        raise
    except urllib.error.HTTPError as err:
        raise TimestampError(
            f"timestamp authority {url} answered HTTP {err.code} {err.reason}".rstrip()
        ) from None
    except urllib.error.URLError as err:
        raise TimestampError(_unreachable(url, err.reason, timeout)) from None
    except OSError as err:  # timeouts, resets, TLS failures while reading
        raise TimestampError(_unreachable(url, err, timeout)) from None
    except (http.client.HTTPException, ValueError) as err:  # malformed HTTP
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TimestampError(
            f"timestamp authority {url} sent a malformed HTTP answer: {detail[:120]}"
        ) from None


def _too_big(url: str) -> str:
    return f"timestamp authority {url} sent more than {MAX_RESPONSE_BYTES} bytes; answer refused"


def _unreachable(url: str, reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"timestamp authority {url} did not answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return f"cannot reach timestamp authority {url}: connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return f"cannot reach timestamp authority {url}: {reason.strerror}"
    return f"cannot reach timestamp authority {url}: {reason}".replace("\n", " ")


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
    fields, _status = _signed_data(raw)
    if len(fields) < 4:
        raise _DerError("SignedData is too short")
    encap = _children(raw, _expect(fields[2], 0x30, "EncapsulatedContentInfo"))
    if len(encap) != 2:
        raise _DerError("the token carries no content")
    econtent_type = _oid(raw, encap[0])
    inner = _children(raw, _expect(encap[1], 0xA0, "eContent"))
    if len(inner) != 1:
        raise _DerError("bad eContent")
    econtent = raw[inner[0].body : inner[0].end]
    _expect(inner[0], 0x04, "eContent")
    certificates: list[bytes] = []
    for f in fields[3:-1]:
        if f.tag == 0xA0:
            certificates = [raw[c.start : c.end] for c in _children(raw, f) if c.tag == 0x30]
    signer_set = _expect(fields[-1], 0x31, "SignerInfos")
    return _Token(
        econtent_type,
        econtent,
        certificates,
        [_parse_signer(raw, s) for s in _children(raw, signer_set)],
    )


def _parse_signer(raw: bytes, tlv: _Tlv) -> _Signer:
    f = _children(raw, _expect(tlv, 0x30, "SignerInfo"))
    if len(f) < 6:
        raise _DerError("SignerInfo is too short")
    issuer = serial = ski = None
    if f[1].tag == 0x30:
        ias = _children(raw, f[1])
        if len(ias) != 2:
            raise _DerError("bad issuerAndSerialNumber")
        issuer, serial = raw[ias[0].start : ias[0].end], _int(raw, ias[1])
    elif f[1].tag == 0x80:
        ski = raw[f[1].body : f[1].end]
    else:
        raise _DerError("unknown SignerIdentifier")
    digest_oid = _oid(raw, _children(raw, _expect(f[2], 0x30, "digestAlgorithm"))[0])
    if f[3].tag != 0xA0:
        raise _DerError("SignerInfo has no signed attributes")
    attrs: dict[str, list[bytes]] = {}
    for attr in _children(raw, f[3]):
        kids = _children(raw, _expect(attr, 0x30, "Attribute"))
        if len(kids) != 2:
            raise _DerError("bad Attribute")
        values = _children(raw, _expect(kids[1], 0x31, "AttributeValues"))
        attrs.setdefault(_oid(raw, kids[0]), []).extend(raw[v.start : v.end] for v in values)
    alg = _children(raw, _expect(f[4], 0x30, "signatureAlgorithm"))
    params = raw[alg[1].start : alg[1].end] if len(alg) > 1 else None
    _expect(f[5], 0x04, "signature")
    return _Signer(
        issuer=issuer,
        serial=serial,
        ski=ski,
        digest_oid=digest_oid,
        signed_attrs=raw[f[3].start : f[3].end],
        attrs=attrs,
        sig_oid=_oid(raw, alg[0]),
        sig_params=params,
        signature=raw[f[5].body : f[5].end],
    )


def _tbs_issuer(cert: x509.Certificate) -> bytes:
    tbs = cert.tbs_certificate_bytes
    kids = _children(tbs, _single(tbs))
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
            except (_DerError, IndexError):
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
        ids = _children(value, _children(value, _single(value))[0])
        if not ids:
            return False, "the signingCertificate attribute lists no certificate"
        first = _children(value, ids[0])
        hash_oid = _OID_SHA256 if version == 2 else _OID_SHA1
        if version == 2 and first[0].tag == 0x30:
            hash_oid = _oid(value, _children(value, first[0])[0])
            first = first[1:]
        if hash_oid not in _HASHES:
            return False, f"the signingCertificate hash algorithm {hash_oid} is not supported"
        cert_hash = value[first[0].body : first[0].end]
        _expect(first[0], 0x04, "certHash")
        if cert_hash != _hash(hash_oid, der):
            return False, "the signed signingCertificate attribute names another certificate"
        if len(first) > 1:
            serial_tlv = _children(value, first[1])[-1]
            if _int(value, serial_tlv) != cert.serial_number:
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
    if len(ctype) != 1 or _oid(ctype[0], _single(ctype[0])) != _OID_CT_TSTINFO:
        return False, "the signed contentType attribute is not id-ct-TSTInfo"
    digests = signer.attrs.get(_OID_ATTR_MESSAGE_DIGEST, [])
    if len(digests) != 1:
        return False, "the signed attributes carry no single messageDigest"
    md = _single(digests[0])
    _expect(md, 0x04, "messageDigest")
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
        for item in _children(params, _single(params)):
            inner = _children(params, item)
            if item.tag == 0xA0:
                hash_oid = _oid(params, _children(params, inner[0])[0])
            elif item.tag == 0xA1:
                mgf = _children(params, inner[0])
                if _oid(params, mgf[0]) != _OID_MGF1:
                    raise ValueError("RSASSA-PSS with a mask generation function other than MGF1")
                mgf_oid = _oid(params, _children(params, mgf[1])[0])
            elif item.tag == 0xA2:
                salt = _int(params, inner[0])
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
        status_info = _children(raw, _single(raw))[0]
        for kid in _children(raw, status_info):
            if kid.tag == 0x03 and kid.end - kid.body >= 2:
                unused, bits = raw[kid.body], raw[kid.body + 1 : kid.end]
                flags = [
                    _FAILURE_INFO.get(i, f"bit{i}")
                    for i in range(len(bits) * 8 - unused)
                    if bits[i // 8] & (0x80 >> (i % 8))
                ]
                if flags:
                    text += f" (failInfo {', '.join(flags)})"
    except (_DerError, IndexError):
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
            fixed = _der_sorted_certificates(raw) if "InvalidSetOrdering" in str(err) else None
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
    except (_DerError, IndexError, ValueError) as err:
        add(CHECK_CERT_ID, False, f"the signingCertificate attribute cannot be read: {err}")
    try:
        add(CHECK_SIGNATURE, *_verify_signature(token, signer, signer_cert))
    except (_DerError, IndexError) as err:
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
