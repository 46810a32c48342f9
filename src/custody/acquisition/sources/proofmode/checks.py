"""The checks on one media file's proof set: each signature, the bundle key against
fingerprints confirmed out of band, the recorded SHA-256 against the media, and a C2PA
manifest in the media (``custody.acquisition.sources.c2pa``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from custody.acquisition.sources.c2pa import C2paReport, ValidationState, read_c2pa
from custody.acquisition.sources.proofmode.files import _File
from custody.acquisition.sources.proofmode.model import (
    HASH_FIELD,
    PUBKEY_FILE,
    Check,
    CheckState,
    Problem,
    ProofRecord,
    SignatureResult,
)
from custody.acquisition.sources.proofmode.openpgp import _Verifier
from custody.acquisition.sources.said import Said, english
from custody.errors import CustodyError
from custody.i18n import N_


@dataclass
class _Folder:
    files: dict[str, _File] = field(default_factory=dict)  # by name


@dataclass(frozen=True)
class _Context:
    folder: _Folder
    key_file: _File | None
    verifier: _Verifier
    expected: frozenset[str] | None
    anchors: bytes | None


def _signature_check(
    ctx: _Context,
    name: str,
    target: _File | None,
    target_suffix: str | None,
    sig_file: _File | None,
    label: str,
) -> tuple[Check, SignatureResult | None]:
    what = (
        Said(N_("the media"))
        if target_suffix is None
        else Said(N_("the {suffix} file"), suffix=target_suffix)
    )
    if sig_file is None:
        return Check(
            name,
            CheckState.FAILED,
            Said(N_("no signature over {what} of {label} in the bundle"), what=what, label=label),
            Problem.PROOF_SIGNATURE_MISSING,
        ), None
    if target is None:
        if target_suffix is None:
            return Check(
                name,
                CheckState.NOT_CHECKABLE,
                Said(
                    N_("{rel} is kept; the media it signs is not in the bundle"), rel=sig_file.rel
                ),
                Problem.PROOF_MEDIA_MISSING,
            ), None
        return Check(
            name,
            CheckState.FAILED,
            Said(
                N_("{rel} is kept, but {what} it signs is not in the bundle"),
                rel=sig_file.rel,
                what=what,
            ),
            Problem.PROOF_MISSING,
        ), None
    if ctx.key_file is None:
        return Check(
            name,
            CheckState.FAILED,
            Said(
                N_("no {pubkey_file} in the bundle: {rel} cannot be verified"),
                pubkey_file=PUBKEY_FILE,
                rel=sig_file.rel,
            ),
            Problem.PROOF_KEY_MISSING,
        ), None
    result = ctx.verifier.verify(ctx.key_file, sig_file, target)
    return Check(name, result.state, result.reason, result.problem), result


def _key_check(ctx: _Context, signatures: Sequence[SignatureResult]) -> Check | None:
    if ctx.key_file is None:
        return None
    key = ctx.verifier.key(ctx.key_file)
    signers = sorted({s.primary_fingerprint for s in signatures if s.primary_fingerprint})
    shown = ", ".join(signers or key.fingerprints) or "(none)"
    if ctx.expected is None:
        return Check(
            "signing_key_confirmed",
            CheckState.NOT_CHECKABLE,
            Said(
                N_(
                    "the signing key ({fingerprints}) came with the bundle in {rel}: it proves"
                    " only that the bundle agrees with itself; confirm the fingerprint out of"
                    " band with whoever made the recording"
                ),
                fingerprints=shown,
                rel=ctx.key_file.rel,
            ),
            Problem.PROOF_KEY_UNCONFIRMED,
        )
    if not signers:
        return Check(
            "signing_key_confirmed",
            CheckState.NOT_CHECKABLE,
            Said(
                N_("no good signature, so no signing key to compare with the expected fingerprints")
            ),
            Problem.PROOF_KEY_UNCONFIRMED,
        )
    unexpected = [s for s in signers if s not in ctx.expected]
    if unexpected:
        return Check(
            "signing_key_confirmed",
            CheckState.FAILED,
            Said(
                N_(
                    "signed by {fingerprints}, which is not among the fingerprints confirmed out"
                    " of band"
                ),
                fingerprints=", ".join(unexpected),
            ),
            Problem.PROOF_KEY_MISMATCH,
        )
    return Check(
        "signing_key_confirmed",
        CheckState.PASSED,
        Said(
            N_("signed by {fingerprints}, a fingerprint confirmed out of band"), fingerprints=shown
        ),
    )


def _recorded_hash(records: Sequence[ProofRecord]) -> str | None:
    for record in records:
        value = record.get(HASH_FIELD)
        if value:
            return value.strip().lower()
    return None


def _hash_check(
    media: _File | None, proof_hash: str | None, layout: str, records: Sequence[ProofRecord]
) -> Check:
    recorded: dict[str, list[Said | str]] = {}
    if proof_hash is not None and layout == "hash-named":
        recorded.setdefault(proof_hash.lower(), []).append(Said(N_("the proof files' names")))
    for record in records:
        value = record.get(HASH_FIELD)
        if value is not None:
            where = Said(
                N_("{file} record {number}"), file=record.source_file, number=record.index + 1
            )
            recorded.setdefault(value.strip().lower(), []).append(where)
    if not recorded:
        return Check(
            "recorded_hash",
            CheckState.NOT_CHECKABLE,
            Said(N_("the proof records no SHA-256 for the media")),
        )
    if media is None:
        if len(recorded) > 1:
            return Check(
                "recorded_hash",
                CheckState.FAILED,
                Said(
                    N_("the proof files disagree about the media's SHA-256: {hashes}"),
                    hashes=_describe_hashes(recorded),
                ),
                Problem.PROOF_HASH_MISMATCH,
            )
        return Check(
            "recorded_hash",
            CheckState.NOT_CHECKABLE,
            Said(
                N_("the media is not in the bundle; recorded SHA-256 {sha256}"),
                sha256=next(iter(recorded)),
            ),
        )
    wrong = {h: w for h, w in recorded.items() if h != media.sha256}
    if wrong:
        return Check(
            "recorded_hash",
            CheckState.FAILED,
            Said(
                N_("{rel} has SHA-256 {sha256}, but ProofMode recorded {hashes}"),
                rel=media.rel,
                sha256=media.sha256,
                hashes=_describe_hashes(wrong),
            ),
            Problem.PROOF_HASH_MISMATCH,
        )
    return Check(
        "recorded_hash",
        CheckState.PASSED,
        Said(
            N_("{rel} has the SHA-256 ProofMode recorded ({sha256})"),
            rel=media.rel,
            sha256=media.sha256,
        ),
    )


def _describe_hashes(recorded: Mapping[str, Sequence[Said | str]]) -> Said:
    return Said.joined(
        "; ",
        [
            Said(N_("{sha256} (in {places})"), sha256=h, places=Said.joined(", ", list(where)))
            for h, where in recorded.items()
        ],
    )


# --- C2PA -----------------------------------------------------------------------------------------


def _c2pa_checks(media: _File, anchors: bytes | None) -> tuple[C2paReport | None, list[Check]]:
    try:
        report = read_c2pa(media.disk, anchors)
    except CustodyError as exc:
        return None, [
            Check(
                "c2pa_manifest",
                CheckState.NOT_CHECKABLE,
                english(exc),  # recorded: the English, shown translated (a Said)
                Problem.C2PA_UNREADABLE,
            )
        ]
    if report is None:
        return None, []
    checks: list[Check] = []
    if report.validation_state is ValidationState.INVALID:
        codes = ", ".join(report.failure_codes) or "no code"
        checks.append(
            Check(
                "c2pa_integrity",
                CheckState.FAILED,
                Said(
                    N_("the C2PA manifest in {rel} is invalid ({codes})"),
                    rel=media.rel,
                    codes=codes,
                ),
                Problem.C2PA_INVALID,
            )
        )
        return report, checks
    checks.append(
        Check(
            "c2pa_integrity",
            CheckState.PASSED,
            Said(
                N_("the C2PA manifest in {rel} is intact (signature and bindings)"), rel=media.rel
            ),
        )
    )
    signer = (
        report.signer.certificate.subject
        if report.signer and report.signer.certificate
        else (report.signer.common_name if report.signer else None)
    )
    if report.validation_state is ValidationState.TRUSTED:
        checks.append(
            Check(
                "c2pa_signer_trusted",
                CheckState.PASSED,
                Said(N_("signer {signer} chains to a supplied trust anchor"), signer=signer),
            )
        )
    elif report.trust_anchors_supplied:
        checks.append(
            Check(
                "c2pa_signer_trusted",
                CheckState.FAILED,
                Said(
                    N_("signer {signer} does not chain to any supplied trust anchor"), signer=signer
                ),
                Problem.C2PA_UNTRUSTED,
            )
        )
    else:
        checks.append(
            Check(
                "c2pa_signer_trusted",
                CheckState.NOT_CHECKABLE,
                Said(N_("signer {signer}: no trust anchors were supplied"), signer=signer),
                Problem.C2PA_TRUST_NOT_CHECKED,
            )
        )
    return report, checks
