"""Checking a signed PDF offline: each signature, its timestamps, the Document Security Store and
the custody binding of the signer's CA, into a structured result (``PdfSignatureCheck``);
nothing printed.

May import: ``custody.errors``, ``custody.clock``, ``custody.delivery.pdfsign.common`` and
``.identity``, ``cryptography``, ``pyhanko`` / ``pyhanko_certvalidator`` / ``asn1crypto``,
the standard library.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from pyhanko.sign.diff_analysis import ModificationLevel
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
from pyhanko_certvalidator.registry import SimpleTrustManager

from custody.clock import format_time, utc_now
from custody.delivery.pdfsign.common import (
    MAX_PDF_BYTES,
    _asn1,
    _der,
    _read_pdf,
    _revinfo_policy,
    _rfc3339,
    _sha256,
    _subject,
    load_pem_certificates,
)
from custody.delivery.pdfsign.identity import BindingCheck, check_custody_binding
from custody.errors import (
    InputError,
)
from custody.i18n import _, ngettext

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
            raise InputError(_("{file}: not a regular file").format(file=path))
        if st.st_size > MAX_PDF_BYTES:
            raise InputError(
                _("{file}: larger than {size} MiB").format(
                    file=path, size=MAX_PDF_BYTES // (1024 * 1024)
                )
            )
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            _("{file}: cannot be read ({why})").format(file=path, why=exc.strerror)
        ) from None
    roots = load_pem_certificates(trust_roots_pem, _("trust roots"))
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
        raise InputError(
            _("{file}: its signature fields cannot be read ({why})").format(file=label, why=exc)
        ) from None
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
            ("NO_SIGNATURE", _("the PDF carries no signature"))
            if not regular
            else (
                "MULTIPLE_SIGNATURES",
                ngettext(
                    "the PDF carries {n} signatures, not one",
                    "the PDF carries {n} signatures, not one",
                    len(regular),
                ).format(n=len(regular)),
            )
        )
        return _unusable(base, (Problem(code, what),))
    sig = regular[0]
    if str(sig.sig_object.get("/SubFilter")) != "/ETSI.CAdES.detached":
        problems.append(
            Problem(
                "NOT_PADES",
                _("signature sub-filter {subfilter}").format(
                    subfilter=sig.sig_object.get("/SubFilter")
                ),
            )
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
            raise ValueError(_("pyHanko returned no status"))
    except Exception as exc:  # pyHanko on a structurally broken signature
        problems.append(
            Problem(
                "SIGNATURE_UNREADABLE",
                _("the signature cannot be evaluated: {why}").format(why=exc),
            )
        )
        return _unusable(base, tuple(problems))
    intact = bool(status.intact and status.valid)
    if not intact:
        problems.append(
            Problem("SIGNATURE_BROKEN", _("the signed bytes or the signature value were altered"))
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
                _("the signer's certificate is not trusted: {why}").format(
                    why=status.trust_problem_indic
                ),
            )
        )
    if custody_public_key is not None and binding.status != "bound":
        problems.append(
            Problem(
                "CUSTODY_BINDING",
                _("custody binding {status}: {detail}").format(
                    status=binding.status, detail=binding.detail
                ),
            )
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
            Problem(
                "LTV_NOT_VALIDATED",
                _("offline long-term validation gave {indication}").format(indication=indication),
            )
        )
    sig_ts_status = status.timestamp_validity
    if sig_ts_status is None and result.signature_timestamp_status is not None:
        sig_ts_status = result.signature_timestamp_status.api_status
    sig_ts = _timestamp_check(sig_ts_status)
    if sig_ts is None:
        problems.append(
            Problem("NO_SIGNATURE_TIMESTAMP", _("the signature carries no timestamp that verifies"))
        )
    elif not sig_ts.intact:
        problems.append(
            Problem("SIGNATURE_TIMESTAMP_BROKEN", _("the signature timestamp is altered"))
        )
    elif not sig_ts.trusted and not ltv_passed:
        problems.append(
            Problem(
                "SIGNATURE_TIMESTAMP_UNTRUSTED", _("the signature timestamp's TSA is not trusted")
            )
        )
    for number, ts in enumerate(doc_ts, 1):
        newest = number == len(doc_ts)
        if not ts.intact or (newest and not ts.trusted):
            problems.append(
                Problem(
                    "DOCUMENT_TIMESTAMP_INVALID",
                    (
                        _("document timestamp {number} is altered")
                        if not ts.intact
                        else _("document timestamp {number} is not trusted at the validation time")
                    ).format(number=number),
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
                _("the PDF was changed after signing ({level})").format(
                    level=level_name.name.lower().replace("_", " ")
                ),
            )
        )
    if not whole and (level_name is None or level_name < ModificationLevel.LTA_UPDATES):
        # Later revisions that only add validation data (B-LT's DSS) are fine; bytes
        # that are no revision at all are not the file that was signed.
        problems.append(
            Problem("NOT_WHOLE_FILE", _("bytes after the last signature or timestamp are unsigned"))
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
    best = BindingCheck("absent", None, _("no certificate in the chain carries a custody binding"))
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
    note = _(
        "the newest document timestamp's TSA certificates are taken as not revoked at "
        "{time}: an offline check cannot learn of a later revocation"
    ).format(time=format_time(moment))
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
