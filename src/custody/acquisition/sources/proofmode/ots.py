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

# --- OpenTimestamps ------------------------------------------------------------------------------


def _read_ots(item: _File) -> OtsProof:
    def broken(message: str) -> OtsProof:
        return OtsProof(item.rel, item.sha256, item.size, None, None, (), message)

    raw = _read_small(item)
    if raw is None:
        return broken(f"{item.size} bytes: too large for an OpenTimestamps proof")
    try:
        detached = DetachedTimestampFile.deserialize(StreamDeserializationContext(io.BytesIO(raw)))
        leaves = list(detached.timestamp.all_attestations())
    except Exception as exc:
        # Whatever the library raises on bad input is a malformed proof, not a crash.
        return broken(f"not a valid OpenTimestamps proof ({type(exc).__name__}: {exc})")
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
                "ots_digest", CheckState.FAILED, f"{ots.file}: {ots.error}", Problem.OTS_MALFORMED
            )
        ]
    checks: list[Check] = []
    target = media.sha256 if media is not None else recorded
    subject = media.rel if media is not None else "the recorded hash"
    if ots.file_hash_algorithm != "sha256":
        checks.append(
            Check(
                "ots_digest",
                CheckState.FAILED,
                f"{ots.file} timestamps a {ots.file_hash_algorithm} digest; ProofMode "
                "stamps the SHA-256",
                Problem.OTS_DIGEST_MISMATCH,
            )
        )
    elif target is None:
        checks.append(
            Check(
                "ots_digest",
                CheckState.NOT_CHECKABLE,
                f"{ots.file} timestamps {ots.file_digest}; no media or recorded hash "
                "to compare it with",
            )
        )
    elif ots.file_digest != target:
        checks.append(
            Check(
                "ots_digest",
                CheckState.FAILED,
                f"{ots.file} timestamps {ots.file_digest}, not the SHA-256 of {subject} ({target})",
                Problem.OTS_DIGEST_MISMATCH,
            )
        )
    else:
        checks.append(
            Check(
                "ots_digest", CheckState.PASSED, f"{ots.file} timestamps the SHA-256 of {subject}"
            )
        )
    blocks = [a for a in ots.attestations if a.kind in ("bitcoin", "litecoin")]
    unknown = [a for a in ots.attestations if a.kind in ("unknown", "ethereum")]
    extra = f"; {len(unknown)} attestation(s) of other kinds kept" if unknown else ""
    if blocks:
        described = ", ".join(
            f"{a.kind} block {a.block_height} (Merkle root {a.merkle_root})" for a in blocks
        )
        checks.append(
            Check(
                "ots_attestation",
                CheckState.NOT_CHECKABLE,
                f"complete: {described}; checking it needs that block's header: "
                f"run `ots verify` against a Bitcoin node{extra}",
                Problem.OTS_NOT_VERIFIED_OFFLINE,
            )
        )
    elif ots.pending_calendars:
        checks.append(
            Check(
                "ots_attestation",
                CheckState.NOT_CHECKABLE,
                "pending at "
                + ", ".join(ots.pending_calendars)
                + f": `ots upgrade` then `ots verify` complete it{extra}",
                Problem.OTS_PENDING,
            )
        )
    else:
        checks.append(
            Check(
                "ots_attestation",
                CheckState.NOT_CHECKABLE,
                f"no Bitcoin or calendar attestation custody knows{extra}",
                Problem.OTS_NOT_VERIFIED_OFFLINE,
            )
        )
    return checks
