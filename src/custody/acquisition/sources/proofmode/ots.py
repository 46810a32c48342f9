"""``.ots`` OpenTimestamps proofs, parsed with the reference ``opentimestamps`` library:
which digest they stamp, which calendars (pending) and which block attestations
(complete, but not checkable offline)."""

from __future__ import annotations

import io

from opentimestamps.core.serialize import StreamDeserializationContext
from opentimestamps.core.timestamp import DetachedTimestampFile

from custody.acquisition.sources.proofmode.files import _File
from custody.acquisition.sources.proofmode.model import (
    Check,
    CheckState,
    OtsAttestation,
    OtsProof,
    Problem,
)
from custody.acquisition.sources.proofmode.proofs import _read_small
from custody.acquisition.sources.said import Said
from custody.i18n import N_

# --- OpenTimestamps ------------------------------------------------------------------------------


def _read_ots(item: _File) -> OtsProof:
    def broken(message: str) -> OtsProof:
        return OtsProof(item.rel, item.sha256, item.size, None, None, (), message)

    raw = _read_small(item)
    if raw is None:
        return broken(
            Said(N_("{size} bytes: too large for an OpenTimestamps proof"), size=item.size)
        )
    try:
        detached = DetachedTimestampFile.deserialize(StreamDeserializationContext(io.BytesIO(raw)))
        leaves = list(detached.timestamp.all_attestations())
    except Exception as exc:
        # Whatever the library raises on bad input is a malformed proof, not a crash.
        return broken(
            Said(
                N_("not a valid OpenTimestamps proof ({name}: {why})"),
                name=type(exc).__name__,
                why=exc,
            )
        )
    attestations = tuple(sorted((_attestation(msg, att) for msg, att in leaves), key=_att_order))
    return OtsProof(
        file=item.rel,
        sha256=item.sha256,
        size=item.size,
        file_hash_algorithm=str(getattr(detached.file_hash_op, "TAG_NAME", None)),
        file_digest=bytes(detached.file_digest).hex(),
        attestations=attestations,
        error=None,
    )


def _att_order(att: OtsAttestation) -> tuple[str, int, str]:
    return (att.kind, att.block_height or 0, att.calendar_url or att.commitment)


def _attestation(msg: bytes, att: object) -> OtsAttestation:
    kind_name = type(att).__name__
    commitment = bytes(msg).hex()
    if kind_name == "PendingAttestation":
        return OtsAttestation("pending", commitment, calendar_url=str(getattr(att, "uri", "")))
    if kind_name in ("BitcoinBlockHeaderAttestation", "LitecoinBlockHeaderAttestation"):
        # The attested message is the block's Merkle root in internal byte order; explorers
        # and `ots info` show it reversed.
        return OtsAttestation(
            "bitcoin" if kind_name.startswith("Bitcoin") else "litecoin",
            commitment,
            block_height=int(getattr(att, "height", -1)),
            merkle_root=bytes(msg)[::-1].hex(),
        )
    if kind_name == "EthereumBlockHeaderAttestation":
        return OtsAttestation("ethereum", commitment, block_height=int(getattr(att, "height", -1)))
    tag = getattr(att, "TAG", b"")
    return OtsAttestation("unknown", commitment, tag=bytes(tag).hex() if tag else None)


def _ots_checks(ots: OtsProof, media: _File | None, recorded: str | None) -> list[Check]:
    if ots.error is not None:
        return [
            Check(
                "ots_digest",
                CheckState.FAILED,
                Said(N_("{file}: {error}"), file=ots.file, error=ots.error),
                Problem.OTS_MALFORMED,
            )
        ]
    checks: list[Check] = []
    target = media.sha256 if media is not None else recorded
    subject = media.rel if media is not None else Said(N_("the recorded hash"))
    if ots.file_hash_algorithm != "sha256":
        checks.append(
            Check(
                "ots_digest",
                CheckState.FAILED,
                Said(
                    N_("{file} timestamps a {algorithm} digest; ProofMode stamps the SHA-256"),
                    file=ots.file,
                    algorithm=ots.file_hash_algorithm,
                ),
                Problem.OTS_DIGEST_MISMATCH,
            )
        )
    elif target is None:
        checks.append(
            Check(
                "ots_digest",
                CheckState.NOT_CHECKABLE,
                Said(
                    N_("{file} timestamps {digest}; no media or recorded hash to compare it with"),
                    file=ots.file,
                    digest=ots.file_digest,
                ),
            )
        )
    elif ots.file_digest != target:
        checks.append(
            Check(
                "ots_digest",
                CheckState.FAILED,
                Said(
                    N_("{file} timestamps {digest}, not the SHA-256 of {subject} ({sha256})"),
                    file=ots.file,
                    digest=ots.file_digest,
                    subject=subject,
                    sha256=target,
                ),
                Problem.OTS_DIGEST_MISMATCH,
            )
        )
    else:
        checks.append(
            Check(
                "ots_digest",
                CheckState.PASSED,
                Said(
                    N_("{file} timestamps the SHA-256 of {subject}"), file=ots.file, subject=subject
                ),
            )
        )
    blocks = [a for a in ots.attestations if a.kind in ("bitcoin", "litecoin")]
    unknown = [a for a in ots.attestations if a.kind in ("unknown", "ethereum")]
    extra = (
        Said.ngettext(
            "; {n} attestation of another kind kept",
            "; {n} attestations of other kinds kept",
            len(unknown),
        )
        if unknown
        else ""
    )
    if blocks:
        described = Said.joined(
            ", ",
            [
                Said(
                    N_("{chain} block {height} (Merkle root {root})"),
                    chain=a.kind,
                    height=a.block_height,
                    root=a.merkle_root,
                )
                for a in blocks
            ],
        )
        checks.append(
            Check(
                "ots_attestation",
                CheckState.NOT_CHECKABLE,
                Said(
                    N_(
                        "complete: {blocks}; checking it needs that block's header: run"
                        " `ots verify` against a Bitcoin node{extra}"
                    ),
                    blocks=described,
                    extra=extra,
                ),
                Problem.OTS_NOT_VERIFIED_OFFLINE,
            )
        )
    elif ots.pending_calendars:
        checks.append(
            Check(
                "ots_attestation",
                CheckState.NOT_CHECKABLE,
                Said(
                    N_(
                        "pending at {calendars}: `ots upgrade` then `ots verify` complete it{extra}"
                    ),
                    calendars=", ".join(ots.pending_calendars),
                    extra=extra,
                ),
                Problem.OTS_PENDING,
            )
        )
    else:
        checks.append(
            Check(
                "ots_attestation",
                CheckState.NOT_CHECKABLE,
                Said(N_("no Bitcoin or calendar attestation custody knows{extra}"), extra=extra),
                Problem.OTS_NOT_VERIFIED_OFFLINE,
            )
        )
    return checks
