"""RFC 3161 timestamp responses and tokens, checked: the one implementation custody has.

Checkpoint tokens stamp the SHA-256 of a checkpoint record's exact bytes
(docs/format.md); RFC 4998 archive timestamps (``custody.timestamps.ers``) stamp hash-tree
roots of SHA-256, SHA-384, SHA-512 or SHA3-512. Both are checked here.

The steps, kept apart so that each can be tested and reused on its own:

* requests are made and sent by ``custody.timestamps.tsa_client``;
* :func:`check_response` examines stored or fresh response bytes and returns a
  :class:`TokenCheck` listing every check, passed or failed, with a reason. It never
  raises for bad input: garbage, forgeries and rejections are results, not errors;
* :func:`check_token` does the same for a bare ``TimeStampToken`` (what an evidence record
  holds), :func:`token_of` takes the token out of a response in DER, and
  :func:`stamp_digest` is one complete exchange: request, send, check, token.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from rfc3161_client import (
    TimeStampTokenInfo,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from custody.errors import TimestampError
from custody.i18n import _, ngettext
from custody.timestamps.algorithms import HashAlgorithm, by_oid
from custody.timestamps.algorithms import algorithm as hash_algorithm
from custody.timestamps.cms import (
    DER_ENCODING,
    HASH_NAMES,
    build_path,
    cert_name,
    check_cert_id,
    check_eku,
    find_signer_cert,
    is_self_signed,
    parse_token,
    unique_certs,
    valid_at,
    verify_signature,
)
from custody.timestamps.der import (
    DerError,
    check_der,
    children,
    der_encode,
    der_sorted_certificates,
    der_sorted_token,
    expect,
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
    "check_token",
    "openssl_verify_command",
    "stamp_digest",
    "token_of",
    "usable",
    "wrap_token",
]


TIMESTAMP_INVALID: Final = "TIMESTAMP_INVALID"


TIMESTAMP_UNTRUSTED: Final = "TIMESTAMP_UNTRUSTED"


TIMESTAMP_MISMATCH: Final = "TIMESTAMP_MISMATCH"


# Names of the checks, in the order check_response runs them.
CHECK_PARSE: Final = "parse"  # a DER TimeStampResp that rfc3161-client can read


CHECK_STATUS: Final = "status"  # PKIStatus granted (or grantedWithMods)


CHECK_IMPRINT: Final = "imprint"  # message imprint: the expected algorithm and digest


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
        if self.tsa_name:
            return _("valid timestamp of {when} by {tsa}").format(when=when, tsa=self.tsa_name)
        return _("valid timestamp of {when} by unnamed TSA").format(when=when)

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)


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
    digest: bytes | None,
    nonce: int | None,
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    trust: TrustMode = "roots",
    algorithm: str | None = "sha256",
) -> TokenCheck:
    """Check a DER TimeStampResp against the expected imprint and trust anchors.

    The imprint must use ``algorithm`` (``None``: any algorithm custody knows) and, when
    ``digest`` is given, stamp exactly it; ``digest=None`` leaves the comparison to the
    caller (an evidence record's hash tree decides what the imprint must be) and marks the
    check skipped.

    ``trust="roots"`` (the default) anchors the signer's chain in ``roots``, with
    ``intermediates`` as extra (configured) chain certificates. ``trust="embedded"``
    is the weaker self-contained mode: the anchors are the self-signed certificates
    the TSA itself put in the token, and ``roots`` is ignored; such a token proves
    only that whoever holds that root's key stamped the digest at genTime.

    Never raises for any value of ``raw``; raises ValueError only for a ``digest``
    that does not fit ``algorithm``, an unknown algorithm or ``trust`` mode (programming
    errors).
    """
    expected = None if algorithm is None else hash_algorithm(algorithm)
    if digest is not None and expected is not None and len(digest) != expected.size:
        raise ValueError(f"digest must be a {expected.name} digest of {expected.size} bytes")
    if trust not in ("roots", "embedded"):
        raise ValueError(f"unknown trust mode {trust!r}")
    try:
        with warnings.catch_warnings():
            # Malformed embedded certificates (e.g. a negative serial) are judged by
            # the checks; cryptography's deprecation warnings about them are noise.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return _check(bytes(raw), digest, expected, nonce, roots, intermediates, trust)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as err:  # pyo3 panics derive from BaseException only
        # Defence in depth: every check below handles its own failures; whatever
        # escapes is still a verdict on the input, never a crash of the caller.
        why = _("unexpected error while checking: {error}").format(error=repr(err))
        return TokenCheck(checks=(Check(CHECK_PARSE, "failed", why),), trust=trust)


def _check(
    raw: bytes,
    digest: bytes | None,
    expected: HashAlgorithm | None,
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
        add(CHECK_PARSE, False, _("not a TimeStampResp ({why})").format(why=_first_line(err)))
        return done(_("not checked: the response could not be read"))
    result = replace(
        result, status=status, status_text=status_text, reordered_certificates=reordered
    )

    # 2. status -------------------------------------------------------------------
    if status not in (0, 1):
        add(CHECK_PARSE, True, _("a DER TimeStampResp"))
        add(CHECK_STATUS, False, _("the TSA refused: {status}").format(status=status_text))
        return done(_("not checked: the TSA granted no token"))
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
        token = parse_token(raw)
    except (ValueError, IndexError, TypeError, AttributeError) as err:
        add(
            CHECK_PARSE,
            False,
            _("the timestamp token cannot be read ({why})").format(why=_first_line(err)),
        )
        return done(_("not checked: the token could not be read"))
    result = replace(result, certificates=tuple(token.certificates))
    embedded: list[x509.Certificate] = []
    unreadable = 0
    for der in token.certificates:
        try:
            embedded.append(x509.load_der_x509_certificate(der))
        except ValueError:
            unreadable += 1
    if reordered:
        parsed = _(
            "a DER TimeStampResp with a TSTInfo (certificate set re-sorted into DER order to "
            "read it)"
        )
    else:
        parsed = _("a DER TimeStampResp with a TSTInfo")
    add(CHECK_PARSE, True, parsed)
    add(CHECK_STATUS, True, status_text)

    # 3. imprint and nonce --------------------------------------------------------
    name = HASH_NAMES.get(hash_oid, hash_oid)
    found_alg = by_oid(hash_oid)
    if expected is not None and hash_oid != expected.oid:
        add(
            CHECK_IMPRINT,
            False,
            _("the imprint algorithm is {found}, not {expected}").format(
                found=name, expected=expected.name
            ),
        )
    elif found_alg is None or not found_alg.imprint:
        add(
            CHECK_IMPRINT,
            False,
            _("the imprint algorithm {algorithm} is not accepted").format(algorithm=name),
        )
    elif len(imprint) != found_alg.size:
        add(
            CHECK_IMPRINT,
            False,
            ngettext(
                "the {algorithm} imprint has {n} bytes",
                "the {algorithm} imprint has {n} bytes",
                len(imprint),
            ).format(algorithm=name, n=len(imprint)),
        )
    elif digest is None:
        skipped = _("{algorithm} imprint {imprint}, compared by the caller").format(
            algorithm=name, imprint=imprint.hex()
        )
        checks.append(Check(CHECK_IMPRINT, "skipped", skipped))
    elif imprint != digest:
        add(
            CHECK_IMPRINT,
            False,
            _("the token stamps {found}, not {expected}").format(
                found=imprint.hex(), expected=digest.hex()
            ),
        )
    else:
        add(
            CHECK_IMPRINT,
            True,
            _("{algorithm} imprint {imprint}").format(algorithm=name, imprint=digest.hex()),
        )
    if nonce is None:
        checks.append(Check(CHECK_NONCE, "skipped", _("no request nonce to compare")))
    elif token_nonce is None:
        add(CHECK_NONCE, False, _("the token carries no nonce although one was requested"))
    elif token_nonce != nonce:
        add(
            CHECK_NONCE,
            False,
            _("nonce {found} is not the request's {expected}").format(
                found=f"{token_nonce:#x}", expected=f"{nonce:#x}"
            ),
        )
    else:
        add(CHECK_NONCE, True, _("nonce {nonce} matches the request").format(nonce=f"{nonce:#x}"))

    # 4. signer certificate, ESS binding, signature -------------------------------
    if len(token.signers) != 1:
        add(
            CHECK_SIGNATURE,
            False,
            _("expected one SignerInfo, found {n}").format(n=len(token.signers)),
        )
        return done(_("not checked: no single signer"))
    signer = token.signers[0]
    extra = [c for c in intermediates if not is_self_signed(c)]
    signer_cert = find_signer_cert(signer, [*embedded, *extra])
    if signer_cert is None:
        if unreadable:
            missing = ngettext(
                "the signer certificate is not in the token ({n} embedded certificate(s) "
                "unreadable)",
                "the signer certificate is not in the token ({n} embedded certificate(s) "
                "unreadable)",
                unreadable,
            ).format(n=unreadable)
        else:
            missing = _("the signer certificate is not in the token")
        add(CHECK_SIGNATURE, False, missing)
        return done(_("not checked: no signer certificate"))
    result = replace(result, signer_certificate=signer_cert.public_bytes(DER_ENCODING))
    add(CHECK_EKU, *check_eku(signer_cert))
    try:
        add(CHECK_CERT_ID, *check_cert_id(signer, signer_cert))
    except (DerError, IndexError, ValueError) as err:
        add(
            CHECK_CERT_ID,
            False,
            _("the signingCertificate attribute cannot be read: {why}").format(why=err),
        )
    try:
        add(CHECK_SIGNATURE, *verify_signature(token, signer, signer_cert))
    except (DerError, IndexError) as err:
        add(
            CHECK_SIGNATURE, False, _("the signed attributes cannot be read: {why}").format(why=err)
        )

    # 5. chain to a trust anchor, and time validity -------------------------------
    if trust == "roots":
        anchors = unique_certs(roots)
        no_anchor = _("no trusted roots were supplied")
    else:
        anchors = unique_certs([c for c in embedded if is_self_signed(c)])
        no_anchor = _("the token carries no self-signed root certificate (self-contained mode)")
    path: list[x509.Certificate] | None = None
    if not anchors:
        add(CHECK_CHAIN, False, no_anchor)
    else:
        path, why = build_path(signer_cert, [*embedded, *extra], anchors, gen_time)
        add(CHECK_CHAIN, path is not None, why)
    if path is not None:
        result = replace(result, chain=tuple(c.public_bytes(DER_ENCODING) for c in path))
    at = f"{gen_time:%Y-%m-%dT%H:%M:%SZ}"
    stale = [c for c in (path or [signer_cert]) if not valid_at(c, gen_time)]
    if stale:
        windows = "; ".join(
            _("{certificate} is valid from {start} to {end}").format(
                certificate=repr(cert_name(c)),
                start=f"{c.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}",
                end=f"{c.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}",
            )
            for c in stale
        )
        add(
            CHECK_VALIDITY,
            False,
            _("not valid at genTime {time}: {windows}").format(time=at, windows=windows),
        )
    elif path:
        add(
            CHECK_VALIDITY,
            True,
            _("every certificate on the chain is valid at genTime {time}").format(time=at),
        )
    else:
        add(
            CHECK_VALIDITY,
            True,
            _("the signer certificate is valid at genTime {time}").format(time=at),
        )

    # 6. rfc3161-client's own verification, the final gate --------------------------
    if any(c.failed for c in checks):
        return done(_("not run: an earlier check failed"))
    if status != 0:
        return done(_("not run: rfc3161-client accepts only status granted"))
    builder = VerifierBuilder(
        roots=anchors,
        # rfc3161-client puts these into its *trusted* store: only configured
        # certificates may go there, never ones that came inside the token.
        intermediates=unique_certs(extra) if trust == "roots" else [],
        tsa_certificate=None if signer_cert in embedded else signer_cert,
    )
    if nonce is not None:
        builder = builder.nonce(nonce)
    try:
        builder.build().verify(resp, digest if digest is not None else imprint)
    except (VerificationError, ValueError) as err:
        add(
            CHECK_LIBRARY,
            False,
            _("rfc3161-client rejects the token: {why}").format(why=_first_line(err)),
        )
    else:
        add(CHECK_LIBRARY, True, _("rfc3161-client verifies signature, chain and imprint"))
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


def _tsa_name(tst: TimeStampTokenInfo) -> str | None:
    try:
        name = tst.name
    except ValueError:  # rfc3161-client raises when the optional field is absent
        return None
    value = getattr(name, "value", name)
    if isinstance(value, x509.Name):
        return value.rfc4514_string()
    return str(value)


def usable(check: TokenCheck, anchored: bool) -> bool:
    """Whether a token may be used: every check passed - or, when no trust anchors were
    given (``anchored`` false), only the anchoring of its chain could not be done (many
    TSAs do not send their root). Trust is then for the verifier to establish."""
    return bool(check.ok or (not anchored and check.finding == TIMESTAMP_UNTRUSTED))


# ------------------------------------------------------------- bare tokens


def wrap_token(token: bytes) -> bytes:
    """A granted TimeStampResp holding ``token`` (RFC 3161 §2.4.2: status 0, the token).

    An evidence record keeps bare TimeStampTokens; wrapped, they go through exactly the
    checks :func:`check_response` makes of a response, rfc3161-client's included.
    """
    return der_encode(0x30, b"\x30\x03\x02\x01\x00" + token)


def token_of(raw: bytes) -> bytes:
    """The TimeStampToken of a TimeStampResp, with its certificate and CRL SETs in DER
    order (``der.der_sorted_token``); DerError if there is none."""
    top = expect(single(raw), 0x30, "TimeStampResp")
    parts = children(raw, top)
    if len(parts) != 2:
        raise DerError(_("the TimeStampResp holds no timeStampToken"))
    return der_sorted_token(raw[parts[1].start : parts[1].end])


def check_token(
    token: bytes,
    *,
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    trust: TrustMode = "roots",
    digest: bytes | None = None,
    algorithm: str | None = None,
) -> TokenCheck:
    """:func:`check_response` for a bare DER TimeStampToken (no nonce to compare).

    Never raises for any value of ``token``.
    """
    return check_response(
        wrap_token(bytes(token)),
        digest=digest,
        nonce=None,
        roots=roots,
        intermediates=intermediates,
        trust=trust,
        algorithm=algorithm,
    )


def stamp_digest(
    digest: bytes,
    algorithm: str,
    transport: Callable[[bytes], bytes],
    *,
    roots: Sequence[x509.Certificate] = (),
    intermediates: Sequence[x509.Certificate] = (),
    source: str | None = None,
) -> tuple[bytes, TokenCheck]:
    """One archive timestamp over ``digest``: request, send, check, return the DER token.

    The answer must pass every check of :func:`check_response` (our imprint and nonce, a
    sound signature, a chain to ``roots`` valid at genTime); without ``roots`` only the
    anchoring may fail (trust is then for the verifier to establish, as for checkpoint
    tokens). The token comes back in DER (``token_of``) with the check. Raises
    TimestampError (one line, naming ``source``, the TSA's URL) when no usable token came
    back.
    """
    from custody.timestamps.tsa_client import build_request

    # Parameters absent, as in the ATS digestAlgorithm fields (tsa_client.build_request).
    request = build_request(digest, algorithm, null_parameters=False)
    raw = transport(request.as_bytes())
    check = check_response(
        raw,
        digest=digest,
        nonce=request.nonce,
        roots=roots,
        intermediates=intermediates,
        trust="roots" if roots else "embedded",
        algorithm=algorithm,
    )
    if not usable(check, bool(roots)) or check.gen_time is None:
        if source is None:
            unusable = _("the timestamp authority sent an unusable token ({finding}): {reason}")
        else:
            unusable = _("{tsa} sent an unusable token ({finding}): {reason}")
        raise TimestampError(
            unusable.format(tsa=source, finding=check.finding, reason=check.reason)
        )
    try:
        token = token_of(raw)
        check_der(token)
    except DerError as err:
        if source is None:
            not_der = _("the timestamp authority sent a token that is not DER ({why})")
        else:
            not_der = _("{tsa} sent a token that is not DER ({why})")
        raise TimestampError(not_der.format(tsa=source, why=err)) from None
    return token, check


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
