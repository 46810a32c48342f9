"""Signing a PDF as a PAdES baseline signature (B-LT, B-LTA): an RFC 3161 signature timestamp
from a bounded HTTP client, validation material in the DSS, an optional document timestamp,
and renewing that document timestamp later (``extend_archive_timestamp``).

May import: ``custody.errors``, ``custody.clock``, ``custody.delivery.pdfsign.common``,
``.identity`` and ``.checking``, ``cryptography``, ``pyhanko`` / ``pyhanko_certvalidator``,
``aiohttp``, the standard library.
"""

from __future__ import annotations

import datetime as dt
import io
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers.pdf_signer import (
    DSSContentSettings,
    PdfTimeStamper,
    TimestampDSSContentSettings,
)
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from custody.clock import Clock, utc_now
from custody.delivery.pdfsign.checking import check_signed_pdf_bytes
from custody.delivery.pdfsign.common import (
    FIELD_NAME,
    LEVELS,
    MAX_TSA_RESPONSE,
    Level,
    PrivateKey,
    _asn1,
    _check_target,
    _der,
    _read_pdf,
    _revinfo_policy,
    _sha256,
    _write_new_file,
    load_pem_certificates,
)
from custody.delivery.pdfsign.identity import PreparerIdentity, _issue_one_time
from custody.errors import (
    InputError,
    TimestampError,
    UsageError,
)
from custody.i18n import _

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
                    raise TimestampRequestError(
                        _("HTTP status {status}").format(status=response.status)
                    )
                ctype = response.headers.get("Content-Type", "")
                if ctype.split(";")[0].strip().lower() != "application/timestamp-reply":
                    raise TimestampRequestError(
                        _("content type {type!r}, not a timestamp reply").format(type=ctype)
                    )
                body = b""
                while chunk := await response.content.read(65536):  # may return less
                    body += chunk
                    if len(body) > MAX_TSA_RESPONSE:
                        raise TimestampRequestError(
                            _("answer larger than {limit} bytes").format(limit=MAX_TSA_RESPONSE)
                        )
        except TimestampRequestError:
            raise  # ours, with its reason (it is an OSError too)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TimestampRequestError(
                _("could not reach it ({kind})").format(kind=type(exc).__name__)
            ) from exc
        try:
            return tsp.TimeStampResp.load(body, strict=True)
        except ValueError as exc:
            raise TimestampRequestError(_("the answer is not a TimeStampResp")) from exc


def _check_tsa_urls(tsa_urls: Sequence[str]) -> list[str]:
    urls = list(tsa_urls)
    if not urls:
        raise UsageError(_("no timestamp authority given: a PAdES B-LT signature needs one"))
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(_("timestamp authority {url!r} is not an http(s) URL").format(url=url))
    return urls




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
        raise UsageError(
            _("unknown PAdES level {level!r}: one of {choices}").format(
                level=level, choices=", ".join(LEVELS)
            )
        )
    urls = _check_tsa_urls(tsa_urls)
    tsa_roots = load_pem_certificates(tsa_roots_pem, _("timestamp authority roots"))
    out_path = Path(out_path)
    _check_target(out_path)
    reader = _read_pdf(pdf_in, _("PDF to sign"))
    if reader.embedded_signatures:
        raise InputError(_("the PDF already carries a signature; custody signs unsigned reports"))
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
        check = check_signed_pdf_bytes(signed, roots, label=_("signed PDF"))
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
        _("no timestamp authority produced a usable signature timestamp: {failures}").format(
            failures=" | ".join(failures)
        )
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
    roots = load_pem_certificates(trust_roots_pem, _("trust roots"))
    out_path = Path(out_path)
    _check_target(out_path)
    before = check_signed_pdf_bytes(pdf_in, roots, label=_("PDF to extend"))
    if not before.ok:
        raise InputError(
            _(
                "the PDF does not check out now, so a new timestamp would vouch for nothing: "
                "{problems}"
            ).format(problems="; ".join(p.message for p in before.problems))
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
        after = check_signed_pdf_bytes(extended, roots, label=_("extended PDF"))
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
        _("no timestamp authority produced a usable document timestamp: {failures}").format(
            failures=" | ".join(failures)
        )
    )
