"""Witness cosignatures of a ledger's checkpoints: C2SP tlog-cosignature/v1 over the
checkpoint as a C2SP checkpoint body (origin ``custody.ledger/<ledger identity>``, size,
base64 root), and how much of a ledger a set of witnesses covers.

A cosignature is self-authenticating: whoever carries it into a ledger or a bundle, it is
checked against the witness's key and against the tree it claims. Which witnesses count is
the verifier's choice (``verify --witness``); this module only answers "is this cosignature
by this key, over this tree, valid?" and "up to which size do N of these witnesses cover?".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from custody.errors import InputError
from custody.findings import Code, Finding
from custody.i18n import _, ngettext
from custody.keys.keyring import fingerprint_of, verify_ed25519
from custody.ledger.bodies import WitnessBody
from custody.ledger.c2sp import (
    Checkpoint,
    Cosigner,
    Note,
    NoteSignature,
    VerifierKey,
    cosignature_message,
    key_name,
    ledger_origin,
)

DOCUMENT_FORMAT = "custody-cosignature/1"
MAX_DOCUMENT = 1 << 16


def checkpoint_body(identity: str, tree_size: int, root: str) -> str:
    return Checkpoint(ledger_origin(bytes.fromhex(identity)), tree_size, bytes.fromhex(root)).body()


def is_valid(identity: str, body: WitnessBody) -> bool:
    """Does the signature verify over this ledger's checkpoint of (tree_size, root)?"""
    message = cosignature_message(checkpoint_body(identity, body.tree_size, body.root), body.time)
    return verify_ed25519(body.witness_key, body.signature, message)


def cosign(
    identity: str,
    tree_size: int,
    root: str,
    public_key: bytes,
    sign: Callable[[bytes], bytes],
    at: datetime,
) -> WitnessBody:
    """A witness's cosignature of the checkpoint, by the key ``sign`` signs with."""
    name = key_name(public_key)
    seconds = int(at.astimezone(UTC).timestamp())
    message = cosignature_message(checkpoint_body(identity, tree_size, root), seconds)
    signature = sign(message)
    body = WitnessBody(tree_size, root, public_key, name, seconds, signature)
    if not is_valid(identity, body):
        raise InputError(_("the witness key did not produce a valid cosignature"))
    return body


def note(identity: str, body: WitnessBody) -> str:
    """The cosigned checkpoint as a C2SP signed note (its only signature: the cosignature),
    which tlog witness tooling reads with the witness's vkey (``vkey``)."""
    text = checkpoint_body(identity, body.tree_size, body.root)
    signer = Cosigner(body.witness_name, body.witness_key, lambda message: b"")
    payload = body.time.to_bytes(8, "big") + body.signature
    signed = Note(text).with_signature(
        NoteSignature(body.witness_name, signer.verifier_key.key_id, payload)
    )
    return signed.to_bytes().decode("utf-8")


def vkey(body: WitnessBody) -> str:
    return VerifierKey.cosignature_v1(body.witness_name, body.witness_key).vkey()


def to_document(identity: str, body: WitnessBody, holder: str | None = None) -> dict[str, Any]:
    """The file a witness hands back (``custody witness cosign --out``)."""
    return {
        "format": DOCUMENT_FORMAT,
        "ledger": identity,
        "origin": ledger_origin(bytes.fromhex(identity)),
        "cosignature": body.to_json(),
        "witness_fingerprint": fingerprint_of(body.witness_key),
        "witness_holder": holder,
        "vkey": vkey(body),
        "note": note(identity, body),
    }


def from_document(data: bytes, where: str) -> tuple[str, WitnessBody]:
    """(ledger identity, cosignature) from a cosignature file; InputError if it is not one."""
    from custody.errors import RecordError

    if len(data) > MAX_DOCUMENT:
        raise InputError(_("{path} is too large to be a cosignature file").format(path=where))
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("format") != DOCUMENT_FORMAT:
            raise ValueError(_("not a {format} file").format(format=DOCUMENT_FORMAT))
        identity = str(document["ledger"])
        bytes.fromhex(identity)
        if len(identity) != 64:
            raise ValueError(_("the ledger identity is not 64 hex digits"))
        body = WitnessBody.from_json(document["cosignature"])
    except (ValueError, KeyError, TypeError, RecordError) as exc:
        raise InputError(
            _("{path} is not a cosignature file: {why}").format(path=where, why=exc)
        ) from None
    return identity, body


@dataclass(frozen=True)
class Coverage:
    """How far a set of witnesses cover a ledger: ``size`` = the largest tree size that at
    least ``quorum`` of them cosigned (validly, over the real tree)."""

    size: int
    by_witness: Mapping[str, int]  # fingerprint -> largest valid cosigned size
    quorum: int


def coverage(
    identity: str,
    cosignatures: Iterable[WitnessBody],
    witnesses: Iterable[str],
    quorum: int,
    root_at: Callable[[int], str | None],
) -> Coverage:
    """Coverage by the named witnesses (fingerprints); ``root_at(size)`` gives the verifier's
    own root of the first ``size`` records (None when it cannot know it)."""
    wanted = set(witnesses)
    best: dict[str, int] = {}
    for body in cosignatures:
        fingerprint = fingerprint_of(body.witness_key)
        if fingerprint not in wanted or root_at(body.tree_size) != body.root:
            continue
        if is_valid(identity, body):
            best[fingerprint] = max(best.get(fingerprint, 0), body.tree_size)
    sizes = sorted(best.values(), reverse=True)
    size = sizes[quorum - 1] if quorum <= len(sizes) else 0
    return Coverage(size, best, quorum)


def coverage_findings(
    covered: Coverage, uncovered: list[int], witnesses: int
) -> tuple[list[Finding], str]:
    """WITNESS_MISSING for the records relied on beyond the covered size, and the words
    for the check's detail; the same for a root and a bundle."""
    findings = []
    if uncovered:
        findings.append(
            Finding(
                Code.WITNESS_MISSING,
                f"records {uncovered[0]}-{uncovered[-1]}",
                ngettext(
                    "{n} record(s) are not covered by a checkpoint that at least {quorum} of "
                    "your witnesses cosigned",
                    "{n} record(s) are not covered by a checkpoint that at least {quorum} of "
                    "your witnesses cosigned",
                    len(uncovered),
                ).format(n=len(uncovered), quorum=covered.quorum),
                uncovered[0],
                f"cosigned by {covered.quorum} of {witnesses} witnesses",
                f"covered up to {covered.size} records",
            )
        )
    # Appended to the check's own detail, as a second clause.
    detail = "; " + ngettext(
        "{quorum} of your {witnesses} witnesses cover the first {n} records",
        "{quorum} of your {witnesses} witnesses cover the first {n} records",
        covered.size,
    ).format(quorum=covered.quorum, witnesses=witnesses, n=covered.size)
    return findings, detail
