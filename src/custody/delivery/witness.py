"""Witnessing: a second party (a lawyer, a partner organisation, an archive) checks a
ledger's checkpoint against everything it has seen of that ledger, and only then cosigns it.

What a cosignature states (C2SP tlog-cosignature/v1): "I checked that this checkpoint
extends every checkpoint of this ledger I saw before". So the witness refuses to cosign a
checkpoint that contradicts one it remembered or cosigned — two inconsistent checkpoints of
one ledger are the proof of a fork, and the refusal names both.

The checkpoint comes from an evidence root or a bundle (fully verified under the witness's
own trust, remembered checkpoints included) or from a C2SP checkpoint note (``custody sign
--format c2sp``) with the log's public key and, when the witness has seen the ledger at
another size, a consistency proof (``custody proof consistency``).

Here, not in ``custody.trust``, because it needs both root and bundle verification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from custody.clock import Clock, utc_now
from custody.errors import InputError, ProofError, UsageError
from custody.findings import VerificationResult
from custody.i18n import _
from custody.keys.keyring import SigningKey
from custody.ledger import cosignatures, merkle
from custody.ledger.bodies import WitnessBody
from custody.trust.remembered import RememberedLedgers


class ForkError(ProofError):
    """The checkpoint contradicts one this witness saw before: it will not cosign."""


@dataclass(frozen=True)
class Cosigned:
    identity: str
    tree_size: int
    root: str
    body: WitnessBody
    document: dict[str, Any]
    verification: VerificationResult | None


def cosign_verified(
    result: VerificationResult, signer: SigningKey, *, clock: Clock = utc_now
) -> Cosigned:
    """Cosign the checkpoint a root or bundle verification vouched for, if it was intact."""
    if not result.ok:
        problems = "; ".join(f"{f.code} {f.item}: {f.message}" for f in result.errors[:3])
        forked = any(str(f.code) in ("NOT_APPEND_ONLY", "HELD_CHECKPOINT_UNPROVEN")
                     for f in result.findings)  # fmt: skip
        error = ForkError if forked else ProofError
        raise error(_("refusing to cosign: {problems}").format(problems=problems))
    older = [f for f in result.warnings if str(f.code) == "HELD_CHECKPOINT_UNPROVEN"]
    if older:
        raise ForkError(
            _("refusing to cosign: {problem} ({item})").format(
                problem=older[0].message, item=older[0].item
            )
        )
    if result.ledger_identity is None or result.checkpoint is None:
        raise UsageError(_("nothing to cosign: no checkpoint of an identified ledger was verified"))
    checkpoint = result.checkpoint
    return _cosign(
        result.ledger_identity,
        int(checkpoint["tree_size"]),
        str(checkpoint["root"]),
        signer,
        clock(),
        result,
    )


def cosign_note(
    note_data: bytes,
    log_key: bytes,
    signer: SigningKey,
    remembered: RememberedLedgers,
    *,
    proof: dict[str, Any] | None = None,
    clock: Clock = utc_now,
) -> Cosigned:
    """Cosign a C2SP checkpoint note signed by ``log_key``, consistent with what the
    witness remembers of that ledger (``proof``: a custody consistency proof document)."""
    from custody.ledger import c2sp
    from custody.ledger.proofs import check_document

    try:
        parsed = c2sp.parse_note(note_data)
        body = c2sp.parse_checkpoint(parsed.text)
    except InputError as exc:
        raise InputError(_("not a C2SP checkpoint note: {why}").format(why=exc)) from None
    prefix = c2sp.ORIGIN_PREFIX + "/"
    if not body.origin.startswith(prefix):
        raise InputError(
            _("the note's origin {origin!r} is not a custody ledger").format(origin=body.origin)
        )
    identity = body.origin[len(prefix) :]
    verified = c2sp.verify_checkpoint(
        parsed,
        origin=body.origin,
        log_keys=[c2sp.VerifierKey.ed25519(body.origin, log_key)],
    )
    if not verified.ok:
        raise ProofError(
            _("refusing to cosign: {problems}").format(problems="; ".join(verified.problems))
        )
    size, root = body.tree_size, body.root_hash.hex()
    known = remembered.get(identity)
    for seen in known.checkpoints if known is not None else []:
        if seen.tree_size == size:
            if seen.root != root:
                raise ForkError(_fork(seen.describe(), size, root))
            continue
        if seen.tree_size > size:
            raise ForkError(
                _(
                    "refusing to cosign: you saw this ledger at {seen} records ({where}); this "
                    "checkpoint of {size} records is older"
                ).format(seen=seen.tree_size, where=seen.describe(), size=size)
            )
        if proof is None:
            raise UsageError(
                _(
                    "you saw this ledger at {seen} records: give --proof, a consistency proof "
                    "from {seen} to {size} records (custody proof consistency)"
                ).format(seen=seen.tree_size, size=size)
            )
        outcome = check_document(proof)
        if (
            not outcome.ok
            or proof.get("old_size") != seen.tree_size
            or proof.get("new_size") != size
            or proof.get("new_root") != root
        ):
            raise ProofError(_("refusing to cosign: the consistency proof is not for this pair"))
        if proof.get("old_root") != seen.root:
            raise ForkError(_fork(seen.describe(), seen.tree_size, str(proof.get("old_root"))))
        try:
            merkle.verify_consistency(
                seen.tree_size, size, bytes.fromhex(seen.root), bytes.fromhex(root),
                [bytes.fromhex(h) for h in proof.get("proof", [])],
            )  # fmt: skip
        except (merkle.MerkleProofError, ValueError) as exc:
            raise ForkError(_("refusing to cosign: {problems}").format(problems=exc)) from None
    return _cosign(identity, size, root, signer, clock(), None)


def _fork(seen: str, size: int, root: str) -> str:
    return _(
        "refusing to cosign: this ledger's tree of {size} records has root {root}, but "
        "{seen}. Two inconsistent checkpoints of one ledger are the proof of a fork: keep both"
    ).format(size=size, root=root, seen=seen)


def _cosign(
    identity: str,
    size: int,
    root: str,
    signer: SigningKey,
    at: datetime,
    result: VerificationResult | None,
) -> Cosigned:
    body = cosignatures.cosign(identity, size, root, signer.public.raw, signer.sign, at)
    document = cosignatures.to_document(identity, body, signer.name)
    return Cosigned(identity, size, root, body, document, result)


def load_cosignature(path: Path) -> tuple[str, WitnessBody]:
    try:
        data = path.read_bytes()[: cosignatures.MAX_DOCUMENT + 1]
    except OSError as exc:
        raise InputError(
            _("cannot read {path}: {why}").format(path=path, why=exc.strerror)
        ) from None
    identity, body = cosignatures.from_document(data, str(path))
    if not cosignatures.is_valid(identity, body):
        raise InputError(_("{path}: the cosignature does not verify").format(path=path))
    return identity, body


def add_cosignatures(
    root: Any, signer: SigningKey, paths: list[Path], *, clock: Clock = utc_now
) -> list[int]:
    """Bring cosignature files into ``root``'s ledger as ``witness`` records (any key may
    carry them: the cosignature is what verification checks). Each must be for this ledger
    and for a tree this ledger really has; returns the record numbers written."""
    import hashlib

    from custody.ledger.backends import open_ledger

    bodies = [load_cosignature(path) for path in paths]
    written: list[int] = []
    with open_ledger(root) as ledger:
        identity = hashlib.sha256(ledger.read(0).line).hexdigest()
        size_now = ledger.index.size
        for (claimed, body), path in zip(bodies, paths, strict=True):
            if claimed != identity:
                raise UsageError(
                    _("{path} cosigns another ledger ({ledger}), not this one").format(
                        path=path, ledger=claimed
                    )
                )
            if body.tree_size > size_now or ledger.root_hash(body.tree_size).hex() != body.root:
                raise UsageError(
                    _(
                        "{path} cosigns a tree of {size} records that this ledger does not have: "
                        "the witness saw another history (keep the file: it is evidence)"
                    ).format(path=path, size=body.tree_size)
                )
        with ledger.writer(signer, clock=clock) as writer:
            for _claimed, body in bodies:
                written.append(writer.append("witness", body.to_json()).seq)
    return written
